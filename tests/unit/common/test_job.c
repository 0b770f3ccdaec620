/*
 * Tests of src/common/job*.c: every validation rule with its path and message, several problems
 * at once, derived names, the canonical form, limits, and the examples against the JSON Schema.
 * Spec texts are written with ' for " (see q()) to stay readable.
 */
#include "common/job.h"

#include "common/mem.h"

#include "operators/registry.h"
#include "stage/connectors.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- helpers --- */

/* The spec text with every ' turned into " (returned owned). */
static char *q(const char *s)
{
    char *r = nu_xstrdup(s);
    for (char *c = r; *c; c++)
        if (*c == '\'')
            *c = '"';
    return r;
}

/* A fake operator table: enough to exercise the validator plumbing. */
struct fake_ctx {
    size_t ncalls;
    size_t calls[64]; /* stage indices in check_stage call order */
};

static nu_op_kind_t fake_kind(void *ctx, const char *op, const char *plugin, char *why,
                              size_t whylen)
{
    static const struct {
        const char *name;
        nu_op_kind_t kind;
    } table[] = {
        {"generate", NU_OPKIND_SOURCE}, {"file_source", NU_OPKIND_SOURCE},
        {"map", NU_OPKIND_TRANSFORM},   {"filter", NU_OPKIND_TRANSFORM},
        {"batch", NU_OPKIND_TRANSFORM}, {"file_sink", NU_OPKIND_SINK},
        {"print", NU_OPKIND_SINK},      {"exec", NU_OPKIND_TRANSFORM},
        {"upper", NU_OPKIND_TRANSFORM},
    };
    if (plugin && strcmp(plugin, "libx.so") == 0)
        return NU_OPKIND_TRANSFORM;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(op, table[i].name) == 0)
            return table[i].kind;
    if (strcmp(op, "quiet") != 0)
        snprintf(why, whylen, "unknown operator \"%s\" (not in the test table)", op);
    return NU_OPKIND_UNKNOWN;
}

static void fake_check(void *ctx, const struct nu_job *job, size_t i, const char *path,
                       struct nu_problems *p)
{
    struct fake_ctx *fc = ctx;
    if (fc && fc->ncalls < 64)
        fc->calls[fc->ncalls++] = i;
    const struct nu_job_stage *st = &job->stages[i];
    if (strcmp(st->op, "filter") == 0 && !json_is_string(json_object_get(st->config, "where"))) {
        char buf[128];
        snprintf(buf, sizeof(buf), "%s.config.where", path);
        nu_problems_add(p, buf, "missing field \"where\"");
    }
}

static const struct nu_job_validator fake_validator = {NULL, fake_kind, fake_check};

struct parsed {
    nu_err_t rc;
    struct nu_job *job;
    struct nu_problems probs;
    struct nu_errbuf eb;
};

static void parse_raw(struct parsed *r, const char *text, size_t len,
                      const struct nu_job_validator *v)
{
    nu_problems_init(&r->probs);
    nu_errbuf_clear(&r->eb);
    r->rc = nu_job_parse(text, len, v, &r->job, &r->probs, &r->eb);
    if (r->rc == NU_OK) {
        cr_assert_not_null(r->job);
        cr_assert_eq(r->probs.n, 0);
    } else {
        cr_assert_null(r->job);
        cr_assert_gt(r->probs.n, 0);
        cr_assert(r->eb.set);
    }
}

static void parse_q(struct parsed *r, const char *spec, const struct nu_job_validator *v)
{
    char *text = q(spec);
    parse_raw(r, text, strlen(text), v);
    free(text);
}

static void parsed_free(struct parsed *r)
{
    nu_job_destroy(r->job);
    nu_problems_free(&r->probs);
}

static bool has_problem(const struct nu_problems *p, const char *path, const char *msg)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->items[i].path, path) == 0 && strstr(p->items[i].message, msg))
            return true;
    return false;
}

static void dump_problems(const char *name, const struct nu_problems *p)
{
    for (size_t i = 0; i < p->n; i++)
        cr_log_error("%s: %s: %s", name, p->items[i].path, p->items[i].message);
}

/* --- one case per rule --- */

#define SRC         "{'id':'src','operator':'generate'}"
#define JOB(stages) "{'job_id':'j','stages':[" stages "]}"

struct rule_case {
    const char *name;
    const char *spec;
    const char *path;
    const char *msg;
};

