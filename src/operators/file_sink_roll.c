/*
 * file_sink_roll.c — rolling mode of `file_sink`: the rows of many splits appended to one file.
 *
 * An instance keeps one open file, <dir>/.roll-<instance>-<name>.<ext>.tmp, where <name> is the
 * escaped id of the first split written to it. Each split is appended (as a gzip member when
 * compressed; the CSV header only at the start) and fsynced before process() returns; a failed
 * append is truncated away. A split id already in the open file is not appended again (a retry,
 * or a replay after an aborted transaction). The file is finalised — fsync, rename to
 * <dir>/<name>.<ext>, fsync of the directory — when roll_rows or roll_bytes is reached, at
 * end_of_partition and at close. open() finalises files its instance left behind after a crash,
 * cut back to the last complete record (line, or gzip member).
 *
 * Guarantee: at least once. A crash after a split was appended but before the stage committed
 * its offset replays the split into the next file (a duplicate). A replay that starts at the
 * same split as a file that was already finalised writes the same name with the same content
 * (the split order of a partition is fixed), so that common case is idempotent, but not all are.
 */
#include "operators/file_sink_int.h"

#include "common/mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t nu_idset_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static bool nu_idset_has(const struct nu_fsink_idset *set, const char *id)
{
    if (set->cap == 0)
        return false;
    for (size_t i = nu_idset_hash(id) & (set->cap - 1);; i = (i + 1) & (set->cap - 1)) {
        if (!set->slot[i])
            return false;
        if (strcmp(set->slot[i], id) == 0)
            return true;
    }
}

static void nu_idset_add(struct nu_fsink_idset *set, const char *id)
{
    if ((set->n + 1) * 2 > set->cap) {
        struct nu_fsink_idset big = {.cap = set->cap ? set->cap * 2 : 64};
        big.slot = nu_xcalloc(big.cap, sizeof(char *));
        for (size_t i = 0; i < set->cap; i++) {
            if (!set->slot[i])
                continue;
            size_t k = nu_idset_hash(set->slot[i]) & (big.cap - 1);
            while (big.slot[k])
                k = (k + 1) & (big.cap - 1);
            big.slot[k] = set->slot[i];
        }
        big.n = set->n;
        free(set->slot);
        *set = big;
    }
    size_t k = nu_idset_hash(id) & (set->cap - 1);
    while (set->slot[k])
        k = (k + 1) & (set->cap - 1);
    set->slot[k] = nu_xstrdup(id);
    set->n++;
}

static void nu_idset_clear(struct nu_fsink_idset *set)
{
    for (size_t i = 0; i < set->cap; i++)
        free(set->slot[i]);
    free(set->slot);
    memset(set, 0, sizeof(*set));
}

void nu_fsink_roll_free(struct nu_file_sink *fs)
{
    if (fs->roll_fd >= 0)
        close(fs->roll_fd);
    fs->roll_fd = -1;
    free(fs->roll_tmp);
    free(fs->roll_name);
    fs->roll_tmp = fs->roll_name = NULL;
    fs->roll_nrows = fs->roll_nbytes = 0;
    nu_idset_clear(&fs->seen);
}

nu_err_t nu_fsink_roll_finish(struct nu_file_sink *fs, struct nu_errbuf *eb)
{
    nu_err_t rc = NU_OK;
    if (fs->roll_fd < 0)
        return NU_OK;
    if (fsync(fs->roll_fd) != 0)
        rc = nu_err_set(eb, NU_ERR_IO, "could not fsync file \"%s\": %s", fs->roll_tmp,
                        strerror(errno));
    if (close(fs->roll_fd) != 0 && rc == NU_OK)
        rc = nu_err_set(eb, NU_ERR_IO, "could not close file \"%s\": %s", fs->roll_tmp,
                        strerror(errno));
    fs->roll_fd = -1;
    if (rc == NU_OK && rename(fs->roll_tmp, fs->roll_name) != 0)
        rc = nu_err_set(eb, NU_ERR_IO, "could not rename file \"%s\" to \"%s\": %s", fs->roll_tmp,
                        fs->roll_name, strerror(errno));
    if (rc == NU_OK)
        rc = nu_fsink_sync_dir(fs->dir, eb);
    /* on failure the temporary file stays and open() of this instance recovers it */
    nu_fsink_roll_free(fs);
    return rc;
}

