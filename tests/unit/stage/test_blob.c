/* test_blob.c — the blob store's pure parts and its file:// backend: AWS Signature V4 against
 * AWS's published examples, URI parsing, content-addressed names, atomic idempotent puts,
 * gets with limits, stat, delete and the sweep of crashed writers' part files. */
#include "stage/blob_int.h"

#include "common/mem.h"
#include "common/sha256.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

Test(blob, sigv4_signing_key_matches_aws_example)
{
    /* AWS General Reference, "Examples of how to derive a signing key" (IAM, 2012-02-15) */
    unsigned char key[32];
    char hex[65];
    nu_sigv4_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam", key);
    nu_sha256_hex(key, 32, hex);
    cr_assert_str_eq(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

Test(blob, sigv4_get_vanilla_matches_aws_test_suite)
{
    /* AWS Signature V4 test suite, case get-vanilla */
    struct nu_sigv4_header h[] = {{"x-amz-date", "20150830T123600Z"},
                                  {"host", "example.amazonaws.com"}};
    struct nu_sigv4_req r = {
        .method = "GET",
        .path = "/",
        .query = "",
        .headers = h,
        .nheaders = 2,
        .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        .amz_date = "20150830T123600Z",
        .region = "us-east-1",
        .service = "service",
        .access_key = "AKIDEXAMPLE",
        .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    };
    char sig[65], auth[NU_SIGV4_AUTH_MAX];
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_sigv4_sign(&r, sig, auth, &eb), NU_OK);
    cr_assert_str_eq(sig, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    cr_assert_str_eq(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                           "aws4_request, SignedHeaders=host;x-amz-date, Signature="
                           "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

Test(blob, sigv4_s3_get_object_matches_aws_example)
{
    /* Amazon S3 API reference, "Example: GET Object" with a Range header */
    struct nu_sigv4_header h[] = {
        {"host", "examplebucket.s3.amazonaws.com"},
        {"range", "bytes=0-9"},
        {"x-amz-content-sha256",
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"x-amz-date", "20130524T000000Z"}};
    struct nu_sigv4_req r = {
        .method = "GET",
        .path = "/test.txt",
        .query = "",
        .headers = h,
        .nheaders = 4,
        .payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        .amz_date = "20130524T000000Z",
        .region = "us-east-1",
        .service = "s3",
        .access_key = "AKIAIOSFODNN7EXAMPLE",
        .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    };
    char sig[65];
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_sigv4_sign(&r, sig, NULL, &eb), NU_OK);
    cr_assert_str_eq(sig, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

Test(blob, sigv4_refuses_too_many_headers)
{
    struct nu_sigv4_header h[NU_SIGV4_MAX_HEADERS + 1];
    for (size_t i = 0; i < NU_SIGV4_MAX_HEADERS + 1; i++)
        h[i] = (struct nu_sigv4_header){"x", "y"};
    struct nu_sigv4_req r = {.method = "GET",
                             .path = "/",
                             .headers = h,
                             .nheaders = NU_SIGV4_MAX_HEADERS + 1,
                             .payload_hash = "x",
                             .amz_date = "20130524T000000Z",
                             .region = "r",
                             .service = "s3",
                             .access_key = "a",
                             .secret_key = "s"};
    char sig[65];
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_sigv4_sign(&r, sig, NULL, &eb), NU_ERR_INVALID);
}

Test(blob, encode_keeps_unreserved_and_optionally_slash)
{
    char *a = nu_sigv4_encode("a b/c~d+é", true), *b = nu_sigv4_encode("a/b", false);
    cr_assert_str_eq(a, "a%20b/c~d%2B%C3%A9");
    cr_assert_str_eq(b, "a%2Fb");
    free(a);
    free(b);
}

struct uri_case {
    const char *uri;
    nu_err_t rc;
    nu_blob_scheme_t scheme;
    const char *bucket, *path;
};

static const struct uri_case uri_cases[] = {
    {"file:///data/x.mp4", NU_OK, NU_BLOB_FILE, NULL, "/data/x.mp4"},
    {"s3://my-bucket/clips/a b.mp4", NU_OK, NU_BLOB_S3, "my-bucket", "clips/a b.mp4"},
    {"s3://my.bucket", NU_OK, NU_BLOB_S3, "my.bucket", ""},
    {"file://host/x", NU_ERR_INVALID, 0, NULL, NULL},
    {"file:///", NU_ERR_INVALID, 0, NULL, NULL},
    {"file:///a/../etc/passwd", NU_ERR_INVALID, 0, NULL, NULL},
    {"file:///a/./b", NU_ERR_INVALID, 0, NULL, NULL},
    {"file:///a/dir/", NU_ERR_INVALID, 0, NULL, NULL},
    {"file:///a\nb", NU_ERR_INVALID, 0, NULL, NULL},
    {"s3://UPPER/x", NU_ERR_INVALID, 0, NULL, NULL},
    {"s3://ab/x", NU_ERR_INVALID, 0, NULL, NULL},
    {"s3://-bucket/x", NU_ERR_INVALID, 0, NULL, NULL},
    {"s3://bucket/../x", NU_ERR_INVALID, 0, NULL, NULL},
    {"http://example.com/x", NU_ERR_INVALID, 0, NULL, NULL},
    {"/plain/path", NU_ERR_INVALID, 0, NULL, NULL},
};

Test(blob, uri_parse_table)
{
    for (size_t i = 0; i < sizeof(uri_cases) / sizeof(uri_cases[0]); i++) {
        const struct uri_case *c = &uri_cases[i];
        struct nu_blob_uri u;
        struct nu_errbuf eb = {0};
        nu_err_t rc = nu_blob_uri_parse(c->uri, &u, &eb);
        cr_assert_eq(rc, c->rc, "%s: %s", c->uri, nu_err_msg(&eb));
        if (rc == NU_OK) {
            cr_assert_eq(u.scheme, c->scheme, "%s", c->uri);
            if (c->bucket)
                cr_assert_str_eq(u.bucket, c->bucket, "%s", c->uri);
            else
                cr_assert_null(u.bucket, "%s", c->uri);
            cr_assert_str_eq(u.path, c->path, "%s", c->uri);
        } else {
            cr_assert(eb.set, "%s: no message", c->uri);
        }
        nu_blob_uri_free(&u);
    }
    char *longuri = malloc(NU_BLOB_MAX_URI + 16);
    memset(longuri, 'a', NU_BLOB_MAX_URI + 15);
    memcpy(longuri, "file:///", 8);
    longuri[NU_BLOB_MAX_URI + 15] = '\0';
    struct nu_blob_uri u;
    cr_assert_eq(nu_blob_uri_parse(longuri, &u, NULL), NU_ERR_INVALID);
    free(longuri);
}

Test(blob, cas_uri_joins_prefix_hash_and_extension)
{
    char *a = nu_blob_cas_uri("s3://b/clips", "abc", "mp4"),
         *b = nu_blob_cas_uri("file:///x/", "abc", NULL),
         *c = nu_blob_cas_uri("file:///x", "d", "");
    cr_assert_str_eq(a, "s3://b/clips/abc.mp4");
    cr_assert_str_eq(b, "file:///x/abc");
    cr_assert_str_eq(c, "file:///x/d");
    free(a);
    free(b);
    free(c);
}

static char tmpdir[256];
static void blob_tmp(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/nu-blob-test-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

Test(blob, file_put_get_stat_delete, .init = blob_tmp)
{
    struct nu_blob_conf conf = {0};
    nu_blob_t *b = NULL;
    struct nu_errbuf eb = {0};
    char *uri = nu_xasprintf("file://%s/a/b/obj.bin", tmpdir);
    void *data = NULL;
    size_t len = 0;
    int64_t size = 0;
    struct stat st1, st2;

    cr_assert_eq(nu_blob_new(&conf, &b, &eb), NU_OK);
    cr_assert_eq(nu_blob_stat(b, uri, &size, &eb), NU_OK);
    cr_assert_eq(size, -1);
    cr_assert_eq(nu_blob_put_mem(b, uri, "hello blob", 10, "text/plain", &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    cr_assert_eq(nu_blob_stat(b, uri, &size, &eb), NU_OK);
    cr_assert_eq(size, 10);
    cr_assert_eq(nu_blob_get_mem(b, uri, 100, &data, &len, &eb), NU_OK);
    cr_assert_eq(len, 10);
    cr_assert_eq(memcmp(data, "hello blob", 10), 0);
    free(data);
    /* a limit below the size is refused */
    cr_assert_eq(nu_blob_get_mem(b, uri, 5, &data, &len, &eb), NU_ERR_TOO_LARGE);
    /* an idempotent re-put of the same object does not rewrite it */
    char *path = nu_xasprintf("%s/a/b/obj.bin", tmpdir);
    cr_assert_eq(stat(path, &st1), 0);
    cr_assert_eq(nu_blob_put_mem(b, uri, "hello blob", 10, NULL, NULL), NU_OK);
    cr_assert_eq(stat(path, &st2), 0);
    cr_assert_eq(st1.st_ino, st2.st_ino);
    /* no part file is left behind */
    size_t removed = 99;
    char *dir = nu_xasprintf("%s/a/b", tmpdir);
    cr_assert_eq(nu_blob_sweep(dir, 0, &removed, &eb), NU_OK);
    cr_assert_eq(removed, 0);
    /* put_file, get_file round trip */
    char *copy = nu_xasprintf("%s/copy.bin", tmpdir);
    char *uri2 = nu_xasprintf("file://%s/c/obj2.bin", tmpdir);
    cr_assert_eq(nu_blob_get_file(b, uri, copy, -1, &eb), NU_OK);
    cr_assert_eq(nu_blob_put_file(b, uri2, copy, NULL, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_blob_get_mem(b, uri2, -1, &data, &len, &eb), NU_OK);
    cr_assert_eq(len, 10);
    free(data);
    /* the local path of a file:// blob is the file itself */
    char *local = NULL;
    bool temp = true;
    cr_assert_eq(nu_blob_local(b, uri2, NULL, -1, &local, &temp, &eb), NU_OK);
    cr_assert_not(temp);
    cr_assert(strstr(local, "/c/obj2.bin"));
    free(local);
    cr_assert_eq(nu_blob_delete(b, uri, &eb), NU_OK);
    cr_assert_eq(nu_blob_delete(b, uri, &eb), NU_OK); /* already gone: fine */
    cr_assert_eq(nu_blob_get_mem(b, uri, -1, &data, &len, &eb), NU_ERR_NOT_FOUND);
    cr_assert(strstr(nu_err_msg(&eb), "obj.bin"));
    nu_blob_destroy(b);
    free(uri);
    free(uri2);
    free(path);
    free(dir);
    free(copy);
}

Test(blob, sweep_removes_only_old_part_files, .init = blob_tmp)
{
    char *part = nu_xasprintf("%s/.x.mp4.123.part", tmpdir),
         *keep = nu_xasprintf("%s/x.mp4", tmpdir);
    FILE *f = fopen(part, "w");
    fclose(f);
    f = fopen(keep, "w");
    fclose(f);
    size_t removed = 0;
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_blob_sweep(tmpdir, 3600, &removed, &eb), NU_OK);
    cr_assert_eq(removed, 0); /* too young */
    cr_assert_eq(nu_blob_sweep(tmpdir, 0, &removed, &eb), NU_OK);
    cr_assert_eq(removed, 1);
    cr_assert_neq(access(part, F_OK), 0);
    cr_assert_eq(access(keep, F_OK), 0);
    free(part);
    free(keep);
}
