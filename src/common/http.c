/* http.c — request/response values, query and body parsing, the API's error format. */
#include "common/http.h"

#include "common/json.h"
#include "common/mem.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const nu_http_method_names[NU_HTTP_METHOD__COUNT + 1] = {
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"};

const char *nu_http_method_name(nu_http_method_t m)
{
    if ((int)m < 0 || m > NU_HTTP_OTHER)
        m = NU_HTTP_OTHER;
    return nu_http_method_names[m];
}

nu_http_method_t nu_http_method_parse(const char *s)
{
    for (int m = 0; m < NU_HTTP_METHOD__COUNT; m++)
        if (s && strcmp(s, nu_http_method_names[m]) == 0)
            return (nu_http_method_t)m;
    return NU_HTTP_OTHER;
}

/* ---- requests ---------------------------------------------------------------------------- */

void nu_http_req_init(struct nu_http_req *req)
{
    memset(req, 0, sizeof(*req));
    req->method = NU_HTTP_GET;
    req->method_name = "GET";
    req->path = "/";
    req->remote_addr = "";
    req->arena = nu_arena_new(4096);
}

void nu_http_req_free(struct nu_http_req *req)
{
    if (!req)
        return;
    nu_arena_destroy(req->arena);
    req->arena = NULL;
    req->nquery = 0;
    req->nparams = 0;
}

bool nu_http_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p;
        size_t len;
        unsigned cp;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if ((size_t)(end - p) < len)
            return false;
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += len;
    }
    return true;
}

static int nu_http_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *nu_http_decode(struct nu_http_req *req, const char *s, size_t n, bool plus_space,
                     size_t *out_len)
{
    char *out = nu_arena_alloc(req->arena, n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 2 < n ? nu_http_hex(s[i + 1]) : -1;
            int lo = i + 2 < n ? nu_http_hex(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return NULL;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c == '\0')
            return NULL;
        out[j++] = c;
    }
    out[j] = '\0';
    if (!nu_http_utf8_valid(out, j))
        return NULL;
    if (out_len)
        *out_len = j;
    return out;
}

nu_err_t nu_http_req_parse_query(struct nu_http_req *req, const char *query, struct nu_errbuf *eb)
{
    nu_err_t rc = NU_OK;
    size_t qlen = query ? strlen(query) : 0;
    if (qlen > NU_HTTP_MAX_QUERY_BYTES) {
        rc = nu_err_set(eb, NU_ERR_INVALID, "query string is %zu bytes, over the limit of %d", qlen,
                        NU_HTTP_MAX_QUERY_BYTES);
        goto out;
    }
    const char *p = query, *end = query + qlen;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if (stop > p) { /* empty pieces ("a=1&&b=2") are skipped */
            const char *eq = memchr(p, '=', (size_t)(stop - p));
            const char *name_end = eq ? eq : stop;
            if (req->nquery >= NU_HTTP_MAX_QUERY_PARAMS) {
                rc = nu_err_set(eb, NU_ERR_INVALID, "too many query parameters (limit %d)",
                                NU_HTTP_MAX_QUERY_PARAMS);
                goto out;
            }
            char *name = nu_http_decode(req, p, (size_t)(name_end - p), true, NULL);
            char *value = eq ? nu_http_decode(req, eq + 1, (size_t)(stop - eq - 1), true, NULL)
                             : nu_arena_strdup(req->arena, "");
            if (!name) {
                rc = nu_err_set(eb, NU_ERR_INVALID,
                                "query parameter name is not valid percent-encoded UTF-8");
                goto out;
            }
            if (!value) {
                rc = nu_err_set(eb, NU_ERR_INVALID,
                                "query parameter \"%.64s\" is not valid percent-encoded UTF-8",
                                name);
                goto out;
            }
            req->query[req->nquery].name = name;
            req->query[req->nquery].value = value;
            req->nquery++;
        }
        p = amp ? amp + 1 : end;
    }
out:
    return rc;
}

const char *nu_http_header(const struct nu_http_req *req, const char *name)
{
    return req->header_fn ? req->header_fn(req->header_ctx, name) : NULL;
}

const char *nu_http_query(const struct nu_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->nquery; i++)
        if (strcmp(req->query[i].name, name) == 0)
            return req->query[i].value;
    return NULL;
}

const char *nu_http_param(const struct nu_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->nparams; i++)
        if (strcmp(req->params[i].name, name) == 0)
            return req->params[i].value;
    return NULL;
}

