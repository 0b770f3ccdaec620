/*
 * err.h — the one error table of Nurion (layer: common).
 *
 * Every fallible function returns an nu_err_t and takes a caller-owned struct nu_errbuf last.
 * The first message written into a buffer wins, so the deepest, most specific cause is kept;
 * callers that want to add context do so with nu_err_prefix(). Messages follow PostgreSQL's
 * style: lower case, no trailing period, the object quoted (`could not open file "x": …`).
 *
 * Library errors (librdkafka, libpq SQLSTATEs, Avro, jansson, libmicrohttpd) are mapped onto
 * this table at the module that wraps the library, never further out.
 *
 * Thread-safety: the table is constant; an errbuf belongs to one thread at a time.
 */
#ifndef NU_COMMON_ERR_H
#define NU_COMMON_ERR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* X(name, text, retriable, http_status) */
#define NU_ERR_TABLE(X)                                                 \
    X(NU_OK, "success", false, 200)                                     \
    X(NU_ERR_INVALID, "invalid argument", false, 400)                   \
    X(NU_ERR_USAGE, "bad command-line usage", false, 400)               \
    X(NU_ERR_CONFIG, "invalid configuration", false, 400)               \
    X(NU_ERR_SPEC, "invalid job spec", false, 400)                      \
    X(NU_ERR_PARSE, "syntax error", false, 400)                         \
    X(NU_ERR_TYPE, "type error", false, 400)                            \
    X(NU_ERR_NOT_FOUND, "not found", false, 404)                        \
    X(NU_ERR_EXISTS, "already exists", false, 409)                      \
    X(NU_ERR_STATE, "not allowed in the current state", false, 409)     \
    X(NU_ERR_TOO_LARGE, "size over a limit", false, 413)                \
    X(NU_ERR_UNSUPPORTED, "unsupported", false, 415)                    \
    X(NU_ERR_CORRUPT, "corrupt data", false, 422)                       \
    X(NU_ERR_SCHEMA, "schema mismatch", false, 422)                     \
    X(NU_ERR_EVAL, "expression evaluation failed", false, 422)          \
    X(NU_ERR_OPERATOR, "operator failed", false, 500)                   \
    X(NU_ERR_OPERATOR_RETRY, "operator failed, retriable", true, 503)   \
    X(NU_ERR_PLUGIN, "could not load plugin", false, 400)               \
    X(NU_ERR_IO, "input/output error", true, 500)                       \
    X(NU_ERR_SYSTEM, "system call failed", false, 500)                  \
    X(NU_ERR_KAFKA, "broker error, retriable", true, 503)               \
    X(NU_ERR_KAFKA_FATAL, "fatal broker error", false, 502)             \
    X(NU_ERR_TXN_ABORT, "transaction must be aborted", true, 503)       \
    X(NU_ERR_FENCED, "producer fenced by a newer instance", false, 409) \
    X(NU_ERR_DB, "database error, retriable", true, 503)                \
    X(NU_ERR_DB_FATAL, "database error", false, 500)                    \
    X(NU_ERR_TIMEOUT, "timed out", true, 504)                           \
    X(NU_ERR_CANCELLED, "cancelled", false, 409)                        \
    X(NU_ERR_INTERNAL, "internal error", false, 500)

typedef enum nu_err {
#define NU_ERR_ENUM_(name, text, retriable, http) name,
    NU_ERR_TABLE(NU_ERR_ENUM_)
#undef NU_ERR_ENUM_
        NU_ERR__COUNT
} nu_err_t;

#define NU_ERRBUF_SIZE 1024

/* Caller-owned error message buffer. Zero-initialise (or nu_errbuf_clear) before use. */
struct nu_errbuf {
    nu_err_t code;
    bool set;
    char msg[NU_ERRBUF_SIZE];
};

/* Symbolic name ("NU_ERR_SPEC"), human text, retriability and HTTP status of a code. */
const char *nu_err_name(nu_err_t code);
const char *nu_err_text(nu_err_t code);
bool nu_err_retriable(nu_err_t code);
int nu_err_http_status(nu_err_t code);

/* Reset a buffer to "no error". Accepts NULL. */
void nu_errbuf_clear(struct nu_errbuf *eb);

/*
 * Record an error and return `code`. The first message written wins: a buffer already holding a
 * message is left alone. `eb` may be NULL (the error is then only returned).
 */
nu_err_t nu_err_set(struct nu_errbuf *eb, nu_err_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
nu_err_t nu_err_setv(struct nu_errbuf *eb, nu_err_t code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Prefix context to a message already set ("stage \"x\": " + msg). No-op on an empty buffer. */
void nu_err_prefix(struct nu_errbuf *eb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The message, or the code's text when none was written. Never NULL. */
const char *nu_err_msg(const struct nu_errbuf *eb);

#endif
