/*
 * op_http_fetch_multi.c — the libcurl multi loop behind http_fetch: a fixed number of transfer
 * slots, a cursor over the URLs not started yet and a list of URLs waiting for a retry. Each
 * body is streamed to a temporary file and hashed on the way; a retry truncates the file and
 * starts the hash again.
 */
#include "stage/op_http_fetch.h"

#include "common/mem.h"
#include "common/sha256.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define NU_FETCH_BACKOFF_CAP_MS 30000L

enum nu_fx_abort { NU_FX_NONE = 0, NU_FX_TOO_BIG, NU_FX_CTYPE, NU_FX_IO };
enum nu_fx_state { NU_FX_FRESH = 0, NU_FX_ACTIVE, NU_FX_WAITING, NU_FX_DONE };

struct nu_fl;

/* One transfer slot. */
struct nu_fx {
    CURL *h;
    struct nu_fl *fl;
    size_t idx; /* the item */
    int fd;
    struct nu_sha256 sha;
    int64_t bytes;
    bool ctype_checked;
    enum nu_fx_abort abort;
    int err_no;
    char errbuf[CURL_ERROR_SIZE];
};

/* The state of one nu_fetch_run call. */
struct nu_fl {
    const struct nu_fetch_conf *c;
    struct nu_fetch_item *items;
    size_t n;
    CURLM *multi;
    struct nu_fx *slots;
    enum nu_fx_state *state;
    int64_t *due;    /* per item: when its retry may start */
    size_t *waiting; /* items in back-off */
    size_t nwaiting, next, active, done;
};

