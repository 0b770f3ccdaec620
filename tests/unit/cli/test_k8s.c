/*
 * test_k8s.c — `nurion k8s render` (cli/k8s.c) and its YAML writer (cli/yaml.c): golden YAML for
 * small values, the facts the manifests must hold, KEDA ScaledObject fields checked by hand, and
 * every rendered manifest validated offline against the Kubernetes OpenAPI schemas with
 * kubernetes-validate (installed by scripts/deps into .cache/venv; skipped when absent).
 */
#include "cli/k8s.h"
#include "cli/yaml.h"
#include "operators/registry.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *emit(const char *json)
{
    json_error_t je;
    json_t *v = json_loads(json, 0, &je);
    struct nu_buf b = NU_BUF_INIT;
    cr_assert_not_null(v, "%s", je.text);
    nu_yaml_emit(v, &b);
    nu_buf_putc(&b, '\0');
    json_decref(v);
    return (char *)b.data;
}

Test(yaml, golden)
{
    static const struct {
        const char *json, *yaml;
    } cases[] = {
        {"{\"a\":1,\"b\":\"x\"}", "a: 1\nb: x\n"},
        {"{\"n\":{\"m\":true,\"z\":null}}", "\"n\":\n  m: true\n  z: null\n"},
        {"{\"l\":[1,\"two\"]}", "l:\n- 1\n- two\n"},
        {"{\"l\":[{\"a\":1,\"b\":{\"c\":2}},{\"d\":[]}]}", "l:\n- a: 1\n  b:\n    c: 2\n- d: []\n"},
        {"{\"e\":{},\"f\":[]}", "e: {}\nf: []\n"},
        {"{\"s\":\"10\",\"t\":\"true\",\"u\":\"\",\"v\":\"a: b\",\"w\":\"0.0.0.0:80\"}",
         "s: \"10\"\nt: \"true\"\nu: \"\"\nv: \"a: b\"\nw: \"0.0.0.0:80\"\n"},
        {"{\"k\":\"http.listen=0.0.0.0:9464\",\"p\":\"/etc/nurion/job.json\"}",
         "k: http.listen=0.0.0.0:9464\np: /etc/nurion/job.json\n"},
        {"{\"app.kubernetes.io/name\":\"nurion\",\"x y\":\"-a\"}",
         "app.kubernetes.io/name: nurion\n\"x y\": \"-a\"\n"},
        {"{\"d\":{\"job.json\":\"{\\n  \\\"a\\\": 1\\n}\"}}",
         "d:\n  job.json: |-\n    {\n      \"a\": 1\n    }\n"},
        {"{\"t\":\"line\\n\"}", "t: |\n  line\n"},
        {"{\"q\":\"tab\\there \\\"q\\\"\"}", "q: \"tab\\there \\\"q\\\"\"\n"},
        {"[[1,2],{\"a\":[3]}]", "- - 1\n  - 2\n- a:\n  - 3\n"},
        {"{\"r\":1.5,\"i\":-7}", "r: 1.5\ni: -7\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = emit(cases[i].json);
        cr_expect_str_eq(got, cases[i].yaml, "case %zu %s", i, cases[i].json);
        free(got);
    }
}

Test(yaml, plain_scalars)
{
    static const struct {
        const char *s;
        bool plain;
    } cases[] = {
        {"nurion", true}, {"apps/v1", true}, {"a:b", true},  {"yes", false},  {"No", false},
        {"null", false},  {"~", false},      {"1e3", false}, {"", false},     {"a:", false},
        {"a #b", false},  {"*x", false},     {"-x", false},  {"a,b", false},  {"x y", false},
        {".inf", false},  {"on", false},     {"a'b", false}, {"a\"b", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_eq(nu_yaml_plain_ok(cases[i].s), cases[i].plain, "\"%s\"", cases[i].s);
}

static json_t *render_example(const char *name, const struct nu_k8s_opts *o)
{
    char path[1024];
    struct nu_job *job = NULL;
    struct nu_problems probs;
    struct nu_errbuf eb;
    json_t *docs = NULL;
    nu_problems_init(&probs);
    nu_errbuf_clear(&eb);
    snprintf(path, sizeof(path), "%s/examples/%s", NU_SOURCE_DIR, name);
    cr_assert_eq(nu_job_load_file(path, nu_registry_validator(), &job, &probs, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    cr_assert_eq(nu_k8s_render(job, "{}", o, &docs, &eb), NU_OK, "%s", nu_err_msg(&eb));
    nu_job_destroy(job);
    nu_problems_free(&probs);
    return docs;
}

static json_t *find_doc(json_t *docs, const char *kind, const char *name)
{
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d)
    {
        const char *n = json_string_value(json_object_get(json_object_get(d, "metadata"), "name"));
        if (strcmp(json_string_value(json_object_get(d, "kind")), kind) == 0 && n &&
            strcmp(n, name) == 0)
            return d;
    }
    return NULL;
}

/* The fields KEDA's ScaledObject CRD requires, and the kafka trigger's metadata we rely on. */
static void check_scaledobject(json_t *so, const char *target, int min, int max, const char *group)
{
    json_t *spec = json_object_get(so, "spec");
    cr_assert_str_eq(json_string_value(json_object_get(so, "apiVersion")), "keda.sh/v1alpha1");
    cr_assert_not_null(json_object_get(json_object_get(so, "metadata"), "name"));
    json_t *ref = json_object_get(spec, "scaleTargetRef");
    cr_assert_str_eq(json_string_value(json_object_get(ref, "name")), target);
    cr_assert_str_eq(json_string_value(json_object_get(ref, "kind")), "StatefulSet");
    cr_assert_eq(json_integer_value(json_object_get(spec, "minReplicaCount")), min);
    cr_assert_eq(json_integer_value(json_object_get(spec, "maxReplicaCount")), max);
    json_t *trig = json_array_get(json_object_get(spec, "triggers"), 0);
    cr_assert_eq(json_array_size(json_object_get(spec, "triggers")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(trig, "type")), "kafka");
    json_t *md = json_object_get(trig, "metadata");
    cr_assert_str_eq(json_string_value(json_object_get(md, "consumerGroup")), group);
    cr_assert_str_eq(json_string_value(json_object_get(md, "bootstrapServers")), "b1:9092");
    /* KEDA reads trigger metadata as strings only */
    const char *k;
    json_t *v;
    json_object_foreach(md, k, v)
        cr_assert(json_is_string(v), "trigger metadata \"%s\" is not a string", k);
}

Test(k8s, manifests_of_the_etl_example)
{
    struct nu_k8s_opts o = {"reg.example/nurion:1.2", "pipelines", "b1:9092"};
    json_t *docs = render_example("etl.json", &o);
    /* ConfigMap + 4 stages x (Service, StatefulSet, ScaledObject) + coordinator (2) */
    cr_assert_eq(json_array_size(docs), 1 + 4 * 3 + 2);
    cr_assert_not_null(find_doc(docs, "ConfigMap", "nurion-etl-demo-spec"));

    json_t *sts = find_doc(docs, "StatefulSet", "nurion-etl-demo-dbl");
    cr_assert_not_null(sts);
    json_t *spec = json_object_get(sts, "spec");
    cr_assert_eq(json_integer_value(json_object_get(spec, "replicas")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(spec, "serviceName")),
                     "nurion-etl-demo-dbl");
    json_t *pod = json_object_get(json_object_get(spec, "template"), "spec");
    cr_assert_eq(json_integer_value(json_object_get(pod, "terminationGracePeriodSeconds")),
                 NU_K8S_GRACE_SECONDS);
    json_t *c = json_array_get(json_object_get(pod, "containers"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(c, "image")), "reg.example/nurion:1.2");
    char *args = json_dumps(json_object_get(c, "args"), JSON_COMPACT);
    cr_assert_str_eq(args, "[\"stage\",\"--job\",\"/etc/nurion/job.json\",\"--stage\",\"dbl\","
                           "\"--instance-from-pod-name\",\"--set\",\"http.listen=0.0.0.0:9464\"]");
    free(args);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(c, "readinessProbe"), "httpGet"), "path")),
                     "/readyz");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(c, "livenessProbe"), "httpGet"), "path")),
                     "/healthz");
    json_t *env0 = json_array_get(json_object_get(c, "env"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(env0, "name")), "POD_NAME");
    /* selector matches the pod template's labels */
    json_t *ml = json_object_get(json_object_get(spec, "selector"), "matchLabels");
    json_t *tl =
        json_object_get(json_object_get(json_object_get(spec, "template"), "metadata"), "labels");
    const char *k;
    json_t *v;
    json_object_foreach(ml, k, v)
        cr_assert(json_equal(v, json_object_get(tl, k)), "template lacks label %s", k);

    /* dbl: parallelism 1..4 over src's 8 partitions; even: 2 (fixed); src: its plan topic */
    check_scaledobject(find_doc(docs, "ScaledObject", "nurion-etl-demo-dbl"), "nurion-etl-demo-dbl",
                       1, 4, "nurion.etl-demo.dbl");
    check_scaledobject(find_doc(docs, "ScaledObject", "nurion-etl-demo-even"),
                       "nurion-etl-demo-even", 2, 2, "nurion.etl-demo.even");
    check_scaledobject(find_doc(docs, "ScaledObject", "nurion-etl-demo-src"), "nurion-etl-demo-src",
                       1, 1, "nurion.etl-demo.src");

    json_t *coord = find_doc(docs, "Deployment", "nurion-coordinator");
    cr_assert_not_null(coord);
    cr_assert_not_null(find_doc(docs, "Service", "nurion-coordinator"));
    json_decref(docs);
}