static const struct rule_case rule_cases[] = {
    {"not_json", "{'job_id': 'j',", "$", "not valid JSON"},
    {"duplicate_key", "{'job_id':'j','job_id':'k','stages':[" SRC "]}", "$", "duplicate"},
    {"not_object", "[1,2]", "$", "expected a job object, got an array"},
    {"unknown_top_typo", "{'job_id':'j','stage':[]}", "$.stage",
     "unknown field \"stage\" (did you mean \"stages\"?)"},
    {"unknown_top", "{'job_id':'j','colour':1,'stages':[" SRC "]}", "$.colour",
     "unknown field \"colour\""},
    {"unknown_stage_typo", JOB(SRC ",{'id':'b','operator':'map','upstreams':['src']}"),
     "$.stages[1].upstreams", "unknown field \"upstreams\" (did you mean \"upstream\"?)"},
    {"unknown_par_field", JOB("{'id':'src','operator':'generate','parallelism':{'min':1,'mx':2}}"),
     "$.stages[0].parallelism.mx", "(did you mean \"max\"?)"},
    {"unknown_defaults_field", "{'job_id':'j','defaults':{'partition':4},'stages':[" SRC "]}",
     "$.defaults.partition", "(did you mean \"partitions\"?)"},
    {"odd_key_quoted", "{'job_id':'j','a b':1,'stages':[" SRC "]}", "$[\"a b\"]",
     "unknown field \"a b\""},
    {"missing_job_id", "{'stages':[" SRC "]}", "$", "missing required field \"job_id\""},
    {"job_id_type", "{'job_id':5,'stages':[" SRC "]}", "$.job_id",
     "expected a string, got an integer"},
    {"job_id_malformed", "{'job_id':'etl demo','stages':[" SRC "]}", "$.job_id",
     "invalid job id \"etl demo\""},
    {"job_id_empty", "{'job_id':'','stages':[" SRC "]}", "$.job_id", "invalid job id \"\""},
    {"job_id_too_long",
     "{'job_id':'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa','stages':[" SRC
     "]}",
     "$.job_id", "job id is 65 characters, over the limit of 64"},
    {"missing_stages", "{'job_id':'j'}", "$", "missing required field \"stages\""},
    {"stages_type", "{'job_id':'j','stages':{}}", "$.stages",
     "expected an array of stages, got an object"},
    {"stages_empty", "{'job_id':'j','stages':[]}", "$.stages", "at least one stage"},
    {"stage_type", JOB("'src'"), "$.stages[0]", "expected an object, got a string"},
    {"missing_stage_id", JOB("{'operator':'generate'}"), "$.stages[0]",
     "missing required field \"id\""},
    {"missing_operator", JOB("{'id':'src'}"), "$.stages[0]", "missing required field \"operator\""},
    {"stage_id_malformed", JOB("{'id':'a.b','operator':'generate'}"), "$.stages[0].id",
     "invalid stage id \"a.b\""},
    {"stage_id_reserved", JOB("{'id':'_events','operator':'generate'}"), "$.stages[0].id",
     "must not begin with '_'"},
    {"stage_id_duplicate", JOB(SRC "," SRC), "$.stages[1].id",
     "duplicate stage id \"src\" (also $.stages[0])"},
    {"operator_empty", JOB("{'id':'src','operator':''}"), "$.stages[0].operator",
     "must not be empty"},
    {"plugin_type", JOB("{'id':'src','operator':'generate','plugin':true}"), "$.stages[0].plugin",
     "expected a string, got a boolean"},
    {"unknown_operator", JOB("{'id':'src','operator':'genrate'}"), "$.stages[0].operator",
     "unknown operator \"genrate\" (not in the test table)"},
    {"unknown_operator_no_why", JOB("{'id':'src','operator':'quiet'}"), "$.stages[0].operator",
     "unknown operator \"quiet\""},
    {"unknown_upstream", JOB(SRC ",{'id':'b','operator':'map','upstream':['nope']}"),
     "$.stages[1].upstream[0]", "unknown upstream stage \"nope\""},
    {"upstream_typo", JOB(SRC ",{'id':'b','operator':'map','upstream':['scr']}"),
     "$.stages[1].upstream[0]", "unknown upstream stage \"scr\" (did you mean \"src\"?)"},
    {"upstream_self", JOB(SRC ",{'id':'b','operator':'map','upstream':['src','b']}"),
     "$.stages[1].upstream[1]", "stage \"b\" lists itself as upstream"},
    {"upstream_twice", JOB(SRC ",{'id':'b','operator':'map','upstream':['src','src']}"),
     "$.stages[1].upstream[1]", "upstream stage \"src\" is listed twice"},
    {"upstream_type", JOB(SRC ",{'id':'b','operator':'map','upstream':'src'}"),
     "$.stages[1].upstream", "expected an array of stage ids, got a string"},
    {"upstream_item_type", JOB(SRC ",{'id':'b','operator':'map','upstream':[1]}"),
     "$.stages[1].upstream[0]", "expected a string, got an integer"},
    {"cycle",
     JOB(SRC ",{'id':'b','operator':'map','upstream':['src','d']},"
             "{'id':'c','operator':'map','upstream':['b']},"
             "{'id':'d','operator':'map','upstream':['c']}"),
     "$.stages[1].upstream[1]", "cycle: b -> c -> d -> b"},
    {"unreachable",
     JOB(SRC ",{'id':'b','operator':'map','upstream':['c']},"
             "{'id':'c','operator':'map','upstream':['b']},"
             "{'id':'e','operator':'file_sink','upstream':['c']}"),
     "$.stages[3]", "stage \"e\" is not reachable from any source stage"},
    {"source_with_upstream", JOB(SRC ",{'id':'g','operator':'generate','upstream':['src']}"),
     "$.stages[1].upstream", "runs source operator \"generate\", which takes no upstream"},
    {"transform_without_upstream", JOB(SRC ",{'id':'m','operator':'map'}"), "$.stages[1]",
     "stage \"m\" has no upstream; transform operator \"map\" needs one"},
    {"sink_as_upstream",
     JOB(SRC ",{'id':'out','operator':'file_sink','upstream':['src']},"
             "{'id':'m','operator':'map','upstream':['out']}"),
     "$.stages[2].upstream[0]", "upstream stage \"out\" is a sink"},
    {"parallelism_zero", JOB("{'id':'src','operator':'generate','parallelism':0}"),
     "$.stages[0].parallelism", "must be at least 1, got 0"},
    {"parallelism_over", JOB("{'id':'src','operator':'generate','parallelism':2000}"),
     "$.stages[0].parallelism", "must be at most 1024, got 2000"},
    {"parallelism_type", JOB("{'id':'src','operator':'generate','parallelism':'2'}"),
     "$.stages[0].parallelism",
     "expected an integer or an object {\"min\", \"max\"}, got a string"},
    {"parallelism_min_type",
     JOB("{'id':'src','operator':'generate','parallelism':{'min':1.5,'max':2}}"),
     "$.stages[0].parallelism.min", "expected an integer, got a number"},
    {"parallelism_min_zero",
     JOB("{'id':'src','operator':'generate','parallelism':{'min':0,'max':2}}"),
     "$.stages[0].parallelism.min", "must be at least 1"},
    {"parallelism_min_above_max",
     JOB("{'id':'src','operator':'generate','parallelism':{'min':4,'max':2}}"),
     "$.stages[0].parallelism", "min 4 is above max 2"},
    {"parallelism_missing_max", JOB("{'id':'src','operator':'generate','parallelism':{'min':4}}"),
     "$.stages[0].parallelism", "missing required field \"max\""},
    {"partitions_zero", JOB("{'id':'src','operator':'generate','partitions':0}"),
     "$.stages[0].partitions", "must be at least 1"},
    {"partitions_over", JOB("{'id':'src','operator':'generate','partitions':20000}"),
     "$.stages[0].partitions", "must be at most 10000"},
    {"partitions_below_reader",
     JOB("{'id':'src','operator':'generate','partitions':2},"
         "{'id':'m','operator':'map','upstream':['src'],'parallelism':{'min':1,'max':4}}"),
     "$.stages[0].partitions",
     "2 partitions are fewer than the parallelism max 4 of stage \"m\", which reads this stage's "
     "output"},
    {"partitions_below_source",
     JOB("{'id':'src','operator':'generate','partitions':2,'parallelism':3}"),
     "$.stages[0].partitions", "parallelism max 3 of source stage \"src\""},
    {"config_type", JOB("{'id':'src','operator':'generate','config':[]}"), "$.stages[0].config",
     "expected an object, got an array"},
    {"operator_config", JOB(SRC ",{'id':'f','operator':'filter','upstream':['src']}"),
     "$.stages[1].config.where", "missing field \"where\""},
    {"max_attempts_zero", JOB("{'id':'src','operator':'generate','max_attempts':0}"),
     "$.stages[0].max_attempts", "must be at least 1"},
    {"backoff_type", JOB("{'id':'src','operator':'generate','retry_backoff_ms':'100'}"),
     "$.stages[0].retry_backoff_ms", "expected an integer, got a string"},
    {"max_crashes_negative", JOB("{'id':'src','operator':'generate','max_crashes':-1}"),
     "$.stages[0].max_crashes", "must be at least 0"},
    {"defaults_type", "{'job_id':'j','defaults':[],'stages':[" SRC "]}", "$.defaults",
     "expected an object, got an array"},
    {"defaults_partitions", "{'job_id':'j','defaults':{'partitions':0},'stages':[" SRC "]}",
     "$.defaults.partitions", "must be at least 1"},
    {"guarantee_typo", "{'job_id':'j','guarantee':'exactly-once','stages':[" SRC "]}",
     "$.guarantee", "unknown guarantee \"exactly-once\" (did you mean \"exactly_once\"?)"},
    {"format_unknown", "{'job_id':'j','format':'xml','stages':[" SRC "]}", "$.format",
     "unknown format \"xml\" (expected \"avro\" or \"json\")"},
    {"description_type", "{'job_id':'j','description':1,'stages':[" SRC "]}", "$.description",
     "expected a string, got an integer"},
};

