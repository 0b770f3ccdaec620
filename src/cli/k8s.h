/*
 * k8s.h — Kubernetes manifests for a job: `nurion k8s render` (layer: cli).
 *
 * For a job it renders, in this order: a ConfigMap holding the spec; per stage a headless
 * Service, a StatefulSet (one pod per instance: the pod's ordinal is the instance index, read by
 * `nurion stage --instance-from-pod-name`, so every instance has its own transactional id and
 * static group membership) with liveness and readiness probes on the stage endpoint and a grace
 * period for the SIGTERM path, and a KEDA ScaledObject scaling it on its consumer group's lag
 * between the stage's parallelism min and max (max capped at the partitions of its inputs);
 * then the coordinator's Deployment and Service (launcher in external mode).
 *
 * Thread-safety: pure. Ownership: job and strings borrowed; *out returned owned (a JSON array of
 * the manifests, in order).
 */
#ifndef NU_CLI_K8S_H
#define NU_CLI_K8S_H

#include "common/err.h"
#include "common/job.h"

#include <jansson.h>

#define NU_K8S_DEFAULT_IMAGE     "nurion:latest"
#define NU_K8S_DEFAULT_NAMESPACE "default"
#define NU_K8S_DEFAULT_BROKERS   "kafka:9092"
#define NU_K8S_STAGE_PORT        9464
#define NU_K8S_COORDINATOR_PORT  8080
#define NU_K8S_GRACE_SECONDS     60
#define NU_K8S_LAG_THRESHOLD     "20"
#define NU_K8S_MAX_NAME          63 /* a DNS-1123 label */

struct nu_k8s_opts {
    const char *image;     /* NULL = NU_K8S_DEFAULT_IMAGE */
    const char *namespace; /* NULL = NU_K8S_DEFAULT_NAMESPACE */
    const char *brokers;   /* NULL = NU_K8S_DEFAULT_BROKERS */
};

/*
 * Render the manifests of `job`, whose spec text (stored in the ConfigMap) is `spec`. Errors:
 * NU_ERR_INVALID when a name would not fit a DNS-1123 label (the message names it).
 */
nu_err_t nu_k8s_render(const struct nu_job *job, const char *spec, const struct nu_k8s_opts *o,
                       json_t **out, struct nu_errbuf *eb);

/* "nurion-<job>-<stage>" (stage may be NULL) lower-cased, '_' as '-'; false when over 63. */
bool nu_k8s_name(const char *job, const char *stage, char *buf, size_t len);

#endif
