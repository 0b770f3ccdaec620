/*
 * media_av.c — the one module that wraps FFmpeg's libraries (libavformat, libavcodec,
 * libavfilter): probing, scene detection on the select filter's scene score, and stream-copy
 * slicing. FFmpeg's error codes are mapped onto the error table here, with av_strerror's text.
 */
#include "stage/media_int.h"

#include "common/mem.h"

#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/opt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t nu_av_once = PTHREAD_ONCE_INIT;
static void nu_av_init(void)
{
    av_log_set_level(AV_LOG_QUIET);
}

/* Map an FFmpeg error of `what` on `path`. */
static nu_err_t nu_av_err(int err, const char *what, const char *path, struct nu_errbuf *eb)
{
    char msg[AV_ERROR_MAX_STRING_SIZE];
    nu_err_t code = NU_ERR_CORRUPT;
    av_strerror(err, msg, sizeof(msg));
    if (err == AVERROR(ENOENT))
        code = NU_ERR_NOT_FOUND;
    else if (err == AVERROR(ENOMEM))
        code = NU_ERR_SYSTEM;
    else if (err == AVERROR_DECODER_NOT_FOUND || err == AVERROR_DEMUXER_NOT_FOUND ||
             err == AVERROR_PATCHWELCOME || err == AVERROR(ENOSYS))
        code = NU_ERR_UNSUPPORTED;
    else if (err == AVERROR(EIO) || err == AVERROR(EACCES))
        code = NU_ERR_IO;
    return nu_err_set(eb, code, "could not %s \"%s\": %s", what, path, msg);
}

static nu_err_t nu_av_open(const char *path, AVFormatContext **fmt, struct nu_errbuf *eb)
{
    int r;
    pthread_once(&nu_av_once, nu_av_init);
    *fmt = NULL;
    r = avformat_open_input(fmt, path, NULL, NULL);
    if (r < 0)
        return nu_av_err(r, "open media", path, eb);
    r = avformat_find_stream_info(*fmt, NULL);
    if (r < 0) {
        avformat_close_input(fmt);
        return nu_av_err(r, "read stream information of", path, eb);
    }
    return NU_OK;
}

static double nu_av_duration(const AVFormatContext *fmt, const AVStream *vs)
{
    if (fmt->duration > 0)
        return (double)fmt->duration / AV_TIME_BASE;
    if (vs && vs->duration > 0)
        return (double)vs->duration * av_q2d(vs->time_base);
    return 0;
}

nu_err_t nu_av_probe(const char *path, struct nu_av_probe *out, struct nu_errbuf *eb)
{
    AVFormatContext *fmt = NULL;
    const AVStream *vs = NULL;
    nu_err_t rc;

    memset(out, 0, sizeof(*out));
    rc = nu_av_open(path, &fmt, eb);
    if (rc != NU_OK)
        return rc;
    snprintf(out->format, sizeof(out->format), "%s", fmt->iformat->name);
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        const AVStream *st = fmt->streams[i];
        const AVCodecParameters *par = st->codecpar;
        if (par->codec_type == AVMEDIA_TYPE_VIDEO && !vs &&
            !(st->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
            AVRational fr = st->avg_frame_rate.num ? st->avg_frame_rate : st->r_frame_rate;
            vs = st;
            snprintf(out->vcodec, sizeof(out->vcodec), "%s", avcodec_get_name(par->codec_id));
            out->width = par->width;
            out->height = par->height;
            out->fps = fr.den ? av_q2d(fr) : 0;
        } else if (par->codec_type == AVMEDIA_TYPE_AUDIO && !out->acodec[0]) {
            snprintf(out->acodec, sizeof(out->acodec), "%s", avcodec_get_name(par->codec_id));
        }
    }
    out->duration = nu_av_duration(fmt, vs);
    avformat_close_input(&fmt);
    return NU_OK;
}

/* A decoder for the best video stream of fmt. */
static nu_err_t nu_av_decoder(AVFormatContext *fmt, const char *path, int *sidx,
                              AVCodecContext **dec, struct nu_errbuf *eb)
{
    const AVCodec *codec = NULL;
    int r = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);

    *dec = NULL;
    if (r < 0)
        return nu_err_set(
            eb, r == AVERROR_DECODER_NOT_FOUND ? NU_ERR_UNSUPPORTED : NU_ERR_UNSUPPORTED,
            "could not decode \"%s\": %s", path,
            r == AVERROR_DECODER_NOT_FOUND ? "no decoder for its video stream" : "no video stream");
    *sidx = r;
    *dec = avcodec_alloc_context3(codec);
    if (!*dec)
        return nu_err_set(eb, NU_ERR_SYSTEM, "could not allocate a decoder");
    r = avcodec_parameters_to_context(*dec, fmt->streams[*sidx]->codecpar);
    if (r >= 0) {
        (*dec)->thread_count = 0; /* automatic */
        r = avcodec_open2(*dec, codec, NULL);
    }
    if (r < 0) {
        avcodec_free_context(dec);
        return nu_av_err(r, "open the decoder of", path, eb);
    }
    return NU_OK;
}

