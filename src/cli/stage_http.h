/*
 * stage_http.h — the health and metrics endpoint of `nurion stage` (layer: cli).
 *
 * When the setting http.listen is given, a stage instance serves, over the API layer's HTTP
 * server (api/server.h), from its own small thread pool:
 *   GET /healthz  200 {"status":"ok"} while the process runs (liveness)
 *   GET /readyz   200 {"status":"ready"} once the consumer has joined its group and the producer
 *                 is ready; 503 {"status":"starting"|"stopping"|"done"|"failed"} otherwise
 *   GET /metrics  Prometheus text (0.0.4): the instance's counters, labelled job, stage and
 *                 instance, its assigned partitions and the lag of each, plus the server's own
 *                 request counters
 * All three are public (no token): they carry no job data.
 *
 * Thread-safety: handlers read the stage monitor (stage/monitor.h), which is safe from any
 * thread. The monitor and the label strings are borrowed until nu_cli_stage_http_stop().
 */
#ifndef NU_CLI_STAGE_HTTP_H
#define NU_CLI_STAGE_HTTP_H

#include "api/server.h"
#include "common/buf.h"
#include "common/err.h"
#include "stage/monitor.h"

#include <stdbool.h>

#define NU_STAGE_HTTP_THREADS 2

typedef struct nu_stage_http nu_stage_http_t;

/*
 * Start serving on `listen` ("host:port"; port 0 = ephemeral). job, stage: borrowed labels.
 * Errors: NU_ERR_CONFIG (bad address), NU_ERR_SYSTEM (could not bind). *out returned owned.
 */
nu_err_t nu_cli_stage_http_start(const char *listen, nu_stage_monitor_t *m, const char *job,
                                 const char *stage, unsigned instance, nu_stage_http_t **out,
                                 struct nu_errbuf *eb);
/* Stop serving (waits for running requests) and free. Accepts NULL. */
void nu_cli_stage_http_stop(nu_stage_http_t *h);
/* The bound port. */
unsigned nu_cli_stage_http_port(const nu_stage_http_t *h);

/* Append the stage's metrics for snapshot `s` in Prometheus text format. */
void nu_cli_stage_metrics_render(const struct nu_stage_snapshot *s, const char *job,
                                 const char *stage, unsigned instance, struct nu_buf *out);

/*
 * The ordinal at the end of a pod name of a StatefulSet ("nurion-etl-dbl-3" → 3): the digits
 * after the last '-'. False when there is none or it is over 65535.
 */
bool nu_cli_pod_ordinal(const char *pod_name, long *out);

#endif
