/*
 * file_source_csv.c — CSV records of `file_source`: RFC 4180 fields (a configurable delimiter
 * and quote character, doubled quotes inside quoted fields, quoted line ends), typed by the
 * configured columns or by inference over the first records of the first file.
 *
 * Inference: per column, int64 when every non-empty value is an integer, double when every one
 * is a number, boolean when every one is true/false, else string; inferred columns are nullable
 * (an empty unquoted field is null). A line that cannot be read (wrong field count, a value that
 * does not parse as its column's type, an unterminated quote) is rejected on its own through the
 * runtime's reject callback, its raw text as the dead letter and "file …, line N: why" as reason.
 */
#include "operators/file_source_int.h"

#include "common/buf.h"
#include "common/mem.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct nu_csv_field {
    size_t off, len; /* into the unescaped text buffer */
    bool quoted;
};

struct nu_csv_rec {
    struct nu_buf text; /* unescaped field bytes */
    struct nu_csv_field *f;
    size_t n, cap;
};

static void nu_csv_rec_free(struct nu_csv_rec *r)
{
    nu_buf_free(&r->text);
    free(r->f);
}

/* Split one record into fields. false with `why` set on a syntax error. */
static bool nu_csv_split(const struct nu_fsrc_conf *c, const char *s, size_t len,
                         struct nu_csv_rec *r, char *why, size_t whylen)
{
    size_t i = 0;
    nu_buf_reset(&r->text);
    r->n = 0;
    for (;;) {
        struct nu_csv_field fld = {.off = r->text.len};
        if (r->n >= NU_MAX_COLUMNS) {
            snprintf(why, whylen, "more than %d fields", NU_MAX_COLUMNS);
            return false;
        }
        if (i < len && s[i] == c->quote) {
            fld.quoted = true;
            i++;
            for (;;) {
                if (i >= len) {
                    snprintf(why, whylen, "unterminated quoted field %zu", r->n + 1);
                    return false;
                }
                if (s[i] == c->quote) {
                    if (i + 1 < len && s[i + 1] == c->quote) {
                        nu_buf_putc(&r->text, (unsigned char)c->quote);
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                nu_buf_putc(&r->text, (unsigned char)s[i++]);
            }
            if (i < len && s[i] != c->delim) {
                snprintf(why, whylen, "unexpected character after the closing quote of field %zu",
                         r->n + 1);
                return false;
            }
        } else {
            size_t st = i;
            while (i < len && s[i] != c->delim)
                i++;
            nu_buf_append(&r->text, s + st, i - st);
        }
        fld.len = r->text.len - fld.off;
        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 16;
            r->f = nu_xrealloc(r->f, r->cap * sizeof(*r->f));
        }
        r->f[r->n++] = fld;
        if (i >= len)
            return true;
        i++; /* the delimiter */
    }
}

static bool nu_csv_int(const char *s, size_t n, int64_t *out)
{
    char tmp[32];
    char *end;
    if (n == 0 || n >= sizeof(tmp))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (!(tmp[0] == '-' || tmp[0] == '+' || (tmp[0] >= '0' && tmp[0] <= '9')))
        return false;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno != 0 || *end != '\0' || end == tmp)
        return false;
    *out = v;
    return true;
}

static bool nu_csv_double(const char *s, size_t n, double *out)
{
    char tmp[128];
    char *end;
    if (n == 0 || n >= sizeof(tmp) || s[0] == ' ' || s[0] == '\t')
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    double v = strtod(tmp, &end);
    if (*end != '\0' || end == tmp || (errno == ERANGE && isinf(v)))
        return false;
    *out = v;
    return true;
}

static bool nu_csv_bool(const char *s, size_t n, bool *out)
{
    if (n == 4 && strncasecmp(s, "true", 4) == 0)
        *out = true;
    else if (n == 5 && strncasecmp(s, "false", 5) == 0)
        *out = false;
    else
        return false;
    return true;
}