/* buffer -> select(scene > threshold) -> buffersink */
static nu_err_t nu_av_graph(const AVCodecContext *dec, AVRational tb, double threshold,
                            AVFilterGraph **graph, AVFilterContext **src, AVFilterContext **sink,
                            struct nu_errbuf *eb)
{
    char args[512], expr[64];
    AVFilterContext *sel = NULL;
    int r;

    *graph = avfilter_graph_alloc();
    if (!*graph)
        return nu_err_set(eb, NU_ERR_SYSTEM, "could not allocate a filter graph");
    (*graph)->nb_threads = 1;
    snprintf(args, sizeof(args), "video_size=%dx%d:pix_fmt=%d:time_base=%d/%d:pixel_aspect=%d/%d",
             dec->width, dec->height, dec->pix_fmt, tb.num, tb.den,
             dec->sample_aspect_ratio.num ? dec->sample_aspect_ratio.num : 1,
             dec->sample_aspect_ratio.den ? dec->sample_aspect_ratio.den : 1);
    snprintf(expr, sizeof(expr), "gt(scene\\,%.6f)", threshold);
    r = avfilter_graph_create_filter(src, avfilter_get_by_name("buffer"), "in", args, NULL, *graph);
    if (r >= 0)
        r = avfilter_graph_create_filter(&sel, avfilter_get_by_name("select"), "sel", expr, NULL,
                                         *graph);
    if (r >= 0)
        r = avfilter_graph_create_filter(sink, avfilter_get_by_name("buffersink"), "out", NULL,
                                         NULL, *graph);
    if (r >= 0)
        r = avfilter_link(*src, 0, sel, 0);
    if (r >= 0)
        r = avfilter_link(sel, 0, *sink, 0);
    if (r >= 0)
        r = avfilter_graph_config(*graph, NULL);
    if (r < 0) {
        char msg[AV_ERROR_MAX_STRING_SIZE];
        av_strerror(r, msg, sizeof(msg));
        avfilter_graph_free(graph);
        return nu_err_set(eb, NU_ERR_SYSTEM, "could not set up scene detection: %s", msg);
    }
    return NU_OK;
}

struct nu_av_cuts {
    struct nu_av_scene *s;
    size_t n, cap;
};

static nu_err_t nu_av_cut(struct nu_av_cuts *c, double t, double score, double min_len,
                          struct nu_errbuf *eb)
{
    if (c->n > 0 && t - c->s[c->n - 1].start < min_len)
        return NU_OK;
    if (c->n >= NU_MEDIA_MAX_SCENES)
        return nu_err_set(eb, NU_ERR_TOO_LARGE, "more than %d scenes", NU_MEDIA_MAX_SCENES);
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->s = nu_xrealloc(c->s, c->cap * sizeof(*c->s));
    }
    if (c->n > 0)
        c->s[c->n - 1].end = t;
    c->s[c->n++] = (struct nu_av_scene){t, t, score};
    return NU_OK;
}

/* Pull selected frames out of the graph, one cut each. */
static nu_err_t nu_av_drain(AVFilterContext *sink, AVFrame *f, AVRational tb, int64_t t0,
                            double min_len, struct nu_av_cuts *c, struct nu_errbuf *eb)
{
    nu_err_t rc = NU_OK;
    while (rc == NU_OK && av_buffersink_get_frame(sink, f) >= 0) {
        AVDictionaryEntry *e = av_dict_get(f->metadata, "lavfi.scene_score", NULL, 0);
        int64_t pts =
            f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp : f->pts;
        double t = pts == AV_NOPTS_VALUE ? 0 : (double)(pts - t0) * av_q2d(tb);
        if (t > 0)
            rc = nu_av_cut(c, t, e ? strtod(e->value, NULL) : 0, min_len, eb);
        av_frame_unref(f);
    }
    return rc;
}

