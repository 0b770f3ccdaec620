/* yaml.c — block-style YAML from jansson values. */
#include "cli/yaml.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void nu_yaml_str(struct nu_buf *out, const char *s)
{
    nu_buf_append(out, s, strlen(s));
}

static void nu_yaml_indent(struct nu_buf *out, int n)
{
    for (int i = 0; i < n; i++)
        nu_buf_putc(out, ' ');
}

bool nu_yaml_plain_ok(const char *s)
{
    static const char *const words[] = {"true", "false", "yes", "no", "on",   "off",
                                        "null", "y",     "n",   "~",  ".inf", ".nan"};
    size_t n = strlen(s);
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '/'))
        return false;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasecmp(s, words[i]) == 0)
            return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c == '_' || c == '.' || c == '/' || c == '-' || c == '=')
            continue;
        /* ':' only inside a token ("a:b"), never before a blank or at the end */
        if (c == ':' && i + 1 < n && s[i + 1] != ' ')
            continue;
        return false;
    }
    return true;
}

static void nu_yaml_quoted(struct nu_buf *out, const char *s)
{
    json_t *j = json_string(s);
    char *q = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    /* json_string() refuses invalid UTF-8: write an empty string then */
    nu_yaml_str(out, q ? q : "\"\"");
    free(q);
    json_decref(j);
}

/* A literal block for multi-line text: "|" (one final newline) or "|-" (none). */
static bool nu_yaml_literal(struct nu_buf *out, const char *s, int indent)
{
    size_t n = strlen(s);
    if (!strchr(s, '\n') || s[0] == ' ' || s[0] == '\n' ||
        (n >= 2 && s[n - 1] == '\n' && s[n - 2] == '\n'))
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t')
            return false;
    nu_yaml_str(out, s[n - 1] == '\n' ? "|\n" : "|-\n");
    const char *line = s;
    while (*line) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (len) {
            nu_yaml_indent(out, indent);
            nu_buf_append(out, line, len);
        }
        nu_buf_putc(out, '\n');
        if (!nl)
            break;
        line = nl + 1;
    }
    return true;
}

/* A scalar (or an empty container) on the current line, followed by a newline. */
static void nu_yaml_scalar(struct nu_buf *out, const json_t *v, int indent)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_STRING: {
        const char *s = json_string_value(v);
        if (nu_yaml_literal(out, s, indent))
            return;
        if (nu_yaml_plain_ok(s))
            nu_yaml_str(out, s);
        else
            nu_yaml_quoted(out, s);
        break;
    }
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        nu_yaml_str(out, num);
        break;
    case JSON_REAL:
        snprintf(num, sizeof(num), "%.17g", json_real_value(v));
        nu_yaml_str(out, num);
        break;
    case JSON_TRUE:
        nu_yaml_str(out, "true");
        break;
    case JSON_FALSE:
        nu_yaml_str(out, "false");
        break;
    case JSON_NULL:
        nu_yaml_str(out, "null");
        break;
    case JSON_OBJECT:
        nu_yaml_str(out, "{}");
        break;
    case JSON_ARRAY:
        nu_yaml_str(out, "[]");
        break;
    }
    nu_buf_putc(out, '\n');
}

static bool nu_yaml_is_block(const json_t *v)
{
    return (json_is_object(v) && json_object_size(v) > 0) ||
           (json_is_array(v) && json_array_size(v) > 0);
}

static void nu_yaml_node(struct nu_buf *out, const json_t *v, int indent, bool first_inline);

static void nu_yaml_object(struct nu_buf *out, const json_t *v, int indent, bool first_inline)
{
    const char *key;
    json_t *val;
    bool first = true;
    json_object_foreach((json_t *)v, key, val)
    {
        if (!(first && first_inline))
            nu_yaml_indent(out, indent);
        first = false;
        if (nu_yaml_plain_ok(key))
            nu_yaml_str(out, key);
        else
            nu_yaml_quoted(out, key);
        nu_buf_putc(out, ':');
        if (json_is_object(val) && json_object_size(val) > 0) {
            nu_buf_putc(out, '\n');
            nu_yaml_node(out, val, indent + 2, false);
        } else if (json_is_array(val) && json_array_size(val) > 0) {
            nu_buf_putc(out, '\n');
            nu_yaml_node(out, val, indent, false); /* sequences sit at the key's indentation */
        } else {
            nu_buf_putc(out, ' ');
            nu_yaml_scalar(out, val, indent + 2);
        }
    }
}

static void nu_yaml_array(struct nu_buf *out, const json_t *v, int indent, bool first_inline)
{
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!(i == 0 && first_inline))
            nu_yaml_indent(out, indent);
        nu_yaml_str(out, "- ");
        if (nu_yaml_is_block(item))
            nu_yaml_node(out, item, indent + 2, true);
        else
            nu_yaml_scalar(out, item, indent + 2);
    }
}

static void nu_yaml_node(struct nu_buf *out, const json_t *v, int indent, bool first_inline)
{
    if (json_is_object(v) && json_object_size(v) > 0)
        nu_yaml_object(out, v, indent, first_inline);
    else if (json_is_array(v) && json_array_size(v) > 0)
        nu_yaml_array(out, v, indent, first_inline);
    else
        nu_yaml_scalar(out, v, indent);
}

void nu_yaml_emit(const json_t *v, struct nu_buf *out)
{
    nu_yaml_node(out, v, 0, false);
}
