/* Tests of src/common/config.c: layering, parsing, bounds, pass-through, secrets, docs. */
#include "common/config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct nu_conf_def defs[] = {
    {"commit.interval", "NUT_COMMIT_INTERVAL", NU_CONF_DURATION, "100ms", 1, 60000, NULL, false,
     false, "how often to commit"},
    {"max.splits", "NUT_MAX_SPLITS", NU_CONF_INT, "1000", 1, 100000, NULL, false, false, "splits"},
    {"format", NULL, NU_CONF_ENUM, "avro", 0, 0, "avro|json", false, false, "record format"},
    {"verbose", "NUT_VERBOSE", NU_CONF_BOOL, "false", 0, 0, NULL, false, false, "chatty"},
    {"ratio", NULL, NU_CONF_DOUBLE, "2.0", 0.5, 10, NULL, false, false, "skew ratio"},
    {"max.bytes", NULL, NU_CONF_SIZE, "1MiB", 0, 0, NULL, false, false, "limit"},
    {"db.password", "NUT_DB_PASSWORD", NU_CONF_STRING, NULL, 0, 0, NULL, true, false, "secret"},
    {"brokers", "NUT_BROKERS", NU_CONF_STRING, NULL, 0, 0, NULL, false, true, "bootstrap servers"},
};
#define NDEFS (sizeof(defs) / sizeof(defs[0]))

Test(config, defaults_are_applied_and_typed)
{
    nu_conf_t *c = nu_conf_new(defs, NDEFS, "kafka.");
    cr_assert_eq(nu_conf_int(c, "commit.interval"), 100);
    cr_assert_eq(nu_conf_int(c, "max.splits"), 1000);
    cr_assert_str_eq(nu_conf_str(c, "format"), "avro");
    cr_assert_not(nu_conf_bool(c, "verbose"));
    cr_assert_float_eq(nu_conf_double(c, "ratio"), 2.0, 1e-9);
    cr_assert_eq(nu_conf_int(c, "max.bytes"), 1048576);
    cr_assert_null(nu_conf_str(c, "brokers"));
    cr_assert_str_eq(nu_conf_origin(c, "format"), "default");
    nu_conf_destroy(c);
}

Test(config, layers_apply_in_order_file_env_set)
{
    char path[] = "/tmp/nurion-conf-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# comment\n\nmax.splits = 10\ncommit.interval=5s\nkafka.linger.ms = 7\n");
    fclose(f);

    nu_conf_t *c = nu_conf_new(defs, NDEFS, "kafka.");
    struct nu_problems p;
    nu_problems_init(&p);
    cr_assert_eq(nu_conf_load_file(c, path, &p), 0);
    cr_assert_eq(nu_conf_int(c, "max.splits"), 10);
    cr_assert_eq(nu_conf_int(c, "commit.interval"), 5000);
    cr_assert(strstr(nu_conf_origin(c, "max.splits"), ":3") != NULL);

    setenv("NUT_MAX_SPLITS", "20", 1);
    cr_assert_eq(nu_conf_load_env(c, &p), 0);
    cr_assert_eq(nu_conf_int(c, "max.splits"), 20);
    cr_assert_str_eq(nu_conf_origin(c, "max.splits"), "env NUT_MAX_SPLITS");
    unsetenv("NUT_MAX_SPLITS");

    cr_assert_eq(nu_conf_set_kv(c, "max.splits=30", "--set", &p), 0);
    cr_assert_eq(nu_conf_int(c, "max.splits"), 30);

    cr_assert_eq(nu_conf_passthrough_count(c), 1);
    const char *k, *v;
    nu_conf_passthrough_get(c, 0, &k, &v);
    cr_assert_str_eq(k, "linger.ms");
    cr_assert_str_eq(v, "7");
    cr_assert_eq(p.n, 0);
    nu_problems_free(&p);
    nu_conf_destroy(c);
    unlink(path);
}

