/*
 * op_http_fetch.c — the http_fetch operator: download the URL of each row into the blob store.
 *
 *   {"url_column": "url", "prefix": "file:///data/fetched", "concurrency": 16,
 *    "connect_timeout_ms": 10000, "timeout_ms": 60000, "retries": 3, "backoff_ms": 200,
 *    "max_bytes": 67108864, "max_redirects": 5, "content_types": ["image/"]}
 *
 * The URLs of a batch are fetched concurrently (op_http_fetch_multi.c), 4 * concurrency at a
 * time so that few bodies wait on local disk before they are stored; each body is stored
 * content-addressed as <prefix>/<sha256>.<ext> (the extension from the Content-Type), so a
 * retried split writes the same objects. Output: the input columns plus the claim-check columns
 * uri, size, sha256, content_type, and status (the HTTP status) and final_url (after
 * redirects). A URL that fails after its retries (HTTP 4xx, 5xx, timeout, connection error,
 * too many redirects, a body over max_bytes, a Content-Type outside the allow-list) dead-letters
 * its row with the reason; a blob store error fails the split so that it is retried.
 */
#include "stage/media_int.h"
#include "stage/op_http_fetch.h"

#include "common/mem.h"
#include "operators/builtin.h"
#include "stage/connectors_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NU_HF_DEFAULT_MAX_BYTES (64LL << 20)
#define NU_HF_MAX_CTYPE_LEN     127
#define NU_HF_CHUNK_FACTOR      4 /* URLs fetched per round: concurrency * this */

static const char *const nu_hf_fields[] = {
    "url_column", "prefix",     "concurrency", "connect_timeout_ms", "timeout_ms",
    "retries",    "backoff_ms", "max_bytes",   "max_redirects",      "content_types"};

static const char *const nu_hf_cols[] = {"uri",          "size",   "sha256",
                                         "content_type", "status", "final_url"};
static const nu_type_t nu_hf_types[] = {NU_T_STRING, NU_T_INT64, NU_T_STRING,
                                        NU_T_STRING, NU_T_INT64, NU_T_STRING};
static const bool nu_hf_nullable[] = {false, false, false, false, false, false};

/* The instance state: the shared media state (blob store, prefix, tmpdir) and the fetch
 * settings. */
struct nu_hf {
    struct nu_media_op *m;
    char *url_col;
    char **ctypes;
    size_t nctypes;
    struct nu_fetch_conf fc;
};

static void nu_hf_check_ctypes(const json_t *config, struct nu_json_path *jp, struct nu_problems *p)
{
    const json_t *a = json_object_get(config, "content_types"), *v;
    size_t mark, i;

    if (!a)
        return;
    mark = nu_json_path_push_key(jp, "content_types");
    if (!json_is_array(a) || json_array_size(a) == 0 ||
        json_array_size(a) > NU_FETCH_MAX_CONTENT_TYPES) {
        nu_problems_add(p, jp->buf, "expected an array of 1 to %d content type prefixes",
                        NU_FETCH_MAX_CONTENT_TYPES);
        nu_json_path_pop(jp, mark);
        return;
    }
    json_array_foreach(a, i, v)
    {
        size_t m2 = nu_json_path_push_index(jp, i);
        const char *s = json_string_value(v);
        if (!s || !*s || strlen(s) > NU_HF_MAX_CTYPE_LEN || strpbrk(s, " \t\r\n;,"))
            nu_problems_add(p, jp->buf,
                            "expected a content type prefix such as \"image/\" (1 to %d "
                            "characters, no spaces, ';' or ',')",
                            NU_HF_MAX_CTYPE_LEN);
        nu_json_path_pop(jp, m2);
    }
    nu_json_path_pop(jp, mark);
}

static void nu_hf_validate(const json_t *config, const char *path, struct nu_problems *p)
{
    struct nu_json_path jp;
    const char *s = NULL;
    long long ll, ct = 10000, to = 60000;

    nu_builtin_path_init(&jp, path);
    if (!nu_builtin_expect_object(config, &jp, p))
        return;
    nu_json_check_fields(config, nu_hf_fields, sizeof(nu_hf_fields) / sizeof(nu_hf_fields[0]), &jp,
                         p);
    nu_conn_get_string(config, "url_column", false, &jp, p, &s);
    nu_builtin_get_int(config, "concurrency", 1, NU_FETCH_MAX_CONCURRENCY, false, 16, &jp, p, &ll);
    nu_builtin_get_int(config, "connect_timeout_ms", 1, NU_FETCH_MAX_TIMEOUT_MS, false, 10000, &jp,
                       p, &ct);
    nu_builtin_get_int(config, "timeout_ms", 1, NU_FETCH_MAX_TIMEOUT_MS, false, 60000, &jp, p, &to);
    nu_builtin_get_int(config, "retries", 0, NU_FETCH_MAX_RETRIES, false, 3, &jp, p, &ll);
    nu_builtin_get_int(config, "backoff_ms", 0, NU_FETCH_MAX_BACKOFF_MS, false, 200, &jp, p, &ll);
    nu_builtin_get_int(config, "max_bytes", 1, NU_MEDIA_MAX_BYTES, false, NU_HF_DEFAULT_MAX_BYTES,
                       &jp, p, &ll);
    nu_builtin_get_int(config, "max_redirects", 0, NU_FETCH_MAX_REDIRECTS, false, 5, &jp, p, &ll);
    nu_hf_check_ctypes(config, &jp, p);
    nu_media_check_prefix(config, &jp, p);
}