/* A streaming job: kafka_source in unbounded mode -> map -> kafka_sink. */
static const char k8s_stream_spec[] =
    "{\"job_id\":\"stream-demo\",\"stages\":["
    "{\"id\":\"src\",\"operator\":\"kafka_source\",\"partitions\":2,\"config\":{"
    "\"topic\":\"clicks\",\"format\":\"json\",\"mode\":\"unbounded\","
    "\"schema\":[[\"id\",\"int64\"]]}},"
    "{\"id\":\"dbl\",\"operator\":\"map\",\"upstream\":[\"src\"],"
    "\"config\":{\"columns\":{\"y\":\"id * 2\"}}},"
    "{\"id\":\"out\",\"operator\":\"kafka_sink\",\"upstream\":[\"dbl\"],"
    "\"config\":{\"topic\":\"clicks-out\",\"format\":\"json\"}}]}";

Test(k8s, unbounded_source_gets_a_planner_deployment)
{
    struct nu_k8s_opts o = {"reg.example/nurion:1.2", "pipelines", "b1:9092"};
    struct nu_errbuf eb;
    struct nu_job *job = NULL;
    json_t *docs = NULL;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_job_parse(k8s_stream_spec, strlen(k8s_stream_spec), NULL, &job, NULL, &eb),
                 NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_k8s_render(job, "{}", &o, &docs, &eb), NU_OK, "%s", nu_err_msg(&eb));
    nu_job_destroy(job);
    /* ConfigMap + 3 stages x 3 + one planner + coordinator (2) */
    cr_assert_eq(json_array_size(docs), 1 + 3 * 3 + 1 + 2);
    cr_assert_null(find_doc(docs, "Deployment", "nurion-stream-demo-dbl-plan"));
    json_t *dep = find_doc(docs, "Deployment", "nurion-stream-demo-src-plan");
    cr_assert_not_null(dep);
    json_t *spec = json_object_get(dep, "spec");
    cr_assert_eq(json_integer_value(json_object_get(spec, "replicas")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(spec, "strategy"), "type")),
                     "Recreate");
    json_t *tmpl = json_object_get(spec, "template");
    json_t *c = json_array_get(json_object_get(json_object_get(tmpl, "spec"), "containers"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(c, "image")), "reg.example/nurion:1.2");
    char *args = json_dumps(json_object_get(c, "args"), JSON_COMPACT);
    cr_assert_str_eq(
        args, "[\"stage\",\"--job\",\"/etc/nurion/job.json\",\"--stage\",\"src\",\"--plan\"]");
    free(args);
    json_t *env0 = json_array_get(json_object_get(c, "env"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(env0, "name")), "NURION_BROKERS");
    cr_assert_str_eq(json_string_value(json_object_get(env0, "value")), "b1:9092");
    /* its selector matches its pods, and the stage's StatefulSet does not select them */
    json_t *ml = json_object_get(json_object_get(spec, "selector"), "matchLabels");
    json_t *tl = json_object_get(json_object_get(tmpl, "metadata"), "labels");
    const char *k;
    json_t *v;
    json_object_foreach(ml, k, v)
        cr_assert(json_equal(v, json_object_get(tl, k)), "template lacks label %s", k);
    json_t *sts = find_doc(docs, "StatefulSet", "nurion-stream-demo-src");
    cr_assert_not_null(sts);
    json_t *sml =
        json_object_get(json_object_get(json_object_get(sts, "spec"), "selector"), "matchLabels");
    bool selected = true;
    json_object_foreach(sml, k, v) selected = selected && json_equal(v, json_object_get(tl, k));
    cr_assert_not(selected, "the StatefulSet of src selects the planner's pods");
    json_decref(docs);
}

