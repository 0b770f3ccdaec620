/*
 * bench_media.c — the media operators in-process against the approaches they replace, on the
 * same files in one run (media from scripts/media-testdata):
 *
 *   clips/s       video_probe → scene_detect → video_slice through the operator ABI (FFmpeg's
 *                 libraries in-process, clips stored content-addressed in a file:// folder)
 *                 against one ffprobe subprocess plus one ffmpeg subprocess for the scene scores
 *                 and one ffmpeg subprocess per clip (stream copy), as the earlier system did;
 *   thumbnails/s  image_thumbnail (libvips, fit 256x256, JPEG q85, stored content-addressed)
 *                 against a Python process with Pillow doing the same thumbnails from the same
 *                 files (bench/bench_media_pillow.py, its loop timed alone): same sizes, the
 *                 same filter class (shrink-on-load, box pre-reduction, then Lanczos-3), the
 *                 same JPEG quality and chroma subsampling, grey kept grey, each output named
 *                 by its SHA-256.
 *
 * Each side runs once to warm caches, then ROUNDS times; the best wall time and the least CPU
 * time (user + system, children included; the machine may be shared) count.
 *
 * usage: nurion-bench-media MEDIA_DIR [ROUNDS]
 * NURION_SOURCE_DIR (default ".") locates bench/bench_media_pillow.py; NURION_PYTHON (default
 * $NURION_SOURCE_DIR/.cache/venv/bin/python) must have Pillow (scripts/deps installs it).
 */
#include "operators/registry.h"
#include "stage/media.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) of this process, or of its waited-for children. */
static double bench_cpu(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Best wall time and least CPU time of one side over the rounds, and its item count. */
struct side {
    double wall, cpu;
    size_t n;
};

static void side_add(struct side *s, double wall, double cpu, size_t n)
{
    if (s->n == 0 || wall < s->wall)
        s->wall = wall;
    if (s->n == 0 || cpu < s->cpu)
        s->cpu = cpu;
    s->n = n;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_media: %s: %s\n", what, msg);
    exit(1);
}

/* --- the operators in-process --- */

struct collect {
    struct nu_batch *b[256];
    size_t n;
};

static nu_err_t collect_emit(void *ctx, struct nu_batch *b, struct nu_errbuf *eb)
{
    struct collect *c = ctx;
    if (c->n == sizeof(c->b) / sizeof(c->b[0])) {
        nu_batch_destroy(b);
        return nu_err_set(eb, NU_ERR_INTERNAL, "too many batches");
    }
    c->b[c->n++] = b;
    return NU_OK;
}

static nu_err_t reject_fail(void *ctx, const struct nu_batch *in, size_t row, const void *raw,
                            size_t raw_len, const char *reason, struct nu_errbuf *eb)
{
    (void)ctx, (void)in, (void)row, (void)raw, (void)raw_len;
    return nu_err_set(eb, NU_ERR_CORRUPT, "%s", reason);
}

/* Run operator `name` with `config` over each batch of `in`; the outputs replace `in`. */
static void run_op(const char *name, const char *config, struct collect *in)
{
    const struct nu_operator *op = NULL;
    struct nu_errbuf eb;
    struct collect out = {.n = 0};
    json_t *cfg = json_loads(config, 0, NULL);
    nu_arena_t *scratch = nu_arena_new(0);
    struct nu_op_emit emit = {.ctx = &out, .emit = collect_emit};
    struct nu_op_batch_ctx ctx = {
        .split_id = "bench", .attempt = 1, .scratch = scratch, .reject = reject_fail};
    void *state = NULL;

    nu_errbuf_clear(&eb);
    struct nu_op_open_args args = {
        .config = cfg, .in = in->b[0]->schema, .job_id = "b", .stage_id = "b"};
    if (!cfg || nu_registry_find(name, NULL, &op, &eb) != NU_OK ||
        op->open(&args, &state, &eb) != NU_OK)
        die(name, nu_err_msg(&eb));
    for (size_t i = 0; i < in->n; i++) {
        if (op->process(state, &ctx, in->b[i], &emit, &eb) != NU_OK)
            die(name, nu_err_msg(&eb));
        nu_arena_reset(scratch);
        nu_batch_destroy(in->b[i]);
    }
    op->close(state);
    nu_arena_destroy(scratch);
    json_decref(cfg);
    *in = out;
}

/* One batch with a `uri` column: file://<path> for each of the n paths. */
static void uri_batch(char **paths, size_t n, struct collect *c)
{
    struct nu_schema *s = nu_schema_new(1);
    nu_schema_set(s, 0, "uri", NU_T_STRING, false, NULL);
    struct nu_batch *b = nu_batch_new(s, n);
    nu_schema_unref(s);
    for (size_t i = 0; i < n; i++) {
        char uri[4200];
        int len = snprintf(uri, sizeof(uri), "file://%s", paths[i]);
        nu_batch_add_row(b)[0] = nu_batch_str(b, NU_T_STRING, uri, (size_t)len);
    }
    c->n = 1;
    c->b[0] = b;
}

static size_t collect_rows(struct collect *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++) {
        n += c->b[i]->nrows;
        nu_batch_destroy(c->b[i]);
    }
    c->n = 0;
    return n;
}

