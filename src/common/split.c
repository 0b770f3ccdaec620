/* split.c — split metadata headers and deterministic split ids. */
#include "common/split.h"

#include "common/codec.h"
#include "common/mem.h"
#include "common/sha256.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const nu_split_hdr_names[NU_SPLIT_MAX_HEADERS] = {
    "nurion-kind",    "nurion-split", "nurion-parents", "nurion-stage",  "nurion-rows",
    "nurion-attempt", "nurion-lane",  "nurion-format",  "nurion-schema",
};
enum { H_KIND, H_SPLIT, H_PARENTS, H_STAGE, H_ROWS, H_ATTEMPT, H_LANE, H_FORMAT, H_SCHEMA };

static bool nu_split_idchar(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

bool nu_split_id_valid(const char *s, size_t len)
{
    if (!s || len == 0 || len > NU_SPLIT_ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!nu_split_idchar(s[i]))
            return false;
    return true;
}

/* A split id: id characters, 1..NU_SPLIT_ID_MAX-1 bytes. */
static bool nu_split_sid_valid(const char *s, size_t len)
{
    if (!s || len == 0 || len >= NU_SPLIT_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!nu_split_idchar(s[i]))
            return false;
    return true;
}

static bool nu_split_lane_valid(const char *s, size_t len)
{
    if (!s || len == 0 || len > NU_SPLIT_MAX_LANE)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] <= ' ' || s[i] == ',' || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

void nu_split_meta_clear(struct nu_split_meta *m)
{
    if (!m)
        return;
    free(m->id);
    free(m->stage);
    for (size_t i = 0; i < m->nparents; i++)
        free(m->parents[i]);
    free(m->parents);
    free(m->lane);
    free(m->format);
    free(m->schema);
    memset(m, 0, sizeof(*m));
}

void nu_headers_free(struct nu_headers *h)
{
    if (!h)
        return;
    nu_buf_free(&h->store);
    h->n = 0;
}

/* --- build --- */

static void nu_split_hdr_add(struct nu_headers *out, size_t *off, int which, const char *v,
                             size_t len)
{
    out->h[out->n].name = nu_split_hdr_names[which];
    off[out->n] = out->store.len;
    out->h[out->n].len = len;
    out->n++;
    nu_buf_append(&out->store, v, len);
}

nu_err_t nu_split_headers_build(const struct nu_split_meta *m, struct nu_headers *out,
                                struct nu_errbuf *eb)
{
    size_t off[NU_SPLIT_MAX_HEADERS];
    char num[32];
    out->n = 0;
    nu_buf_reset(&out->store);
    bool eos = m->kind == NU_SPLIT_EOS;
    if (m->kind != NU_SPLIT_DATA && !eos)
        return nu_err_set(eb, NU_ERR_INVALID, "invalid split kind %d", (int)m->kind);
    if (!m->stage || !nu_split_id_valid(m->stage, strlen(m->stage)))
        return nu_err_set(eb, NU_ERR_INVALID, "invalid stage id \"%s\"", m->stage ? m->stage : "");
    if ((!eos || m->id) && (!m->id || !nu_split_sid_valid(m->id, strlen(m->id))))
        return nu_err_set(eb, NU_ERR_INVALID, "invalid split id \"%s\"", m->id ? m->id : "");
    if (eos && (!m->lane || !nu_split_lane_valid(m->lane, strlen(m->lane))))
        return nu_err_set(eb, NU_ERR_INVALID, "invalid lane \"%s\" of an eos split",
                          m->lane ? m->lane : "");
    if (m->nparents > NU_SPLIT_MAX_PARENTS)
        return nu_err_set(eb, NU_ERR_INVALID, "split has %zu parents, more than %d", m->nparents,
                          NU_SPLIT_MAX_PARENTS);
    for (size_t i = 0; i < m->nparents; i++)
        if (!m->parents[i] || !nu_split_sid_valid(m->parents[i], strlen(m->parents[i])))
            return nu_err_set(eb, NU_ERR_INVALID, "invalid parent split id \"%s\"",
                              m->parents[i] ? m->parents[i] : "");
    if (m->format && strcmp(m->format, "avro") != 0 && strcmp(m->format, "json") != 0)
        return nu_err_set(eb, NU_ERR_INVALID, "invalid record format \"%s\"", m->format);

    nu_split_hdr_add(out, off, H_KIND, eos ? "eos" : "data", eos ? 3 : 4);
    if (m->id)
        nu_split_hdr_add(out, off, H_SPLIT, m->id, strlen(m->id));
    /* parents: appended piecewise into the store */
    out->h[out->n].name = nu_split_hdr_names[H_PARENTS];
    off[out->n] = out->store.len;
    for (size_t i = 0; i < m->nparents; i++) {
        if (i)
            nu_buf_putc(&out->store, ',');
        nu_buf_append(&out->store, m->parents[i], strlen(m->parents[i]));
    }
    out->h[out->n].len = out->store.len - off[out->n];
    out->n++;
    nu_split_hdr_add(out, off, H_STAGE, m->stage, strlen(m->stage));
    int k = snprintf(num, sizeof(num), "%" PRIu64, m->rows);
    nu_split_hdr_add(out, off, H_ROWS, num, (size_t)k);
    k = snprintf(num, sizeof(num), "%u", m->attempt);
    nu_split_hdr_add(out, off, H_ATTEMPT, num, (size_t)k);
    if (eos)
        nu_split_hdr_add(out, off, H_LANE, m->lane, strlen(m->lane));
    if (m->format)
        nu_split_hdr_add(out, off, H_FORMAT, m->format, strlen(m->format));
    if (m->schema)
        nu_split_hdr_add(out, off, H_SCHEMA, m->schema, strlen(m->schema));
    for (size_t i = 0; i < out->n; i++)
        out->h[i].value = out->h[i].len ? (const char *)out->store.data + off[i] : "";
    return NU_OK;
}

/* --- parse --- */

static bool nu_split_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 20)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