Test(job, each_rule_reports_its_path_and_message)
{
    for (size_t i = 0; i < sizeof(rule_cases) / sizeof(rule_cases[0]); i++) {
        const struct rule_case *c = &rule_cases[i];
        struct parsed r;
        parse_q(&r, c->spec, &fake_validator);
        bool found = has_problem(&r.probs, c->path, c->msg);
        if (!found)
            dump_problems(c->name, &r.probs);
        cr_expect(r.rc != NU_OK, "%s: accepted", c->name);
        cr_expect(found, "%s: no problem at %s containing \"%s\"", c->name, c->path, c->msg);
        parsed_free(&r);
    }
}

Test(job, several_problems_reported_at_once)
{
    struct parsed r;
    parse_q(&r,
            "{'job_id':'bad id','guarantee':'maybe','stages':["
            "{'id':'src','operator':'generate','parallelism':0},"
            "{'id':'m','operator':'map','upstream':['nope'],'colour':1}]}",
            &fake_validator);
    cr_assert_eq(r.rc, NU_ERR_SPEC);
    if (r.probs.n != 5)
        dump_problems("several", &r.probs);
    cr_expect_eq(r.probs.n, 5);
    cr_expect(has_problem(&r.probs, "$.job_id", "invalid job id"));
    cr_expect(has_problem(&r.probs, "$.guarantee", "unknown guarantee \"maybe\""));
    cr_expect(has_problem(&r.probs, "$.stages[0].parallelism", "at least 1"));
    cr_expect(has_problem(&r.probs, "$.stages[1].colour", "unknown field"));
    cr_expect(has_problem(&r.probs, "$.stages[1].upstream[0]", "unknown upstream stage \"nope\""));
    /* The error buffer summarises: the first problem and how many more. */
    cr_expect(strstr(nu_err_msg(&r.eb), "invalid job spec: $.job_id: invalid job id") != NULL);
    cr_expect(strstr(nu_err_msg(&r.eb), "(and 4 more problems)") != NULL);
    parsed_free(&r);
}

