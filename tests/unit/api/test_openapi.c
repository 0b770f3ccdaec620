/* Tests of src/api/openapi.c: the embedded document and the schema-subset validator. */
#include "api/openapi.h"

#include <criterion/criterion.h>
#include <string.h>

static const char *const test_doc =
    "{\"openapi\":\"3.0.3\",\"paths\":{\"/things/{id}\":{\"get\":{\"responses\":{"
    "\"200\":{\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/"
    "Thing\"}}}},"
    "\"4XX\":{\"$ref\":\"#/components/responses/Err\"},"
    "\"204\":{\"description\":\"none\"}}}}},"
    "\"components\":{\"responses\":{\"Err\":{\"content\":{\"application/json\":{\"schema\":{"
    "\"type\":\"object\",\"required\":[\"error\"]}}}}},"
    "\"schemas\":{"
    "\"Thing\":{\"type\":\"object\",\"required\":[\"id\",\"state\"],\"additionalProperties\":false,"
    "\"properties\":{\"id\":{\"type\":\"string\"},"
    "\"state\":{\"type\":\"string\",\"enum\":[\"running\",\"done\"]},"
    "\"rows\":{\"type\":\"integer\",\"minimum\":0},"
    "\"parent\":{\"type\":\"string\",\"nullable\":true},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"minItems\":1},"
    "\"owner\":{\"$ref\":\"#/components/schemas/Owner\"},"
    "\"size\":{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"string\"}]},"
    "\"any\":{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"number\"}]}}},"
    "\"Owner\":{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{\"name\":{\"type\":"
    "\"string\"}}},"
    "\"Loop\":{\"$ref\":\"#/components/schemas/Loop\"}}}}";

struct vcase {
    const char *value;
    size_t nprobs;
    const char *path; /* of the first problem */
    const char *msg;  /* substring of the first problem */
};

Test(openapi, validator_table)
{
    static const struct vcase cases[] = {
        {"{\"id\":\"a\",\"state\":\"done\"}", 0, NULL, NULL},
        {"{\"id\":\"a\",\"state\":\"done\",\"rows\":3,\"parent\":null,\"tags\":[\"x\"],"
         "\"owner\":{\"name\":\"n\"},\"size\":\"1k\",\"any\":1.5}",
         0, NULL, NULL},
        {"{\"id\":\"a\",\"state\":\"done\",\"rows\":3.0}", 0, NULL, NULL},
        {"[]", 1, "$", "expected type object, got an array"},
        {"{\"state\":\"done\"}", 1, "$", "missing required field \"id\""},
        {"{\"id\":1,\"state\":\"done\"}", 1, "$.id", "expected type string, got an integer"},
        {"{\"id\":\"a\",\"state\":\"lost\"}", 1, "$.state",
         "must be one of [\"running\",\"done\"]"},
        {"{\"id\":\"a\",\"state\":\"done\",\"rows\":-1}", 1, "$.rows", "must be at least 0"},
        {"{\"id\":\"a\",\"state\":\"done\",\"rows\":1.5}", 1, "$.rows", "expected type integer"},
        {"{\"id\":\"a\",\"state\":\"done\",\"extra\":1}", 1, "$.extra", "not in the schema"},
        {"{\"id\":\"a\",\"state\":\"done\",\"tags\":[]}", 1, "$.tags", "at least 1 items"},
        {"{\"id\":\"a\",\"state\":\"done\",\"tags\":[\"x\",2]}", 1, "$.tags[1]", "expected type"},
        {"{\"id\":\"a\",\"state\":\"done\",\"owner\":{}}", 1, "$.owner", "missing required"},
        {"{\"id\":\"a\",\"state\":\"done\",\"size\":true}", 1, "$.size", "matches 0 of the oneOf"},
        {"{\"id\":\"a\",\"state\":\"done\",\"any\":\"x\"}", 1, "$.any", "none of the anyOf"},
        {"{\"id\":\"a\",\"state\":\"done\",\"parent\":3}", 1, "$.parent", "expected type string"},
        {"{\"id\":null}", 2, "$", "missing required field \"state\""},
    };
    json_t *doc = json_loads(test_doc, 0, NULL);
    cr_assert_not_null(doc);
    const json_t *thing =
        json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"), "Thing");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_problems probs;
        struct nu_json_path p;
        nu_problems_init(&probs);
        nu_json_path_init(&p);
        json_t *v = json_loads(cases[i].value, JSON_DECODE_ANY, NULL);
        cr_assert_not_null(v, "case %zu", i);
        size_t n = nu_openapi_validate(doc, thing, v, &p, &probs);
        cr_assert_eq(n, cases[i].nprobs, "case %zu: %zu problems, first: %s %s", i, n,
                     probs.n ? probs.items[0].path : "", probs.n ? probs.items[0].message : "");
        cr_assert_eq(probs.n, n);
        if (n > 0) {
            cr_assert_str_eq(probs.items[0].path, cases[i].path, "case %zu", i);
            cr_assert(strstr(probs.items[0].message, cases[i].msg), "case %zu: %s", i,
                      probs.items[0].message);
        }
        json_decref(v);
        nu_problems_free(&probs);
    }
    /* a $ref cycle is reported, not followed forever */
    struct nu_problems probs;
    struct nu_json_path p;
    nu_problems_init(&probs);
    nu_json_path_init(&p);
    json_t *loop = json_pack("{s:s}", "$ref", "#/components/schemas/Loop");
    json_t *one = json_integer(1);
    cr_assert_eq(nu_openapi_validate(doc, loop, one, &p, &probs), 1);
    cr_assert(strstr(probs.items[0].message, "does not resolve"));
    json_decref(loop);
    json_decref(one);
    nu_problems_free(&probs);
    json_decref(doc);
}

