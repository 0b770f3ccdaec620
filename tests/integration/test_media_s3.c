/* test_media_s3.c — the blob store's s3:// backend against a real S3 API server: s3proxy
 * (scripts/s3proxy) on 127.0.0.1, with SigV4 authentication checked by the server. */
#include "stage/blob.h"

#include "common/mem.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct nu_blob_conf s3conf;

static void s3_up(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s/scripts/s3proxy up >&2", NU_SOURCE_DIR);
    cr_assert_eq(system(cmd), 0, "could not start s3proxy");
    memset(&s3conf, 0, sizeof(s3conf));
    s3conf.endpoint = "http://127.0.0.1:18090";
    if (getenv("NU_S3_PORT"))
        s3conf.endpoint = nu_xasprintf("http://127.0.0.1:%s", getenv("NU_S3_PORT"));
    s3conf.region = "us-east-1";
    s3conf.path_style = true;
    s3conf.access_key = "nurion";
    s3conf.secret_key = "nurion-secret-key";
}

TestSuite(media_s3, .init = s3_up, .timeout = 120);

Test(media_s3, put_get_stat_delete_round_trip)
{
    nu_blob_t *b = NULL;
    struct nu_errbuf eb = {0};
    char key[128], *uri;
    void *data = NULL;
    size_t len = 0;
    int64_t size = 0;

    cr_assert_eq(nu_blob_new(&s3conf, &b, &eb), NU_OK);
    cr_assert_eq(nu_blob_s3_mkbucket(b, "nurion-test", &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_blob_s3_mkbucket(b, "nurion-test", &eb), NU_OK, "%s", nu_err_msg(&eb));
    snprintf(key, sizeof(key), "s3://nurion-test/dir/obj %ld+1.bin", (long)getpid());
    uri = key;
    cr_assert_eq(nu_blob_stat(b, uri, &size, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(size, -1);
    unsigned char big[100000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (unsigned char)(i * 7 + 3);
    cr_assert_eq(nu_blob_put_mem(b, uri, big, sizeof(big), "application/octet-stream", &eb), NU_OK,
                 "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_blob_stat(b, uri, &size, &eb), NU_OK);
    cr_assert_eq(size, (int64_t)sizeof(big));
    cr_assert_eq(nu_blob_get_mem(b, uri, -1, &data, &len, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(len, sizeof(big));
    cr_assert_eq(memcmp(data, big, len), 0);
    free(data);
    cr_assert_eq(nu_blob_get_mem(b, uri, 1000, &data, &len, &eb), NU_ERR_TOO_LARGE);
    nu_errbuf_clear(&eb);
    /* via a local file, both ways */
    char tmp[] = "/tmp/nu-s3-test-XXXXXX";
    int fd = mkstemp(tmp);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(nu_blob_get_file(b, uri, tmp, -1, &eb), NU_OK, "%s", nu_err_msg(&eb));
    char *uri2 = nu_xasprintf("%s.copy", uri);
    cr_assert_eq(nu_blob_put_file(b, uri2, tmp, NULL, &eb), NU_OK, "%s", nu_err_msg(&eb));
    char *local = NULL;
    bool temp = false;
    cr_assert_eq(nu_blob_local(b, uri2, "/tmp", -1, &local, &temp, &eb), NU_OK);
    cr_assert(temp);
    FILE *f = fopen(local, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    cr_assert_eq(ftell(f), (long)sizeof(big));
    fclose(f);
    unlink(local);
    free(local);
    unlink(tmp);
    cr_assert_eq(nu_blob_delete(b, uri, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_blob_delete(b, uri2, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_blob_stat(b, uri, &size, &eb), NU_OK);
    cr_assert_eq(size, -1);
    cr_assert_eq(nu_blob_get_mem(b, uri, -1, &data, &len, &eb), NU_ERR_NOT_FOUND);
    free(uri2);
    nu_blob_destroy(b);
}

Test(media_s3, wrong_secret_is_a_config_error_and_missing_bucket_not_found)
{
    struct nu_blob_conf bad = s3conf;
    nu_blob_t *b = NULL;
    struct nu_errbuf eb = {0};
    bad.secret_key = "wrong";
    cr_assert_eq(nu_blob_new(&bad, &b, &eb), NU_OK);
    cr_assert_eq(nu_blob_put_mem(b, "s3://nurion-test/x", "x", 1, NULL, &eb), NU_ERR_CONFIG, "%s",
                 nu_err_msg(&eb));
    cr_assert(strstr(nu_err_msg(&eb), "403"), "%s", nu_err_msg(&eb));
    nu_blob_destroy(b);
    cr_assert_eq(nu_blob_new(&s3conf, &b, &eb), NU_OK);
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_blob_put_mem(b, "s3://no-such-bucket-nurion/x", "x", 1, NULL, &eb),
                 NU_ERR_NOT_FOUND, "%s", nu_err_msg(&eb));
    nu_blob_destroy(b);
}