Test(job, config_checks_run_only_on_a_sound_graph)
{
    struct fake_ctx fc = {0};
    struct nu_job_validator v = fake_validator;
    v.ctx = &fc;
    struct parsed r;
    /* An unknown upstream elsewhere: the filter's missing "where" is not checked yet. */
    parse_q(&r,
            JOB(SRC ",{'id':'f','operator':'filter','upstream':['src']},"
                    "{'id':'m','operator':'map','upstream':['x']}"),
            &v);
    cr_assert_eq(r.rc, NU_ERR_SPEC);
    cr_expect_eq(fc.ncalls, 0);
    cr_expect_not(has_problem(&r.probs, "$.stages[1].config.where", "missing"));
    parsed_free(&r);
}

Test(job, malformed_json_reports_line_and_column)
{
    struct parsed r;
    parse_q(&r, "{\n  'job_id': 'j',\n  'stages': [}\n", NULL);
    cr_assert_eq(r.rc, NU_ERR_SPEC);
    cr_assert_eq(r.probs.n, 1);
    cr_expect(strstr(r.probs.items[0].message, "line 3, column 14") != NULL, "got: %s",
              r.probs.items[0].message);
    parsed_free(&r);
}

/* --- size limits --- */

Test(job, huge_spec_rejected_before_parsing)
{
    size_t len = NU_JOB_MAX_SPEC_BYTES + 1;
    char *text = nu_xmalloc(len);
    memset(text, ' ', len);
    struct parsed r;
    parse_raw(&r, text, len, NULL);
    cr_expect_eq(r.rc, NU_ERR_TOO_LARGE);
    cr_expect(has_problem(&r.probs, "$", "over the limit of 1048576 bytes"));
    parsed_free(&r);
    free(text);
}

static char *nested_config_spec(int depth)
{
    size_t cap = (size_t)depth * 8 + 256;
    char *s = nu_xmalloc(cap);
    size_t n = (size_t)snprintf(s, cap,
                                "{\"job_id\":\"j\",\"stages\":[{\"id\":\"s\","
                                "\"operator\":\"generate\",\"config\":");
    for (int i = 0; i < depth - 1; i++)
        n += (size_t)snprintf(s + n, cap - n, "{\"a\":");
    n += (size_t)snprintf(s + n, cap - n, "{}");
    for (int i = 0; i < depth - 1; i++)
        s[n++] = '}';
    snprintf(s + n, cap - n, "}]}");
    return s;
}

Test(job, config_nesting_limit)
{
    struct parsed r;
    char *ok = nested_config_spec(NU_JOB_MAX_CONFIG_DEPTH);
    char *deep = nested_config_spec(NU_JOB_MAX_CONFIG_DEPTH + 1);
    parse_raw(&r, ok, strlen(ok), NULL);
    cr_expect_eq(r.rc, NU_OK);
    parsed_free(&r);
    parse_raw(&r, deep, strlen(deep), NULL);
    cr_expect_eq(r.rc, NU_ERR_SPEC);
    cr_expect(has_problem(&r.probs, "$.stages[0].config", "nests deeper than the limit of 32"));
    parsed_free(&r);
    free(ok);
    free(deep);
}

/* `n` stages, each after the first reading all earlier ones up to `fanin`. */
static char *chain_spec(size_t n, size_t fanin)
{
    size_t cap = 64 + n * (64 + fanin * 8);
    char *s = nu_xmalloc(cap);
    size_t len = (size_t)snprintf(s, cap, "{\"job_id\":\"j\",\"stages\":[");
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(s + len, cap - len, "%s{\"id\":\"s%zu\",\"operator\":\"%s\"",
                                i ? "," : "", i, i ? "map" : "generate");
        if (i) {
            len += (size_t)snprintf(s + len, cap - len, ",\"upstream\":[");
            size_t k0 = i > fanin ? i - fanin : 0;
            for (size_t k = k0; k < i; k++)
                len += (size_t)snprintf(s + len, cap - len, "%s\"s%zu\"", k > k0 ? "," : "", k);
            len += (size_t)snprintf(s + len, cap - len, "]");
        }
        len += (size_t)snprintf(s + len, cap - len, "}");
    }
    snprintf(s + len, cap - len, "]}");
    return s;
}

Test(job, stage_and_upstream_limits)
{
    struct parsed r;
    char *most = chain_spec(NU_JOB_MAX_STAGES, 1);
    char *over = chain_spec(NU_JOB_MAX_STAGES + 1, 1);
    char *fan = chain_spec(NU_JOB_MAX_UPSTREAMS + 2, NU_JOB_MAX_UPSTREAMS + 1);
    parse_raw(&r, most, strlen(most), &fake_validator);
    cr_expect_eq(r.rc, NU_OK);
    parsed_free(&r);
    parse_raw(&r, over, strlen(over), &fake_validator);
    cr_expect(has_problem(&r.probs, "$.stages", "has 257 stages, over the limit of 256"));
    parsed_free(&r);
    parse_raw(&r, fan, strlen(fan), &fake_validator);
    cr_expect(has_problem(&r.probs, "$.stages[65].upstream",
                          "has 65 upstream stages, over the limit of 64"));
    parsed_free(&r);
    free(most);
    free(over);
    free(fan);
}

