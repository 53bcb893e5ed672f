/* Race-safe directory walks: libcontainerd's prepareBundleDir and idtools'
 * MkdirAllAndChownNew / MkdirAndChown, done on directory fds.
 *
 * moby's walk calls stat(2) and chown(2) by path, following symlinks, so a
 * planted `<comp>.<uid>.<gid>` symlink redirects its chown anywhere.  Here
 * every component is opened relative to its parent's fd with
 * O_DIRECTORY|O_NOFOLLOW, decisions come from fstat on that fd, and chown
 * and chmod act only on fds of directories this call created.  A symlink
 * or non-directory where a directory is expected is refused, and on any
 * failure the directories this call created are removed, deepest first.
 *
 * Every function reports the index of the failing path component in
 * *failed (-1 when no component is involved) so the caller can name the
 * exact sub-path in its error.
 */
#include "bundle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum walk_kind {
    WALK_ALL_NEW, /* create missing components, chown/chmod only those */
    WALK_CHOWN,   /* parents must exist; create or fix up the last one */
    WALK_USERNS,  /* prepareBundleDir with a remapped root */
};

struct walk {
    char *buf;              /* writable copy of the path, split in place */
    char **names;           /* names[i]: component i as given */
    char **used;            /* used[i]: the name used for it (maybe suffixed) */
    int *fds;               /* fds[i]: parent of component i; fds[n]: last */
    unsigned char *created; /* created[i]: this call made component i */
    int n;
};

