/*
 * events.h — the JSON events a stage writes to its job's events topic (layer: stage).
 *
 * Topic `nurion.<job>._events`, key = stage id, value = one JSON object (so kcat shows it):
 *   {"type":"split_done","job","stage","instance","ts", "split","parents":[…],"rows_in",
 *    "rows_out","bytes_in","bytes_out","ms","topic","partition","offset","outputs":[…]}
 *   {"type":"partition_done", …, "topic","partition"}
 *   {"type":"error", …, "split","attempt","code","message","hint"}
 *   {"type":"dlq", …, "split","topic","partition","offset","attempts","message"}
 *   {"type":"instance_started"|"instance_stopped", …, "pid","host","reason"?}
 *   {"type":"metrics", …, "rows_in","rows_out","splits","rows_per_s","rss_bytes","cpu_ms",
 *    "lag":{"<topic>:<p>":n,…}}
 * `ts` is milliseconds since the epoch. split_done, partition_done, error and dlq are written
 * inside the stage's transaction; the others outside it. docs/events.md documents each field.
 *
 * Functions build a JSON object (returned owned, a new reference) with the common fields set;
 * nu_event_dump serialises compactly into a reusable buffer. Thread-safe (no shared state).
 */
#ifndef NU_STAGE_EVENTS_H
#define NU_STAGE_EVENTS_H

#include "common/buf.h"

#include <jansson.h>
#include <stdint.h>

struct nu_event_origin {
    const char *job;
    const char *stage;
    unsigned instance;
};

/* A new event of `type` with job, stage, instance and ts filled in. */
json_t *nu_event_new(const struct nu_event_origin *o, const char *type);

json_t *nu_event_split_done(const struct nu_event_origin *o, const char *split,
                            const char *parents_csv, int64_t rows_in, int64_t rows_out,
                            int64_t bytes_in, int64_t bytes_out, double ms, const char *topic,
                            int32_t partition, int64_t offset);
json_t *nu_event_partition_done(const struct nu_event_origin *o, const char *topic,
                                int32_t partition);
json_t *nu_event_error(const struct nu_event_origin *o, const char *split, unsigned attempt,
                       const char *code, const char *message, const char *hint);
json_t *nu_event_dlq(const struct nu_event_origin *o, const char *split, const char *topic,
                     int32_t partition, int64_t offset, unsigned attempts, const char *message);
json_t *nu_event_instance(const struct nu_event_origin *o, const char *type, const char *reason);

/* A hint for common failures, from the error message (NULL when none applies). */
const char *nu_event_hint(const char *code, const char *message);

/* Serialise compactly into `out` (reset first, NUL-terminated, the NUL not counted).
 * Steals the reference to `ev`. */
void nu_event_dump(json_t *ev, struct nu_buf *out);

/* Milliseconds since the epoch. */
int64_t nu_event_now_ms(void);

#endif
