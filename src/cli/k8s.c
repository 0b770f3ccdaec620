/* k8s.c — `nurion k8s render`: Kubernetes manifests (StatefulSets, KEDA, coordinator). */
#include "cli/k8s.h"

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/yaml.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/mem.h"
#include "operators/registry.h"
#include "stage/lanes.h"
#include "stage/planner.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool nu_k8s_name(const char *job, const char *stage, char *buf, size_t len)
{
    int n = stage ? snprintf(buf, len, "nurion-%s-%s", job, stage)
                  : snprintf(buf, len, "nurion-%s", job);
    if (n < 0 || (size_t)n >= len || n > NU_K8S_MAX_NAME)
        return false;
    for (char *p = buf; *p; p++)
        *p = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
    return buf[n - 1] != '-';
}

static json_t *nu_k8s_meta(const char *name, const char *ns, const struct nu_job *job,
                           const char *component, const char *stage)
{
    json_t *labels = json_pack("{s:s, s:s, s:s}", "app.kubernetes.io/name", "nurion",
                               "app.kubernetes.io/component", component, "nurion.io/job", job->id);
    if (stage)
        json_object_set_new(labels, "nurion.io/stage", json_string(stage));
    return json_pack("{s:s, s:s, s:o}", "name", name, "namespace", ns, "labels", labels);
}

static json_t *nu_k8s_probe(const char *path, int period, int failures)
{
    return json_pack("{s:{s:s, s:s}, s:i, s:i, s:i}", "httpGet", "path", path, "port", "http",
                     "periodSeconds", period, "failureThreshold", failures, "timeoutSeconds", 2);
}

static json_t *nu_k8s_configmap(const struct nu_job *job, const char *spec, const char *ns,
                                const char *name)
{
    json_t *cm = json_pack("{s:s, s:s}", "apiVersion", "v1", "kind", "ConfigMap");
    json_object_set_new(cm, "metadata", nu_k8s_meta(name, ns, job, "spec", NULL));
    json_object_set_new(cm, "data", json_pack("{s:s}", "job.json", spec));
    return cm;
}

static json_t *nu_k8s_stage_service(const struct nu_job *job, const struct nu_job_stage *js,
                                    const char *ns, const char *name)
{
    json_t *svc = json_pack("{s:s, s:s}", "apiVersion", "v1", "kind", "Service");
    json_object_set_new(svc, "metadata", nu_k8s_meta(name, ns, job, "stage", js->id));
    json_object_set_new(svc, "spec",
                        json_pack("{s:s, s:{s:s, s:s}, s:[{s:s, s:i, s:s}]}", "clusterIP", "None",
                                  "selector", "nurion.io/job", job->id, "nurion.io/stage", js->id,
                                  "ports", "name", "http", "port", NU_K8S_STAGE_PORT, "targetPort",
                                  "http"));
    return svc;
}