/* --- the model --- */

#define DIAMOND                                                                                  \
    "{'job_id':'dia','guarantee':'at_least_once','format':'json',"                               \
    "'defaults':{'max_attempts':5},'stages':["                                                   \
    "{'id':'out','operator':'file_sink','config':{'path':'o/'},'upstream':['join']},"            \
    "{'id':'join','operator':'map','upstream':['low','high'],'parallelism':{'min':2,'max':16}}," \
    "{'id':'low','operator':'filter','config':{'where':'id < 5'},'upstream':['src']},"           \
    "{'id':'high','operator':'filter','config':{'where':'id > 5'},'upstream':['src'],"           \
    "'partitions':20,'max_attempts':1},"                                                         \
    "{'id':'src','operator':'generate','config':{'rows':10},'parallelism':3}]}"

Test(job, model_graph_and_topological_order)
{
    struct fake_ctx fc = {0};
    struct nu_job_validator v = fake_validator;
    v.ctx = &fc;
    struct parsed r;
    parse_q(&r, DIAMOND, &v);
    if (r.rc != NU_OK)
        dump_problems("diamond", &r.probs);
    cr_assert_eq(r.rc, NU_OK);
    const struct nu_job *job = r.job;
    cr_expect_str_eq(job->id, "dia");
    cr_expect_eq(job->guarantee, NU_GUARANTEE_AT_LEAST_ONCE);
    cr_expect_eq(job->format, NU_FORMAT_JSON);
    cr_assert_eq(job->nstages, 5);
    /* Topological order, ties in spec order: src, low, high, join, out. */
    static const char *const want[] = {"src", "low", "high", "join", "out"};
    for (size_t t = 0; t < 5; t++) {
        cr_expect_str_eq(job->stages[job->topo[t]].id, want[t]);
        cr_expect_eq(fc.calls[t], job->topo[t], "check_stage not in topological order");
    }
    cr_expect_eq(fc.ncalls, 5);
    size_t src, join, low, high;
    cr_assert(nu_job_stage_find(job, "src", &src));
    cr_assert(nu_job_stage_find(job, "join", &join));
    cr_assert(nu_job_stage_find(job, "low", &low));
    cr_assert(nu_job_stage_find(job, "high", &high));
    cr_expect_not(nu_job_stage_find(job, "nope", &src));
    cr_expect_eq(job->stages[src].ndownstream, 2);
    cr_expect_eq(job->stages[src].downstream_idx[0], low);
    cr_expect_eq(job->stages[src].downstream_idx[1], high);
    cr_expect_eq(job->stages[join].nupstream, 2);
    cr_expect_eq(job->stages[join].upstream_idx[0], low);
    cr_expect_eq(job->stages[join].upstream_idx[1], high);
    cr_expect_eq(job->stages[src].kind, NU_OPKIND_SOURCE);
    cr_expect_eq(job->stages[join].kind, NU_OPKIND_TRANSFORM);
    cr_expect_eq(job->stages[0].kind, NU_OPKIND_SINK);
    /* Defaults and overrides. */
    cr_expect_eq(job->stages[join].parallelism_min, 2);
    cr_expect_eq(job->stages[join].parallelism_max, 16);
    cr_expect_eq(job->stages[src].parallelism_min, 3);
    cr_expect_eq(job->stages[low].max_attempts, 5);
    cr_expect_eq(job->stages[high].max_attempts, 1);
    cr_expect_eq(job->stages[low].retry_backoff_ms, NU_JOB_DEFAULT_RETRY_BACKOFF_MS);
    /* Defaulted partitions rise to the readers' parallelism; explicit ones are kept. */
    cr_expect_eq(job->stages[low].partitions, 16);
    cr_expect_eq(job->stages[high].partitions, 20);
    cr_expect_eq(job->stages[src].partitions, NU_JOB_DEFAULT_PARTITIONS);
    cr_expect_eq(job->stages[join].partitions, NU_JOB_DEFAULT_PARTITIONS);
    cr_expect(json_is_object(job->stages[join].config));
    cr_expect_eq(json_object_size(job->stages[join].config), 0);
    parsed_free(&r);
}

Test(job, null_validator_checks_structure_only)
{
    struct parsed r;
    parse_q(&r, JOB("{'id':'a','operator':'anything'},{'id':'b','operator':'x','upstream':['a']}"),
            NULL);
    cr_assert_eq(r.rc, NU_OK);
    cr_expect_eq(r.job->stages[0].kind, NU_OPKIND_UNKNOWN);
    cr_expect_null(r.job->stages[0].plugin);
    parsed_free(&r);
    parse_q(&r, JOB("{'id':'a','operator':'x'},{'id':'b','operator':'x','upstream':['c']}"), NULL);
    cr_expect(has_problem(&r.probs, "$.stages[1].upstream[0]", "unknown upstream stage \"c\""));
    parsed_free(&r);
}