nu_err_t nu_fsink_roll_process(struct nu_file_sink *fs, const char *split,
                               const struct nu_batch *in, struct nu_errbuf *eb)
{
    const struct nu_buf *data = NULL;
    char *name = NULL;
    nu_err_t rc = NU_OK;
    off_t before;

    if (in->nrows == 0 || nu_idset_has(&fs->seen, split))
        return NU_OK;
    if (fs->roll_fd < 0) {
        name = nu_fsink_name(split);
        fs->roll_tmp =
            nu_xasprintf("%s/.roll-%u-%s.%s.tmp", fs->dir, (unsigned)fs->instance, name, fs->ext);
        fs->roll_name = nu_xasprintf("%s/%s.%s", fs->dir, name, fs->ext);
        free(name);
        fs->roll_fd = open(fs->roll_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fs->roll_fd < 0) {
            rc = nu_err_set(eb, NU_ERR_IO, "could not create file \"%s\": %s", fs->roll_tmp,
                            strerror(errno));
            nu_fsink_roll_free(fs);
            return rc;
        }
    }
    rc = nu_fsink_encode(fs, in, fs->roll_nbytes == 0, &data, eb);
    if (rc != NU_OK)
        return rc;
    before = (off_t)fs->roll_nbytes;
    rc = nu_fsink_write_all(fs->roll_fd, data->data, data->len, fs->roll_tmp, eb);
    if (rc == NU_OK && fsync(fs->roll_fd) != 0)
        rc = nu_err_set(eb, NU_ERR_IO, "could not fsync file \"%s\": %s", fs->roll_tmp,
                        strerror(errno));
    if (rc != NU_OK) {
        /* take the partial append back so a retry starts from a clean end */
        if (ftruncate(fs->roll_fd, before) != 0 || lseek(fs->roll_fd, before, SEEK_SET) < 0)
            nu_fsink_roll_free(fs);
        return rc;
    }
    nu_idset_add(&fs->seen, split);
    fs->roll_nrows += (long long)in->nrows;
    fs->roll_nbytes += (long long)data->len;
    if (fs->roll_nrows >= fs->roll_rows || fs->roll_nbytes >= fs->roll_bytes)
        rc = nu_fsink_roll_finish(fs, eb);
    return rc;
}

/* Cut a leftover file back to its last complete record and finalise it as `final`. */
static nu_err_t nu_fsink_roll_adopt(struct nu_file_sink *fs, const char *tmp, const char *final,
                                    struct nu_errbuf *eb)
{
    struct stat st;
    unsigned char *data = NULL;
    size_t keep = 0, got = 0;
    nu_err_t rc = NU_OK;
    int fd = open(tmp, O_RDWR | O_CLOEXEC);

    if (fd < 0)
        return nu_err_set(eb, NU_ERR_IO, "could not open file \"%s\": %s", tmp, strerror(errno));
    if (fstat(fd, &st) != 0 || st.st_size > NU_FILE_SINK_MAX_ROLL) {
        rc = nu_err_set(eb, NU_ERR_IO, "could not recover file \"%s\"", tmp);
        goto out;
    }
    data = nu_xmalloc((size_t)st.st_size + 1);
    while (got < (size_t)st.st_size) {
        ssize_t n = pread(fd, data + got, (size_t)st.st_size - got, (off_t)got);
        if (n <= 0) {
            rc = nu_err_set(eb, NU_ERR_IO, "could not read file \"%s\"", tmp);
            goto out;
        }
        got += (size_t)n;
    }
    if (fs->gzip) {
        keep = nu_fsink_gzip_complete(data, got);
    } else {
        keep = got;
        while (keep > 0 && data[keep - 1] != '\n')
            keep--;
    }
    if (keep == 0) {
        if (unlink(tmp) != 0)
            rc =
                nu_err_set(eb, NU_ERR_IO, "could not remove file \"%s\": %s", tmp, strerror(errno));
        goto out;
    }
    if (ftruncate(fd, (off_t)keep) != 0 || fsync(fd) != 0 || rename(tmp, final) != 0)
        rc = nu_err_set(eb, NU_ERR_IO, "could not recover file \"%s\": %s", tmp, strerror(errno));
out:
    close(fd);
    free(data);
    return rc;
}

nu_err_t nu_fsink_roll_recover(struct nu_file_sink *fs, struct nu_errbuf *eb)
{
    char prefix[32], suffix[32];
    struct dirent *e;
    nu_err_t rc = NU_OK;
    bool any = false;
    DIR *d = opendir(fs->dir);

    if (!d)
        return nu_err_set(eb, NU_ERR_IO, "could not open directory \"%s\": %s", fs->dir,
                          strerror(errno));
    snprintf(prefix, sizeof(prefix), ".roll-%u-", (unsigned)fs->instance);
    snprintf(suffix, sizeof(suffix), ".%s.tmp", fs->ext);
    while (rc == NU_OK && (e = readdir(d))) {
        size_t len = strlen(e->d_name), pl = strlen(prefix), sl = strlen(suffix);
        if (len <= pl + sl || strncmp(e->d_name, prefix, pl) != 0 ||
            strcmp(e->d_name + len - sl, suffix) != 0)
            continue;
        char *tmp = nu_xasprintf("%s/%s", fs->dir, e->d_name);
        char *final =
            nu_xasprintf("%s/%.*s.%s", fs->dir, (int)(len - pl - sl), e->d_name + pl, fs->ext);
        rc = nu_fsink_roll_adopt(fs, tmp, final, eb);
        any = true;
        free(tmp);
        free(final);
    }
    closedir(d);
    if (rc == NU_OK && any)
        rc = nu_fsink_sync_dir(fs->dir, eb);
    return rc;
}
