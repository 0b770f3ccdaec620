/* log.c — key=value lines on stderr. */
#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NU_LOG_LINE_MAX 4096
#define NU_LOG_CTX_MAX  128

static nu_log_level_t nu_log_min = NU_LOG_INFO;
static char nu_log_areas[256];
static char nu_log_job[NU_LOG_CTX_MAX], nu_log_stage[NU_LOG_CTX_MAX], nu_log_inst[NU_LOG_CTX_MAX];
static pthread_mutex_t nu_log_ctx_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const nu_log_names[] = {"debug", "info", "warn", "error", "off"};

void nu_log_init(nu_log_level_t min_level, const char *debug_areas)
{
    nu_log_min = min_level;
    snprintf(nu_log_areas, sizeof(nu_log_areas), "%s", debug_areas ? debug_areas : "");
    if (nu_log_areas[0] && nu_log_min > NU_LOG_DEBUG)
        nu_log_min = NU_LOG_DEBUG; /* asking for an area implies seeing it */
}

bool nu_log_level_parse(const char *s, nu_log_level_t *out)
{
    for (int i = 0; i <= NU_LOG_OFF; i++) {
        if (strcmp(s, nu_log_names[i]) == 0) {
            *out = (nu_log_level_t)i;
            return true;
        }
    }
    return false;
}

static void nu_log_copy(char *dst, const char *src)
{
    snprintf(dst, NU_LOG_CTX_MAX, "%s", src ? src : "");
}

void nu_log_set_context(const char *job, const char *stage, const char *instance)
{
    pthread_mutex_lock(&nu_log_ctx_lock);
    nu_log_copy(nu_log_job, job);
    nu_log_copy(nu_log_stage, stage);
    nu_log_copy(nu_log_inst, instance);
    pthread_mutex_unlock(&nu_log_ctx_lock);
}

bool nu_log_debug_on(const char *area)
{
    if (nu_log_min > NU_LOG_DEBUG || !nu_log_areas[0])
        return false;
    if (strcmp(nu_log_areas, "all") == 0)
        return true;
    size_t n = strlen(area);
    const char *p = nu_log_areas;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, area, n) == 0)
            return true;
        if (!end)
            break;
        p = end + 1;
    }
    return false;
}

/* Append `s` quoted, escaping quotes, backslashes and control characters. */
static size_t nu_log_quote(char *buf, size_t off, size_t cap, const char *s)
{
    if (off < cap)
        buf[off++] = '"';
    for (; *s && off + 6 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[off++] = '\\';
            buf[off++] = (char)c;
        } else if (c == '\n') {
            buf[off++] = '\\';
            buf[off++] = 'n';
        } else if (c < 0x20) {
            off += (size_t)snprintf(buf + off, cap - off, "\\x%02x", c);
        } else {
            buf[off++] = (char)c;
        }
    }
    if (off < cap)
        buf[off++] = '"';
    return off;
}

void nu_log(nu_log_level_t level, const char *comp, const char *fmt, ...)
{
    if (level < nu_log_min || level >= NU_LOG_OFF)
        return;
    char msg[NU_LOG_LINE_MAX], line[NU_LOG_LINE_MAX + 512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    /* split "message\tk=v k=v" into the quoted message and raw extra fields */
    char *extra = strchr(msg, '\t');
    if (extra)
        *extra++ = '\0';

    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t cap = sizeof(line) - 2, off;
    off = strftime(line, cap, "ts=%Y-%m-%dT%H:%M:%S", &tm);
    off += (size_t)snprintf(line + off, cap - off, ".%03ldZ level=%s comp=%s", ts.tv_nsec / 1000000,
                            nu_log_names[level], comp);
    pthread_mutex_lock(&nu_log_ctx_lock);
    if (nu_log_job[0] && off < cap)
        off += (size_t)snprintf(line + off, cap - off, " job=%s", nu_log_job);
    if (nu_log_stage[0] && off < cap)
        off += (size_t)snprintf(line + off, cap - off, " stage=%s", nu_log_stage);
    if (nu_log_inst[0] && off < cap)
        off += (size_t)snprintf(line + off, cap - off, " inst=%s", nu_log_inst);
    pthread_mutex_unlock(&nu_log_ctx_lock);
    if (off < cap)
        off += (size_t)snprintf(line + off, cap - off, " msg=");
    if (off < cap)
        off = nu_log_quote(line, off, cap, msg);
    if (extra && off < cap)
        off += (size_t)snprintf(line + off, cap - off, " %s", extra);
    if (off > cap)
        off = cap;
    line[off++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, off);
    (void)w;
}