static json_t *nu_k8s_statefulset(const struct nu_job *job, const struct nu_job_stage *js,
                                  const struct nu_k8s_opts *o, const char *name,
                                  const char *cm_name)
{
    char listen[64];
    snprintf(listen, sizeof(listen), "http.listen=0.0.0.0:%d", NU_K8S_STAGE_PORT);
    json_t *args = json_pack("[s, s, s, s, s, s, s, s]", "stage", "--job", "/etc/nurion/job.json",
                             "--stage", js->id, "--instance-from-pod-name", "--set", listen);
    json_t *env =
        json_pack("[{s:s, s:{s:{s:s}}}, {s:s, s:s}]", "name", "POD_NAME", "valueFrom", "fieldRef",
                  "fieldPath", "metadata.name", "name", "NURION_BROKERS", "value", o->brokers);
    json_t *container = json_pack(
        "{s:s, s:s, s:o, s:o, s:[{s:s, s:i}], s:o, s:o, s:{s:{s:s, s:s}, s:{s:s}}, "
        "s:[{s:s, s:s, s:b}], s:{s:b, s:b, s:{s:[s]}}}",
        "name", "stage", "image", o->image, "args", args, "env", env, "ports", "name", "http",
        "containerPort", NU_K8S_STAGE_PORT, "livenessProbe", nu_k8s_probe("/healthz", 10, 3),
        "readinessProbe", nu_k8s_probe("/readyz", 5, 2), "resources", "requests", "cpu", "250m",
        "memory", "256Mi", "limits", "memory", "1Gi", "volumeMounts", "name", "spec", "mountPath",
        "/etc/nurion", "readOnly", 1, "securityContext", "allowPrivilegeEscalation", 0,
        "readOnlyRootFilesystem", 0, "capabilities", "drop", "ALL");
    json_t *pod = json_pack("{s:{}, s:{s:i, s:{s:b, s:i}, s:[o], s:[{s:s, s:{s:s}}]}}", "metadata",
                            "spec", "terminationGracePeriodSeconds", NU_K8S_GRACE_SECONDS,
                            "securityContext", "runAsNonRoot", 1, "runAsUser", 10001, "containers",
                            container, "volumes", "name", "spec", "configMap", "name", cm_name);
    /* the pod template's labels: the selector's, plus the app name */
    json_t *tmeta = json_object_get(pod, "metadata");
    json_t *labels = json_pack("{s:s, s:s, s:s}", "app.kubernetes.io/name", "nurion",
                               "nurion.io/job", job->id, "nurion.io/stage", js->id);
    json_object_clear(tmeta);
    json_object_set_new(tmeta, "labels", labels);
    json_t *sts = json_pack("{s:s, s:s}", "apiVersion", "apps/v1", "kind", "StatefulSet");
    json_object_set_new(sts, "metadata", nu_k8s_meta(name, o->namespace, job, "stage", js->id));
    json_object_set_new(sts, "spec",
                        json_pack("{s:s, s:i, s:s, s:{s:{s:s, s:s}}, s:o}", "serviceName", name,
                                  "replicas", js->parallelism_min, "podManagementPolicy",
                                  "Parallel", "selector", "matchLabels", "nurion.io/job", job->id,
                                  "nurion.io/stage", js->id, "template", pod));
    return sts;
}

/*
 * The continuous planner of unbounded source `js`: a Deployment of one replica running
 * `nurion stage --plan`, same image, spec and brokers as the stages. Its pods carry no
 * nurion.io/stage label, so neither the stage's StatefulSet nor its Service selects them.
 * Strategy Recreate: two planners of a source fence each other (the loser exits 3 and, restarted,
 * would fence back), so a rollout stops the old pod before the new one starts.
 */
static json_t *nu_k8s_planner(const struct nu_job *job, const struct nu_job_stage *js,
                              const struct nu_k8s_opts *o, const char *name, const char *cm_name)
{
    json_t *args = json_pack("[s, s, s, s, s, s]", "stage", "--job", "/etc/nurion/job.json",
                             "--stage", js->id, "--plan");
    json_t *container = json_pack(
        "{s:s, s:s, s:o, s:[{s:s, s:s}], s:{s:{s:s, s:s}, s:{s:s}}, s:[{s:s, s:s, s:b}], "
        "s:{s:b, s:b, s:{s:[s]}}}",
        "name", "planner", "image", o->image, "args", args, "env", "name", "NURION_BROKERS",
        "value", o->brokers, "resources", "requests", "cpu", "100m", "memory", "128Mi", "limits",
        "memory", "512Mi", "volumeMounts", "name", "spec", "mountPath", "/etc/nurion", "readOnly",
        1, "securityContext", "allowPrivilegeEscalation", 0, "readOnlyRootFilesystem", 0,
        "capabilities", "drop", "ALL");
    json_t *sel = json_pack("{s:s, s:s, s:s}", "app.kubernetes.io/name", "nurion", "nurion.io/job",
                            job->id, "nurion.io/planner", js->id);
    json_t *dep = json_pack("{s:s, s:s}", "apiVersion", "apps/v1", "kind", "Deployment");
    json_object_set_new(dep, "metadata", nu_k8s_meta(name, o->namespace, job, "planner", js->id));
    json_object_set_new(
        dep, "spec",
        json_pack("{s:i, s:{s:s}, s:{s:O}, s:{s:{s:O}, s:{s:i, s:{s:b, s:i}, s:[o], "
                  "s:[{s:s, s:{s:s}}]}}}",
                  "replicas", 1, "strategy", "type", "Recreate", "selector", "matchLabels", sel,
                  "template", "metadata", "labels", sel, "spec", "terminationGracePeriodSeconds",
                  NU_K8S_GRACE_SECONDS, "securityContext", "runAsNonRoot", 1, "runAsUser", 10001,
                  "containers", container, "volumes", "name", "spec", "configMap", "name",
                  cm_name));
    json_decref(sel);
    return dep;
}