nu_err_t nu_http_query_int(const struct nu_http_req *req, const char *name, long long min,
                           long long max, long long def, long long *out, struct nu_errbuf *eb)
{
    const char *s = nu_http_query(req, name);
    if (!s) {
        *out = def;
        return NU_OK;
    }
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    bool ok = *s && !isspace((unsigned char)*s) && *end == '\0' && errno == 0;
    if (!ok || v < min || v > max)
        return nu_err_set(eb, NU_ERR_INVALID,
                          "query parameter \"%s\" must be an integer between %lld and %lld, "
                          "got \"%.64s\"",
                          name, min, max, s);
    *out = v;
    return NU_OK;
}

nu_err_t nu_http_query_bool(const struct nu_http_req *req, const char *name, bool def, bool *out,
                            struct nu_errbuf *eb)
{
    const char *s = nu_http_query(req, name);
    if (!s)
        *out = def;
    else if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
        *out = true;
    else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
        *out = false;
    else
        return nu_err_set(eb, NU_ERR_INVALID,
                          "query parameter \"%s\" must be true or false, got \"%.64s\"", name, s);
    return NU_OK;
}

nu_err_t nu_http_query_str(const struct nu_http_req *req, const char *name, size_t max_len,
                           const char *def, const char **out, struct nu_errbuf *eb)
{
    const char *s = nu_http_query(req, name);
    if (!s) {
        *out = def;
        return NU_OK;
    }
    size_t n = strlen(s);
    if (n > max_len)
        return nu_err_set(eb, NU_ERR_INVALID,
                          "query parameter \"%s\" is %zu bytes, over the limit of %zu", name, n,
                          max_len);
    *out = s;
    return NU_OK;
}

nu_err_t nu_http_query_page(const struct nu_http_req *req, struct nu_http_page *out,
                            struct nu_errbuf *eb)
{
    nu_err_t rc =
        nu_http_query_int(req, "limit", 1, NU_HTTP_PAGE_MAX, NU_HTTP_PAGE_DEFAULT, &out->limit, eb);
    if (rc == NU_OK)
        rc = nu_http_query_str(req, "cursor", 512, NULL, &out->cursor, eb);
    if (rc == NU_OK && out->cursor && !*out->cursor)
        out->cursor = NULL;
    return rc;
}

nu_err_t nu_http_body_json(const struct nu_http_req *req, size_t max_bytes, size_t max_depth,
                           json_t **out, struct nu_errbuf *eb)
{
    nu_err_t rc = NU_OK;
    json_t *doc = NULL;
    json_error_t jerr;
    *out = NULL;
    if (max_bytes == 0)
        max_bytes = NU_HTTP_JSON_MAX_BYTES;
    if (max_depth == 0)
        max_depth = NU_HTTP_JSON_MAX_DEPTH;
    if (req->body_len == 0 || !req->body) {
        rc = nu_err_set(eb, NU_ERR_PARSE, "request body is empty; expected a JSON document");
        goto out;
    }
    if (req->body_len > max_bytes) {
        rc = nu_err_set(eb, NU_ERR_TOO_LARGE, "request body is %zu bytes, over the limit of %zu",
                        req->body_len, max_bytes);
        goto out;
    }
    doc = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        rc = nu_err_set(eb, NU_ERR_PARSE, "invalid JSON in request body at line %d, column %d: %s",
                        jerr.line, jerr.column, jerr.text);
        goto out;
    }
    if (nu_json_depth(doc, max_depth) > max_depth) {
        rc = nu_err_set(eb, NU_ERR_INVALID, "request body is nested deeper than %zu levels",
                        max_depth);
        goto out;
    }
    *out = doc;
    doc = NULL;
out:
    json_decref(doc);
    return rc;
}

/* ---- responses --------------------------------------------------------------------------- */

void nu_http_resp_init(struct nu_http_resp *resp)
{
    memset(resp, 0, sizeof(*resp));
}

void nu_http_resp_free(struct nu_http_resp *resp)
{
    if (!resp)
        return;
    nu_buf_free(&resp->body);
    for (size_t i = 0; i < resp->nheaders; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    nu_http_resp_init(resp);
}

static bool nu_http_is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c))
            return false;
    }
    return true;
}