static size_t nurion_clips(char **videos, size_t n, const char *out)
{
    struct collect c;
    char cfg[1024];
    uri_batch(videos, n, &c);
    run_op("video_probe", "{}", &c);
    run_op("scene_detect", "{\"threshold\": 0.35, \"min_scene_seconds\": 0.5}", &c);
    snprintf(cfg, sizeof(cfg), "{\"prefix\": \"file://%s\", \"format\": \"mp4\"}", out);
    run_op("video_slice", cfg, &c);
    return collect_rows(&c);
}

static size_t nurion_thumbs(char **images, size_t n, const char *out)
{
    struct collect c;
    char cfg[1024];
    uri_batch(images, n, &c);
    snprintf(cfg, sizeof(cfg),
             "{\"prefix\": \"file://%s\", \"width\": 256, \"height\": 256, \"mode\": \"fit\", "
             "\"format\": \"jpeg\", \"quality\": 85}",
             out);
    run_op("image_thumbnail", cfg, &c);
    return collect_rows(&c);
}

/* --- subprocesses --- */

/* Run argv (no shell) with stdout and stderr into file `capture` (or /dev/null); exit status. */
static int spawn(char *const argv[], const char *capture)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int status = 0, rc;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, capture ? capture : "/dev/null",
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        die(argv[0], strerror(rc));
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long n;
    if (!f)
        die(path, strerror(errno));
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    buf[fread(buf, 1, (size_t)n, f)] = '\0';
    fclose(f);
    return buf;
}

/* ffprobe for the duration, ffmpeg's scene scores for the cuts, one ffmpeg per clip. */
static size_t subprocess_clips(char **videos, size_t n, const char *out, const char *tmp)
{
    size_t clips = 0;
    for (size_t v = 0; v < n; v++) {
        char *probe[] = {"ffprobe", "-v",      "error", "-show_format", "-show_streams", "-of",
                         "json",    videos[v], NULL};
        char *scenes[] = {"ffmpeg",  "-hide_banner", "-nostats", "-i",
                          videos[v], "-an",          "-vf",      "select='gt(scene,0.35)',showinfo",
                          "-f",      "null",         "-",        NULL};
        double cuts[1024], duration, last = 0;
        size_t ncut = 0;
        char *text, *p;
        json_t *j;

        if (spawn(probe, tmp) != 0)
            die("ffprobe", videos[v]);
        text = slurp(tmp);
        j = json_loads(text, 0, NULL);
        free(text);
        duration =
            j ? atof(json_string_value(json_object_get(json_object_get(j, "format"), "duration"))
                         ?: "0")
              : 0;
        json_decref(j);
        if (spawn(scenes, tmp) != 0)
            die("ffmpeg", videos[v]);
        text = slurp(tmp);
        cuts[ncut++] = 0;
        for (p = text; (p = strstr(p, "pts_time:")) && ncut < 1023; p += 9) {
            double t = atof(p + 9);
            if (t - last >= 0.5) {
                cuts[ncut++] = t;
                last = t;
            }
        }
        free(text);
        if (ncut > 1 && duration - cuts[ncut - 1] < 0.5)
            ncut--; /* a too short last scene joins the one before */
        cuts[ncut] = duration;
        for (size_t k = 0; k < ncut; k++) {
            char ss[32], len[32], dst[4200];
            snprintf(ss, sizeof(ss), "%.3f", cuts[k]);
            snprintf(len, sizeof(len), "%.3f", cuts[k + 1] - cuts[k]);
            snprintf(dst, sizeof(dst), "%s/v%zu-%zu.mp4", out, v, k);
            char *cut[] = {"ffmpeg",
                           "-v",
                           "error",
                           "-y",
                           "-ss",
                           ss,
                           "-i",
                           videos[v],
                           "-t",
                           len,
                           "-c",
                           "copy",
                           "-avoid_negative_ts",
                           "make_zero",
                           dst,
                           NULL};
            if (spawn(cut, NULL) != 0)
                die("ffmpeg", dst);
            clips++;
        }
    }
    return clips;
}