/* Convert field `f` for column `col` into *v (strings copied into b). */
static bool nu_csv_value(struct nu_batch *b, const struct nu_field *col, const char *s, size_t n,
                         bool quoted, struct nu_value *v, char *why, size_t whylen)
{
    if (n == 0 && !quoted && col->nullable) {
        *v = nu_value_null();
        return true;
    }
    switch (col->type) {
    case NU_T_STRING:
    case NU_T_BYTES:
        *v = nu_batch_str(b, col->type, s, n);
        return true;
    case NU_T_INT64:
        *v = nu_value_int(0);
        if (nu_csv_int(s, n, &v->u.i))
            return true;
        break;
    case NU_T_DOUBLE:
        *v = nu_value_double(0);
        if (nu_csv_double(s, n, &v->u.d))
            return true;
        break;
    case NU_T_BOOL:
        *v = nu_value_bool(false);
        if (nu_csv_bool(s, n, &v->u.b))
            return true;
        break;
    default:
        break;
    }
    snprintf(why, whylen, "column \"%s\": \"%.*s\" is not a valid %s", col->name,
             (int)(n > 64 ? 64 : n), s, nu_type_name(col->type));
    return false;
}

nu_err_t nu_fsrc_csv_infer(const struct nu_fsrc_conf *c, const char *file, struct nu_schema **out,
                           struct nu_errbuf *eb)
{
    struct nu_fsrc_reader r;
    struct nu_csv_rec rec = {0};
    struct nu_schema *s = NULL;
    unsigned char *flags = NULL; /* per column: 1 int, 2 double, 4 bool possible */
    char why[256];
    long long seen = 0;
    nu_err_t rc;

    *out = NULL;
    rc = nu_fsrc_reader_open(&r, file, 0, -1, c->newlines_in_quotes ? c->quote : -1, eb);
    while (rc == NU_OK && seen <= c->infer_rows) {
        const char *p;
        size_t len;
        uint64_t line;
        bool unterm, done;
        rc = nu_fsrc_reader_next(&r, &p, &len, &line, &unterm, &done, eb);
        if (rc != NU_OK || done)
            break;
        if (len == 0)
            continue;
        if (!nu_csv_split(c, p, len, &rec, why, sizeof(why))) {
            if (s)
                continue; /* bad data lines are the reader's business, not inference's */
            rc = nu_err_set(eb, NU_ERR_CORRUPT, "file \"%s\", line %llu: %s", file,
                            (unsigned long long)line + 1, why);
            break;
        }
        if (!s) {
            s = nu_schema_new(rec.n);
            flags = nu_xcalloc(rec.n, 1);
            for (size_t k = 0; k < rec.n; k++) {
                char name[32];
                char *hn = c->header ? nu_xstrndup((const char *)rec.text.data + rec.f[k].off,
                                                   rec.f[k].len)
                                     : NULL;
                snprintf(name, sizeof(name), "c%zu", k + 1);
                nu_schema_set(s, k, hn && *hn ? hn : name, NU_T_STRING, true, NULL);
                free(hn);
                flags[k] = 1 | 2 | 4 | 8; /* 8: nothing seen yet */
            }
            if (c->header)
                continue;
        }
        if (rec.n != s->ncols)
            continue;
        seen++;
        for (size_t k = 0; k < rec.n; k++) {
            const char *v = (const char *)rec.text.data + rec.f[k].off;
            size_t n = rec.f[k].len;
            int64_t iv;
            double dv;
            bool bv;
            if (n == 0 && !rec.f[k].quoted)
                continue;
            flags[k] &= (unsigned char)~8;
            if (!nu_csv_int(v, n, &iv))
                flags[k] &= (unsigned char)~1;
            if (!nu_csv_double(v, n, &dv))
                flags[k] &= (unsigned char)~2;
            if (!nu_csv_bool(v, n, &bv))
                flags[k] &= (unsigned char)~4;
        }
    }
    if (rc == NU_OK && !s)
        rc = nu_err_set(eb, NU_ERR_SCHEMA,
                        "cannot infer the columns of CSV file \"%s\": it has no records", file);
    if (rc == NU_OK) {
        for (size_t k = 0; k < s->ncols; k++) {
            nu_type_t t = NU_T_STRING;
            if (flags[k] & 8)
                t = NU_T_STRING;
            else if (flags[k] & 1)
                t = NU_T_INT64;
            else if (flags[k] & 2)
                t = NU_T_DOUBLE;
            else if (flags[k] & 4)
                t = NU_T_BOOL;
            s->cols[k].type = t;
        }
        *out = s;
        s = NULL;
    }
    nu_schema_unref(s);
    free(flags);
    nu_csv_rec_free(&rec);
    nu_fsrc_reader_close(&r);
    return rc;
}

