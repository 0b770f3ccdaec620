/* Tests of nu_stage_known_complete (src/stage/stage_txn.c): when a stage instance may consider
 * its stage complete from the lane state it committed or read itself, without asking the group. */
#include "stage/stage_int.h"

#include <criterion/criterion.h>
#include <string.h>

/* One input of 2 partitions with 2 lanes each; parts[] describes what the instance knows. */
struct fixture {
    struct nu_job_stage js;
    struct nu_stage st;
    struct nu_part parts[2];
};

static void fixture_init(struct fixture *f, int parallelism_max)
{
    memset(f, 0, sizeof(*f));
    f->js.parallelism_min = 1;
    f->js.parallelism_max = parallelism_max;
    f->st.js = &f->js;
    f->st.ninputs = 1;
    snprintf(f->st.inputs[0].topic, sizeof(f->st.inputs[0].topic), "nurion.j.src");
    f->st.inputs[0].partitions = 2;
    f->st.inputs[0].lanes = 2;
    f->st.parts = f->parts;
    f->st.capparts = 2;
}

/* Add what the instance knows of `partition`: its committed lanes seen, or not read yet. */
static void know(struct fixture *f, int32_t partition, int lanes_seen, bool read)
{
    struct nu_part *pt = &f->parts[f->st.nparts++];
    pt->input = 0;
    pt->partition = partition;
    pt->need_init = !read;
    nu_lane_set_init(&pt->base, 2);
    for (int i = 0; i < lanes_seen; i++)
        nu_lane_set_mark(&pt->base, (uint32_t)i);
    pt->lanes = pt->base;
}

Test(stage_complete, known_only_when_every_partition_is_committed_complete)
{
    static const struct {
        int parallelism_max;
        int n;
        struct {
            int32_t partition;
            int lanes_seen;
            bool read;
        } k[2];
        bool complete;
    } cases[] = {
        {1, 0, {{0}}, false},                         /* nothing known yet */
        {1, 1, {{0, 2, true}}, false},                /* one partition of two */
        {1, 2, {{0, 2, true}, {1, 1, true}}, false},  /* one lane still open */
        {1, 2, {{0, 2, true}, {1, 2, false}}, false}, /* state not read yet */
        {1, 2, {{0, 2, true}, {1, 2, true}}, true},   /* all complete */
        {1, 2, {{0, 2, true}, {5, 2, true}}, false},  /* a partition outside the input */
        {2, 2, {{0, 2, true}, {1, 2, true}}, false},  /* other instances may exist */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fixture f;
        fixture_init(&f, cases[i].parallelism_max);
        for (int k = 0; k < cases[i].n; k++)
            know(&f, cases[i].k[k].partition, cases[i].k[k].lanes_seen, cases[i].k[k].read);
        cr_assert_eq(nu_stage_known_complete(&f.st), cases[i].complete, "case %zu", i);
    }
}
