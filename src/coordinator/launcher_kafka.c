/* launcher_kafka.c — what the launcher reads from Kafka: live group members, offsets and lag. */
#include "coordinator/launcher_int.h"

#include "common/mem.h"
#include "stage/lanes.h"

#include <stdlib.h>
#include <string.h>

/* Run one admin request whose answer arrives on `q`; returns the event (owned) or NULL. */
static rd_kafka_event_t *nu_launcher_admin_wait(rd_kafka_queue_t *q)
{
    return rd_kafka_queue_poll(q, NU_LAUNCHER_KAFKA_WAIT_MS + 2000);
}

static rd_kafka_AdminOptions_t *nu_launcher_admin_opts(rd_kafka_t *admin, rd_kafka_admin_op_t op)
{
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(admin, op);
    rd_kafka_AdminOptions_set_request_timeout(o, NU_LAUNCHER_KAFKA_WAIT_MS, NULL, 0);
    return o;
}

nu_err_t nu_launcher_group_live(rd_kafka_t *admin, const char *group, bool *live, int nlive,
                                int *members, struct nu_errbuf *eb)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(admin);
    rd_kafka_AdminOptions_t *o =
        nu_launcher_admin_opts(admin, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
    rd_kafka_event_t *ev = NULL;
    const char *groups[] = {group};
    nu_err_t err = NU_OK;

    memset(live, 0, (size_t)nlive * sizeof(*live));
    *members = 0;
    rd_kafka_DescribeConsumerGroups(admin, groups, 1, o, q);
    ev = nu_launcher_admin_wait(q);
    if (!ev) {
        err = nu_err_set(eb, NU_ERR_TIMEOUT, "could not describe consumer group \"%s\": no answer",
                         group);
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        err = nu_err_set(eb, nu_kafka_err_code(rd_kafka_event_error(ev)),
                         "could not describe consumer group \"%s\": %s", group,
                         rd_kafka_event_error_string(ev));
        goto out;
    }
    size_t n = 0;
    const rd_kafka_ConsumerGroupDescription_t **d = rd_kafka_DescribeConsumerGroups_result_groups(
        rd_kafka_event_DescribeConsumerGroups_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_error_t *ge = rd_kafka_ConsumerGroupDescription_error(d[i]);
        if (ge) {
            err = nu_err_set(eb, nu_kafka_err_code(rd_kafka_error_code(ge)),
                             "could not describe consumer group \"%s\": %s", group,
                             rd_kafka_error_string(ge));
            goto out;
        }
        size_t m = rd_kafka_ConsumerGroupDescription_member_count(d[i]);
        for (size_t k = 0; k < m; k++) {
            const rd_kafka_MemberDescription_t *md =
                rd_kafka_ConsumerGroupDescription_member(d[i], k);
            int idx =
                nu_launcher_member_index(group, rd_kafka_MemberDescription_group_instance_id(md));
            (*members)++;
            if (idx >= 0 && idx < nlive)
                live[idx] = true;
        }
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    return err;
}

/* Committed offsets of `group` for the partitions of `list` (written into list offsets). */
static nu_err_t nu_launcher_committed(rd_kafka_t *admin, const char *group,
                                      rd_kafka_topic_partition_list_t *list, struct nu_errbuf *eb)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(admin);
    rd_kafka_AdminOptions_t *o =
        nu_launcher_admin_opts(admin, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(group, list);
    rd_kafka_event_t *ev = NULL;
    nu_err_t err = NU_OK;

    rd_kafka_ListConsumerGroupOffsets(admin, &req, 1, o, q);
    ev = nu_launcher_admin_wait(q);
    if (!ev) {
        err = nu_err_set(eb, NU_ERR_TIMEOUT, "could not list offsets of group \"%s\": no answer",
                         group);
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        err = nu_err_set(eb, nu_kafka_err_code(rd_kafka_event_error(ev)),
                         "could not list offsets of group \"%s\": %s", group,
                         rd_kafka_event_error_string(ev));
        goto out;
    }
    size_t n = 0;
    const rd_kafka_group_result_t **gr = rd_kafka_ListConsumerGroupOffsets_result_groups(
        rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_error_t *ge = rd_kafka_group_result_error(gr[i]);
        if (ge) {
            err = nu_err_set(eb, nu_kafka_err_code(rd_kafka_error_code(ge)),
                             "could not list offsets of group \"%s\": %s", group,
                             rd_kafka_error_string(ge));
            goto out;
        }
        const rd_kafka_topic_partition_list_t *parts = rd_kafka_group_result_partitions(gr[i]);
        for (int k = 0; parts && k < parts->cnt; k++) {
            rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(
                list, parts->elems[k].topic, parts->elems[k].partition);
            if (tp && !parts->elems[k].err)
                tp->offset = parts->elems[k].offset;
        }
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    return err;
}

nu_err_t nu_launcher_lag_read(rd_kafka_t *admin, const struct nu_job *job, size_t stage,
                              struct nu_lag_part **parts, size_t *n, char (*names)[NU_JOB_NAME_MAX],
                              struct nu_errbuf *eb)
{
    struct nu_stage_input *in = nu_xcalloc(NU_JOB_MAX_UPSTREAMS, sizeof(*in));
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
    char group[NU_JOB_NAME_MAX];
    size_t nin = 0, total = 0;
    nu_err_t err;

    *parts = NULL;
    *n = 0;
    err = nu_lanes_inputs(job, stage, in, &nin, eb);
    if (err)
        goto out;
    for (size_t i = 0; i < nin; i++) {
        snprintf(names[i], NU_JOB_NAME_MAX, "%s", in[i].topic);
        for (int p = 0; p < in[i].partitions; p++)
            rd_kafka_topic_partition_list_add(list, in[i].topic, p)->offset = -1;
        total += (size_t)in[i].partitions;
    }
    nu_job_group(job, stage, group, sizeof(group));
    err = nu_launcher_committed(admin, group, list, eb);
    if (err)
        goto out;
    *parts = nu_xcalloc(total ? total : 1, sizeof(**parts));
    for (size_t i = 0, k = 0; i < nin; i++) {
        for (int p = 0; p < in[i].partitions; p++, k++) {
            struct nu_lag_part *lp = &(*parts)[k];
            int64_t lo = 0, hi = 0;
            rd_kafka_resp_err_t rerr = rd_kafka_query_watermark_offsets(
                admin, in[i].topic, p, &lo, &hi, NU_LAUNCHER_KAFKA_WAIT_MS);
            if (rerr) {
                err = nu_err_set(eb, nu_kafka_err_code(rerr),
                                 "could not read the end offset of topic \"%s\" partition %d: %s",
                                 in[i].topic, p, rd_kafka_err2str(rerr));
                goto out;
            }
            lp->topic = names[i];
            lp->partition = p;
            lp->low = lo;
            lp->end = hi;
            lp->committed = rd_kafka_topic_partition_list_find(list, in[i].topic, p)->offset;
            if (lp->committed < 0)
                lp->committed = -1;
        }
    }
    *n = total;
out:
    if (err) {
        free(*parts);
        *parts = NULL;
    }
    rd_kafka_topic_partition_list_destroy(list);
    free(in);
    return err;
}