Test(config, every_problem_is_reported_with_its_origin)
{
    nu_conf_t *c = nu_conf_new(defs, NDEFS, "kafka.");
    struct nu_problems p;
    nu_problems_init(&p);
    nu_conf_set_kv(c, "max.splits=abc", "--set", &p);
    nu_conf_set_kv(c, "max.splits=0", "--set", &p);
    nu_conf_set_kv(c, "format=xml", "--set", &p);
    nu_conf_set_kv(c, "nosuch=1", "--set", &p);
    nu_conf_set_kv(c, "commit.interval=soon", "--set", &p);
    nu_conf_set_kv(c, "verbose=maybe", "--set", &p);
    nu_conf_set_kv(c, "noequals", "--set", &p);
    nu_conf_validate(c, &p);
    cr_assert_eq(p.n, 8, "got %zu problems", p.n);
    cr_assert(strstr(p.items[0].message, "expected an integer"));
    cr_assert(strstr(p.items[1].message, "out of range"));
    cr_assert(strstr(p.items[2].message, "avro|json"));
    cr_assert(strstr(p.items[3].message, "unknown configuration key \"nosuch\""));
    cr_assert(strstr(p.items[4].message, "duration"));
    cr_assert(strstr(p.items[5].message, "boolean"));
    cr_assert(strstr(p.items[6].message, "key=value"));
    cr_assert(strstr(p.items[7].message, "NUT_BROKERS"));
    /* a rejected value leaves the previous one */
    cr_assert_eq(nu_conf_int(c, "max.splits"), 1000);
    nu_problems_free(&p);
    nu_conf_destroy(c);
}

Test(config, missing_file_is_a_problem)
{
    nu_conf_t *c = nu_conf_new(defs, NDEFS, NULL);
    struct nu_problems p;
    nu_problems_init(&p);
    cr_assert_eq(nu_conf_load_file(c, "/nonexistent/nurion.conf", &p), 1);
    cr_assert(strstr(p.items[0].message, "could not open configuration file"));
    nu_problems_free(&p);
    nu_conf_destroy(c);
}

Test(config, secrets_are_masked)
{
    nu_conf_t *c = nu_conf_new(defs, NDEFS, "kafka.");
    struct nu_problems p;
    nu_problems_init(&p);
    nu_conf_set(c, "db.password", "hunter2", "--set", &p);
    nu_conf_set(c, "kafka.sasl.password", "s3cret", "--set", &p);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    nu_conf_dump(c, out);
    fclose(out);
    cr_assert_null(strstr(buf, "hunter2"));
    cr_assert_null(strstr(buf, "s3cret"));
    cr_assert(strstr(buf, "db.password = ********"));
    free(buf);
    nu_problems_free(&p);
    nu_conf_destroy(c);
}

Test(config, unit_parsers)
{
    int64_t v;
    cr_assert(nu_conf_parse_duration_ms("250ms", &v) && v == 250);
    cr_assert(nu_conf_parse_duration_ms("2m", &v) && v == 120000);
    cr_assert(nu_conf_parse_duration_ms("1.5s", &v) && v == 1500);
    cr_assert_not(nu_conf_parse_duration_ms("-1s", &v));
    cr_assert_not(nu_conf_parse_duration_ms("5 parsecs", &v));
    cr_assert(nu_conf_parse_size("64KiB", &v) && v == 65536);
    cr_assert(nu_conf_parse_size("2MB", &v) && v == 2000000);
    cr_assert_not(nu_conf_parse_size("lots", &v));
}

Test(config, markdown_reference_lists_every_key)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    nu_conf_doc_markdown(defs, NDEFS, "test", out);
    fclose(out);
    for (size_t i = 0; i < NDEFS; i++)
        cr_assert(strstr(buf, defs[i].name), "missing %s", defs[i].name);
    cr_assert(strstr(buf, "(required)"));
    free(buf);
}
