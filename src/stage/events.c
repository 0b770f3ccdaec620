/* events.c — JSON events of the events topic. */
#include "stage/events.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t nu_event_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

json_t *nu_event_new(const struct nu_event_origin *o, const char *type)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I}", "type", type, "job", o->job, "stage", o->stage,
                     "instance", (json_int_t)o->instance, "ts", (json_int_t)nu_event_now_ms());
}

static json_t *nu_event_csv_array(const char *csv)
{
    json_t *arr = json_array();
    const char *p = csv;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n)
            json_array_append_new(arr, json_stringn(p, n));
        p = comma ? comma + 1 : NULL;
    }
    return arr;
}

json_t *nu_event_split_done(const struct nu_event_origin *o, const char *split,
                            const char *parents_csv, int64_t rows_in, int64_t rows_out,
                            int64_t bytes_in, int64_t bytes_out, double ms, const char *topic,
                            int32_t partition, int64_t offset)
{
    json_t *ev = nu_event_new(o, "split_done");
    json_object_set_new(ev, "split", json_string(split));
    json_object_set_new(ev, "parents", nu_event_csv_array(parents_csv));
    json_object_set_new(ev, "rows_in", json_integer(rows_in));
    json_object_set_new(ev, "rows_out", json_integer(rows_out));
    json_object_set_new(ev, "bytes_in", json_integer(bytes_in));
    json_object_set_new(ev, "bytes_out", json_integer(bytes_out));
    json_object_set_new(ev, "ms", json_real(ms));
    json_object_set_new(ev, "topic", json_string(topic));
    json_object_set_new(ev, "partition", json_integer(partition));
    json_object_set_new(ev, "offset", json_integer(offset));
    json_object_set_new(ev, "outputs", json_array());
    return ev;
}

json_t *nu_event_partition_done(const struct nu_event_origin *o, const char *topic,
                                int32_t partition)
{
    json_t *ev = nu_event_new(o, "partition_done");
    json_object_set_new(ev, "topic", json_string(topic));
    json_object_set_new(ev, "partition", json_integer(partition));
    return ev;
}

json_t *nu_event_error(const struct nu_event_origin *o, const char *split, unsigned attempt,
                       const char *code, const char *message, const char *hint)
{
    json_t *ev = nu_event_new(o, "error");
    json_object_set_new(ev, "split", split ? json_string(split) : json_null());
    json_object_set_new(ev, "attempt", json_integer(attempt));
    json_object_set_new(ev, "code", json_string(code));
    json_object_set_new(ev, "message", json_string(message));
    json_object_set_new(ev, "hint", hint ? json_string(hint) : json_null());
    return ev;
}

json_t *nu_event_dlq(const struct nu_event_origin *o, const char *split, const char *topic,
                     int32_t partition, int64_t offset, unsigned attempts, const char *message)
{
    json_t *ev = nu_event_new(o, "dlq");
    json_object_set_new(ev, "split", json_string(split));
    json_object_set_new(ev, "topic", json_string(topic));
    json_object_set_new(ev, "partition", json_integer(partition));
    json_object_set_new(ev, "offset", json_integer(offset));
    json_object_set_new(ev, "attempts", json_integer(attempts));
    json_object_set_new(ev, "message", json_string(message));
    return ev;
}

json_t *nu_event_instance(const struct nu_event_origin *o, const char *type, const char *reason)
{
    char host[256] = "";
    json_t *ev = nu_event_new(o, type);
    gethostname(host, sizeof(host) - 1);
    json_object_set_new(ev, "pid", json_integer(getpid()));
    json_object_set_new(ev, "host", json_string(host));
    if (reason)
        json_object_set_new(ev, "reason", json_string(reason));
    return ev;
}

struct nu_event_hint_rule {
    const char *needle, *hint;
};

const char *nu_event_hint(const char *code, const char *message)
{
    static const struct nu_event_hint_rule rules[] = {
        {"division by zero", "filter out rows whose divisor is 0 before this stage (e.g. "
                             "`where: \"d != 0\"`)"},
        {"integer overflow", "the result does not fit in int64: cast to double first"},
        {"invalid cast", "the value does not parse as the target type: clean it or use "
                         "coalesce()"},
        {"unknown column", "check the column names of the upstream stage's output"},
        {"too large", "the record is over the broker's message.max.bytes: lower split_rows or "
                      "store large values as blob references"},
        {"corrupt", "the input record could not be decoded: check the producer's format"},
        {"No such file", "check the path exists on every host running the stage"},
        {"Permission denied", "check the stage process can read/write the path"},
    };
    (void)code;
    if (!message)
        return NULL;
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        if (strstr(message, rules[i].needle))
            return rules[i].hint;
    return NULL;
}

void nu_event_dump(json_t *ev, struct nu_buf *out)
{
    nu_buf_reset(out);
    char *s = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (s) {
        nu_buf_append(out, s, strlen(s));
        free(s);
    }
    *nu_buf_reserve(out, 1) = '\0';
}
