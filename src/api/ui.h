/*
 * ui.h — the coordinator's web UI: static assets embedded in the binary (layer: api).
 *
 * The UI is a small single-page application (src/api/ui/index.html, app.js, app.css) that reads
 * the JSON API from the browser. The build embeds the files (embed.cmake, wired in
 * src/api/CMakeLists.txt), so the binary needs nothing beside it and no network beyond the
 * coordinator. Routes (both public: the page itself carries no data; the API calls it makes
 * send the bearer token the user typed into the configuration page):
 *   GET /             index.html
 *   GET /ui/{path*}   an embedded asset by file name ("/ui/app.js"); 404 for any other name
 * Each answer carries its content type, a strong ETag (a hash of the bytes) with 304 on a
 * matching If-None-Match, "Cache-Control: no-cache" (revalidate, so a new binary is picked up at
 * once), and (on the page) a Content-Security-Policy allowing only same-origin scripts, styles and
 * API calls.
 *
 * Ownership: everything returned has static storage. Thread-safety: the handlers and lookups
 * are reentrant; ETags are computed once, on first use, under pthread_once.
 */
#ifndef NU_API_UI_H
#define NU_API_UI_H

#include "common/http.h"

#include <stddef.h>

#define NU_UI_ETAG_LEN 18 /* "\"" + 16 hex digits + "\"" */

/* One embedded file. */
struct nu_ui_asset {
    const char *name;         /* "app.js" */
    const char *content_type; /* "text/javascript; charset=utf-8" */
    const char *data;         /* static bytes, NUL-terminated */
    size_t len;               /* without the NUL */
    const char *etag;         /* quoted strong validator */
};

/* The UI's route table (static storage): GET / and GET /ui/{path*}. Add it to the server's
 * table beside the API routes. */
const struct nu_http_route *nu_ui_routes(size_t *n);

/* The embedded asset called `name` (no directories), or NULL. */
const struct nu_ui_asset *nu_ui_asset_find(const char *name);

/* Number of embedded assets, and asset i (0 <= i < count). */
size_t nu_ui_asset_count(void);
const struct nu_ui_asset *nu_ui_asset_at(size_t i);

#endif
