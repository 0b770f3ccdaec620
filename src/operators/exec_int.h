/*
 * exec_int.h — internals of the `exec` operator: the frame codec of the UDF protocol and the
 * management of one child process (layer: operators; module-internal).
 *
 * Frames (docs/udf.md has the whole protocol): a header line `NURION1 <kind> <len>\n` — kind
 * [a-z_]{1,16}, len in decimal without sign or leading zeros — followed by exactly len bytes of
 * body. Bodies of control frames (everything but "rows") are JSON objects of at most
 * NU_EXEC_MAX_CONTROL bytes; a "rows" body is at most NU_EXEC_MAX_FRAME bytes.
 *
 * A child (nu_exec_proc_t) is started from an argv with posix_spawnp — never through a shell —
 * in its own process group, with its standard input, output and error connected to the
 * operator. Its stdin is a socket (so a write to a dead child is EPIPE, never SIGPIPE), its
 * stdout and stderr pipes; all three non-blocking and multiplexed with poll().
 *
 * Ownership: a proc owns its descriptors and its child; nu_exec_proc_destroy() ends both.
 * Thread-safety: none; a proc and a reader belong to one thread (one operator instance).
 */
#ifndef NU_OPERATORS_EXEC_INT_H
#define NU_OPERATORS_EXEC_INT_H

#include "common/buf.h"
#include "common/err.h"

#include <stdbool.h>
#include <stddef.h>

#define NU_EXEC_MAGIC        "NURION1"
#define NU_EXEC_MAX_HEADER   64           /* a header line, its '\n' included */
#define NU_EXEC_MAX_KIND     16           /* characters of a frame kind */
#define NU_EXEC_MAX_FRAME    (64u << 20)  /* body of a "rows" frame */
#define NU_EXEC_MAX_CONTROL  (64u << 10)  /* body of any other frame */
#define NU_EXEC_MAX_OUTPUT   (256u << 20) /* all "rows" bodies answering one split */
#define NU_EXEC_MAX_ARGS     256          /* argv entries */
#define NU_EXEC_MAX_ENV      256          /* "env" entries */
#define NU_EXEC_MAX_ARG_LEN  4096         /* bytes of one argv entry, env value or cwd */
#define NU_EXEC_MAX_LOG_LINE 2048         /* a stderr line longer than this is cut */
#define NU_EXEC_QUOTE_BYTES  48           /* bytes of garbage quoted in an error message */

/* One frame; `body` points into the reader's buffer and lives until the next call on it. */
struct nu_exec_frame {
    char kind[NU_EXEC_MAX_KIND + 1];
    const unsigned char *body;
    size_t len;
};

/* Append one frame (header and body) to `out`. `kind` must match [a-z_]{1,16}. */
void nu_exec_frame_write(struct nu_buf *out, const char *kind, const void *body, size_t len);

/* Incremental parser over the bytes of a stream: feed with nu_exec_reader_feed, take frames
 * with nu_exec_reader_next. The reader owns its buffer; nu_exec_reader_free releases it. */
struct nu_exec_reader {
    struct nu_buf buf;
    size_t off;      /* start of the first unconsumed byte */
    size_t consumed; /* stream offset of buf.data[off], for messages */
};

void nu_exec_reader_reset(struct nu_exec_reader *r);
void nu_exec_reader_free(struct nu_exec_reader *r);
void nu_exec_reader_feed(struct nu_exec_reader *r, const void *p, size_t n);

/*
 * Take the next complete frame. *have is false when more bytes are needed. Errors:
 * NU_ERR_CORRUPT for bytes that cannot begin a frame (the message quotes the first bytes, made
 * printable), NU_ERR_TOO_LARGE for a length over the kind's limit. After an error the stream is
 * out of step and must be abandoned.
 */
nu_err_t nu_exec_reader_next(struct nu_exec_reader *r, struct nu_exec_frame *f, bool *have,
                             struct nu_errbuf *eb);

/* Write at most `n` bytes of `p` into `out` (size `len`) as a printable, quoted excerpt:
 * "hello\x00..." — non-printable bytes as \xNN, a trailing "..." when cut. */
void nu_exec_quote(const void *p, size_t n, char *out, size_t len);

/* --- the child process --- */

struct nu_exec_spec {
    char *const *argv; /* argv[0] is looked up in PATH; NULL-terminated; borrowed */
    char *const *env;  /* "NAME=value" entries added to (or replacing in) the environment;
                          NULL-terminated or NULL; borrowed */
    const char *cwd;   /* working directory of the child, or NULL */
};

typedef struct nu_exec_proc nu_exec_proc_t;

/* Start a child. *out is returned owned. Errors: NU_ERR_OPERATOR when it cannot be spawned
 * (the message names argv[0] and the system's reason), NU_ERR_SYSTEM for descriptors. */
nu_err_t nu_exec_proc_start(const struct nu_exec_spec *spec, nu_exec_proc_t **out,
                            struct nu_errbuf *eb);

/* Called for each frame of the answer; sets *done on the frame that ends it. An error returned
 * is a protocol violation: the call kills the child and fails. */
typedef nu_err_t (*nu_exec_frame_fn)(void *ctx, const struct nu_exec_frame *f, bool *done,
                                     struct nu_errbuf *eb);
/* Called for each line the child wrote to stderr (without its '\n'; cut at
 * NU_EXEC_MAX_LOG_LINE). */
typedef void (*nu_exec_line_fn)(void *ctx, const char *line);

/*
 * Send `req` (len bytes) to the child's stdin and read frames from its stdout until `on_frame`
 * sets *done, while forwarding stderr lines to `on_line` (may be NULL); blocks at most
 * timeout_ms in all. When the child exits, closes its stdout, writes a malformed frame, or
 * does not finish in time, the child's process group is killed with SIGKILL, the child reaped
 * and NU_ERR_OPERATOR_RETRY returned with "UDF exited with status N", "UDF was killed by signal
 * S", "UDF wrote a malformed frame: …" or "UDF did not answer within N ms"; the proc is dead
 * afterwards (nu_exec_proc_alive false) and must be destroyed.
 */
nu_err_t nu_exec_proc_call(nu_exec_proc_t *p, const void *req, size_t len, int timeout_ms,
                           nu_exec_frame_fn on_frame, nu_exec_line_fn on_line, void *ctx,
                           struct nu_errbuf *eb);

bool nu_exec_proc_alive(const nu_exec_proc_t *p);
/* Process id of the child (its process group id too). */
int nu_exec_proc_pid(const nu_exec_proc_t *p);

/* Close the child's stdin, give it `grace_ms` to exit, then SIGKILL its process group; reap
 * it; forward what is left on its stderr to on_line (may be NULL). Accepts NULL. */
void nu_exec_proc_destroy(nu_exec_proc_t *p, int grace_ms, nu_exec_line_fn on_line, void *ctx);

#endif