/* Reject one record (or fail the split when the runtime cannot reject). */
static nu_err_t nu_csv_reject(struct nu_fsrc_reader *r, const struct nu_fsrc_task *t,
                              const struct nu_op_batch_ctx *ctx, const char *p, size_t len,
                              uint64_t line, const char *why, struct nu_errbuf *eb)
{
    char reason[NU_ERRBUF_SIZE];
    snprintf(reason, sizeof(reason), "file_source: file \"%s\", line %llu: %s", t->path,
             (unsigned long long)nu_fsrc_reader_lineno(r, line), why);
    return nu_op_reject_row(ctx, t->plan, t->plan_row, p, len, NU_ERR_CORRUPT, reason, eb);
}

nu_err_t nu_fsrc_csv_process(const struct nu_fsrc_conf *c, struct nu_schema *schema,
                             const struct nu_fsrc_task *t, const struct nu_op_batch_ctx *ctx,
                             const struct nu_op_emit *out, struct nu_errbuf *eb)
{
    struct nu_fsrc_reader r;
    struct nu_csv_rec rec = {0};
    struct nu_batch *b = NULL;
    struct nu_value *vals = nu_xcalloc(schema->ncols ? schema->ncols : 1, sizeof(*vals));
    bool want_header = c->header && t->offset == 0;
    char why[512];
    nu_err_t rc;

    rc = nu_fsrc_reader_open(&r, t->path, t->offset, t->length,
                             c->newlines_in_quotes ? c->quote : -1, eb);
    while (rc == NU_OK) {
        const char *p;
        size_t len;
        uint64_t line;
        bool unterm, done, ok;
        rc = nu_fsrc_reader_next(&r, &p, &len, &line, &unterm, &done, eb);
        if (rc != NU_OK || done)
            break;
        if (len == 0)
            continue;
        ok = nu_csv_split(c, p, len, &rec, why, sizeof(why));
        if (want_header) {
            want_header = false;
            if (ok && rec.n == schema->ncols)
                continue;
            rc = nu_err_set(eb, NU_ERR_SCHEMA,
                            "file_source: the header of file \"%s\" has %zu fields, expected %zu",
                            t->path, ok ? rec.n : 0, schema->ncols);
            break;
        }
        if (ok && rec.n != schema->ncols) {
            snprintf(why, sizeof(why), "%zu fields, expected %zu", rec.n, schema->ncols);
            ok = false;
        }
        if (!b)
            b = nu_batch_new(schema, (size_t)c->split_rows < 1024 ? (size_t)c->split_rows : 1024);
        for (size_t k = 0; ok && k < schema->ncols; k++)
            ok = nu_csv_value(b, &schema->cols[k], (const char *)rec.text.data + rec.f[k].off,
                              rec.f[k].len, rec.f[k].quoted, &vals[k], why, sizeof(why));
        if (!ok) {
            rc = nu_csv_reject(&r, t, ctx, p, len, line, why, eb);
            continue;
        }
        memcpy(nu_batch_add_row(b), vals, schema->ncols * sizeof(*vals));
        if ((long long)b->nrows >= c->split_rows) {
            rc = nu_op_emit_batch(out, b, eb);
            b = NULL;
        }
    }
    if (rc == NU_OK && b && b->nrows > 0) {
        rc = nu_op_emit_batch(out, b, eb);
        b = NULL;
    }
    nu_batch_destroy(b);
    free(vals);
    nu_csv_rec_free(&rec);
    nu_fsrc_reader_close(&r);
    return rc;
}
