/*
 * test_deploy.c — the Dockerfile and compose.yaml, checked without a container engine by
 * tests/deploy/check_deploy.py (rules, Debian package names, hadolint, docker-compose config,
 * and every nurion command line, flag, setting and NURION_* variable against the real binary).
 * Each check also runs on a broken copy, which it must refuse.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define CHECK_SKIP 77

static int check(const char *what, const char *root, char *out, size_t size)
{
    char cmd[4096];
    size_t n = 0;
    snprintf(cmd, sizeof(cmd), "python3 %s/tests/deploy/check_deploy.py %s %s %s/bin/nurion 2>&1",
             NU_SOURCE_DIR, what, root, NU_BINARY_DIR);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    while (n + 1 < size && !feof(p))
        n += fread(out + n, 1, size - 1 - n, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A copy of the deployment files in a fresh folder, with `from` replaced by `to` in `file`. */
static void broken_copy(char *dir, const char *file, const char *from, const char *to)
{
    char cmd[8192];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(
        cmd, sizeof(cmd),
        "cp -r %s/Dockerfile %s/compose.yaml %s/broker-config %s/examples %s/CMakeLists.txt "
        "%s/src %s/ && "
        "python3 -c 'import sys; p=sys.argv[1]; s=open(p).read(); "
        "assert sys.argv[2] in s; open(p,\"w\").write(s.replace(sys.argv[2], sys.argv[3], 1))' "
        "%s/%s '%s' '%s'",
        NU_SOURCE_DIR, NU_SOURCE_DIR, NU_SOURCE_DIR, NU_SOURCE_DIR, NU_SOURCE_DIR, NU_SOURCE_DIR,
        dir, dir, file, from, to);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void remove_dir(const char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(deploy, dockerfile, .timeout = 120)
{
    static char out[65536];
    int rc = check("dockerfile", NU_SOURCE_DIR, out, sizeof(out));
    if (rc == CHECK_SKIP)
        cr_skip_test("%s", out);
    cr_assert_eq(rc, 0, "%s", out);
}

Test(deploy, dockerfile_rules_can_fail, .timeout = 120)
{
    static char out[65536];
    static const struct {
        const char *from, *to, *expect;
    } cases[] = {
        {"USER 10001:10001", "USER root", "non-root USER"},
        {"        librdkafka1 libavro23", "        libavro23", "librdkafka"},
        {"libpq5 libmicrohttpd12", "libpq5 libmicrohttpd12 libnurion-nonexistent9",
         "libnurion-nonexistent9 does not exist"},
        {"    && rm -rf /var/lib/apt/lists/* \\\n    && groupadd", "    && groupadd",
         "does not clean"},
        {" libvips-dev \\", " \\", "pkg-config module vips"},
        {"CMD [\"--help\"]", "CMD [\"stage\", \"--no-such-flag\"]", "no flag --no-such-flag"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char dir[] = "/tmp/nurion-deploy-XXXXXX";
        broken_copy(dir, "Dockerfile", cases[i].from, cases[i].to);
        int rc = check("dockerfile", dir, out, sizeof(out));
        remove_dir(dir);
        if (rc == CHECK_SKIP)
            cr_skip_test("%s", out);
        cr_expect_eq(rc, 1, "case %zu accepted:\n%s", i, out);
        cr_expect(strstr(out, cases[i].expect), "case %zu: no \"%s\" in:\n%s", i, cases[i].expect,
                  out);
    }
}

Test(deploy, compose, .timeout = 120)
{
    static char out[65536];
    int rc = check("compose", NU_SOURCE_DIR, out, sizeof(out));
    if (rc == CHECK_SKIP)
        cr_skip_test("%s", out);
    cr_assert_eq(rc, 0, "%s", out);
    /* every nurion command line of compose.yaml is checked: none is skipped as unknown */
    cr_assert_null(strstr(out, "is not in this binary yet"), "%s", out);
}

Test(deploy, compose_checks_can_fail, .timeout = 300)
{
    static char out[65536];
    static const struct {
        const char *from, *to, *expect;
    } cases[] = {
        {"\"--stage\", \"dbl\", \"--instance\"", "\"--stage\", \"dbl\", \"--instanse\"",
         "no flag --instanse"},
        {"\"--set\", \"http.listen=0.0.0.0:9464\"]\n    environment:\n      NURION_BROKERS",
         "\"--set\", \"http.lissen=0.0.0.0:9464\"]\n    environment:\n      NURION_BROKERS",
         "no setting http.lissen"},
        {"      NURION_LAUNCHER_MODE:", "      NURION_LAUNCHER_MOOD:", "NURION_LAUNCHER_MOOD"},
        {"condition: service_healthy", "condition: service_happy", "config -q"},
        {"\"/examples/etl.json\", \"--wait\"]", "\"/examples/etl.json\", \"--wiat\"]",
         "no flag --wiat"},
        {"      NURION_COORDINATOR: http", "      NURION_COORDINATER: http", "NURION_COORDINATER"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char dir[] = "/tmp/nurion-deploy-XXXXXX";
        broken_copy(dir, "compose.yaml", cases[i].from, cases[i].to);
        int rc = check("compose", dir, out, sizeof(out));
        remove_dir(dir);
        if (rc == CHECK_SKIP)
            cr_skip_test("%s", out);
        cr_expect_eq(rc, 1, "case %zu accepted:\n%s", i, out);
        cr_expect(strstr(out, cases[i].expect), "case %zu: no \"%s\" in:\n%s", i, cases[i].expect,
                  out);
    }
}
