/* client.c — libcurl easy client of the coordinator's HTTP API (see client.h). */
#include "cli/client.h"

#include "common/buf.h"
#include "common/http.h"
#include "common/mem.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct nu_client {
    CURL *curl;
    char *url;  /* owned, without a trailing '/' */
    char *auth; /* owned "Authorization: Bearer …" header, or NULL */
    long timeout_ms;
    long connect_timeout_ms;
    size_t max_response_bytes;
};

/* State of one transfer, seen by the write callback. */
struct nu_client_xfer {
    struct nu_buf body;
    size_t max;
    bool too_large;
};

static size_t nu_client_on_body(char *p, size_t size, size_t n, void *ud)
{
    struct nu_client_xfer *x = ud;
    size_t len = size * n;
    if (x->body.len + len > x->max) {
        x->too_large = true;
        return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
    }
    nu_buf_append(&x->body, p, len);
    return len;
}

static bool nu_client_has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

nu_err_t nu_client_new(const struct nu_client_conf *conf, nu_client_t **out, struct nu_errbuf *eb)
{
    nu_client_t *c = NULL;
    nu_err_t err = NU_OK;
    const char *url = conf->url && *conf->url ? conf->url : NU_CLIENT_DEFAULT_URL;
    size_t n = strlen(url);

    *out = NULL;
    if (n > NU_CLIENT_MAX_URL_BYTES) {
        err = nu_err_set(eb, NU_ERR_USAGE, "coordinator URL longer than %d bytes",
                         NU_CLIENT_MAX_URL_BYTES);
        goto fail;
    }
    if ((strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) ||
        nu_client_has_ctl(url)) {
        err = nu_err_set(eb, NU_ERR_USAGE,
                         "invalid coordinator URL \"%s\": expected http://HOST:PORT", url);
        goto fail;
    }
    if (conf->token && strlen(conf->token) > NU_CLIENT_MAX_TOKEN_BYTES) {
        err = nu_err_set(eb, NU_ERR_USAGE, "token longer than %d bytes", NU_CLIENT_MAX_TOKEN_BYTES);
        goto fail;
    }
    if (conf->token && nu_client_has_ctl(conf->token)) {
        err = nu_err_set(eb, NU_ERR_USAGE, "the token contains control characters");
        goto fail;
    }
    c = nu_xcalloc(1, sizeof(*c));
    while (n > 0 && url[n - 1] == '/')
        n--;
    c->url = nu_xstrndup(url, n);
    if (conf->token && *conf->token)
        c->auth = nu_xasprintf("Authorization: Bearer %s", conf->token);
    c->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : NU_CLIENT_TIMEOUT_MS;
    c->connect_timeout_ms =
        conf->connect_timeout_ms > 0 ? conf->connect_timeout_ms : NU_CLIENT_CONNECT_TIMEOUT_MS;
    c->max_response_bytes =
        conf->max_response_bytes ? conf->max_response_bytes : NU_CLIENT_MAX_RESPONSE_BYTES;
    c->curl = curl_easy_init();
    if (c->curl == NULL) {
        err = nu_err_set(eb, NU_ERR_SYSTEM, "could not initialise libcurl");
        goto fail;
    }
    *out = c;
    return NU_OK;

fail:
    nu_client_destroy(c);
    return err;
}

void nu_client_destroy(nu_client_t *c)
{
    if (c == NULL)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->url);
    free(c->auth);
    free(c);
}

const char *nu_client_url(const nu_client_t *c)
{
    return c->url;
}

void nu_client_resp_free(struct nu_client_resp *r)
{
    if (r == NULL)
        return;
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* The libcurl failure as a nu_err_t with a message naming the coordinator. */
static nu_err_t nu_client_curl_err(const nu_client_t *c, CURLcode cc, const char *detail,
                                   const struct nu_client_xfer *x, struct nu_errbuf *eb)
{
    const char *why = detail && *detail ? detail : curl_easy_strerror(cc);
    if (x->too_large)
        return nu_err_set(eb, NU_ERR_TOO_LARGE,
                          "the answer of the coordinator at %s is larger than %zu bytes", c->url,
                          x->max);
    if (cc == CURLE_OPERATION_TIMEDOUT)
        return nu_err_set(eb, NU_ERR_TIMEOUT, "the coordinator at %s did not answer in time: %s",
                          c->url, why);
    return nu_err_set(eb, NU_ERR_IO, "cannot reach the coordinator at %s: %s", c->url, why);
}

nu_err_t nu_client_request(nu_client_t *c, const char *method, const char *path, const char *body,
                           size_t body_len, struct nu_client_resp *out, struct nu_errbuf *eb)
{
    struct nu_client_xfer x = {.body = NU_BUF_INIT, .max = c->max_response_bytes};
    struct curl_slist *hdrs = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    char *url = NULL, *ctype = NULL;
    nu_err_t err = NU_OK;

    memset(out, 0, sizeof(*out));
    if (strlen(path) > NU_CLIENT_MAX_PATH_BYTES) {
        err = nu_err_set(eb, NU_ERR_USAGE, "request path longer than %d bytes",
                         NU_CLIENT_MAX_PATH_BYTES);
        goto out;
    }
    url = nu_xasprintf("%s%s", c->url, path);
    curl_easy_reset(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, nu_client_on_body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "nurion-cli");
    if (c->auth)
        hdrs = curl_slist_append(hdrs, c->auth);
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (body != NULL) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);

    CURLcode cc = curl_easy_perform(c->curl);
    if (cc != CURLE_OK) {
        err = nu_client_curl_err(c, cc, errbuf, &x, eb);
        goto out;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_getinfo(c->curl, CURLINFO_CONTENT_TYPE, &ctype);
    out->len = x.body.len;
    nu_buf_putc(&x.body, '\0');
    out->body = (char *)x.body.data;
    x.body.data = NULL;
    if (ctype && strncasecmp(ctype, "application/json", 16) == 0)
        out->json = json_loadb(out->body, out->len, 0, NULL);

out:
    curl_slist_free_all(hdrs);
    nu_buf_free(&x.body);
    free(url);
    return err;
}

char *nu_client_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = nu_xmalloc(n * 3 + 1), *p = out;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            *p++ = (char)ch;
        } else {
            *p++ = '%';
            *p++ = hex[ch >> 4];
            *p++ = hex[ch & 15];
        }
    }
    *p = '\0';
    return out;
}

void nu_client_print_error(FILE *out, const char *prefix, const char *where,
                           const struct nu_client_resp *r)
{
    const json_t *e = json_object_get(r->json, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    const json_t *probs = json_object_get(e, "problems");
    size_t i;
    const json_t *p;

    if (msg != NULL)
        fprintf(out, "%s: %s\n", prefix, msg);
    else
        fprintf(out, "%s: the coordinator answered %ld %s\n", prefix, r->status,
                nu_http_reason((int)r->status));
    json_array_foreach(probs, i, p)
    {
        const char *path = json_string_value(json_object_get(p, "path"));
        const char *pm = json_string_value(json_object_get(p, "message"));
        fprintf(out, "%s%s%s: %s\n", where ? where : "  ", where ? ": " : "", path ? path : "$",
                pm ? pm : "(no message)");
    }
    if (r->status == 401)
        fprintf(out, "%s: give the coordinator's token with --token or NURION_TOKEN\n", prefix);
}