static json_t *nu_k8s_scaledobject(const struct nu_job *job, size_t idx,
                                   const struct nu_k8s_opts *o, const char *name, int max)
{
    const struct nu_job_stage *js = &job->stages[idx];
    char group[NU_JOB_NAME_MAX];
    nu_job_group(job, idx, group, sizeof(group));
    int min = js->parallelism_min < max ? js->parallelism_min : max;
    json_t *so = json_pack("{s:s, s:s}", "apiVersion", "keda.sh/v1alpha1", "kind", "ScaledObject");
    json_object_set_new(so, "metadata", nu_k8s_meta(name, o->namespace, job, "stage", js->id));
    /* no topic: KEDA sums the lag of every topic the group consumes (a union has several) */
    json_object_set_new(
        so, "spec",
        json_pack("{s:{s:s, s:s, s:s}, s:i, s:i, s:i, s:i, s:[{s:s, s:{s:s, s:s, s:s, s:s}}]}",
                  "scaleTargetRef", "apiVersion", "apps/v1", "kind", "StatefulSet", "name", name,
                  "minReplicaCount", min, "maxReplicaCount", max, "pollingInterval", 15,
                  "cooldownPeriod", 120, "triggers", "type", "kafka", "metadata",
                  "bootstrapServers", o->brokers, "consumerGroup", group, "lagThreshold",
                  NU_K8S_LAG_THRESHOLD, "offsetResetPolicy", "earliest"));
    return so;
}

static void nu_k8s_coordinator(const struct nu_job *job, const struct nu_k8s_opts *o, json_t *docs)
{
    char port[16];
    snprintf(port, sizeof(port), "0.0.0.0:%d", NU_K8S_COORDINATOR_PORT);
    json_t *sel = json_pack("{s:s, s:s}", "app.kubernetes.io/name", "nurion",
                            "app.kubernetes.io/component", "coordinator");
    json_t *container = json_pack(
        "{s:s, s:s, s:[s, s, s], s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:{s:{s:s, s:s}}}], "
        "s:[{s:s, s:i}], s:o, s:o, s:{s:{s:s, s:s}, s:{s:s}}}",
        "name", "coordinator", "image", o->image, "args", "coordinator", "--listen", port, "env",
        "name", "NURION_BROKERS", "value", o->brokers, "name", "NURION_LAUNCHER_MODE", "value",
        "external", "name", "NURION_DATABASE_URL", "valueFrom", "secretKeyRef", "name",
        "nurion-database", "key", "url", "ports", "name", "http", "containerPort",
        NU_K8S_COORDINATOR_PORT, "livenessProbe", nu_k8s_probe("/healthz", 10, 3), "readinessProbe",
        nu_k8s_probe("/readyz", 5, 2), "resources", "requests", "cpu", "250m", "memory", "256Mi",
        "limits", "memory", "1Gi");
    json_t *dep = json_pack("{s:s, s:s}", "apiVersion", "apps/v1", "kind", "Deployment");
    json_object_set_new(dep, "metadata",
                        nu_k8s_meta("nurion-coordinator", o->namespace, job, "coordinator", NULL));
    json_object_set_new(dep, "spec",
                        json_pack("{s:i, s:{s:O}, s:{s:{s:O}, s:{s:{s:b, s:i}, s:[o]}}}",
                                  "replicas", 1, "selector", "matchLabels", sel, "template",
                                  "metadata", "labels", sel, "spec", "securityContext",
                                  "runAsNonRoot", 1, "runAsUser", 10001, "containers", container));
    json_array_append_new(docs, dep);
    json_t *svc = json_pack("{s:s, s:s}", "apiVersion", "v1", "kind", "Service");
    json_object_set_new(svc, "metadata",
                        nu_k8s_meta("nurion-coordinator", o->namespace, job, "coordinator", NULL));
    json_object_set_new(svc, "spec",
                        json_pack("{s:O, s:[{s:s, s:i, s:s}]}", "selector", sel, "ports", "name",
                                  "http", "port", NU_K8S_COORDINATOR_PORT, "targetPort", "http"));
    json_array_append_new(docs, svc);
    json_decref(sel);
}