Test(job, plugin_is_passed_to_the_validator)
{
    struct parsed r;
    parse_q(&r, JOB(SRC ",{'id':'p','operator':'custom','plugin':'libx.so','upstream':['src']}"),
            &fake_validator);
    cr_assert_eq(r.rc, NU_OK);
    cr_expect_str_eq(r.job->stages[1].plugin, "libx.so");
    cr_expect_eq(r.job->stages[1].kind, NU_OPKIND_TRANSFORM);
    parsed_free(&r);
}

Test(job, derived_names)
{
    struct parsed r;
    parse_q(&r, DIAMOND, NULL);
    cr_assert_eq(r.rc, NU_OK);
    const struct nu_job *job = r.job;
    size_t src;
    cr_assert(nu_job_stage_find(job, "src", &src));
    char b[NU_JOB_NAME_MAX];
    cr_expect_str_eq(nu_job_topic_output(job, src, b, sizeof(b)), "nurion.dia.src");
    cr_expect_str_eq(nu_job_topic_plan(job, src, b, sizeof(b)), "nurion.dia.src.plan");
    cr_expect_str_eq(nu_job_topic_dlq(job, src, b, sizeof(b)), "nurion.dia.src.dlq");
    cr_expect_str_eq(nu_job_topic_state(job, src, b, sizeof(b)), "nurion.dia.src.state");
    cr_expect_str_eq(nu_job_topic_events(job, b, sizeof(b)), "nurion.dia._events");
    cr_expect_str_eq(nu_job_topic_events_for("other", b, sizeof(b)), "nurion.other._events");
    cr_expect_str_eq(nu_job_group(job, src, b, sizeof(b)), "nurion.dia.src");
    cr_expect_str_eq(nu_job_txn_id(job, src, 7, b, sizeof(b)), "nurion.dia.src.7");
    /* A short buffer gets a truncated, terminated name. */
    char small[8];
    cr_expect_str_eq(nu_job_topic_output(job, src, small, sizeof(small)), "nurion.");
    parsed_free(&r);
}

Test(job, longest_names_fit_the_buffer)
{
    char id[NU_JOB_MAX_ID_LEN + 1];
    memset(id, 'a', NU_JOB_MAX_ID_LEN);
    id[NU_JOB_MAX_ID_LEN] = '\0';
    char spec[512];
    snprintf(spec, sizeof(spec), "{'job_id':'%s','stages':[{'id':'%s','operator':'g'}]}", id, id);
    struct parsed r;
    parse_q(&r, spec, NULL);
    cr_assert_eq(r.rc, NU_OK);
    char b[NU_JOB_NAME_MAX];
    nu_job_txn_id(r.job, 0, 4294967295u, b, sizeof(b));
    cr_expect_eq(strlen(b), 7 + 64 + 1 + 64 + 1 + 10);
    nu_job_topic_state(r.job, 0, b, sizeof(b));
    cr_expect_eq(strlen(b), 7 + 64 + 1 + 64 + 6);
    parsed_free(&r);
}

Test(job, canonical_json_round_trip)
{
    struct parsed r1, r2;
    parse_q(&r1, DIAMOND, &fake_validator);
    cr_assert_eq(r1.rc, NU_OK);
    json_t *c1 = nu_job_to_json(r1.job);
    char *text = json_dumps(c1, JSON_COMPACT);
    parse_raw(&r2, text, strlen(text), &fake_validator);
    cr_assert_eq(r2.rc, NU_OK);
    json_t *c2 = nu_job_to_json(r2.job);
    cr_expect(json_equal(c1, c2));
    /* Defaults are filled in. */
    cr_expect_str_eq(json_string_value(json_object_get(c1, "guarantee")), "at_least_once");
    json_t *st0 = json_array_get(json_object_get(c1, "stages"), 0);
    cr_expect_eq(json_integer_value(json_object_get(st0, "max_crashes")),
                 NU_JOB_DEFAULT_MAX_CRASHES);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(st0, "parallelism"), "max")),
                 1);
    /* The canonical document is a copy: changing it leaves the job alone. */
    json_object_set_new(json_object_get(st0, "config"), "path", json_string("changed/"));
    cr_expect_str_eq(json_string_value(json_object_get(r1.job->stages[0].config, "path")), "o/");
    /* A minimal spec gains every default. */
    struct parsed r3;
    parse_q(&r3, JOB(SRC), NULL);
    json_t *c3 = nu_job_to_json(r3.job);
    char *t3 = json_dumps(c3, JSON_COMPACT);
    cr_expect_str_eq(t3, "{\"job_id\":\"j\",\"guarantee\":\"exactly_once\",\"format\":\"avro\","
                         "\"defaults\":{\"partitions\":8,\"parallelism\":1,\"max_attempts\":3,"
                         "\"retry_backoff_ms\":100,\"max_crashes\":3},\"stages\":[{\"id\":\"src\","
                         "\"operator\":\"generate\",\"config\":{},\"parallelism\":{\"min\":1,"
                         "\"max\":1},\"partitions\":8,\"upstream\":[],\"max_attempts\":3,"
                         "\"retry_backoff_ms\":100,\"max_crashes\":3}]}");
    free(t3);
    json_decref(c3);
    parsed_free(&r3);
    free(text);
    json_decref(c1);
    json_decref(c2);
    parsed_free(&r1);
    parsed_free(&r2);
}

