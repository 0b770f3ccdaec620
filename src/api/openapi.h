/*
 * openapi.h — the coordinator's OpenAPI 3 document and a response checker (layer: api).
 *
 * The document is src/api/openapi.json, the one source of truth. The build embeds it: a CMake
 * step (src/api/embed.cmake, wired in src/api/CMakeLists.txt) turns the file into a C byte array
 * in the build tree, so editing the JSON file is all it takes to change what
 * GET /api/v1/openapi.json serves. The handler author extends the document with each endpoint.
 *
 * The checker validates a JSON value against a schema of the document, for the subset of JSON
 * Schema the document uses: type (one type or a list), nullable, enum, properties, required,
 * additionalProperties (false or a schema), items, minItems, minimum, maximum, $ref to
 * "#/components/schemas/…", oneOf, anyOf, allOf. Tests use nu_openapi_check_response() to assert
 * that every response of an endpoint matches the document.
 *
 * Ownership: json_t arguments are borrowed; problems are appended to the caller's list.
 * Thread-safety: reentrant; the embedded bytes are constant.
 */
#ifndef NU_API_OPENAPI_H
#define NU_API_OPENAPI_H

#include "common/err.h"
#include "common/json.h"
#include "common/problems.h"

#include <jansson.h>
#include <stddef.h>

#define NU_OPENAPI_MAX_REF_DEPTH 32 /* nested $ref / composition levels followed */

/* The embedded document (static storage, NUL-terminated); its length in *len when non-NULL. */
const char *nu_openapi_json(size_t *len);

/* The embedded document parsed (a new reference). NU_ERR_CORRUPT if it is not valid JSON. */
nu_err_t nu_openapi_doc(json_t **out, struct nu_errbuf *eb);

/*
 * Validate `value` against `schema` (both borrowed; $ref resolved in `doc`), appending one
 * problem per mismatch at path `p` (e.g. "$.error.code: expected a string, got an integer").
 * Returns the number of problems added.
 */
size_t nu_openapi_validate(const json_t *doc, const json_t *schema, const json_t *value,
                           struct nu_json_path *p, struct nu_problems *probs);

/*
 * Check a response against operation `method` (lower or upper case) on path template `pattern`
 * ("/api/v1/jobs/{id}") of `doc`: the status must be documented (exactly, as "4XX", or as
 * "default"); a documented JSON body must parse and match its schema; a documented non-JSON
 * body only needs the content type to match. Errors: NU_ERR_NOT_FOUND (operation or status not
 * documented), NU_ERR_SCHEMA (mismatch: the problems are in `probs`).
 */
nu_err_t nu_openapi_check_response(const json_t *doc, const char *method, const char *pattern,
                                   int status, const char *content_type, const char *body,
                                   size_t body_len, struct nu_problems *probs,
                                   struct nu_errbuf *eb);

#endif
