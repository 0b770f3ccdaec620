/* err.c — the error table and error buffers. */
#include "common/err.h"

#include <stdio.h>
#include <string.h>

struct nu_err_desc {
    const char *name;
    const char *text;
    bool retriable;
    int http;
};

static const struct nu_err_desc nu_err_descs[NU_ERR__COUNT] = {
#define NU_ERR_DESC_(name, text, retriable, http) {#name, text, retriable, http},
    NU_ERR_TABLE(NU_ERR_DESC_)
#undef NU_ERR_DESC_
};

static const struct nu_err_desc *nu_err_desc(nu_err_t code)
{
    if ((int)code < 0 || code >= NU_ERR__COUNT)
        return &nu_err_descs[NU_ERR_INTERNAL];
    return &nu_err_descs[code];
}

const char *nu_err_name(nu_err_t code)
{
    return nu_err_desc(code)->name;
}

const char *nu_err_text(nu_err_t code)
{
    return nu_err_desc(code)->text;
}

bool nu_err_retriable(nu_err_t code)
{
    return nu_err_desc(code)->retriable;
}

int nu_err_http_status(nu_err_t code)
{
    return nu_err_desc(code)->http;
}

void nu_errbuf_clear(struct nu_errbuf *eb)
{
    if (!eb)
        return;
    eb->code = NU_OK;
    eb->set = false;
    eb->msg[0] = '\0';
}

nu_err_t nu_err_setv(struct nu_errbuf *eb, nu_err_t code, const char *fmt, va_list ap)
{
    if (!eb || eb->set)
        return code;
    eb->code = code;
    eb->set = true;
    vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
    return code;
}

nu_err_t nu_err_set(struct nu_errbuf *eb, nu_err_t code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nu_err_setv(eb, code, fmt, ap);
    va_end(ap);
    return code;
}

void nu_err_prefix(struct nu_errbuf *eb, const char *fmt, ...)
{
    char prefix[256], old[NU_ERRBUF_SIZE];
    va_list ap;
    if (!eb || !eb->set)
        return;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    size_t plen = strlen(prefix);
    if (plen >= sizeof(eb->msg))
        plen = sizeof(eb->msg) - 1;
    memcpy(old, eb->msg, sizeof(old));
    memcpy(eb->msg, prefix, plen);
    size_t rest = sizeof(eb->msg) - 1 - plen, olen = strnlen(old, sizeof(old));
    if (olen > rest)
        olen = rest;
    memcpy(eb->msg + plen, old, olen);
    eb->msg[plen + olen] = '\0';
}

const char *nu_err_msg(const struct nu_errbuf *eb)
{
    if (!eb || !eb->set)
        return eb ? nu_err_text(eb->code) : "unknown error";
    return eb->msg;
}