nu_err_t nu_split_meta_parse(const struct nu_header *h, size_t n, struct nu_split_meta *out,
                             struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    const struct nu_header *by[NU_SPLIT_MAX_HEADERS] = {0};
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        if (!h[i].name || strncmp(h[i].name, "nurion-", 7) != 0)
            continue;
        size_t w;
        for (w = 0; w < NU_SPLIT_MAX_HEADERS; w++)
            if (strcmp(h[i].name, nu_split_hdr_names[w]) == 0)
                break;
        if (w == NU_SPLIT_MAX_HEADERS)
            continue; /* a header of a later version: ignored */
        if (by[w]) {
            err = nu_err_set(eb, NU_ERR_CORRUPT, "duplicate header \"%s\"", h[i].name);
            goto out;
        }
        if (h[i].len && !h[i].value) {
            err = nu_err_set(eb, NU_ERR_CORRUPT, "header \"%s\" has no value", h[i].name);
            goto out;
        }
        by[w] = &h[i];
    }
#define NU_BAD(w, why)                                                                 \
    do {                                                                               \
        err = nu_err_set(eb, NU_ERR_CORRUPT, "%s header \"%s\"%s",                     \
                         by[w] ? "malformed" : "missing", nu_split_hdr_names[w], why); \
        goto out;                                                                      \
    } while (0)
    const struct nu_header *x;
    if (!(x = by[H_KIND]))
        NU_BAD(H_KIND, "");
    if (x->len == 4 && memcmp(x->value, "data", 4) == 0)
        out->kind = NU_SPLIT_DATA;
    else if (x->len == 3 && memcmp(x->value, "eos", 3) == 0)
        out->kind = NU_SPLIT_EOS;
    else
        NU_BAD(H_KIND, ": expected data or eos");
    bool eos = out->kind == NU_SPLIT_EOS;

    if (!(x = by[H_STAGE]) || !nu_split_id_valid(x->value, x->len))
        NU_BAD(H_STAGE, ": expected [A-Za-z0-9_-]{1,64}");
    out->stage = nu_xstrndup(x->value, x->len);
    if ((x = by[H_SPLIT]) || !eos) {
        if (!x || !nu_split_sid_valid(x->value, x->len))
            NU_BAD(H_SPLIT, ": expected a split id");
        out->id = nu_xstrndup(x->value, x->len);
    }
    if ((x = by[H_PARENTS]) && x->len > 0) {
        size_t cnt = 1;
        for (size_t i = 0; i < x->len; i++)
            cnt += x->value[i] == ',';
        if (cnt > NU_SPLIT_MAX_PARENTS)
            NU_BAD(H_PARENTS, ": too many parents");
        out->parents = nu_xcalloc(cnt, sizeof(*out->parents));
        const char *s = x->value, *end = x->value + x->len;
        for (;;) {
            const char *c = memchr(s, ',', (size_t)(end - s));
            const char *e = c ? c : end;
            if (!nu_split_sid_valid(s, (size_t)(e - s)))
                NU_BAD(H_PARENTS, ": expected comma-separated split ids");
            out->parents[out->nparents++] = nu_xstrndup(s, (size_t)(e - s));
            if (!c)
                break;
            s = c + 1;
        }
    }
    if ((x = by[H_ROWS]) || !eos) {
        if (!x || !nu_split_parse_u64(x->value, x->len, UINT64_MAX, &out->rows))
            NU_BAD(H_ROWS, ": expected a decimal count");
    }
    if ((x = by[H_ATTEMPT])) {
        uint64_t a;
        if (!nu_split_parse_u64(x->value, x->len, NU_SPLIT_MAX_ATTEMPT, &a))
            NU_BAD(H_ATTEMPT, ": expected a decimal attempt number");
        out->attempt = (unsigned)a;
    }
    if ((x = by[H_LANE]) || eos) {
        if (!x || !nu_split_lane_valid(x->value, x->len))
            NU_BAD(H_LANE, ": expected <topic>:<partition> or plan");
        out->lane = nu_xstrndup(x->value, x->len);
    }
    if ((x = by[H_FORMAT])) {
        if (!((x->len == 4 && memcmp(x->value, "avro", 4) == 0) ||
              (x->len == 4 && memcmp(x->value, "json", 4) == 0)))
            NU_BAD(H_FORMAT, ": expected avro or json");
        out->format = nu_xstrndup(x->value, x->len);
    }
    if ((x = by[H_SCHEMA])) {
        if (x->len == 0 || x->len > NU_CODEC_MAX_SCHEMA_BYTES || memchr(x->value, 0, x->len))
            NU_BAD(H_SCHEMA, ": empty, too long or containing NUL");
        out->schema = nu_xstrndup(x->value, x->len);
    }
