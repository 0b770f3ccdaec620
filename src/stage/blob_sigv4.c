/*
 * blob_sigv4.c — AWS Signature Version 4 for the S3 backend: HMAC-SHA256 on common/sha256,
 * the canonical request, the string to sign and the Authorization header.
 */
#include "stage/blob_int.h"

#include "common/mem.h"
#include "common/sha256.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest canonical request signed (method, path, query and headers together). */
#define NU_SIGV4_CANON_MAX 16384

void nu_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                    unsigned char out[32])
{
    unsigned char k[64] = {0}, ipad[64], opad[64], inner[32];
    struct nu_sha256 c;

    if (keylen > 64)
        nu_sha256(key, keylen, k);
    else
        memcpy(k, key, keylen);
    for (size_t i = 0; i < 64; i++) {
        ipad[i] = k[i] ^ 0x36;
        opad[i] = k[i] ^ 0x5c;
    }
    nu_sha256_init(&c);
    nu_sha256_update(&c, ipad, 64);
    nu_sha256_update(&c, msg, len);
    nu_sha256_final(&c, inner);
    nu_sha256_init(&c);
    nu_sha256_update(&c, opad, 64);
    nu_sha256_update(&c, inner, 32);
    nu_sha256_final(&c, out);
}

void nu_sigv4_key(const char *secret, const char *date, const char *region, const char *service,
                  unsigned char out[32])
{
    char *k0 = nu_xasprintf("AWS4%s", secret);
    unsigned char a[32], b[32];

    nu_hmac_sha256(k0, strlen(k0), date, strlen(date), a);
    nu_hmac_sha256(a, 32, region, strlen(region), b);
    nu_hmac_sha256(b, 32, service, strlen(service), a);
    nu_hmac_sha256(a, 32, "aws4_request", 12, out);
    memset(k0, 0, strlen(k0));
    free(k0);
}

char *nu_sigv4_encode(const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = nu_xmalloc(3 * n + 1), *o = out;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

static int nu_sigv4_cmp(const void *a, const void *b)
{
    const struct nu_sigv4_header *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* Append printf output to buf[*len..cap); false when it does not fit. */
static bool nu_sigv4_cat(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool nu_sigv4_cat(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *len)
        return false;
    *len += (size_t)n;
    return true;
}

nu_err_t nu_sigv4_sign(const struct nu_sigv4_req *r, char sig[65], char *auth, struct nu_errbuf *eb)
{
    struct nu_sigv4_header hs[NU_SIGV4_MAX_HEADERS];
    char *canon = NULL, signed_h[1024] = "", date[9], scope[256], hash[65], sts[512];
    unsigned char digest[32], key[32], mac[32];
    size_t clen = 0, slen = 0, tlen = 0;
    nu_err_t rc = NU_OK;
    bool ok = true;

    if (r->nheaders > NU_SIGV4_MAX_HEADERS)
        return nu_err_set(eb, NU_ERR_INVALID, "could not sign request: more than %d headers",
                          NU_SIGV4_MAX_HEADERS);
    if (strlen(r->amz_date) != 16)
        return nu_err_set(eb, NU_ERR_INVALID, "could not sign request: bad date \"%s\"",
                          r->amz_date);
    memcpy(hs, r->headers, r->nheaders * sizeof(hs[0]));
    qsort(hs, r->nheaders, sizeof(hs[0]), nu_sigv4_cmp);
    canon = nu_xmalloc(NU_SIGV4_CANON_MAX);
    ok = nu_sigv4_cat(canon, NU_SIGV4_CANON_MAX, &clen, "%s\n%s\n%s\n", r->method, r->path,
                      r->query ? r->query : "");
    for (size_t i = 0; ok && i < r->nheaders; i++) {
        ok = nu_sigv4_cat(canon, NU_SIGV4_CANON_MAX, &clen, "%s:%s\n", hs[i].name, hs[i].value) &&
             nu_sigv4_cat(signed_h, sizeof(signed_h), &slen, "%s%s", i ? ";" : "", hs[i].name);
    }
    ok =
        ok && nu_sigv4_cat(canon, NU_SIGV4_CANON_MAX, &clen, "\n%s\n%s", signed_h, r->payload_hash);
    memcpy(date, r->amz_date, 8);
    date[8] = '\0';
    ok = ok && (size_t)snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date, r->region,
                                r->service) < sizeof(scope);
    if (!ok) {
        rc = nu_err_set(eb, NU_ERR_INVALID, "could not sign request: canonical request too long");
        goto out;
    }
    nu_sha256(canon, clen, digest);
    nu_sha256_hex(digest, 32, hash);
    tlen = (size_t)snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", r->amz_date, scope,
                            hash);
    nu_sigv4_key(r->secret_key, date, r->region, r->service, key);
    nu_hmac_sha256(key, 32, sts, tlen, mac);
    nu_sha256_hex(mac, 32, sig);
    if (auth &&
        (size_t)snprintf(auth, NU_SIGV4_AUTH_MAX,
                         "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                         r->access_key, scope, signed_h, sig) >= NU_SIGV4_AUTH_MAX)
        rc = nu_err_set(eb, NU_ERR_INVALID, "could not sign request: authorization too long");
out:
    free(canon);
    memset(key, 0, sizeof(key));
    return rc;
}