Test(k8s, names_must_fit_dns_labels)
{
    char buf[128];
    cr_assert(nu_k8s_name("Etl_Demo", "dbl", buf, sizeof(buf)));
    cr_assert_str_eq(buf, "nurion-etl-demo-dbl");
    cr_assert_not(nu_k8s_name("a123456789012345678901234567890123456789012345678901234567", "st",
                              buf, sizeof(buf)));
    cr_assert_not(nu_k8s_name("job", "stage_", buf, sizeof(buf)));
}

/* Run a shell command; returns its exit status, output in `out`. */
static int sh(const char *cmd, char *out, size_t size)
{
    FILE *p = popen(cmd, "r");
    size_t n = 0;
    cr_assert_not_null(p);
    while (n + 1 < size && !feof(p))
        n += fread(out + n, 1, size - 1 - n, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(k8s, rendered_manifests_pass_kubernetes_validate, .timeout = 240)
{
    char validator[1024], dir[] = "/tmp/nurion-k8s-XXXXXX", cmd[4096], out[16384];
    snprintf(validator, sizeof(validator), "%s/.cache/venv/bin/kubernetes-validate", NU_SOURCE_DIR);
    if (access(validator, X_OK) != 0)
        cr_skip_test("kubernetes-validate not installed (run scripts/deps): %s", validator);
    cr_assert_not_null(mkdtemp(dir));
    char stream[1200];
    snprintf(stream, sizeof(stream), "%s/stream.json", dir);
    FILE *f = fopen(stream, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fputs(k8s_stream_spec, f) >= 0 && fclose(f) == 0, true);
    const char *const examples[] = {"examples/etl.json", "examples/diamond.json",
                                    "examples/union.json", stream};
    for (size_t i = 0; i < sizeof(examples) / sizeof(examples[0]); i++) {
        snprintf(cmd, sizeof(cmd),
                 "cd %s && %s/bin/nurion k8s render %s --namespace t --brokers k:9092 "
                 "--out %s/%zu 2>&1",
                 NU_SOURCE_DIR, NU_BINARY_DIR, examples[i], dir, i);
        cr_assert_eq(sh(cmd, out, sizeof(out)), 0, "%s: %s", cmd, out);
        /* core kinds against the OpenAPI schemas, strictly (no unknown fields) */
        snprintf(cmd, sizeof(cmd),
                 "ls %s/%zu/*.yaml | grep -v scaledobject | xargs %s --strict --no-warn 2>&1", dir,
                 i, validator);
        cr_assert_eq(sh(cmd, out, sizeof(out)), 0, "%s:\n%s", examples[i], out);
        cr_assert(strstr(out, "passed for resource statefulset/") &&
                      strstr(out, "passed for resource deployment/nurion-coordinator") &&
                      strstr(out, "passed for resource configmap/"),
                  "%s: validator output lacks the expected kinds:\n%s", examples[i], out);
        if (examples[i] == stream)
            cr_assert(strstr(out, "passed for resource deployment/nurion-stream-demo-src-plan"),
                      "the planner's Deployment was not validated:\n%s", out);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(sh(cmd, out, sizeof(out)), 0);
}

Test(k8s, validator_rejects_a_broken_manifest, .timeout = 120)
{
    char validator[1024], path[] = "/tmp/nurion-k8s-bad-XXXXXX", cmd[2048], out[8192];
    snprintf(validator, sizeof(validator), "%s/.cache/venv/bin/kubernetes-validate", NU_SOURCE_DIR);
    if (access(validator, X_OK) != 0)
        cr_skip_test("kubernetes-validate not installed (run scripts/deps)");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    /* a StatefulSet without its required selector and with a string for replicas */
    static const char bad[] = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: x\n"
                              "spec:\n  replicas: \"two\"\n  serviceName: x\n  template:\n"
                              "    spec:\n      containers:\n      - name: c\n        image: i\n";
    cr_assert_eq(write(fd, bad, sizeof(bad) - 1), (ssize_t)(sizeof(bad) - 1));
    close(fd);
    snprintf(cmd, sizeof(cmd), "%s --strict --no-warn %s 2>&1", validator, path);
    cr_assert_neq(sh(cmd, out, sizeof(out)), 0, "accepted:\n%s", out);
    unlink(path);
}