#undef NU_BAD
out:
    if (err != NU_OK)
        nu_split_meta_clear(out);
    return err;
}

/* --- ids --- */

static void nu_split_hash_str(struct nu_sha256 *c, const char *s)
{
    uint64_t n = strlen(s);
    unsigned char be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (unsigned char)(n >> (56 - 8 * i));
    nu_sha256_update(c, be, 8);
    nu_sha256_update(c, s, (size_t)n);
}

static int nu_split_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

nu_err_t nu_split_id(const char *job, const char *stage, const char *const *parents, size_t n,
                     uint64_t position, char out[NU_SPLIT_ID_MAX], struct nu_errbuf *eb)
{
    struct nu_sha256 c;
    unsigned char dg[NU_SHA256_LEN], be[8];
    char hex[NU_SHA256_HEX_LEN + 1];
    out[0] = '\0';
    if (!job || !nu_split_id_valid(job, strlen(job)))
        return nu_err_set(eb, NU_ERR_INVALID, "invalid job id \"%s\"", job ? job : "");
    if (!stage || !nu_split_id_valid(stage, strlen(stage)))
        return nu_err_set(eb, NU_ERR_INVALID, "invalid stage id \"%s\"", stage ? stage : "");
    if (n > NU_SPLIT_MAX_PARENTS)
        return nu_err_set(eb, NU_ERR_INVALID, "split has %zu parents, more than %d", n,
                          NU_SPLIT_MAX_PARENTS);
    for (size_t i = 0; i < n; i++)
        if (!parents[i])
            return nu_err_set(eb, NU_ERR_INVALID, "parent split id %zu is NULL", i);
    const char **sorted = nu_xcalloc(n + 1, sizeof(*sorted));
    if (n)
        memcpy(sorted, parents, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), nu_split_cmp);
    nu_sha256_init(&c);
    nu_split_hash_str(&c, "nurion-split-v1");
    nu_split_hash_str(&c, job);
    nu_split_hash_str(&c, stage);
    for (int i = 0; i < 8; i++)
        be[i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    nu_sha256_update(&c, be, 8);
    for (size_t i = 0; i < n; i++)
        nu_split_hash_str(&c, sorted[i]);
    for (int i = 0; i < 8; i++)
        be[i] = (unsigned char)(position >> (56 - 8 * i));
    nu_sha256_update(&c, be, 8);
    nu_sha256_final(&c, dg);
    free(sorted);
    nu_sha256_hex(dg, 8, hex);
    snprintf(out, NU_SPLIT_ID_MAX, "%s-%s", stage, hex);
    return NU_OK;
}