static pthread_once_t nu_fetch_once = PTHREAD_ONCE_INIT;
static void nu_fetch_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t nu_fetch_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool nu_fetch_ctype_allowed(const char *ctype, const char *const *prefixes, size_t n)
{
    if (n == 0)
        return true;
    if (!ctype)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strncasecmp(ctype, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

long nu_fetch_backoff_ms(long base, int attempt)
{
    long d = base;
    for (int i = 1; i < attempt && d < NU_FETCH_BACKOFF_CAP_MS; i++)
        d *= 2;
    return d < NU_FETCH_BACKOFF_CAP_MS ? d : NU_FETCH_BACKOFF_CAP_MS;
}

void nu_fetch_item_clear(struct nu_fetch_item *it)
{
    if (!it)
        return;
    if (it->path)
        unlink(it->path);
    free(it->path);
    free(it->error);
    free(it->final_url);
    free(it->content_type);
    it->path = it->error = it->final_url = it->content_type = NULL;
    it->ok = false;
    it->rc = NU_OK;
    it->size = 0;
    it->status = 0;
    it->attempts = 0;
    it->sha256[0] = '\0';
}

static bool nu_fx_check_ctype(struct nu_fl *fl, struct nu_fx *x)
{
    char *ct = NULL;
    x->ctype_checked = true;
    curl_easy_getinfo(x->h, CURLINFO_CONTENT_TYPE, &ct);
    if (nu_fetch_ctype_allowed(ct, fl->c->ctypes, fl->c->nctypes))
        return true;
    x->abort = NU_FX_CTYPE;
    return false;
}

static size_t nu_fx_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct nu_fx *x = ud;
    struct nu_fl *fl = x->fl;
    size_t len = size * nmemb, off = 0;

    if (!x->ctype_checked && !nu_fx_check_ctype(fl, x))
        return 0;
    if (x->bytes + (int64_t)len > fl->c->max_bytes) {
        x->abort = NU_FX_TOO_BIG;
        return 0;
    }
    while (off < len) {
        ssize_t w = write(x->fd, ptr + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            x->abort = NU_FX_IO;
            x->err_no = errno;
            return 0;
        }
        off += (size_t)w;
    }
    nu_sha256_update(&x->sha, ptr, len);
    x->bytes += (int64_t)len;
    return len;
}

static nu_err_t nu_fx_start(struct nu_fl *fl, size_t idx, struct nu_errbuf *eb)
{
    const struct nu_fetch_conf *c = fl->c;
    struct nu_fetch_item *it = &fl->items[idx];
    struct nu_fx *x = NULL;

    for (long s = 0; s < c->concurrency; s++)
        if (!fl->slots[s].h) {
            x = &fl->slots[s];
            break;
        }
    if (!x)
        return nu_err_set(eb, NU_ERR_INTERNAL, "http_fetch: no free transfer slot");
    if (!it->path) {
        it->path = nu_xasprintf("%s/nu-fetch-XXXXXX", c->tmpdir);
        x->fd = mkstemp(it->path);
        if (x->fd < 0) {
            int e = errno;
            free(it->path);
            it->path = NULL;
            return nu_err_set(eb, NU_ERR_IO, "could not create a temporary file in \"%s\": %s",
                              c->tmpdir, strerror(e));
        }
    } else {
        x->fd = open(it->path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (x->fd < 0)
            return nu_err_set(eb, NU_ERR_IO, "could not open file \"%s\": %s", it->path,
                              strerror(errno));
    }
    x->h = curl_easy_init();
    if (!x->h) {
        close(x->fd);
        return nu_err_set(eb, NU_ERR_SYSTEM, "could not create a libcurl handle");
    }
    x->idx = idx;
    x->fl = fl;
    x->bytes = 0;
    x->ctype_checked = false;
    x->abort = NU_FX_NONE;
    x->errbuf[0] = '\0';
    nu_sha256_init(&x->sha);
    curl_easy_setopt(x->h, CURLOPT_URL, it->url);
    curl_easy_setopt(x->h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(x->h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(x->h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(x->h, CURLOPT_MAXREDIRS, c->max_redirects);
    curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(x->h, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(x->h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_bytes);
    curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->h, CURLOPT_USERAGENT, "nurion-http-fetch/1");
    curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, nu_fx_write);
    curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->h, CURLOPT_ERRORBUFFER, x->errbuf);
    if (curl_multi_add_handle(fl->multi, x->h) != CURLM_OK) {
        curl_easy_cleanup(x->h);
        x->h = NULL;
        close(x->fd);
        return nu_err_set(eb, NU_ERR_SYSTEM, "could not add a transfer to libcurl");
    }
    it->attempts++;
    fl->state[idx] = NU_FX_ACTIVE;
    fl->active++;
    return NU_OK;
}

/* End item `idx` as failed with `rc` and the reason. */
static void nu_fx_fail(struct nu_fl *fl, size_t idx, nu_err_t rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void nu_fx_fail(struct nu_fl *fl, size_t idx, nu_err_t rc, const char *fmt, ...)
{
    struct nu_fetch_item *it = &fl->items[idx];
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (it->attempts > 1)
        it->error = nu_xasprintf("GET %s: %s (%d attempts)", it->url, msg, it->attempts);
    else
        it->error = nu_xasprintf("GET %s: %s", it->url, msg);
    it->ok = false;
    it->rc = rc;
    if (it->path)
        unlink(it->path);
    free(it->path);
    it->path = NULL;
    fl->state[idx] = NU_FX_DONE;
    fl->done++;
}

static bool nu_fx_retriable_code(CURLcode r)
{
    switch (r) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
        return true;
    default:
        return false;
    }
}

/* A transfer ended with result r: record success, schedule a retry or fail the item. */
static nu_err_t nu_fx_done(struct nu_fl *fl, struct nu_fx *x, CURLcode r, struct nu_errbuf *eb)
{
    const struct nu_fetch_conf *c = fl->c;
    size_t idx = x->idx;
    struct nu_fetch_item *it = &fl->items[idx];
    char *eff = NULL, *ct = NULL;
    long status = 0;
    curl_off_t conn_us = 0;
    unsigned char d[NU_SHA256_LEN];
    bool retriable;
    nu_err_t rc = NU_OK;

    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->h, CURLINFO_EFFECTIVE_URL, &eff);
    curl_easy_getinfo(x->h, CURLINFO_CONTENT_TYPE, &ct);
    curl_easy_getinfo(x->h, CURLINFO_CONNECT_TIME_T, &conn_us);
    it->status = status;
    free(it->final_url);
    it->final_url = nu_xstrdup(eff ? eff : it->url);
    free(it->content_type);
    it->content_type = ct ? nu_xstrdup(ct) : NULL;
    if (close(x->fd) != 0 && x->abort == NU_FX_NONE) {
        x->abort = NU_FX_IO;
        x->err_no = errno;
    }
    fl->state[idx] = NU_FX_WAITING; /* until decided below */
    if (x->abort == NU_FX_IO) {
        rc = nu_err_set(eb, NU_ERR_IO, "could not write file \"%s\": %s", it->path,
                        strerror(x->err_no));
        goto out;
    }
    if (x->abort == NU_FX_TOO_BIG || r == CURLE_FILESIZE_EXCEEDED) {
        nu_fx_fail(fl, idx, NU_ERR_TOO_LARGE, "body exceeds max_bytes %lld",
                   (long long)c->max_bytes);
        goto out;
    }
    if (r == CURLE_OK && !x->ctype_checked)
        nu_fx_check_ctype(fl, x);
    if (x->abort == NU_FX_CTYPE) {
        nu_fx_fail(fl, idx, NU_ERR_UNSUPPORTED, "content type %s not allowed", ct ? ct : "(none)");
        goto out;
    }
    if (r == CURLE_OK && status >= 200 && status < 300) {
        nu_sha256_final(&x->sha, d);
        nu_sha256_hex(d, NU_SHA256_LEN, it->sha256);
        it->size = x->bytes;
        it->ok = true;
        it->rc = NU_OK;
        fl->state[idx] = NU_FX_DONE;
        fl->done++;
        goto out;
    }
    retriable = r == CURLE_HTTP_RETURNED_ERROR ? status >= 500 : nu_fx_retriable_code(r);
    if (retriable && it->attempts <= c->retries) {
        fl->due[idx] = nu_fetch_now_ms() + nu_fetch_backoff_ms(c->backoff_ms, it->attempts);
        fl->waiting[fl->nwaiting++] = idx;
        goto out;
    }
    if (r == CURLE_HTTP_RETURNED_ERROR || r == CURLE_OK)
        nu_fx_fail(fl, idx,
                   status >= 500                    ? NU_ERR_IO
                   : status == 404 || status == 410 ? NU_ERR_NOT_FOUND
                                                    : NU_ERR_INVALID,
                   "HTTP %ld", status);
    else if (r == CURLE_OPERATION_TIMEDOUT && conn_us == 0)
        nu_fx_fail(fl, idx, NU_ERR_TIMEOUT, "could not connect within %ld ms",
                   c->connect_timeout_ms < c->timeout_ms ? c->connect_timeout_ms : c->timeout_ms);
    else if (r == CURLE_OPERATION_TIMEDOUT)
        nu_fx_fail(fl, idx, NU_ERR_TIMEOUT, "timed out after %ld ms", c->timeout_ms);
    else if (r == CURLE_TOO_MANY_REDIRECTS)
        nu_fx_fail(fl, idx, NU_ERR_INVALID, "more than %ld redirects", c->max_redirects);
    else
        nu_fx_fail(fl, idx, retriable ? NU_ERR_IO : NU_ERR_INVALID, "%s%s%s", curl_easy_strerror(r),
                   x->errbuf[0] ? ": " : "", x->errbuf);
out:
    curl_multi_remove_handle(fl->multi, x->h);
    curl_easy_cleanup(x->h);
    x->h = NULL;
    fl->active--;
    return rc;
}

/* Start due retries first, then fresh URLs, while slots are free; *wait_ms gets how long the
 * loop may sleep before a retry is due. */
static nu_err_t nu_fl_fill(struct nu_fl *fl, long *wait_ms, struct nu_errbuf *eb)
{
    int64_t now = nu_fetch_now_ms(), soonest = INT64_MAX;
    nu_err_t rc = NU_OK;

    for (size_t w = 0; rc == NU_OK && w < fl->nwaiting;) {
        size_t idx = fl->waiting[w];
        if (fl->due[idx] <= now && fl->active < (size_t)fl->c->concurrency) {
            fl->waiting[w] = fl->waiting[--fl->nwaiting];
            rc = nu_fx_start(fl, idx, eb);
            continue;
        }
        if (fl->due[idx] < soonest)
            soonest = fl->due[idx];
        w++;
    }
    while (rc == NU_OK && fl->next < fl->n && fl->active < (size_t)fl->c->concurrency) {
        size_t idx = fl->next++;
        if (strlen(fl->items[idx].url) > NU_FETCH_MAX_URL) {
            nu_fx_fail(fl, idx, NU_ERR_INVALID, "URL longer than %d bytes", NU_FETCH_MAX_URL);
            continue;
        }
        rc = nu_fx_start(fl, idx, eb);
    }
    *wait_ms = 100;
    if (fl->active == 0 && soonest != INT64_MAX)
        *wait_ms = soonest > now ? (long)(soonest - now) : 0;
    else if (soonest != INT64_MAX && soonest - now < *wait_ms)
        *wait_ms = soonest > now ? (long)(soonest - now) : 0;
    return rc;
}

nu_err_t nu_fetch_run(const struct nu_fetch_conf *c, struct nu_fetch_item *items, size_t n,
                      struct nu_errbuf *eb)
{
    struct nu_fl fl = {.c = c, .items = items, .n = n};
    nu_err_t rc = NU_OK;

    if (n == 0)
        return NU_OK;
    pthread_once(&nu_fetch_once, nu_fetch_global_init);
    fl.multi = curl_multi_init();
    if (!fl.multi)
        return nu_err_set(eb, NU_ERR_SYSTEM, "could not create a libcurl multi handle");
    curl_multi_setopt(fl.multi, CURLMOPT_MAX_HOST_CONNECTIONS, c->concurrency);
    fl.slots = nu_xcalloc((size_t)c->concurrency, sizeof(*fl.slots));
    fl.state = nu_xcalloc(n, sizeof(*fl.state));
    fl.due = nu_xcalloc(n, sizeof(*fl.due));
    fl.waiting = nu_xcalloc(n, sizeof(*fl.waiting));
    for (size_t i = 0; i < n; i++)
        nu_fetch_item_clear(&items[i]);
    while (fl.done < n) {
        struct CURLMsg *msg;
        int running = 0, left = 0;
        long wait_ms = 100;

        rc = nu_fl_fill(&fl, &wait_ms, eb);
        if (rc != NU_OK)
            goto out;
        if (curl_multi_perform(fl.multi, &running) != CURLM_OK) {
            rc = nu_err_set(eb, NU_ERR_SYSTEM, "libcurl's multi loop failed");
            goto out;
        }
        while ((msg = curl_multi_info_read(fl.multi, &left))) {
            struct nu_fx *x = NULL;
            if (msg->msg != CURLMSG_DONE)
                continue;
            for (long s = 0; s < c->concurrency; s++)
                if (fl.slots[s].h == msg->easy_handle)
                    x = &fl.slots[s];
            if (x) {
                CURLcode r = msg->data.result; /* msg is invalid once the handle is removed */
                rc = nu_fx_done(&fl, x, r, eb);
                if (rc != NU_OK)
                    goto out;
            }
        }
        if (fl.done < n && (running > 0 || fl.active == 0))
            curl_multi_poll(fl.multi, NULL, 0,
                            (int)(fl.active ? (wait_ms < 100 ? wait_ms : 100) : wait_ms), NULL);
    }
out:
    for (long s = 0; s < c->concurrency; s++)
        if (fl.slots[s].h) {
            curl_multi_remove_handle(fl.multi, fl.slots[s].h);
            curl_easy_cleanup(fl.slots[s].h);
            close(fl.slots[s].fd);
        }
    curl_multi_cleanup(fl.multi);
    if (rc != NU_OK)
        for (size_t i = 0; i < n; i++)
            nu_fetch_item_clear(&items[i]);
    free(fl.slots);
    free(fl.state);
    free(fl.due);
    free(fl.waiting);
    return rc;
}
