/*
 * sha256.h — SHA-256 (FIPS 180-4), incremental (layer: common).
 *
 * Used for deterministic split ids, Avro sync markers and claim-check digests. A context is a
 * plain value owned by the caller: init, update any number of times, final once. No allocation;
 * thread-safe as long as each context is used by one thread at a time.
 */
#ifndef NU_COMMON_SHA256_H
#define NU_COMMON_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define NU_SHA256_LEN     32
#define NU_SHA256_HEX_LEN 64 /* without the NUL */

struct nu_sha256 {
    uint32_t h[8];
    uint64_t nbytes;       /* message length so far */
    unsigned char blk[64]; /* pending partial block */
    size_t blen;           /* bytes in blk */
};

void nu_sha256_init(struct nu_sha256 *c);
void nu_sha256_update(struct nu_sha256 *c, const void *data, size_t len);
/* Writes the 32-byte digest; the context must be re-initialised before reuse. */
void nu_sha256_final(struct nu_sha256 *c, unsigned char out[NU_SHA256_LEN]);
/* One-shot digest of a buffer. */
void nu_sha256(const void *data, size_t len, unsigned char out[NU_SHA256_LEN]);
/* Lower-case hex of `n` bytes into `out` (2n+1 bytes, NUL-terminated). */
void nu_sha256_hex(const unsigned char *digest, size_t n, char *out);

#endif
