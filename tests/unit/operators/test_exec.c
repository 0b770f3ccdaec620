/*
 * Tests of the `exec` operator (src/operators/op_exec.c, exec_proc.c): the frame codec, config
 * validation, and real child processes — python3 programs that echo, crash, hang, write
 * garbage, reject rows or answer with the wrong columns — driven through the operator's ABI.
 */
#include "operators/exec_int.h"
#include "operators/registry.h"

#include "common/codec.h"
#include "common/mem.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* --- frame codec --- */

Test(exec, frames_round_trip_when_fed_byte_by_byte)
{
    struct nu_buf out = NU_BUF_INIT;
    struct nu_exec_reader r = {0};
    struct nu_errbuf eb;
    const char *kinds[] = {"split", "rows", "done", "reject"};
    const char *bodies[] = {"{\"split\":\"a\"}", "{\"id\":1}\n{\"id\":2}\n", "", "{\"row\":0}"};
    size_t got = 0;

    nu_errbuf_clear(&eb);
    for (size_t i = 0; i < 4; i++)
        nu_exec_frame_write(&out, kinds[i], bodies[i], strlen(bodies[i]));
    cr_assert_eq(memcmp(out.data, "NURION1 split 13\n{\"split\"", 25), 0);
    for (size_t i = 0; i < out.len; i++) {
        struct nu_exec_frame f;
        bool have = false;
        nu_exec_reader_feed(&r, out.data + i, 1);
        cr_assert_eq(nu_exec_reader_next(&r, &f, &have, &eb), NU_OK, "%s", nu_err_msg(&eb));
        if (have) {
            cr_assert_lt(got, 4);
            cr_assert_str_eq(f.kind, kinds[got]);
            cr_assert_eq(f.len, strlen(bodies[got]));
            cr_assert_eq(memcmp(f.body, bodies[got], f.len), 0);
            got++;
        }
    }
    cr_assert_eq(got, 4);
    nu_exec_reader_free(&r);
    nu_buf_free(&out);
}

