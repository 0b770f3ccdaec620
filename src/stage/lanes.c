/* lanes.c — lane layout of a job and per-partition lane sets. */
#include "stage/lanes.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

nu_err_t nu_lanes_inputs(const struct nu_job *job, size_t stage, struct nu_stage_input *out,
                         size_t *n, struct nu_errbuf *eb)
{
    const struct nu_job_stage *st = &job->stages[stage];
    *n = 0;
    if (st->nupstream == 0) {
        struct nu_stage_input *in = &out[0];
        nu_job_topic_plan(job, stage, in->topic, sizeof(in->topic));
        in->from_stage = stage;
        in->plan = true;
        in->partitions = st->partitions;
        in->lanes = 1;
        *n = 1;
        return NU_OK;
    }
    for (size_t i = 0; i < st->nupstream; i++) {
        size_t u = st->upstream_idx[i];
        struct nu_stage_input *in = &out[i];
        nu_job_topic_output(job, u, in->topic, sizeof(in->topic));
        in->from_stage = u;
        in->plan = false;
        in->partitions = job->stages[u].partitions;
        in->lanes = nu_lanes_of_stage(job, u);
        if (in->lanes > NU_LANES_MAX)
            return nu_err_set(eb, NU_ERR_TOO_LARGE,
                              "topic \"%s\" would carry %" PRIu32 " end-of-stream lanes, more "
                              "than the limit of %d (reduce the partitions of stage \"%s\"'s "
                              "inputs)",
                              in->topic, in->lanes, NU_LANES_MAX, job->stages[u].id);
    }
    *n = st->nupstream;
    return NU_OK;
}

uint32_t nu_lanes_of_stage(const struct nu_job *job, size_t stage)
{
    const struct nu_job_stage *st = &job->stages[stage];
    if (st->nupstream == 0)
        return (uint32_t)st->partitions;
    uint64_t sum = 0;
    for (size_t i = 0; i < st->nupstream; i++)
        sum += (uint64_t)job->stages[st->upstream_idx[i]].partitions;
    return sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
}

void nu_lane_name(const char *topic, int partition, char *buf, size_t len)
{
    snprintf(buf, len, "%s:%d", topic, partition);
}

nu_err_t nu_lane_index(const struct nu_job *job, size_t writer, bool plan, const char *name,
                       size_t name_len, uint32_t *out, struct nu_errbuf *eb)
{
    char topic[NU_JOB_NAME_MAX];
    const struct nu_job_stage *st = &job->stages[writer];
    if (plan) {
        if (name_len == strlen(NU_LANE_PLAN) && memcmp(name, NU_LANE_PLAN, name_len) == 0) {
            *out = 0;
            return NU_OK;
        }
        goto bad;
    }
    /* split "<topic>:<partition>" at the last colon */
    const char *colon = NULL;
    for (size_t i = name_len; i > 0; i--) {
        if (name[i - 1] == ':') {
            colon = name + i - 1;
            break;
        }
    }
    if (!colon || colon == name || (size_t)(colon - name) >= sizeof(topic))
        goto bad;
    size_t tlen = (size_t)(colon - name);
    char num[16];
    size_t nlen = name_len - tlen - 1;
    if (nlen == 0 || nlen >= sizeof(num))
        goto bad;
    memcpy(num, colon + 1, nlen);
    num[nlen] = '\0';
    char *end;
    long part = strtol(num, &end, 10);
    if (*end || part < 0)
        goto bad;
    uint32_t base = 0;
    size_t ninputs = st->nupstream ? st->nupstream : 1;
    for (size_t i = 0; i < ninputs; i++) {
        int parts;
        if (st->nupstream == 0) {
            nu_job_topic_plan(job, writer, topic, sizeof(topic));
            parts = st->partitions;
        } else {
            nu_job_topic_output(job, st->upstream_idx[i], topic, sizeof(topic));
            parts = job->stages[st->upstream_idx[i]].partitions;
        }
        if (strlen(topic) == tlen && memcmp(topic, name, tlen) == 0 && part < parts) {
            *out = base + (uint32_t)part;
            return NU_OK;
        }
        base += (uint32_t)parts;
    }
bad:
    return nu_err_set(eb, NU_ERR_CORRUPT,
                      "end-of-stream lane \"%.*s\" is not a lane of stage \"%s\"",
                      (int)(name_len > 200 ? 200 : name_len), name, st->id);
}

