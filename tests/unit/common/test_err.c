/* Tests of src/common/err.c: the table, first-message-wins, prefixing. */
#include "common/err.h"

#include <criterion/criterion.h>
#include <string.h>

Test(err, table_has_names_texts_and_status)
{
    cr_assert_str_eq(nu_err_name(NU_ERR_SPEC), "NU_ERR_SPEC");
    cr_assert_str_eq(nu_err_text(NU_ERR_NOT_FOUND), "not found");
    cr_assert_eq(nu_err_http_status(NU_ERR_TOO_LARGE), 413);
    cr_assert(nu_err_retriable(NU_ERR_KAFKA));
    cr_assert_not(nu_err_retriable(NU_ERR_FENCED));
    /* every code has a distinct name */
    for (int i = 0; i < NU_ERR__COUNT; i++)
        for (int j = i + 1; j < NU_ERR__COUNT; j++)
            cr_assert_str_neq(nu_err_name((nu_err_t)i), nu_err_name((nu_err_t)j));
}

Test(err, out_of_range_code_maps_to_internal)
{
    cr_assert_str_eq(nu_err_name((nu_err_t)9999), "NU_ERR_INTERNAL");
}

Test(err, first_message_wins)
{
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_str_eq(nu_err_msg(&eb), "success");
    cr_assert_eq(nu_err_set(&eb, NU_ERR_IO, "could not open file \"%s\"", "a.txt"), NU_ERR_IO);
    cr_assert_eq(nu_err_set(&eb, NU_ERR_INTERNAL, "outer"), NU_ERR_INTERNAL);
    cr_assert_str_eq(nu_err_msg(&eb), "could not open file \"a.txt\"");
    cr_assert_eq(eb.code, NU_ERR_IO);
}

Test(err, prefix_adds_context_only_when_set)
{
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    nu_err_prefix(&eb, "stage \"%s\": ", "x");
    cr_assert_not(eb.set);
    nu_err_set(&eb, NU_ERR_PARSE, "expected ')'");
    nu_err_prefix(&eb, "stage \"%s\": ", "x");
    cr_assert_str_eq(nu_err_msg(&eb), "stage \"x\": expected ')'");
}

Test(err, null_buffer_is_allowed)
{
    cr_assert_eq(nu_err_set(NULL, NU_ERR_DB, "x"), NU_ERR_DB);
}

Test(err, long_messages_are_truncated_safely)
{
    struct nu_errbuf eb;
    char big[4000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    nu_errbuf_clear(&eb);
    nu_err_set(&eb, NU_ERR_INVALID, "%s", big);
    cr_assert_eq(strlen(nu_err_msg(&eb)), NU_ERRBUF_SIZE - 1);
}