Test(exec, malformed_frames_are_refused_with_the_first_bytes_quoted)
{
    static const struct {
        const char *in;
        nu_err_t code;
        const char *msg;
    } cases[] = {
        {"hello world\n", NU_ERR_CORRUPT, "not a frame header at byte 0 of its output: \"hello"},
        {"garbage without a newline", NU_ERR_CORRUPT, "\"garbage without a newline\""},
        {"NURION1 rows 01\nx", NU_ERR_CORRUPT, "bad frame length"},
        {"NURION1 rows -1\n", NU_ERR_CORRUPT, "bad frame length"},
        {"NURION1 rows 12345678901\n", NU_ERR_CORRUPT, "bad frame length"},
        {"NURION1 ROWS 1\nx", NU_ERR_CORRUPT, "bad frame kind"},
        {"NURION1 rows\n", NU_ERR_CORRUPT, "without a kind and a length"},
        {"NURION1 done 65537\n", NU_ERR_TOO_LARGE, "over the limit of 65536"},
        {"NURION1 rows 67108865\n", NU_ERR_TOO_LARGE, "over the limit of 67108864"},
        {"NURION1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 1\n",
         NU_ERR_CORRUPT, "frame header longer than 64 bytes"},
        {"NURION1 \x01\x02 1\n", NU_ERR_CORRUPT, "\\x01\\x02"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_exec_reader r = {0};
        struct nu_exec_frame f;
        struct nu_errbuf eb;
        bool have = true;
        nu_errbuf_clear(&eb);
        nu_exec_reader_feed(&r, cases[i].in, strlen(cases[i].in));
        cr_assert_eq(nu_exec_reader_next(&r, &f, &have, &eb), cases[i].code, "case %zu: %s", i,
                     nu_err_msg(&eb));
        cr_assert(strstr(nu_err_msg(&eb), cases[i].msg), "case %zu: %s", i, nu_err_msg(&eb));
        nu_exec_reader_free(&r);
    }
}

Test(exec, a_partial_header_waits_for_more_bytes)
{
    struct nu_exec_reader r = {0};
    struct nu_exec_frame f;
    struct nu_errbuf eb;
    bool have = true;
    nu_errbuf_clear(&eb);
    nu_exec_reader_feed(&r, "NURI", 4);
    cr_assert_eq(nu_exec_reader_next(&r, &f, &have, &eb), NU_OK);
    cr_assert_not(have);
    nu_exec_reader_feed(&r, "ON1 rows 3\nab", 13);
    cr_assert_eq(nu_exec_reader_next(&r, &f, &have, &eb), NU_OK);
    cr_assert_not(have);
    nu_exec_reader_feed(&r, "c", 1);
    cr_assert_eq(nu_exec_reader_next(&r, &f, &have, &eb), NU_OK);
    cr_assert(have);
    cr_assert_eq(f.len, 3);
    nu_exec_reader_free(&r);
}

/* --- the operator with real children --- */

/* A python3 program speaking the raw protocol: for each split, run BODY with m (the split
 * frame) and r (the rows frame) read; rd() and wr(kind, body) read and write frames. */
static const char *const py_pre =
    "import sys,os,time,subprocess\n"
    "i=sys.stdin.buffer;o=sys.stdout.buffer\n"
    "def rd():\n"
    "  h=i.readline()\n"
    "  if not h: sys.exit(0)\n"
    "  k,n=h.split()[1:];return k.decode(),i.read(int(n))\n"
    "def wr(k,b=b''):\n"
    "  o.write(b'NURION1 %s %d\\n'%(k.encode(),len(b)));o.write(b);o.flush()\n"
    "while True:\n"
    "  m=rd();r=rd()\n  ";

static const char *const py_echo = "wr('rows',r[1]);wr('done')";

struct probe {
    size_t nlines, nrejects;
    char lines[16][256];
    size_t rows[16];
    char reasons[16][512];
};

static void probe_log(void *ctx, enum nu_op_log_level level, const char *msg)
{
    struct probe *p = ctx;
    if (p->nlines < 16)
        snprintf(p->lines[p->nlines++], sizeof(p->lines[0]), "%s", msg);
}

static nu_err_t probe_reject(void *ctx, const struct nu_batch *in, size_t row, const void *raw,
                             size_t raw_len, const char *reason, struct nu_errbuf *eb)
{
    struct probe *p = ctx;
    cr_assert_lt(p->nrejects, 16);
    p->rows[p->nrejects] = row;
    snprintf(p->reasons[p->nrejects++], sizeof(p->reasons[0]), "%s", reason);
    return NU_OK;
}

struct outs {
    size_t n;
    struct nu_batch *b[8];
};

static nu_err_t outs_emit(void *ctx, struct nu_batch *b, struct nu_errbuf *eb)
{
    struct outs *o = ctx;
    cr_assert_lt(o->n, 8);
    o->b[o->n++] = b;
    return NU_OK;
}

static void outs_free(struct outs *o)
{
    for (size_t i = 0; i < o->n; i++)
        nu_batch_destroy(o->b[i]);
    o->n = 0;
}

/* Input: id int64, s string? — rows id = 0..n-1, s = "r<id>" (null for id 2). */
static struct nu_batch *input(size_t n)
{
    struct nu_schema *s = nu_schema_new(2);
    nu_schema_set(s, 0, "id", NU_T_INT64, false, NULL);
    nu_schema_set(s, 1, "s", NU_T_STRING, true, NULL);
    struct nu_batch *b = nu_batch_new(s, n);
    nu_schema_unref(s);
    for (size_t i = 0; i < n; i++) {
        char t[32];
        struct nu_value *row = nu_batch_add_row(b);
        snprintf(t, sizeof(t), "r%zu", i);
        row[0] = nu_value_int((int64_t)i);
        row[1] = i == 2 ? nu_value_null() : nu_batch_str(b, NU_T_STRING, t, strlen(t));
    }
    return b;
}

struct rig {
    const struct nu_operator *op;
    void *state;
    struct probe probe;
    struct outs outs;
    struct nu_op_batch_ctx ctx;
    struct nu_op_emit emit;
    struct nu_batch *in;
    struct nu_errbuf eb;
};

/* Open exec with `extra` config fields (a JSON object's inside, may be "") around argv. */
static void rig_open(struct rig *g, json_t *argv, const char *extra)
{
    char text[512];
    json_error_t jerr;
    memset(g, 0, sizeof(*g));
    nu_errbuf_clear(&g->eb);
    cr_assert_eq(nu_registry_find("exec", NULL, &g->op, &g->eb), NU_OK);
    snprintf(text, sizeof(text), "{%s}", extra ? extra : "");
    json_t *cfg = json_loads(text, 0, &jerr);
    cr_assert_not_null(cfg, "%s", jerr.text);
    json_object_set_new(cfg, "argv", argv);
    g->in = input(5);
    struct nu_op_open_args a = {.config = cfg, .in = g->in->schema, .job_id = "j", .stage_id = "x"};
    cr_assert_eq(g->op->open(&a, &g->state, &g->eb), NU_OK, "%s", nu_err_msg(&g->eb));
    json_decref(cfg);
    g->ctx = (struct nu_op_batch_ctx){.split_id = "split-1",
                                      .attempt = 1,
                                      .log = probe_log,
                                      .log_ctx = &g->probe,
                                      .reject = probe_reject,
                                      .reject_ctx = &g->probe};
    g->emit = (struct nu_op_emit){.ctx = &g->outs, .emit = outs_emit};
}

static json_t *py_raw(const char *body)
{
    char *prog = nu_xasprintf("%s%s\n", py_pre, body);
    json_t *a = json_pack("[s,s,s]", "python3", "-c", prog);
    free(prog);
    return a;
}

static nu_err_t rig_run(struct rig *g)
{
    outs_free(&g->outs);
    nu_errbuf_clear(&g->eb);
    return g->op->process(g->state, &g->ctx, g->in, &g->emit, &g->eb);
}

static void rig_close(struct rig *g)
{
    outs_free(&g->outs);
    g->op->close(g->state);
    nu_batch_destroy(g->in);
}

static void assert_same_rows(const struct nu_batch *a, const struct nu_batch *b)
{
    cr_assert(nu_schema_equal(a->schema, b->schema));
    cr_assert_eq(a->nrows, b->nrows);
    for (size_t r = 0; r < a->nrows; r++)
        for (size_t c = 0; c < a->schema->ncols; c++)
            cr_assert(nu_value_equal(&nu_batch_row(a, r)[c], &nu_batch_row(b, r)[c]), "row %zu", r);
}

Test(exec, echo_in_both_formats_keeps_one_child_across_splits, .timeout = 30)
{
    const char *formats[] = {"\"format\":\"jsonl\"", "\"format\":\"avro\""};
    for (size_t k = 0; k < 2; k++) {
        struct rig g;
        rig_open(&g, py_raw(py_echo), formats[k]);
        for (int split = 0; split < 3; split++) {
            cr_assert_eq(rig_run(&g), NU_OK, "%s", nu_err_msg(&g.eb));
            cr_assert_eq(g.outs.n, 1);
            assert_same_rows(g.outs.b[0], g.in);
        }
        rig_close(&g);
    }
}

Test(exec, a_crash_is_retriable_with_the_exit_status_and_the_child_restarts, .timeout = 30)
{
    char marker[128], body[512];
    struct rig g;
    snprintf(marker, sizeof(marker), "/tmp/nurion-exec-marker-%ld", (long)getpid());
    unlink(marker);
    snprintf(body, sizeof(body),
             "M='%s'\n  if not os.path.exists(M): open(M,'w').close(); sys.exit(3)\n  %s", marker,
             py_echo);
    rig_open(&g, py_raw(body), "");
    cr_assert_eq(rig_run(&g), NU_ERR_OPERATOR_RETRY);
    cr_assert(strstr(nu_err_msg(&g.eb), "exec: split split-1: UDF exited with status 3"), "%s",
              nu_err_msg(&g.eb));
    /* the retry starts a new child, which gets past the crash */
    cr_assert_eq(rig_run(&g), NU_OK, "%s", nu_err_msg(&g.eb));
    assert_same_rows(g.outs.b[0], g.in);
    rig_close(&g);
    unlink(marker);
}

Test(exec, death_by_signal_is_named, .timeout = 30)
{
    struct rig g;
    rig_open(&g, py_raw("os.kill(os.getpid(),9)"), "");
    cr_assert_eq(rig_run(&g), NU_ERR_OPERATOR_RETRY);
    cr_assert(strstr(nu_err_msg(&g.eb), "UDF was killed by signal 9"), "%s", nu_err_msg(&g.eb));
    rig_close(&g);
}

static bool pid_gone(pid_t pid, int wait_ms)
{
    for (int t = 0; t < wait_ms; t += 20) {
        char path[64], st = 0;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f)
            return true;
        int ok = fscanf(f, "%*d %*s %c", &st);
        fclose(f);
        if (ok == 1 && st == 'Z')
            return true;
        usleep(20000);
    }
    return false;
}