bool nu_http_resp_header(struct nu_http_resp *resp, const char *name, const char *value)
{
    if (!nu_http_is_token(name) || strpbrk(value, "\r\n"))
        return false;
    for (size_t i = 0; i < resp->nheaders; i++) {
        if (strcasecmp(resp->headers[i].name, name) == 0) {
            free(resp->headers[i].value);
            resp->headers[i].value = nu_xstrdup(value);
            return true;
        }
    }
    if (resp->nheaders >= NU_HTTP_MAX_RESP_HEADERS)
        return false;
    resp->headers[resp->nheaders].name = nu_xstrdup(name);
    resp->headers[resp->nheaders].value = nu_xstrdup(value);
    resp->nheaders++;
    return true;
}

const char *nu_http_resp_get_header(const struct nu_http_resp *resp, const char *name)
{
    for (size_t i = 0; i < resp->nheaders; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    return NULL;
}

void nu_http_resp_bytes(struct nu_http_resp *resp, int status, const char *content_type,
                        const void *data, size_t n)
{
    resp->status = status;
    resp->content_type = content_type;
    nu_buf_reset(&resp->body);
    nu_buf_append(&resp->body, data, n);
}

void nu_http_resp_text(struct nu_http_resp *resp, int status, const char *text)
{
    nu_http_resp_bytes(resp, status, "text/plain; charset=utf-8", text, strlen(text));
}

static int nu_http_dump_cb(const char *p, size_t n, void *data)
{
    nu_buf_append(data, p, n);
    return 0;
}

void nu_http_resp_json(struct nu_http_resp *resp, int status, json_t *body)
{
    nu_buf_reset(&resp->body);
    if (!body || json_dump_callback(body, nu_http_dump_cb, &resp->body, JSON_COMPACT) != 0) {
        json_decref(body);
        nu_http_resp_error(resp, 500, "internal", "could not build the response body", NULL);
        return;
    }
    json_decref(body);
    resp->status = status;
    resp->content_type = "application/json";
}

void nu_http_resp_error(struct nu_http_resp *resp, int status, const char *code,
                        const char *message, const struct nu_problems *probs)
{
    json_t *err = json_object(), *list = NULL;
    /* json_string rejects invalid UTF-8: fall back to a lossless-enough placeholder */
    json_t *jmsg = json_string(message ? message : "");
    json_object_set_new(err, "code", json_string(code ? code : "internal"));
    json_object_set_new(err, "message", jmsg ? jmsg : json_string("(message is not UTF-8)"));
    if (probs && probs->n > 0) {
        list = json_array();
        for (size_t i = 0; i < probs->n; i++) {
            json_t *jp = json_string(probs->items[i].path);
            json_t *jm = json_string(probs->items[i].message);
            json_array_append_new(list, json_pack("{s:o,s:o}", "path", jp ? jp : json_string("$"),
                                                  "message", jm ? jm : json_string("?")));
        }
        json_object_set_new(err, "problems", list);
    }
    json_t *doc = json_object();
    json_object_set_new(doc, "error", err);
    nu_buf_reset(&resp->body);
    json_dump_callback(doc, nu_http_dump_cb, &resp->body, JSON_COMPACT);
    json_decref(doc);
    resp->status = status;
    resp->content_type = "application/json";
}

static pthread_once_t nu_http_codes_once = PTHREAD_ONCE_INIT;
static char nu_http_codes[NU_ERR__COUNT][40];

static void nu_http_codes_init(void)
{
    for (int i = 0; i < NU_ERR__COUNT; i++) {
        const char *name = nu_err_name((nu_err_t)i);
        if (strncmp(name, "NU_ERR_", 7) == 0)
            name += 7;
        else if (strncmp(name, "NU_", 3) == 0)
            name += 3;
        size_t j = 0;
        for (; name[j] && j + 1 < sizeof(nu_http_codes[i]); j++)
            nu_http_codes[i][j] = (char)tolower((unsigned char)name[j]);
        nu_http_codes[i][j] = '\0';
    }
}

const char *nu_http_err_code(nu_err_t code)
{
    pthread_once(&nu_http_codes_once, nu_http_codes_init);
    if ((int)code < 0 || code >= NU_ERR__COUNT)
        code = NU_ERR_INTERNAL;
    return nu_http_codes[code];
}

void nu_http_resp_from_err(struct nu_http_resp *resp, nu_err_t code, const struct nu_errbuf *eb)
{
    const char *msg = eb && eb->set ? eb->msg : nu_err_text(code);
    nu_http_resp_error(resp, nu_err_http_status(code), nu_http_err_code(code), msg, NULL);
}

const char *nu_http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}