Test(openapi, check_response_finds_the_operation)
{
    json_t *doc = json_loads(test_doc, 0, NULL);
    struct nu_problems probs;
    struct nu_errbuf eb;
    nu_problems_init(&probs);
    const char *ok = "{\"id\":\"a\",\"state\":\"done\"}";
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_openapi_check_response(doc, "GET", "/things/{id}", 200,
                                           "application/json; charset=utf-8", ok, strlen(ok),
                                           &probs, &eb),
                 NU_OK, "%s", eb.msg);
    const char *bad = "{\"id\":\"a\"}";
    cr_assert_eq(nu_openapi_check_response(doc, "get", "/things/{id}", 200, "application/json", bad,
                                           strlen(bad), &probs, &eb),
                 NU_ERR_SCHEMA);
    cr_assert_eq(probs.n, 1);
    nu_problems_free(&probs);
    /* 404 is covered by "4XX", via a $ref to a shared response */
    const char *err = "{\"error\":{}}";
    cr_assert_eq(nu_openapi_check_response(doc, "GET", "/things/{id}", 404, "application/json", err,
                                           strlen(err), &probs, NULL),
                 NU_OK);
    cr_assert_eq(nu_openapi_check_response(doc, "GET", "/things/{id}", 404, "application/json",
                                           "[]", 2, &probs, NULL),
                 NU_ERR_SCHEMA);
    nu_problems_free(&probs);
    cr_assert_eq(
        nu_openapi_check_response(doc, "GET", "/things/{id}", 204, NULL, "", 0, &probs, NULL),
        NU_OK);
    cr_assert_eq(nu_openapi_check_response(doc, "GET", "/things/{id}", 500, "application/json",
                                           "{}", 2, &probs, NULL),
                 NU_ERR_NOT_FOUND, "undocumented status");
    cr_assert_eq(nu_openapi_check_response(doc, "POST", "/things/{id}", 200, "application/json",
                                           "{}", 2, &probs, NULL),
                 NU_ERR_NOT_FOUND, "undocumented operation");
    cr_assert_eq(nu_openapi_check_response(doc, "GET", "/things/{id}", 200, "text/html", "<p>", 3,
                                           &probs, NULL),
                 NU_ERR_SCHEMA, "undocumented content type");
    cr_assert_eq(nu_openapi_check_response(doc, "GET", "/things/{id}", 200, "application/json", "{",
                                           1, &probs, NULL),
                 NU_ERR_SCHEMA, "not JSON");
    nu_problems_free(&probs);
    json_decref(doc);
}

Test(openapi, embedded_document_is_valid_and_self_consistent)
{
    json_t *doc = NULL;
    struct nu_errbuf eb;
    size_t n = 0;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_openapi_doc(&doc, &eb), NU_OK, "%s", eb.msg);
    cr_assert_eq(strlen(nu_openapi_json(&n)), n);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "openapi")), "3.0.3");
    const json_t *paths = json_object_get(doc, "paths");
    static const char *const must[] = {"/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"};
    for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
        cr_assert_not_null(json_object_get(paths, must[i]), "%s documented", must[i]);
    /* every $ref in the document resolves: validate a sample error against the Error schema */
    struct nu_problems probs;
    struct nu_json_path p;
    nu_problems_init(&probs);
    nu_json_path_init(&p);
    json_t *sample = json_loads("{\"error\":{\"code\":\"spec\",\"message\":\"m\",\"problems\":"
                                "[{\"path\":\"$.stages[0]\",\"message\":\"x\"}]}}",
                                0, NULL);
    json_t *ref = json_pack("{s:s}", "$ref", "#/components/schemas/Error");
    cr_assert_eq(nu_openapi_validate(doc, ref, sample, &p, &probs), 0);
    const char *txt = "{\"status\":\"ready\",\"checks\":{\"database\":\"ok\"}}";
    cr_assert_eq(nu_openapi_check_response(doc, "GET", "/readyz", 200, "application/json", txt,
                                           strlen(txt), &probs, NULL),
                 NU_OK);
    const char *down = "{\"status\":\"not_ready\",\"checks\":{\"database\":\"down\"}}";
    cr_assert_eq(nu_openapi_check_response(doc, "GET", "/readyz", 503, "application/json", down,
                                           strlen(down), &probs, NULL),
                 NU_OK);
    cr_assert_eq(nu_openapi_check_response(doc, "GET", "/readyz", 503, "application/json",
                                           "{\"status\":\"maybe\"}", 18, &probs, NULL),
                 NU_ERR_SCHEMA);
    json_decref(ref);
    json_decref(sample);
    nu_problems_free(&probs);
    json_decref(doc);
}