Test(exec, a_hang_times_out_and_the_whole_process_group_is_killed, .timeout = 30)
{
    char pidfile[128], body[512];
    struct rig g;
    snprintf(pidfile, sizeof(pidfile), "/tmp/nurion-exec-pid-%ld", (long)getpid());
    unlink(pidfile);
    snprintf(body, sizeof(body),
             "p=subprocess.Popen(['sleep','60']);open('%s','w').write(str(p.pid));time.sleep(60)",
             pidfile);
    rig_open(&g, py_raw(body), "\"timeout_ms\":1500");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(rig_run(&g), NU_ERR_OPERATOR_RETRY);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    cr_assert(strstr(nu_err_msg(&g.eb), "UDF did not answer within 1500 ms"), "%s",
              nu_err_msg(&g.eb));
    cr_assert(ms >= 1400 && ms < 5000, "took %.0f ms", ms);
    FILE *f = fopen(pidfile, "r");
    cr_assert_not_null(f, "the UDF did not start its grandchild");
    int gpid = 0;
    cr_assert_eq(fscanf(f, "%d", &gpid), 1);
    fclose(f);
    cr_assert(pid_gone((pid_t)gpid, 3000), "the UDF's own child %d survived", gpid);
    rig_close(&g);
    unlink(pidfile);
}