static const char *nu_hf_url_col(const json_t *config)
{
    const json_t *v = json_object_get(config, "url_column");
    return json_is_string(v) ? json_string_value(v) : "url";
}

static nu_err_t nu_hf_schema(const json_t *config, const struct nu_schema *in, const char *path,
                             struct nu_problems *p, struct nu_schema **out, struct nu_errbuf *eb)
{
    nu_err_t rc;
    *out = NULL;
    if (!in)
        return nu_builtin_fault(p, eb, NU_ERR_SPEC, path, "http_fetch needs an input schema");
    rc = nu_media_expect_column(in, nu_hf_url_col(config), NU_T_STRING, "http_fetch", path, p, eb);
    if (rc != NU_OK)
        return rc;
    return nu_media_schema_extend(in, nu_hf_cols, nu_hf_types, nu_hf_nullable, 6, "http_fetch",
                                  path, p, out, eb);
}

static void nu_hf_close(void *state)
{
    struct nu_hf *hf = state;
    if (!hf)
        return;
    nu_media_op_close(hf->m);
    free(hf->url_col);
    for (size_t i = 0; i < hf->nctypes; i++)
        free(hf->ctypes[i]);
    free(hf->ctypes);
    free(hf);
}

static long nu_hf_long(const json_t *config, const char *key, long dflt)
{
    const json_t *v = json_object_get(config, key);
    return json_is_integer(v) ? (long)json_integer_value(v) : dflt;
}

static nu_err_t nu_hf_open(const struct nu_op_open_args *a, void **state, struct nu_errbuf *eb)
{
    const json_t *arr = json_object_get(a->config, "content_types"), *v;
    struct nu_hf *hf;
    size_t i;
    nu_err_t rc;

    *state = NULL;
    hf = nu_xcalloc(1, sizeof(*hf));
    rc = nu_media_op_open(&nu_op_http_fetch, a->config, &hf->m, eb);
    if (rc != NU_OK) {
        nu_hf_close(hf);
        return rc;
    }
    hf->url_col = nu_xstrdup(nu_hf_url_col(a->config));
    if (json_is_array(arr)) {
        hf->ctypes = nu_xcalloc(json_array_size(arr), sizeof(*hf->ctypes));
        json_array_foreach(arr, i, v) hf->ctypes[hf->nctypes++] = nu_xstrdup(json_string_value(v));
    }
    hf->fc.concurrency = nu_hf_long(a->config, "concurrency", 16);
    hf->fc.connect_timeout_ms = nu_hf_long(a->config, "connect_timeout_ms", 10000);
    hf->fc.timeout_ms = nu_hf_long(a->config, "timeout_ms", 60000);
    hf->fc.retries = nu_hf_long(a->config, "retries", 3);
    hf->fc.backoff_ms = nu_hf_long(a->config, "backoff_ms", 200);
    hf->fc.max_redirects = nu_hf_long(a->config, "max_redirects", 5);
    v = json_object_get(a->config, "max_bytes");
    hf->fc.max_bytes = json_is_integer(v) ? json_integer_value(v) : NU_HF_DEFAULT_MAX_BYTES;
    hf->fc.ctypes = (const char *const *)hf->ctypes;
    hf->fc.nctypes = hf->nctypes;
    hf->fc.tmpdir = hf->m->tmpdir;
    *state = hf;
    return NU_OK;
}

/* File extension for a Content-Type (parameters ignored); "bin" when unknown. */
static const char *nu_hf_ext(const char *ctype)
{
    static const char *const map[][2] = {
        {"image/jpeg", "jpg"},      {"image/png", "png"},        {"image/webp", "webp"},
        {"image/gif", "gif"},       {"image/avif", "avif"},      {"image/tiff", "tif"},
        {"video/mp4", "mp4"},       {"video/x-matroska", "mkv"}, {"video/webm", "webm"},
        {"audio/mpeg", "mp3"},      {"application/pdf", "pdf"},  {"application/json", "json"},
        {"text/plain", "txt"},      {"text/html", "html"},       {"text/csv", "csv"},
        {"application/zip", "zip"},
    };
    if (!ctype)
        return "bin";
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        size_t n = strlen(map[i][0]);
        if (strncasecmp(ctype, map[i][0], n) == 0 &&
            (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' '))
            return map[i][1];
    }
    return "bin";
}

/* Append the output row for fetched item `it` of input row i, after storing its body. */
static nu_err_t nu_hf_emit_row(struct nu_hf *hf, const struct nu_batch *in, size_t i,
                               const struct nu_fetch_item *it, struct nu_batch *b,
                               struct nu_errbuf *eb)
{
    const char *ct = it->content_type ? it->content_type : "application/octet-stream";
    size_t base = in->schema->ncols;
    char *uri = nu_blob_cas_uri(hf->m->prefix, it->sha256, nu_hf_ext(it->content_type));
    struct nu_value *row;
    nu_err_t rc = nu_blob_put_file(hf->m->blob, uri, it->path, ct, eb);

