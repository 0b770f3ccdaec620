/* Tests of src/stage/lanes.c: lane layout of a job, lane sets and their offset metadata. */
#include "stage/lanes.h"

#include <criterion/criterion.h>
#include <string.h>

/* src(3 plan partitions) -> a(4) ; src -> b(2) ; a,b -> sink (union) */
static const char *spec = "{\"job_id\":\"j\",\"stages\":["
                          "{\"id\":\"src\",\"operator\":\"generate\",\"partitions\":3},"
                          "{\"id\":\"a\",\"operator\":\"map\",\"upstream\":[\"src\"],"
                          "\"partitions\":4},"
                          "{\"id\":\"b\",\"operator\":\"map\",\"upstream\":[\"src\"],"
                          "\"partitions\":2},"
                          "{\"id\":\"sink\",\"operator\":\"file_sink\",\"upstream\":[\"a\",\"b\"]}"
                          "]}";

static struct nu_job *load(void)
{
    struct nu_job *job = NULL;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_job_parse(spec, strlen(spec), NULL, &job, NULL, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    return job;
}

Test(lanes, inputs_and_lane_counts_follow_the_dag)
{
    struct nu_job *job = load();
    struct nu_stage_input in[NU_JOB_MAX_UPSTREAMS];
    size_t n = 0, src = 0, a = 0, sink = 0;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert(nu_job_stage_find(job, "src", &src));
    cr_assert(nu_job_stage_find(job, "a", &a));
    cr_assert(nu_job_stage_find(job, "sink", &sink));

    cr_assert_eq(nu_lanes_inputs(job, src, in, &n, &eb), NU_OK);
    cr_assert_eq(n, 1);
    cr_assert(in[0].plan);
    cr_assert_str_eq(in[0].topic, "nurion.j.src.plan");
    cr_assert_eq(in[0].lanes, 1);
    cr_assert_eq(in[0].partitions, 3);

    /* a source writes one lane per plan partition; a transform the sum of its inputs */
    cr_assert_eq(nu_lanes_of_stage(job, src), 3);
    cr_assert_eq(nu_lanes_of_stage(job, a), 3);
    cr_assert_eq(nu_lanes_of_stage(job, sink), 6);

    cr_assert_eq(nu_lanes_inputs(job, sink, in, &n, &eb), NU_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(in[0].topic, "nurion.j.a");
    cr_assert_eq(in[0].partitions, 4);
    cr_assert_eq(in[0].lanes, 3);
    cr_assert_str_eq(in[1].topic, "nurion.j.b");
    cr_assert_eq(in[1].partitions, 2);
    nu_job_destroy(job);
}

Test(lanes, lane_names_map_to_dense_indices)
{
    struct nu_job *job = load();
    size_t sink = 0, src = 0;
    uint32_t idx = 99;
    char name[NU_JOB_NAME_MAX + 16];
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert(nu_job_stage_find(job, "sink", &sink));
    cr_assert(nu_job_stage_find(job, "src", &src));

    nu_lane_name("nurion.j.b", 1, name, sizeof(name));
    cr_assert_str_eq(name, "nurion.j.b:1");
    cr_assert_eq(nu_lane_index(job, sink, false, name, strlen(name), &idx, &eb), NU_OK);
    cr_assert_eq(idx, 4 + 1, "b comes after a's 4 partitions");

    cr_assert_eq(nu_lane_index(job, src, true, "plan", 4, &idx, &eb), NU_OK);
    cr_assert_eq(idx, 0);

    const char *bad[] = {"nurion.j.b:2", "nurion.j.c:0", "nurion.j.a", "nurion.j.a:-1",
                         "nurion.j.a:x", ":1",           "plan"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nu_errbuf_clear(&eb);
        cr_assert_eq(nu_lane_index(job, sink, false, bad[i], strlen(bad[i]), &idx, &eb),
                     NU_ERR_CORRUPT, "%s", bad[i]);
        cr_assert(strstr(nu_err_msg(&eb), "is not a lane of stage \"sink\""));
    }
    nu_job_destroy(job);
}

Test(lanes, set_marks_each_lane_once)
{
    struct nu_lane_set s;
    nu_lane_set_init(&s, 3);
    cr_assert_not(nu_lane_set_complete(&s));
    cr_assert(nu_lane_set_mark(&s, 1));
    cr_assert_not(nu_lane_set_mark(&s, 1), "a repeated eos is ignored");
    cr_assert_not(nu_lane_set_mark(&s, 3), "out of range");
    cr_assert(nu_lane_set_mark(&s, 0));
    cr_assert(nu_lane_set_mark(&s, 2));
    cr_assert(nu_lane_set_complete(&s));
}

Test(lanes, metadata_round_trips)
{
    struct nu_lane_set s, t;
    char buf[NU_LANES_MAX / 4 + 32];
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    nu_lane_set_init(&s, 20);
    nu_lane_set_mark(&s, 0);
    nu_lane_set_mark(&s, 9);
    nu_lane_set_mark(&s, 19);
    size_t n = nu_lane_set_encode(&s, buf, sizeof(buf));
    cr_assert_str_eq(buf, "nu1:3/20:010208");
    cr_assert_eq(n, strlen(buf));
    cr_assert_eq(nu_lane_set_decode(&t, 20, buf, n, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(t.seen, 3);
    cr_assert_not(nu_lane_set_mark(&t, 9));
    cr_assert(nu_lane_set_mark(&t, 10));

    /* complete sets drop the bitmap */
    nu_lane_set_init(&s, 2);
    nu_lane_set_mark(&s, 0);
    nu_lane_set_mark(&s, 1);
    nu_lane_set_encode(&s, buf, sizeof(buf));
    cr_assert_str_eq(buf, "nu1:2/2");
    cr_assert_eq(nu_lane_set_decode(&t, 2, buf, strlen(buf), &eb), NU_OK);
    cr_assert(nu_lane_set_complete(&t));

    /* no metadata yet: nothing seen */
    cr_assert_eq(nu_lane_set_decode(&t, 5, NULL, 0, &eb), NU_OK);
    cr_assert_eq(t.seen, 0);

    /* the largest set fits Kafka's default offset metadata limit */
    nu_lane_set_init(&s, NU_LANES_MAX);
    nu_lane_set_mark(&s, 7);
    cr_assert_lt(nu_lane_set_encode(&s, buf, sizeof(buf)), 4096);
}

Test(lanes, bad_metadata_is_rejected)
{
    struct nu_lane_set t;
    const char *bad[] = {"hello",           "nu1:1/20", "nu1:1/20:zz",
                         "nu1:3/20:010200", "nu1:5/4",  "nu1:1/20:0102"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct nu_errbuf eb;
        nu_errbuf_clear(&eb);
        cr_assert_eq(nu_lane_set_decode(&t, 20, bad[i], strlen(bad[i]), &eb), NU_ERR_CORRUPT, "%s",
                     bad[i]);
        cr_assert_eq(t.seen, 0);
    }
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_lane_set_decode(&t, 21, "nu1:2/20:0100", 13, &eb), NU_ERR_CORRUPT);
    cr_assert(strstr(nu_err_msg(&eb), "the job now has 21"));
}