nu_err_t nu_k8s_render(const struct nu_job *job, const char *spec, const struct nu_k8s_opts *opts,
                       json_t **out, struct nu_errbuf *eb)
{
    struct nu_k8s_opts o = *opts;
    char cm_name[NU_K8S_MAX_NAME + 16], name[NU_K8S_MAX_NAME + 16];
    struct nu_stage_input *inputs = nu_xcalloc(NU_JOB_MAX_UPSTREAMS, sizeof(*inputs));
    json_t *docs = json_array();
    nu_err_t err = NU_OK;
    if (!o.image)
        o.image = NU_K8S_DEFAULT_IMAGE;
    if (!o.namespace)
        o.namespace = NU_K8S_DEFAULT_NAMESPACE;
    if (!o.brokers)
        o.brokers = NU_K8S_DEFAULT_BROKERS;
    *out = NULL;
    if (!nu_k8s_name(job->id, "spec", cm_name, sizeof(cm_name))) {
        err = nu_err_set(eb, NU_ERR_INVALID,
                         "job id \"%s\" is too long for Kubernetes names (at most %d characters "
                         "with the \"nurion-\" prefix and the stage id)",
                         job->id, NU_K8S_MAX_NAME);
        goto out;
    }
    json_array_append_new(docs, nu_k8s_configmap(job, spec, o.namespace, cm_name));
    for (size_t i = 0; i < job->nstages; i++) {
        const struct nu_job_stage *js = &job->stages[i];
        size_t nin = 0;
        int parts = 0;
        if (!nu_k8s_name(job->id, js->id, name, sizeof(name))) {
            err = nu_err_set(eb, NU_ERR_INVALID,
                             "name \"nurion-%s-%s\" of stage \"%s\" is over %d characters: use a "
                             "shorter job or stage id",
                             job->id, js->id, js->id, NU_K8S_MAX_NAME);
            goto out;
        }
        err = nu_lanes_inputs(job, i, inputs, &nin, eb);
        if (err)
            goto out;
        for (size_t k = 0; k < nin; k++)
            parts += inputs[k].partitions;
        int max = js->parallelism_max < parts ? js->parallelism_max : parts;
        if (max < 1)
            max = 1;
        json_array_append_new(docs, nu_k8s_stage_service(job, js, o.namespace, name));
        json_array_append_new(docs, nu_k8s_statefulset(job, js, &o, name, cm_name));
        json_array_append_new(docs, nu_k8s_scaledobject(job, i, &o, name, max));
        if (!nu_plan_stage_unbounded(job, i))
            continue;
        char plan_id[NU_JOB_NAME_MAX + 8];
        snprintf(plan_id, sizeof(plan_id), "%s-plan", js->id);
        if (!nu_k8s_name(job->id, plan_id, name, sizeof(name))) {
            err = nu_err_set(eb, NU_ERR_INVALID,
                             "name \"nurion-%s-%s\" of the planner of stage \"%s\" is over %d "
                             "characters: use a shorter job or stage id",
                             job->id, plan_id, js->id, NU_K8S_MAX_NAME);
            goto out;
        }
        json_array_append_new(docs, nu_k8s_planner(job, js, &o, name, cm_name));
    }
    nu_k8s_coordinator(job, &o, docs);
out:
    free(inputs);
    if (err)
        json_decref(docs);
    else
        *out = docs;
    return err;
}

/* ---- the command --------------------------------------------------------------------------- */

static void nu_k8s_usage(FILE *out)
{
    fprintf(out,
            "usage: nurion k8s render JOB.json [--image IMG] [--namespace NS] [--brokers LIST]\n"
            "                                  [--out DIR]\n\n"
            "Writes Kubernetes manifests for the job: a ConfigMap with the spec; per stage a\n"
            "headless Service, a StatefulSet (pod ordinal = instance index) with probes on the\n"
            "stage endpoint, and a KEDA ScaledObject scaling it on consumer-group lag; per\n"
            "unbounded source a Deployment of one replica running its continuous planner\n"
            "(`nurion stage --plan`); the coordinator's Deployment and Service (external\n"
            "launcher). Without --out the manifests go to standard output as one YAML\n"
            "stream.\n\n"
            "  --image IMG       container image (default %s)\n"
            "  --namespace NS    namespace (default %s)\n"
            "  --brokers LIST    Kafka bootstrap servers as seen from the cluster (default %s)\n"
            "  --out DIR         write one file per manifest into DIR (created if missing)\n",
            NU_K8S_DEFAULT_IMAGE, NU_K8S_DEFAULT_NAMESPACE, NU_K8S_DEFAULT_BROKERS);
}