    if (rc == NU_OK) {
        row = nu_media_copy_row(b, in, i);
        row[base] = nu_batch_str(b, NU_T_STRING, uri, strlen(uri));
        row[base + 1] = nu_value_int(it->size);
        row[base + 2] = nu_batch_str(b, NU_T_STRING, it->sha256, 64);
        row[base + 3] = nu_batch_str(b, NU_T_STRING, ct, strlen(ct));
        row[base + 4] = nu_value_int(it->status);
        row[base + 5] = nu_batch_str(b, NU_T_STRING, it->final_url, strlen(it->final_url));
    }
    free(uri);
    return rc;
}

/* Fetch rows [lo, hi) of `in` (URLs in items[], null ones left out of the transfers), then
 * store and emit the bodies in row order and dead-letter the failures. */
static nu_err_t nu_hf_chunk(struct nu_hf *hf, const struct nu_op_batch_ctx *ctx,
                            const struct nu_batch *in, size_t lo, size_t hi,
                            struct nu_fetch_item *items, struct nu_batch *b, struct nu_errbuf *eb)
{
    struct nu_fetch_item *todo = nu_xcalloc(hi - lo, sizeof(*todo));
    size_t *at = nu_xcalloc(hi - lo, sizeof(*at)), nurl = 0;
    nu_err_t rc;

    for (size_t i = lo; i < hi; i++)
        if (items[i].url) {
            todo[nurl].url = items[i].url;
            at[nurl++] = i;
        }
    rc = nu_fetch_run(&hf->fc, todo, nurl, eb);
    for (size_t k = 0; k < nurl; k++)
        items[at[k]] = todo[k];
    free(todo);
    free(at);
    for (size_t i = lo; rc == NU_OK && i < hi; i++) {
        const struct nu_fetch_item *it = &items[i];
        if (!it->url) {
            char msg[512];
            snprintf(msg, sizeof(msg), "http_fetch: column \"%s\" is null", hf->url_col);
            rc = nu_op_reject_row(ctx, in, i, NULL, 0, NU_ERR_INVALID, msg, eb);
        } else if (it->ok) {
            rc = nu_hf_emit_row(hf, in, i, it, b, eb);
        } else {
            rc = nu_op_reject_row(ctx, in, i, NULL, 0, it->rc, it->error, eb);
        }
    }
    for (size_t i = lo; i < hi; i++)
        nu_fetch_item_clear(&items[i]);
    return rc;
}

static nu_err_t nu_hf_process(void *state, const struct nu_op_batch_ctx *ctx,
                              const struct nu_batch *in, const struct nu_op_emit *out,
                              struct nu_errbuf *eb)
{
    struct nu_hf *hf = state;
    struct nu_schema *os = NULL;
    struct nu_batch *b = NULL;
    struct nu_fetch_item *items = NULL;
    long ucol;
    size_t chunk;
    json_t *cfg;
    nu_err_t rc;

    if (!in || !in->schema)
        return nu_err_set(eb, NU_ERR_INVALID, "operator \"http_fetch\" got no input batch");
    cfg = json_pack("{ss}", "url_column", hf->url_col);
    rc = nu_hf_schema(cfg, in->schema, "$", NULL, &os, eb);
    json_decref(cfg);
    if (rc != NU_OK)
        return rc;
    ucol = nu_schema_find(in->schema, hf->url_col);
    chunk = (size_t)hf->fc.concurrency * NU_HF_CHUNK_FACTOR;
    b = nu_batch_new(os, in->nrows);
    nu_schema_unref(os);
    items = nu_xcalloc(in->nrows ? in->nrows : 1, sizeof(*items));
    for (size_t i = 0; i < in->nrows; i++)
        items[i].url = nu_media_row_str(ctx->scratch, in, i, ucol);
    /* in chunks, so that at most NU_HF_CHUNK_FACTOR * concurrency bodies wait on local disk */
    for (size_t lo = 0; rc == NU_OK && lo < in->nrows; lo += chunk) {
        size_t hi = lo + chunk < in->nrows ? lo + chunk : in->nrows;
        rc = nu_hf_chunk(hf, ctx, in, lo, hi, items, b, eb);
    }
    free(items);
    if (rc == NU_OK && b->nrows > 0)
        return nu_op_emit_batch(out, b, eb);
    nu_batch_destroy(b);
    return rc;
}

const struct nu_operator nu_op_http_fetch = {
    .abi_version = NU_OPERATOR_ABI_VERSION,
    .name = "http_fetch",
    .kind = NU_OPKIND_TRANSFORM,
    .summary = "download the URL of each row into the blob store (concurrent, with retries)",
    .validate = nu_hf_validate,
    .schema = nu_hf_schema,
    .open = nu_hf_open,
    .process = nu_hf_process,
    .close = nu_hf_close,
};