/* Pillow's loop times from the script's "<n> <seconds> <cpu seconds>" line. */
static double pillow_thumbs(char **images, size_t n, const char *out, const char *tmp,
                            const char *python, const char *script, size_t *done, double *cpu)
{
    char **argv = calloc(n + 4, sizeof(*argv));
    char *text;
    double secs = 0;
    argv[0] = (char *)python;
    argv[1] = (char *)script;
    argv[2] = (char *)out;
    for (size_t i = 0; i < n; i++)
        argv[3 + i] = images[i];
    if (spawn(argv, tmp) != 0) {
        text = slurp(tmp);
        die("pillow", text);
    }
    free(argv);
    text = slurp(tmp);
    if (sscanf(text, "%zu %lf %lf", done, &secs, cpu) != 3)
        die("pillow", text);
    free(text);
    return secs;
}

static void row(const char *work, const char *how, const struct side *s)
{
    printf("| %s | %s | %.1f | %.2f | %.2f | %.1f |\n", work, how, (double)s->n / s->wall, s->wall,
           s->cpu, (double)s->n / s->cpu);
}

/* The 1-minute load average as text (the machine may be shared). */
static const char *loadavg(void)
{
    static char buf[32] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%31s", buf) != 1)
            snprintf(buf, sizeof(buf), "?");
        fclose(f);
    }
    return buf;
}

static void fresh_dir(char *dir, size_t size, const char *base, const char *name)
{
    snprintf(dir, size, "%s/%s-XXXXXX", base, name);
    if (!mkdtemp(dir))
        die(dir, strerror(errno));
}

