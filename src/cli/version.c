/* version.c — `nurion version`: our version and the versions of the libraries linked in. */
#include "cli/commands.h"

#include <avro.h>
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>

#ifndef NU_AVRO_VERSION
#define NU_AVRO_VERSION "unknown"
#endif
#ifndef NU_VERSION
#define NU_VERSION "0.0.0"
#endif

void nu_cli_print_version(FILE *out)
{
    int pq = PQlibVersion();
    fprintf(out, "nurion %s\n", NU_VERSION);
    fprintf(out, "  librdkafka %s\n", rd_kafka_version_str());
    fprintf(out, "  avro-c %s\n", NU_AVRO_VERSION);
    fprintf(out, "  jansson %s\n", jansson_version_str());
    fprintf(out, "  libpq %d.%d\n", pq / 10000, pq % 10000);
    fprintf(out, "  libmicrohttpd %s\n", MHD_get_version());
    fprintf(out, "  libcurl %s\n", curl_version_info(CURLVERSION_NOW)->version);
}