static int nu_k8s_write(const char *dir, const json_t *docs)
{
    struct nu_buf b = NU_BUF_INIT;
    size_t i;
    json_t *d;
    int rc = NU_EXIT_OK;
    if (dir && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "nurion k8s: could not create directory \"%s\": %s\n", dir,
                strerror(errno));
        return NU_EXIT_FAIL;
    }
    json_array_foreach(docs, i, d)
    {
        nu_buf_reset(&b);
        if (!dir)
            nu_buf_append(&b, "---\n", 4);
        nu_yaml_emit(d, &b);
        if (!dir) {
            fwrite(b.data, 1, b.len, stdout);
            continue;
        }
        char path[4096], kind[32];
        const char *k = json_string_value(json_object_get(d, "kind"));
        const char *n = json_string_value(json_object_get(json_object_get(d, "metadata"), "name"));
        snprintf(kind, sizeof(kind), "%s", k);
        for (char *p = kind; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        snprintf(path, sizeof(path), "%s/%02zu-%s-%s.yaml", dir, i, n, kind);
        FILE *f = fopen(path, "w");
        if (!f || fwrite(b.data, 1, b.len, f) != b.len) {
            fprintf(stderr, "nurion k8s: could not write \"%s\": %s\n", path, strerror(errno));
            rc = NU_EXIT_FAIL;
        }
        if (f && fclose(f) != 0 && rc == NU_EXIT_OK) {
            fprintf(stderr, "nurion k8s: could not write \"%s\": %s\n", path, strerror(errno));
            rc = NU_EXIT_FAIL;
        }
        if (rc)
            break;
    }
    nu_buf_free(&b);
    return rc;
}

int nu_cli_cmd_k8s(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"image", required_argument, NULL, 'i'},   {"namespace", required_argument, NULL, 'n'},
        {"brokers", required_argument, NULL, 'b'}, {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    struct nu_k8s_opts o = {0};
    const char *dir = NULL;
    struct nu_problems probs;
    struct nu_errbuf eb;
    struct nu_job *job = NULL;
    json_t *docs = NULL, *spec = NULL;
    char *text = NULL;
    int rc = NU_EXIT_USAGE, opt;
    nu_problems_init(&probs);
    nu_errbuf_clear(&eb);
    if (argc < 2 || strcmp(argv[1], "render") != 0) {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            nu_k8s_usage(stdout);
            rc = NU_EXIT_OK;
        } else {
            nu_k8s_usage(stderr);
        }
        goto out;
    }
    optind = 1;
    while ((opt = getopt_long(argc - 1, argv + 1, "i:n:b:o:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'i':
            o.image = optarg;
            break;
        case 'n':
            o.namespace = optarg;
            break;
        case 'b':
            o.brokers = optarg;
            break;
        case 'o':
            dir = optarg;
            break;
        case 'h':
            nu_k8s_usage(stdout);
            rc = NU_EXIT_OK;
            goto out;
        default:
            nu_k8s_usage(stderr);
            goto out;
        }
    }
    if (optind + 1 != argc - 1) {
        fprintf(stderr, "nurion k8s render: expected one JOB.json\n");
        goto out;
    }
    const char *path = argv[1 + optind];
    if (nu_job_load_file(path, nu_registry_validator(), &job, &probs, &eb)) {
        for (size_t i = 0; i < probs.n; i++)
            fprintf(stderr, "nurion k8s render: %s: %s: %s\n", path, probs.items[i].path,
                    probs.items[i].message);
        if (!probs.n)
            fprintf(stderr, "nurion k8s render: %s\n", nu_err_msg(&eb));
        goto out;
    }
    /* the ConfigMap holds the normalised spec, readable and with defaults filled in */
    spec = nu_job_to_json(job);
    text = json_dumps(spec, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (nu_k8s_render(job, text, &o, &docs, &eb)) {
        fprintf(stderr, "nurion k8s render: %s\n", nu_err_msg(&eb));
        goto out;
    }
    rc = nu_k8s_write(dir, docs);
out:
    free(text);
    json_decref(spec);
    json_decref(docs);
    nu_job_destroy(job);
    nu_problems_free(&probs);
    return rc;
}