/* openat(2), retried on EINTR.  Returns the fd or -1 with errno set. */
static int open_retry(int dirfd, const char *name, int flags)
{
    int fd;

    do {
        fd = openat(dirfd, name, flags);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

/* Split `path` (absolute; no "." or ".." components) into `w`.
 * Returns 0, -EINVAL (*failed = the offending index, or -1 for a relative
 * path) or -ENOMEM. */
static int walk_init(struct walk *w, const char *path, int *failed)
{
    char *p, *save = NULL;
    int i;

    memset(w, 0, sizeof *w);
    if (path[0] != '/')
        return -EINVAL;
    w->buf = strdup(path);
    if (w->buf == NULL)
        return -ENOMEM;
    for (p = w->buf; *p; p++)
        if (*p == '/' && p[1] != '/' && p[1] != '\0')
            w->n++;
    w->names = calloc((size_t)w->n + 1, sizeof *w->names);
    w->used = calloc((size_t)w->n + 1, sizeof *w->used);
    w->fds = malloc(((size_t)w->n + 1) * sizeof *w->fds);
    w->created = calloc((size_t)w->n + 1, 1);
    for (i = 0; w->fds && i <= w->n; i++)
        w->fds[i] = -1;
    if (!w->names || !w->used || !w->fds || !w->created)
        return -ENOMEM;
    for (i = 0, p = strtok_r(w->buf, "/", &save); p; p = strtok_r(NULL, "/", &save), i++) {
        if (strcmp(p, ".") == 0 || strcmp(p, "..") == 0) {
            *failed = i;
            return -EINVAL;
        }
        w->names[i] = w->used[i] = p;
    }
    return 0;
}

/* Remove what this walk created, deepest first; errors are ignored because
 * the walk is already failing with its own error. */
static void walk_rollback(struct walk *w)
{
    int i;

    for (i = w->n - 1; i >= 0; i--)
        if (w->created[i] && w->fds[i] >= 0)
            unlinkat(w->fds[i], w->used[i], AT_REMOVEDIR);
}

/* Close every fd the walk holds and free it; no errno. */
static void walk_free(struct walk *w)
{
    int i;

    for (i = 0; w->fds && i <= w->n; i++)
        if (w->fds[i] >= 0)
            close(w->fds[i]);
    for (i = 0; w->used && i < w->n; i++)
        if (w->used[i] != w->names[i])
            free(w->used[i]);
    free(w->names);
    free(w->used);
    free(w->fds);
    free(w->created);
    free(w->buf);
}

/* Open the existing directory `name` in `parent` without following a
 * symlink.  Returns an O_PATH fd or -errno: -ELOOP for a symlink, -ENOTDIR
 * for another non-directory, -ENOENT when missing. */
static int open_dir(int parent, const char *name, int flags)
{
    struct stat st;
    int fd, err;

    fd = open_retry(parent, name, flags | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0)
        return fd;
    err = errno;
    if (err == ENOTDIR && fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        return -ELOOP;
    return -err;
}

/* chown (only when it differs) and chmod the directory fd `fd`.
 * Returns 0 or -errno of fchown/fchmod. */
static int set_owner_mode(int fd, const struct stat *st, unsigned int mode, uint32_t uid, uint32_t gid)
{
    if ((st->st_uid != uid || st->st_gid != gid) && fchown(fd, uid, gid) < 0)
        return -errno;
    if (fchmod(fd, mode & 07777) < 0)
        return -errno;
    return 0;
}

/* Create `name` in `parent`, owned by uid:gid with exactly `mode`.
 * The directory starts as 0700 so it is never more open than intended,
 * and is chowned and chmodded through a real O_NOFOLLOW fd.
 * Returns that fd (usable as the next parent), or -errno with nothing left
 * behind; -EEXIST when `name` exists (or was replaced under us, in which
 * case it is not ours and is left untouched). */
static int make_dir(int parent, const char *name, unsigned int mode, uint32_t uid, uint32_t gid)
{
    struct stat st;
    int fd, err;

    if (mkdirat(parent, name, 0700) < 0)
        return -errno;
    fd = open_retry(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        goto fail;
    }
    if (fstat(fd, &st) < 0) {
        err = errno;
        goto fail_close;
    }
    if (st.st_uid != geteuid()) {
        close(fd);
        return -EEXIST;
    }
    err = -set_owner_mode(fd, &st, mode, uid, gid);
    if (err)
        goto fail_close;
    return fd;

fail_close:
    close(fd);
fail:
    unlinkat(parent, name, AT_REMOVEDIR);
    return -err;
}

/* idtools' MkdirAndChown on an existing directory: re-chown and re-chmod
 * it, through an O_NOFOLLOW fd so a symlink is refused, not followed.
 * Returns that fd or -errno (-ELOOP/-ENOTDIR as open_dir, fstat/fchown/fchmod). */
static int fix_existing(int parent, const char *name, unsigned int mode, uint32_t uid, uint32_t gid)
{
    struct stat st;
    int fd, err;

    fd = open_dir(parent, name, O_RDONLY);
    if (fd < 0)
        return fd;
    err = fstat(fd, &st) < 0 ? -errno : set_owner_mode(fd, &st, mode, uid, gid);
    if (err) {
        close(fd);
        return err;
    }
    return fd;
}

/* Accept an existing `<comp>.<uid>.<gid>` only if it is a real directory
 * owned by uid:gid that neither group nor others can write.
 * Returns an O_PATH fd on it or -errno: -ELOOP/-ENOTDIR as open_dir, -EPERM
 * with *detail set for a wrong owner or a writable directory. */
static int check_suffixed(int parent, const char *name, uint32_t uid, uint32_t gid, int *detail)
{
    struct stat st;
    int fd, err;

    fd = open_dir(parent, name, O_PATH);
    if (fd < 0)
        return fd;
    if (fstat(fd, &st) < 0) {
        err = -errno;
    } else if (st.st_uid != uid || st.st_gid != gid) {
        err = -EPERM;
        *detail = PCD_BUNDLE_WRONG_OWNER;
    } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        err = -EPERM;
        *detail = PCD_BUNDLE_WRITABLE;
    } else {
        return fd;
    }
    close(fd);
    return err;
}

/* Set used[i] to "<names[i]>.<uid>.<gid>".  Returns 0 or -ENOMEM. */
static int suffix(struct walk *w, int i, uint32_t uid, uint32_t gid)
{
    size_t size = strlen(w->names[i]) + 2 * sizeof ".4294967295";
    char *name = malloc(size);

    if (name == NULL)
        return -ENOMEM;
    snprintf(name, size, "%s.%u.%u", w->names[i], (unsigned int)uid, (unsigned int)gid);
    w->used[i] = name;
    return 0;
}

/* One step of the userns walk for component i: returns the fd to descend
 * into or -errno (open_dir, make_dir, check_suffixed, -ENOMEM).  *suffixed turns (and stays) on at the first component
 * that is missing or lacks the other-execute bit. */
static int userns_step(struct walk *w, int i, uint32_t uid, uint32_t gid, int *suffixed, int *first_suffixed,
                       int *detail)
{
    struct stat st;
    int fd, parent = w->fds[i];

    if (!*suffixed) {
        fd = open_dir(parent, w->names[i], O_PATH);
        if (fd >= 0) {
            if (fstat(fd, &st) < 0) {
                int err = errno;
                close(fd);
                return -err;
            }
            if (st.st_mode & S_IXOTH)
                return fd;
            close(fd);
        } else if (fd != -ENOENT) {
            return fd;
        }
        *suffixed = 1;
        *first_suffixed = i;
    }
    fd = suffix(w, i, uid, gid);
    if (fd < 0)
        return fd;
    fd = make_dir(parent, w->used[i], 0700, uid, gid);
    if (fd >= 0)
        w->created[i] = 1;
    else if (fd == -EEXIST)
        fd = check_suffixed(parent, w->used[i], uid, gid, detail);
    return fd;
}

/* The shared walker behind the three exported functions.  Returns 0 or
 * -errno with *failed = the failing component (-1 if none); created
 * directories are removed on failure. */
static int walk(enum walk_kind kind, const char *path, unsigned int mode, uint32_t uid, uint32_t gid, int *failed,
                int *first_suffixed, int *detail)
{
    struct walk w;
    int i, fd, suffixed = 0, rc;

    *failed = -1;
    *first_suffixed = -1;
    *detail = 0;
    rc = walk_init(&w, path, failed);
    if (rc < 0)
        goto out;
    fd = open_retry(AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    w.fds[0] = fd;
    for (i = 0; i < w.n; i++) {
        int parent = w.fds[i];

        switch (kind) {
        case WALK_ALL_NEW:
            fd = open_dir(parent, w.names[i], O_PATH);
            if (fd == -ENOENT) {
                fd = make_dir(parent, w.names[i], mode, uid, gid);
                if (fd >= 0)
                    w.created[i] = 1;
                else if (fd == -EEXIST) /* lost a race: it exists, so it is not ours */
                    fd = open_dir(parent, w.names[i], O_PATH);
            }
            break;
        case WALK_CHOWN:
            if (i < w.n - 1) {
                fd = open_dir(parent, w.names[i], O_PATH);
                break;
            }
            fd = make_dir(parent, w.names[i], mode, uid, gid);
            if (fd >= 0)
                w.created[i] = 1;
            else if (fd == -EEXIST)
                fd = fix_existing(parent, w.names[i], mode, uid, gid);
            break;
        case WALK_USERNS:
            fd = userns_step(&w, i, uid, gid, &suffixed, first_suffixed, detail);
            break;
        }
        if (fd < 0) {
            rc = fd;
            *failed = i;
            walk_rollback(&w);
            goto out;
        }
        w.fds[i + 1] = fd;
        /* A parent is only kept to roll back the child created in it. */
        if (!w.created[i]) {
            close(parent);
            w.fds[i] = -1;
        }
    }
    rc = 0;
out:
    walk_free(&w);
    return rc;
}

/* pcd_mkdir_all_new: idtools' MkdirAllAndChownNew, race-safe.
 *
 * Creates every missing component of `path` (absolute, no "."/".."
 * components) with exactly `mode` (fchmod, so the umask does not matter)
 * and owner uid:gid.  Existing components, the target included, are left
 * untouched.
 *
 * Returns 0 or -errno, with *failed = the failing component's index (-1 if
 * none) and every directory this call created removed again:
 *   -ELOOP    a component is a symlink
 *   -ENOTDIR  a component is not a directory
 *   -EINVAL   relative path or a "."/".." component
 *   other     errno of openat, mkdirat, fstat, fchown or fchmod
 */
int pcd_mkdir_all_new(const char *path, unsigned int mode, uint32_t uid, uint32_t gid, int *failed)
{
    int first_suffixed, detail;

    return walk(WALK_ALL_NEW, path, mode, uid, gid, failed, &first_suffixed, &detail);
}

/* pcd_mkdir_chown: idtools' MkdirAndChown, race-safe.
 *
 * Every parent of `path` must exist (as a real directory, no symlink).
 * The last component is created with exactly `mode` and owner uid:gid; if
 * it already is a directory it is chowned (when different) and chmodded
 * to `mode` through an O_NOFOLLOW fd, as idtools does.
 *
 * Returns 0 or -errno, *failed as for pcd_mkdir_all_new:
 *   -ENOENT   a parent is missing
 *   -ELOOP, -ENOTDIR, -EINVAL, other: as for pcd_mkdir_all_new
 */
int pcd_mkdir_chown(const char *path, unsigned int mode, uint32_t uid, uint32_t gid, int *failed)
{
    int first_suffixed, detail;

    return walk(WALK_CHOWN, path, mode, uid, gid, failed, &first_suffixed, &detail);
}

/* pcd_bundle_userns: prepareBundleDir for a remapped root uid:gid.
 *
 * Walks `path` from "/".  A component that exists as a directory with the
 * other-execute bit is descended into unchanged.  The first component that
 * is missing or lacks that bit, and every deeper one, is replaced by
 * `<comp>.<uid>.<gid>`: created 0700 owned by uid:gid, or, if it exists,
 * accepted only when it is a real directory owned by uid:gid that group
 * and others cannot write (never chowned or chmodded).
 *
 * Returns 0 or -errno with *failed as for pcd_mkdir_all_new and
 * *first_suffixed = the index of the first suffixed component (-1 if
 * none; valid on failure too).  -EPERM with *detail =
 * PCD_BUNDLE_WRONG_OWNER or PCD_BUNDLE_WRITABLE refuses an existing
 * suffixed directory; other errors as for pcd_mkdir_all_new.
 */
int pcd_bundle_userns(const char *path, uint32_t uid, uint32_t gid, int *failed, int *first_suffixed,
                      int *detail)
{
    return walk(WALK_USERNS, path, 0700, uid, gid, failed, first_suffixed, detail);
}