int main(int argc, char **argv)
{
    const char *src = getenv("NURION_SOURCE_DIR") ? getenv("NURION_SOURCE_DIR") : ".";
    char pattern[1024], work[256], tmp[300], script[1100], python[1100], d[400];
    glob_t vg, ig1, ig2;
    char **images;
    size_t nimg;
    struct side clip_n = {0}, clip_s = {0}, th_n = {0}, th_p = {0};
    int rounds = argc > 2 ? atoi(argv[2]) : 2;

    if (argc < 2 || rounds < 1) {
        fprintf(stderr, "usage: nurion-bench-media MEDIA_DIR [ROUNDS]\n");
        return 2;
    }
    nu_media_register();
    snprintf(script, sizeof(script), "%s/bench/bench_media_pillow.py", src);
    snprintf(python, sizeof(python), "%s/.cache/venv/bin/python", src);
    if (getenv("NURION_PYTHON"))
        snprintf(python, sizeof(python), "%s", getenv("NURION_PYTHON"));
    snprintf(pattern, sizeof(pattern), "%s/videos/*.mp4", argv[1]);
    if (glob(pattern, 0, NULL, &vg) != 0)
        die(pattern, "no videos (run scripts/media-testdata)");
    snprintf(pattern, sizeof(pattern), "%s/images/*.jpg", argv[1]);
    glob(pattern, 0, NULL, &ig1);
    snprintf(pattern, sizeof(pattern), "%s/images/*.png", argv[1]);
    glob(pattern, 0, NULL, &ig2);
    nimg = ig1.gl_pathc + ig2.gl_pathc;
    if (nimg == 0)
        die(argv[1], "no images (run scripts/media-testdata)");
    images = calloc(nimg, sizeof(*images));
    for (size_t i = 0; i < ig1.gl_pathc; i++)
        images[i] = ig1.gl_pathv[i];
    for (size_t i = 0; i < ig2.gl_pathc; i++)
        images[ig1.gl_pathc + i] = ig2.gl_pathv[i];
    snprintf(work, sizeof(work), "/tmp/nu-bench-media-XXXXXX");
    if (!mkdtemp(work))
        die(work, strerror(errno));
    snprintf(tmp, sizeof(tmp), "%s/capture.txt", work);

    for (int r = 0; r <= rounds; r++) { /* round 0 warms up */
        double t0, c0, cc0, cpu, t;
        size_t k;
        fresh_dir(d, sizeof(d), work, "clips-nurion");
        t0 = bench_now(), c0 = bench_cpu(RUSAGE_SELF);
        k = nurion_clips(vg.gl_pathv, vg.gl_pathc, d);
        if (r > 0)
            side_add(&clip_n, bench_now() - t0, bench_cpu(RUSAGE_SELF) - c0, k);
        fresh_dir(d, sizeof(d), work, "clips-ffmpeg");
        t0 = bench_now(), c0 = bench_cpu(RUSAGE_SELF), cc0 = bench_cpu(RUSAGE_CHILDREN);
        k = subprocess_clips(vg.gl_pathv, vg.gl_pathc, d, tmp);
        if (r > 0)
            side_add(&clip_s, bench_now() - t0,
                     bench_cpu(RUSAGE_SELF) - c0 + bench_cpu(RUSAGE_CHILDREN) - cc0, k);
        fresh_dir(d, sizeof(d), work, "thumbs-nurion");
        t0 = bench_now(), c0 = bench_cpu(RUSAGE_SELF);
        k = nurion_thumbs(images, nimg, d);
        if (r > 0)
            side_add(&th_n, bench_now() - t0, bench_cpu(RUSAGE_SELF) - c0, k);
        fresh_dir(d, sizeof(d), work, "thumbs-pillow");
        t = pillow_thumbs(images, nimg, d, tmp, python, script, &k, &cpu);
        if (r > 0)
            side_add(&th_p, t, cpu, k);
    }
    if (clip_n.n != clip_s.n || th_n.n != th_p.n)
        fprintf(stderr, "bench_media: counts differ: clips %zu/%zu, thumbnails %zu/%zu\n", clip_n.n,
                clip_s.n, th_n.n, th_p.n);
    printf("%zu videos (%zu clips), %zu images from %s; best of %d rounds after a warm-up; load "
           "average at the end: %s.\n\n",
           vg.gl_pathc, clip_n.n, nimg, argv[1], rounds, loadavg());
    printf("| work | approach | items/s (wall) | wall s | CPU s | items per CPU s |\n");
    printf("|---|---|---:|---:|---:|---:|\n");
    row("clips: probe + scene_detect + video_slice", "nurion, in-process", &clip_n);
    row("", "ffprobe + ffmpeg subprocess per item", &clip_s);
    row("thumbnails: 256x256 fit, Lanczos-3, JPEG q85", "nurion image_thumbnail, in-process",
        &th_n);
    row("", "Python + Pillow, one process", &th_p);
    printf("\nnurion/baseline: clips %.1fx wall, %.1fx per CPU second; thumbnails %.1fx wall, "
           "%.1fx per CPU second.\n",
           clip_s.wall / clip_n.wall, clip_s.cpu / clip_n.cpu, th_p.wall / th_n.wall,
           th_p.cpu / th_n.cpu);
    snprintf(pattern, sizeof(pattern), "rm -rf %s", work);
    if (system(pattern) != 0)
        fprintf(stderr, "bench_media: could not remove %s\n", work);
    globfree(&vg);
    globfree(&ig1);
    globfree(&ig2);
    free(images);
    return 0;
}