void nu_lane_set_init(struct nu_lane_set *s, uint32_t total)
{
    s->total = total > NU_LANES_MAX ? NU_LANES_MAX : total;
    s->seen = 0;
    memset(s->bits, 0, (s->total + 7) / 8);
}

bool nu_lane_set_mark(struct nu_lane_set *s, uint32_t i)
{
    if (i >= s->total)
        return false;
    uint8_t bit = (uint8_t)(1u << (i % 8));
    if (s->bits[i / 8] & bit)
        return false;
    s->bits[i / 8] |= bit;
    s->seen++;
    return true;
}

size_t nu_lane_set_encode(const struct nu_lane_set *s, char *buf, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    int n = snprintf(buf, len, "nu1:%" PRIu32 "/%" PRIu32, s->seen, s->total);
    size_t off = n > 0 ? (size_t)n : 0;
    if (nu_lane_set_complete(s) || off >= len)
        return off < len ? off : len - 1;
    if (off + 1 < len)
        buf[off++] = ':';
    for (uint32_t i = 0; i < (s->total + 7) / 8 && off + 2 < len; i++) {
        buf[off++] = hex[s->bits[i] >> 4];
        buf[off++] = hex[s->bits[i] & 15];
    }
    buf[off] = '\0';
    return off;
}

static int nu_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

nu_err_t nu_lane_set_decode(struct nu_lane_set *s, uint32_t total, const char *meta, size_t len,
                            struct nu_errbuf *eb)
{
    char head[48];
    unsigned long seen, tot;
    nu_lane_set_init(s, total);
    if (!meta || len == 0)
        return NU_OK;
    size_t hl = 0;
    while (hl < len && hl < sizeof(head) - 1 && (hl < 4 || meta[hl] != ':')) {
        head[hl] = meta[hl];
        hl++;
    }
    head[hl] = '\0';
    char tail;
    if (sscanf(head, "nu1:%lu/%lu%c", &seen, &tot, &tail) != 2)
        goto bad;
    if (tot != total)
        return nu_err_set(eb, NU_ERR_CORRUPT,
                          "committed lane state has %lu lanes, the job now has %" PRIu32
                          " (was the job changed while it ran?)",
                          tot, total);
    if (seen > tot)
        goto bad;
    if (seen == tot) {
        memset(s->bits, 0xff, (total + 7) / 8);
        s->seen = total;
        return NU_OK;
    }
    if (hl >= len || meta[hl] != ':' || len - hl - 1 != 2 * (size_t)((total + 7) / 8))
        goto bad;
    const char *h = meta + hl + 1;
    for (uint32_t i = 0; i < (total + 7) / 8; i++) {
        int hi = nu_hexval(h[2 * i]), lo = nu_hexval(h[2 * i + 1]);
        if (hi < 0 || lo < 0)
            goto bad;
        uint8_t byte = (uint8_t)(hi << 4 | lo);
        for (uint32_t b = 0; b < 8; b++)
            if (byte & (1u << b))
                nu_lane_set_mark(s, i * 8 + b);
    }
    if (s->seen != seen)
        goto bad;
    return NU_OK;
bad:
    nu_lane_set_init(s, total);
    return nu_err_set(eb, NU_ERR_CORRUPT, "committed offset metadata \"%.*s\" is not lane state",
                      (int)(len > 64 ? 64 : len), meta);
}