nu_err_t nu_av_scenes(const char *path, double threshold, double min_len, struct nu_av_scene **out,
                      size_t *n, struct nu_errbuf *eb)
{
    AVFormatContext *fmt = NULL;
    AVCodecContext *dec = NULL;
    AVFilterGraph *graph = NULL;
    AVFilterContext *src = NULL, *sink = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *frame = av_frame_alloc(), *sel = av_frame_alloc();
    struct nu_av_cuts c = {0};
    double last_t = 0, dur;
    int64_t t0 = 0;
    int sidx = -1, r;
    bool eof = false;
    nu_err_t rc;

    *out = NULL;
    *n = 0;
    if (!pkt || !frame || !sel) {
        rc = nu_err_set(eb, NU_ERR_SYSTEM, "could not allocate frames");
        goto out;
    }
    rc = nu_av_open(path, &fmt, eb);
    if (rc == NU_OK)
        rc = nu_av_decoder(fmt, path, &sidx, &dec, eb);
    if (rc != NU_OK)
        goto out;
    {
        AVStream *vs = fmt->streams[sidx];
        AVRational tb = vs->time_base;
        t0 = vs->start_time != AV_NOPTS_VALUE ? vs->start_time : 0;
        rc = nu_av_graph(dec, tb, threshold, &graph, &src, &sink, eb);
        if (rc != NU_OK)
            goto out;
        rc = nu_av_cut(&c, 0, 0, 0, eb);
        while (rc == NU_OK && !eof) {
            r = av_read_frame(fmt, pkt);
            if (r == AVERROR_EOF) {
                eof = true;
                r = avcodec_send_packet(dec, NULL);
            } else if (r < 0) {
                rc = nu_av_err(r, "read", path, eb);
                break;
            } else if (pkt->stream_index != sidx) {
                av_packet_unref(pkt);
                continue;
            } else {
                r = avcodec_send_packet(dec, pkt);
                av_packet_unref(pkt);
            }
            if (r < 0 && r != AVERROR_EOF) {
                rc = nu_av_err(r, "decode", path, eb);
                break;
            }
            while (rc == NU_OK && (r = avcodec_receive_frame(dec, frame)) >= 0) {
                int64_t pts = frame->best_effort_timestamp;
                if (pts != AV_NOPTS_VALUE) {
                    double t = (double)(pts - t0) * av_q2d(tb);
                    double fd =
                        frame->pkt_duration > 0 ? (double)frame->pkt_duration * av_q2d(tb) : 0;
                    if (t + fd > last_t)
                        last_t = t + fd;
                }
                frame->pts = pts;
                r = av_buffersrc_add_frame_flags(src, frame, AV_BUFFERSRC_FLAG_KEEP_REF);
                av_frame_unref(frame);
                if (r < 0) {
                    rc = nu_av_err(r, "filter frames of", path, eb);
                    break;
                }
                rc = nu_av_drain(sink, sel, tb, t0, min_len, &c, eb);
            }
            if (rc == NU_OK && r < 0 && r != AVERROR(EAGAIN) && r != AVERROR_EOF)
                rc = nu_av_err(r, "decode", path, eb);
        }
        if (rc == NU_OK) {
            r = av_buffersrc_add_frame(src, NULL);
            rc = r < 0 ? nu_av_err(r, "filter frames of", path, eb)
                       : nu_av_drain(sink, sel, tb, t0, min_len, &c, eb);
        }
    }
    if (rc != NU_OK)
        goto out;
    dur = nu_av_duration(fmt, fmt->streams[sidx]);
    if (last_t > 0 && (dur <= 0 || last_t < dur))
        dur = last_t;
    /* a too short last scene joins the one before */
    if (c.n > 1 && dur - c.s[c.n - 1].start < min_len)
        c.n--;
    c.s[c.n - 1].end = dur > c.s[c.n - 1].start ? dur : c.s[c.n - 1].start;
    *out = c.s;
    *n = c.n;
    c.s = NULL;
out:
    free(c.s);
    avfilter_graph_free(&graph);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    av_packet_free(&pkt);
    av_frame_free(&frame);
    av_frame_free(&sel);
    return rc;
}

