/* Tests of nu_store_fingerprint (src/coordinator/store.c): error messages grouped by shape. */
#include "coordinator/store.h"

#include <criterion/criterion.h>
#include <string.h>

static bool same(const char *a, const char *b)
{
    char fa[NU_STORE_FINGERPRINT_LEN + 1], fb[NU_STORE_FINGERPRINT_LEN + 1];
    nu_store_fingerprint(a, fa);
    nu_store_fingerprint(b, fb);
    return strcmp(fa, fb) == 0;
}

Test(fingerprint, groups_messages_of_one_shape)
{
    const char *pairs[][2] = {
        {"division by zero at column 5", "division by zero at column 7"},
        {"value 3.25 out of range", "value 1000 out of range"},
        {"unknown column \"price\"", "unknown column \"qty\""},
        {"cannot parse 'abc' as int", "cannot parse '12x' as int"},
        {"split 9f86d081884c7d65 failed", "split 3a7bd3e2360a3d29 failed"},
        {"object 0xdeadbeef freed twice", "object 0x1234 freed twice"},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        cr_expect(same(pairs[i][0], pairs[i][1]), "\"%s\" and \"%s\" should group", pairs[i][0],
                  pairs[i][1]);
}

Test(fingerprint, separates_different_messages)
{
    const char *pairs[][2] = {
        {"division by zero at column 5", "integer overflow at column 5"},
        {"unknown column \"price\"", "unknown table \"price\""},
        {"", "x"},
        {"face value", "cafe value"},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        cr_expect(!same(pairs[i][0], pairs[i][1]), "\"%s\" and \"%s\" should differ", pairs[i][0],
                  pairs[i][1]);
}

Test(fingerprint, shape_and_null)
{
    char fp[NU_STORE_FINGERPRINT_LEN + 1];
    nu_store_fingerprint(NULL, fp);
    cr_assert_eq(strlen(fp), NU_STORE_FINGERPRINT_LEN);
    cr_assert_eq(strspn(fp, "0123456789abcdef"), NU_STORE_FINGERPRINT_LEN);
    cr_assert(same(NULL, ""));
    char unterminated[] = "bad quote \"abc";
    nu_store_fingerprint(unterminated, fp); /* an open quote is plain text */
    cr_assert(!same(unterminated, "bad quote \"xyz"));
}