Test(job, load_file_errors)
{
    struct nu_job *job = (struct nu_job *)1;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_expect_eq(nu_job_load_file("/nonexistent/job.json", NULL, &job, NULL, &eb), NU_ERR_IO);
    cr_expect_null(job);
    cr_expect(strstr(nu_err_msg(&eb), "could not open file \"/nonexistent/job.json\"") != NULL);
}

/* --- the examples and the JSON Schema --- */

/*
 * A validator for the subset of JSON Schema that schemas/job.schema.json uses. An unsupported
 * keyword fails the test, so the schema cannot drift outside what is checked here.
 */
static bool sv_valid(const json_t *root, const json_t *schema, const json_t *inst);

static bool sv_type_is(const char *t, const json_t *inst)
{
    if (strcmp(t, "object") == 0)
        return json_is_object(inst);
    if (strcmp(t, "array") == 0)
        return json_is_array(inst);
    if (strcmp(t, "string") == 0)
        return json_is_string(inst);
    if (strcmp(t, "integer") == 0)
        return json_is_integer(inst);
    if (strcmp(t, "number") == 0)
        return json_is_number(inst);
    if (strcmp(t, "boolean") == 0)
        return json_is_boolean(inst);
    if (strcmp(t, "null") == 0)
        return json_is_null(inst);
    cr_assert_fail("schema: unknown type \"%s\"", t);
    return false;
}

static size_t sv_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static bool sv_keyword(const json_t *root, const json_t *schema, const char *kw, const json_t *a,
                       const json_t *inst)
{
    static const char *const notes[] = {"$schema", "$id", "title", "description", "$defs"};
    for (size_t i = 0; i < sizeof(notes) / sizeof(notes[0]); i++)
        if (strcmp(kw, notes[i]) == 0)
            return true;
    if (strcmp(kw, "$ref") == 0) {
        const char *ref = json_string_value(a);
        cr_assert(ref && strncmp(ref, "#/$defs/", 8) == 0, "schema: unsupported $ref");
        const json_t *target = json_object_get(json_object_get(root, "$defs"), ref + 8);
        cr_assert_not_null(target, "schema: dangling $ref %s", ref);
        return sv_valid(root, target, inst);
    }
    if (strcmp(kw, "type") == 0) {
        if (json_is_string(a))
            return sv_type_is(json_string_value(a), inst);
        size_t i;
        json_t *t;
        json_array_foreach(a, i, t) if (sv_type_is(json_string_value(t), inst)) return true;
        return false;
    }
    if (strcmp(kw, "enum") == 0) {
        size_t i;
        json_t *e;
        json_array_foreach(a, i, e) if (json_equal(e, (json_t *)inst)) return true;
        return false;
    }
    if (strcmp(kw, "oneOf") == 0) {
        size_t i, n = 0;
        json_t *sub;
        json_array_foreach(a, i, sub) n += sv_valid(root, sub, inst);
        return n == 1;
    }
    if (strcmp(kw, "minimum") == 0 || strcmp(kw, "maximum") == 0) {
        if (!json_is_number(inst))
            return true;
        double x = json_number_value(inst), lim = json_number_value(a);
        return kw[1] == 'i' ? x >= lim : x <= lim;
    }
    if (strcmp(kw, "minLength") == 0 || strcmp(kw, "maxLength") == 0) {
        if (!json_is_string(inst))
            return true;
        size_t n = sv_utf8_len(json_string_value(inst));
        return kw[1] == 'i' ? n >= (size_t)json_integer_value(a)
                            : n <= (size_t)json_integer_value(a);
    }
    if (strcmp(kw, "pattern") == 0) {
        if (!json_is_string(inst))
            return true;
        regex_t re;
        cr_assert_eq(regcomp(&re, json_string_value(a), REG_EXTENDED | REG_NOSUB), 0,
                     "schema: bad pattern");
        bool ok = regexec(&re, json_string_value(inst), 0, NULL, 0) == 0;
        regfree(&re);
        return ok;
    }
    if (strcmp(kw, "required") == 0) {
        if (!json_is_object(inst))
            return true;
        size_t i;
        json_t *k;
        json_array_foreach(a, i, k) if (!json_object_get(inst, json_string_value(k))) return false;
        return true;
    }
    if (strcmp(kw, "properties") == 0 || strcmp(kw, "additionalProperties") == 0) {
        if (!json_is_object(inst))
            return true;
        const json_t *props = json_object_get(schema, "properties");
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)inst, k, v)
        {
            const json_t *sub = props ? json_object_get(props, k) : NULL;
            if (kw[0] == 'p' && sub && !sv_valid(root, sub, v))
                return false;
            if (kw[0] == 'a' && !sub &&
                (json_is_false(a) || (json_is_object(a) && !sv_valid(root, a, v))))
                return false;
        }
        return true;
    }
    if (strcmp(kw, "items") == 0) {
        size_t i;
        json_t *v;
        if (json_is_array(inst))
            json_array_foreach(inst, i, v) if (!sv_valid(root, a, v)) return false;
        return true;
    }
    if (strcmp(kw, "minItems") == 0 || strcmp(kw, "maxItems") == 0) {
        if (!json_is_array(inst))
            return true;
        size_t n = json_array_size(inst);
        return kw[1] == 'i' ? n >= (size_t)json_integer_value(a)
                            : n <= (size_t)json_integer_value(a);
    }
    if (strcmp(kw, "uniqueItems") == 0) {
        if (!json_is_array(inst) || !json_is_true(a))
            return true;
        for (size_t i = 0; i < json_array_size(inst); i++)
            for (size_t j = i + 1; j < json_array_size(inst); j++)
                if (json_equal(json_array_get(inst, i), json_array_get(inst, j)))
                    return false;
        return true;
    }
    cr_assert_fail("schema: unsupported keyword \"%s\"", kw);
    return false;
}