Test(exec, garbage_on_stdout_kills_the_child_and_quotes_the_bytes, .timeout = 30)
{
    struct rig g;
    rig_open(&g, py_raw("o.write(b'hello world, not a frame\\n');o.flush()"), "");
    cr_assert_eq(rig_run(&g), NU_ERR_OPERATOR_RETRY);
    cr_assert(strstr(nu_err_msg(&g.eb), "UDF broke the protocol"), "%s", nu_err_msg(&g.eb));
    cr_assert(strstr(nu_err_msg(&g.eb), "\"hello world, not a frame\\x0a\""), "%s",
              nu_err_msg(&g.eb));
    /* the next attempt runs a fresh child (that fails the same way) */
    cr_assert_eq(rig_run(&g), NU_ERR_OPERATOR_RETRY);
    rig_close(&g);
}

Test(exec, protocol_violations_are_refused, .timeout = 30)
{
    static const struct {
        const char *body;
        const char *msg;
    } cases[] = {
        {"wr('bogus');wr('done')", "unknown frame kind \"bogus\""},
        {"wr('reject',b'{\"row\":99,\"reason\":\"x\"}');wr('done')", "reject names row 99"},
        {"wr('reject',b'{\"row\":1}');wr('reject',b'{\"row\":1}');wr('done')",
         "row 1 rejected twice"},
        {"wr('reject',b'not json');wr('done')", "not a JSON object"},
        {"o.write(b'NURION1 done 0\\nNURION1 done 0\\n');o.flush()", "after the end of the answer"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rig g;
        rig_open(&g, py_raw(cases[i].body), "");
        cr_assert_eq(rig_run(&g), NU_ERR_OPERATOR_RETRY, "case %zu", i);
        cr_assert(strstr(nu_err_msg(&g.eb), cases[i].msg), "case %zu: %s", i, nu_err_msg(&g.eb));
        cr_assert_eq(g.outs.n, 0);
        cr_assert_eq(g.probe.nrejects, 0, "rejects of a failed split are not applied");
        rig_close(&g);
    }
}

Test(exec, rows_of_the_wrong_schema_fail_the_split_but_not_the_child, .timeout = 30)
{
    char body[512];
    struct rig g;
    /* the first split gets a wrong answer, later ones the echo */
    snprintf(body, sizeof(body),
             "if m[1].find(b'split-bad')>=0: wr('rows',b'{\"id\":1,\"zzz\":1}\\n');wr('done')\n"
             "  else: %s",
             py_echo);
    rig_open(&g, py_raw(body), "");
    g.ctx.split_id = "split-bad";
    cr_assert_eq(rig_run(&g), NU_ERR_OPERATOR);
    cr_assert(strstr(nu_err_msg(&g.eb), "do not match the output schema"), "%s", nu_err_msg(&g.eb));
    cr_assert(strstr(nu_err_msg(&g.eb), "zzz"), "%s", nu_err_msg(&g.eb));
    g.ctx.split_id = "split-good";
    cr_assert_eq(rig_run(&g), NU_OK, "%s", nu_err_msg(&g.eb));
    assert_same_rows(g.outs.b[0], g.in);
    rig_close(&g);
}

Test(exec, stderr_lines_go_to_the_stage_log, .timeout = 30)
{
    char body[256];
    struct rig g;
    snprintf(body, sizeof(body),
             "sys.stderr.write('first line\\nsecond line\\n');sys.stderr.flush();%s", py_echo);
    rig_open(&g, py_raw(body), "");
    cr_assert_eq(rig_run(&g), NU_OK, "%s", nu_err_msg(&g.eb));
    /* stderr may arrive just after the answer: the next split picks it up */
    for (int k = 0; k < 20 && g.probe.nlines < 2; k++) {
        usleep(20000);
        cr_assert_eq(rig_run(&g), NU_OK, "%s", nu_err_msg(&g.eb));
    }
    cr_assert_geq(g.probe.nlines, 2);
    cr_assert_str_eq(g.probe.lines[0], "first line");
    cr_assert_str_eq(g.probe.lines[1], "second line");
    rig_close(&g);
}

Test(exec, a_program_that_cannot_start_is_not_retried)
{
    struct rig g;
    rig_open(&g, json_pack("[s]", "/nonexistent/udf-program"), "");
    cr_assert_eq(rig_run(&g), NU_ERR_OPERATOR);
    cr_assert(strstr(nu_err_msg(&g.eb), "could not start UDF \"/nonexistent/udf-program\": No "
                                        "such file or directory"),
              "%s", nu_err_msg(&g.eb));
    rig_close(&g);
}

/* --- through the Python helper --- */

static json_t *py_file(const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", NU_SOURCE_DIR, rel);
    return json_pack("[s,s]", "python3", path);
}

Test(exec, python_map_rejects_the_rows_that_raise, .timeout = 30)
{
    struct rig g;
    rig_open(&g, py_file("examples/udf/raise_on.py"),
             "\"env\":{\"RAISE_IDS\":\"1,3\"},"
             "\"output_schema\":[[\"id\",\"int64\"],[\"s\",\"string?\"],[\"y\",\"int64\"]]");
    cr_assert_eq(rig_run(&g), NU_OK, "%s", nu_err_msg(&g.eb));
    cr_assert_eq(g.outs.n, 1);
    const struct nu_batch *b = g.outs.b[0];
    cr_assert_eq(b->nrows, 3);
    int64_t want[] = {0, 2, 4};
    for (size_t r = 0; r < 3; r++) {
        cr_assert_eq(nu_batch_row(b, r)[0].u.i, want[r]);
        cr_assert_eq(nu_batch_row(b, r)[2].u.i, want[r] * 2);
    }
    cr_assert_eq(nu_batch_row(b, 1)[1].type, NU_T_NULL, "a null stays null");
    cr_assert_eq(g.probe.nrejects, 2);
    cr_assert_eq(g.probe.rows[0], 1);
    cr_assert_eq(g.probe.rows[1], 3);
    cr_assert_str_eq(g.probe.reasons[1], "exec: row 3: ValueError: id 3 is on the RAISE_IDS list");
    rig_close(&g);
}

Test(exec, python_filter_env_and_cwd, .timeout = 30)
{
    struct rig g;
    char prog[1024];
    snprintf(prog, sizeof(prog),
             "import sys,os;sys.path.insert(0,'%s/python');import nurion_udf as u\n"
             "@u.map\n"
             "def f(row):\n"
             "  print('printed text goes to stderr')\n"
             "  row['s']=os.environ['GREETING']+':'+os.getcwd()\n"
             "  return row\n"
             "u.run()\n",
             NU_SOURCE_DIR);
    rig_open(&g, json_pack("[s,s,s]", "python3", "-c", prog),
             "\"env\":{\"GREETING\":\"hi\"},\"cwd\":\"/tmp\"");
    cr_assert_eq(rig_run(&g), NU_OK, "%s", nu_err_msg(&g.eb));
    const struct nu_value *v = &nu_batch_row(g.outs.b[0], 4)[1];
    cr_assert_eq(v->u.s.len, strlen("hi:/tmp"));
    cr_assert_eq(memcmp(v->u.s.ptr, "hi:/tmp", v->u.s.len), 0);
    rig_close(&g);

    rig_open(&g, py_file("examples/udf/keep_even.py"), "");
    cr_assert_eq(rig_run(&g), NU_OK, "%s", nu_err_msg(&g.eb));
    cr_assert_eq(g.outs.b[0]->nrows, 3);
    cr_assert_eq(nu_batch_row(g.outs.b[0], 2)[0].u.i, 4);
    rig_close(&g);
}

Test(exec, python_errors_outside_rows_fail_the_split, .timeout = 30)
{
    static const struct {
        const char *raise;
        nu_err_t code;
        const char *msg;
    } cases[] = {
        {"raise RuntimeError('the model is missing')", NU_ERR_OPERATOR,
         "UDF failed: RuntimeError: the model is missing"},
        {"raise u.Retry('service busy')", NU_ERR_OPERATOR_RETRY, "UDF failed: "},
    };
    for (size_t i = 0; i < 2; i++) {
        struct rig g;
        char prog[1024];
        snprintf(prog, sizeof(prog),
                 "import sys;sys.path.insert(0,'%s/python');import nurion_udf as u\n"
                 "@u.batch\n"
                 "def f(rows):\n"
                 "  %s\n"
                 "u.run()\n",
                 NU_SOURCE_DIR, cases[i].raise);
        rig_open(&g, json_pack("[s,s,s]", "python3", "-c", prog), "");
        cr_assert_eq(rig_run(&g), cases[i].code, "case %zu: %s", i, nu_err_msg(&g.eb));
        cr_assert(strstr(nu_err_msg(&g.eb), cases[i].msg), "%s", nu_err_msg(&g.eb));
        /* the UDF is still there for the next split */
        cr_assert_eq(rig_run(&g), cases[i].code, "case %zu: %s", i, nu_err_msg(&g.eb));
        rig_close(&g);
    }
}

/* --- config --- */

Test(exec, validate_reports_bad_configs)
{
    static const struct {
        const char *cfg;
        const char *path;
        const char *msg;
    } cases[] = {
        {"{}", "$.c", "missing field \"argv\""},
        {"{\"argv\":[]}", "$.c.argv", "non-empty array"},
        {"{\"argv\":[\"\"]}", "$.c.argv[0]", "must not be empty"},
        {"{\"argv\":[\"a\",3]}", "$.c.argv[1]", "expected a string"},
        {"{\"argv\":\"python3 x.py\"}", "$.c.argv", "non-empty array"},
        {"{\"argv\":[\"a\"],\"env\":{\"1X\":\"v\"}}", "$.c.env[\"1X\"]", "variable name"},
        {"{\"argv\":[\"a\"],\"env\":{\"X\":1}}", "$.c.env.X", "expected a string"},
        {"{\"argv\":[\"a\"],\"format\":\"xml\"}", "$.c.format", "\"jsonl\" or \"avro\""},
        {"{\"argv\":[\"a\"],\"timeout_ms\":0}", "$.c.timeout_ms", "at least 1"},
        {"{\"argv\":[\"a\"],\"output_schema\":[[\"id\",\"int65\"]]}", "$.c.output_schema", ""},
        {"{\"argv\":[\"a\"],\"output_schema\":{}}", "$.c.output_schema", "compact schema"},
        {"{\"argv\":[\"a\"],\"shell\":true}", "$.c.shell", "unknown field \"shell\""},
    };
    const struct nu_operator *op = NULL;
    cr_assert_eq(nu_registry_find("exec", NULL, &op, NULL), NU_OK);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_problems p;
        json_t *cfg = json_loads(cases[i].cfg, 0, NULL);
        cr_assert_not_null(cfg, "case %zu", i);
        nu_problems_init(&p);
        op->validate(cfg, "$.c", &p);
        cr_assert_geq(p.n, 1, "case %zu: no problem reported", i);
        cr_assert_str_eq(p.items[0].path, cases[i].path, "case %zu", i);
        cr_assert(strstr(p.items[0].message, cases[i].msg), "case %zu: %s", i, p.items[0].message);
        nu_problems_free(&p);
        json_decref(cfg);
    }
}

Test(exec, schema_is_the_input_unless_output_schema_is_given)
{
    const struct nu_operator *op = NULL;
    struct nu_schema *out = NULL;
    struct nu_batch *in = input(1);
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_registry_find("exec", NULL, &op, NULL), NU_OK);
    json_t *cfg = json_loads("{\"argv\":[\"x\"]}", 0, NULL);
    cr_assert_eq(op->schema(cfg, in->schema, "$", NULL, &out, &eb), NU_OK);
    cr_assert(nu_schema_equal(out, in->schema));
    nu_schema_unref(out);
    json_decref(cfg);
    cfg = json_loads("{\"argv\":[\"x\"],\"output_schema\":[[\"n\",\"double?\"]]}", 0, NULL);
    cr_assert_eq(op->schema(cfg, in->schema, "$", NULL, &out, &eb), NU_OK);
    cr_assert_eq(out->ncols, 1);
    cr_assert_str_eq(out->cols[0].name, "n");
    cr_assert_eq(out->cols[0].type, NU_T_DOUBLE);
    cr_assert(out->cols[0].nullable);
    nu_schema_unref(out);
    json_decref(cfg);
    nu_batch_destroy(in);
}