nu_err_t nu_av_slice(const char *path, double start, double end, const char *format,
                     const char *out_path, struct nu_errbuf *eb)
{
    AVFormatContext *in = NULL, *out = NULL;
    AVPacket *pkt = av_packet_alloc();
    int *map = NULL, vidx = -1, r;
    int64_t off = AV_NOPTS_VALUE; /* clip start, AV_TIME_BASE units */
    bool started = false, header = false;
    nu_err_t rc;

    if (!pkt)
        return nu_err_set(eb, NU_ERR_SYSTEM, "could not allocate a packet");
    rc = nu_av_open(path, &in, eb);
    if (rc != NU_OK)
        goto out;
    vidx = av_find_best_stream(in, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (vidx < 0) {
        rc = nu_err_set(eb, NU_ERR_UNSUPPORTED, "could not slice \"%s\": no video stream", path);
        goto out;
    }
    r = avformat_alloc_output_context2(&out, NULL, format, out_path);
    if (r < 0) {
        rc = nu_av_err(r, "create output format for", out_path, eb);
        goto out;
    }
    out->flags |= AVFMT_FLAG_BITEXACT;
    map = nu_xcalloc(in->nb_streams, sizeof(*map));
    for (unsigned i = 0; i < in->nb_streams; i++) {
        AVStream *is = in->streams[i], *os;
        enum AVMediaType t = is->codecpar->codec_type;
        map[i] = -1;
        if ((t != AVMEDIA_TYPE_VIDEO || (int)i != vidx) && t != AVMEDIA_TYPE_AUDIO)
            continue;
        if (avformat_query_codec(out->oformat, is->codecpar->codec_id, FF_COMPLIANCE_NORMAL) != 1)
            continue;
        os = avformat_new_stream(out, NULL);
        if (!os || avcodec_parameters_copy(os->codecpar, is->codecpar) < 0) {
            rc = nu_err_set(eb, NU_ERR_SYSTEM, "could not add a stream to \"%s\"", out_path);
            goto out;
        }
        os->codecpar->codec_tag = 0;
        os->time_base = is->time_base;
        map[i] = os->index;
    }
    if (map[vidx] < 0) {
        rc = nu_err_set(eb, NU_ERR_UNSUPPORTED,
                        "could not slice \"%s\": its video codec cannot be stored in %s", path,
                        format);
        goto out;
    }
    if (start > 0) {
        AVStream *vs = in->streams[vidx];
        int64_t ts = av_rescale_q((int64_t)(start * AV_TIME_BASE), AV_TIME_BASE_Q, vs->time_base);
        if (vs->start_time != AV_NOPTS_VALUE)
            ts += vs->start_time;
        r = av_seek_frame(in, vidx, ts, AVSEEK_FLAG_BACKWARD);
        if (r < 0) {
            rc = nu_av_err(r, "seek in", path, eb);
            goto out;
        }
    }
    r = avio_open(&out->pb, out_path, AVIO_FLAG_WRITE);
    if (r < 0) {
        rc = nu_av_err(r, "create", out_path, eb);
        goto out;
    }
    {
        AVDictionary *opts = NULL;
        av_dict_set(&opts, "fflags", "+bitexact", 0);
        r = avformat_write_header(out, &opts);
        av_dict_free(&opts);
        if (r < 0) {
            rc = nu_av_err(r, "write the header of", out_path, eb);
            goto out;
        }
        header = true;
    }
    for (;;) {
        AVStream *is, *os;
        int64_t t;
        r = av_read_frame(in, pkt);
        if (r == AVERROR_EOF)
            break;
        if (r < 0) {
            rc = nu_av_err(r, "read", path, eb);
            goto out;
        }
        if (map[pkt->stream_index] < 0) {
            av_packet_unref(pkt);
            continue;
        }
        is = in->streams[pkt->stream_index];
        os = out->streams[map[pkt->stream_index]];
        t = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
        t = t == AV_NOPTS_VALUE ? 0 : av_rescale_q(t, is->time_base, AV_TIME_BASE_Q);
        if (pkt->stream_index == vidx && (pkt->flags & AV_PKT_FLAG_KEY)) {
            int64_t st0 = is->start_time != AV_NOPTS_VALUE
                              ? av_rescale_q(is->start_time, is->time_base, AV_TIME_BASE_Q)
                              : 0;
            double rel = (double)(t - st0) / AV_TIME_BASE;
            if (started && end >= 0 && rel >= end - 1e-3) {
                av_packet_unref(pkt);
                break;
            }
            if (!started) {
                started = true;
                off = t;
            }
        }
        if (!started || (pkt->stream_index != vidx && t < off)) {
            av_packet_unref(pkt);
            continue;
        }
        {
            int64_t o = av_rescale_q(off, AV_TIME_BASE_Q, is->time_base);
            if (pkt->pts != AV_NOPTS_VALUE)
                pkt->pts -= o;
            if (pkt->dts != AV_NOPTS_VALUE)
                pkt->dts -= o;
        }
        av_packet_rescale_ts(pkt, is->time_base, os->time_base);
        pkt->stream_index = os->index;
        pkt->pos = -1;
        r = av_interleaved_write_frame(out, pkt);
        if (r < 0) {
            rc = nu_av_err(r, "write", out_path, eb);
            goto out;
        }
    }
    r = av_write_trailer(out);
    header = false;
    if (r < 0) {
        rc = nu_av_err(r, "finish", out_path, eb);
        goto out;
    }
    if (!started)
        rc = nu_err_set(eb, NU_ERR_CORRUPT, "could not slice \"%s\": no key frame after %.3f s",
                        path, start);
out:
    if (header)
        av_write_trailer(out);
    if (out && out->pb)
        avio_closep(&out->pb);
    avformat_free_context(out);
    avformat_close_input(&in);
    av_packet_free(&pkt);
    free(map);
    return rc;
}