static bool sv_valid(const json_t *root, const json_t *schema, const json_t *inst)
{
    const char *kw;
    json_t *a;
    json_object_foreach((json_t *)schema, kw,
                        a) if (!sv_keyword(root, schema, kw, a, inst)) return false;
    return true;
}

static json_t *load_schema(void)
{
    json_error_t jerr;
    json_t *s = json_load_file(NU_SOURCE_DIR "/schemas/job.schema.json", 0, &jerr);
    cr_assert_not_null(s, "schema: %s line %d", jerr.text, jerr.line);
    return s;
}

Test(job, examples_pass_the_validator_and_the_schema)
{
    json_t *schema = load_schema();
    DIR *d = opendir(NU_SOURCE_DIR "/examples");
    cr_assert_not_null(d);
    struct dirent *e;
    size_t n = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/examples/%s", NU_SOURCE_DIR, e->d_name);
        struct nu_job *job = NULL;
        struct nu_problems probs;
        struct nu_errbuf eb;
        nu_problems_init(&probs);
        nu_errbuf_clear(&eb);
        /* the real operator registry, with the connectors and media operators of the stage
         * layer: every example must name real operators with valid configs */
        nu_connectors_register();
        json_t *doc = json_load_file(path, 0, NULL);
        cr_assert_not_null(doc);
        /* examples name plugins by their path in a build folder called "build": point them at
         * this build's folder */
        json_t *run = json_deep_copy(doc), *stg;
        size_t si;
        json_array_foreach(json_object_get(run, "stages"), si, stg)
        {
            const char *plugin = json_string_value(json_object_get(stg, "plugin"));
            if (plugin && strncmp(plugin, "build/", 6) == 0) {
                char built[1024];
                snprintf(built, sizeof(built), "%s/%s", NU_BINARY_DIR, plugin + 6);
                json_object_set_new(stg, "plugin", json_string(built));
            }
        }
        char *text = json_dumps(run, JSON_COMPACT);
        json_decref(run);
        nu_err_t rc = nu_job_parse(text, strlen(text), nu_registry_validator(), &job, &probs, &eb);
        free(text);
        cr_expect_eq(rc, NU_OK, "%s: %s", e->d_name, nu_err_msg(&eb));
        cr_expect(sv_valid(schema, schema, doc), "%s does not conform to the schema", e->d_name);
        /* The canonical form conforms too. */
        if (job) {
            json_t *canon = nu_job_to_json(job);
            cr_expect(sv_valid(schema, schema, canon), "canonical %s off schema", e->d_name);
            json_decref(canon);
        }
        json_decref(doc);
        nu_job_destroy(job);
        nu_problems_free(&probs);
        n++;
    }
    closedir(d);
    cr_expect_geq(n, 4, "expected the example jobs in examples/");
    json_decref(schema);
}

Test(job, invalid_specs_rejected_by_validator_and_schema)
{
    static const char *const bad[] = {
        "{'stages':[" SRC "]}",
        "{'job_id':'a b','stages':[" SRC "]}",
        "{'job_id':'j','stages':[]}",
        "{'job_id':'j','stages':[" SRC "],'extra':1}",
        "{'job_id':'j','guarantee':'exactly-once','stages':[" SRC "]}",
        "{'job_id':'j','format':'xml','stages':[" SRC "]}",
        "{'job_id':'j','defaults':{'partitions':0},'stages':[" SRC "]}",
        JOB("{'id':'_x','operator':'generate'}"),
        JOB("{'id':'src'}"),
        JOB("{'id':'src','operator':''}"),
        JOB("{'id':'src','operator':'generate','parallelism':0}"),
        JOB("{'id':'src','operator':'generate','parallelism':{'min':1}}"),
        JOB("{'id':'src','operator':'generate','parallelism':{'min':1,'max':2,'x':1}}"),
        JOB("{'id':'src','operator':'generate','parallelism':'2'}"),
        JOB("{'id':'src','operator':'generate','partitions':10001}"),
        JOB("{'id':'src','operator':'generate','config':[]}"),
        JOB("{'id':'src','operator':'generate','upstreams':[]}"),
        JOB(SRC ",{'id':'m','operator':'map','upstream':['src','src']}"),
        JOB(SRC ",{'id':'m','operator':'map','upstream':'src'}"),
        JOB("{'id':'src','operator':'generate','max_attempts':0}"),
        JOB("{'id':'src','operator':'generate','retry_backoff_ms':-1}"),
    };
    json_t *schema = load_schema();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct parsed r;
        parse_q(&r, bad[i], &fake_validator);
        cr_expect(r.rc != NU_OK, "validator accepted %s", bad[i]);
        parsed_free(&r);
        char *text = q(bad[i]);
        json_t *doc = json_loads(text, 0, NULL);
        cr_assert_not_null(doc);
        cr_expect_not(sv_valid(schema, schema, doc), "schema accepted %s", bad[i]);
        json_decref(doc);
        free(text);
    }
    json_decref(schema);
}
