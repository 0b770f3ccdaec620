/* Tests of src/common/sha256.c: FIPS 180-4 test vectors, incremental updates, hex. */
#include "common/sha256.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static void hex_of(const void *p, size_t n, char out[NU_SHA256_HEX_LEN + 1])
{
    unsigned char d[NU_SHA256_LEN];
    nu_sha256(p, n, d);
    nu_sha256_hex(d, NU_SHA256_LEN, out);
}

Test(sha256, standard_vectors)
{
    static const struct {
        const char *msg;
        const char *hex;
    } cases[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrl"
         "m"
         "nopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char hex[NU_SHA256_HEX_LEN + 1];
        hex_of(cases[i].msg, strlen(cases[i].msg), hex);
        cr_assert_str_eq(hex, cases[i].hex, "case %zu", i);
    }
}

Test(sha256, million_a_fed_in_odd_chunks)
{
    struct nu_sha256 c;
    unsigned char d[NU_SHA256_LEN];
    char hex[NU_SHA256_HEX_LEN + 1];
    char chunk[997];
    memset(chunk, 'a', sizeof(chunk));
    nu_sha256_init(&c);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof(chunk) ? left : sizeof(chunk);
        nu_sha256_update(&c, chunk, n);
        left -= n;
    }
    nu_sha256_final(&c, d);
    nu_sha256_hex(d, NU_SHA256_LEN, hex);
    cr_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

Test(sha256, incremental_equals_one_shot_at_every_split_point)
{
    unsigned char msg[200], a[NU_SHA256_LEN], b[NU_SHA256_LEN];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (unsigned char)(i * 7 + 3);
    for (size_t len = 0; len <= sizeof(msg); len += 13) {
        nu_sha256(msg, len, a);
        for (size_t cut = 0; cut <= len; cut++) {
            struct nu_sha256 c;
            nu_sha256_init(&c);
            nu_sha256_update(&c, msg, cut);
            nu_sha256_update(&c, msg + cut, len - cut);
            nu_sha256_final(&c, b);
            cr_assert(memcmp(a, b, sizeof(a)) == 0, "len %zu cut %zu", len, cut);
        }
    }
}

Test(sha256, padding_boundaries_55_56_64)
{
    /* lengths around the one-block / two-block padding edge, checked against known digests */
    static const struct {
        size_t n;
        const char *hex;
    } cases[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
    };
    char buf[64];
    memset(buf, 'a', sizeof(buf));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char hex[NU_SHA256_HEX_LEN + 1];
        hex_of(buf, cases[i].n, hex);
        cr_assert_str_eq(hex, cases[i].hex, "length %zu", cases[i].n);
    }
}
