/* FIFO creation and race-safe (re)opening.
 *
 * Every operation is relative to a directory fd and refuses to follow a
 * symlink at the FIFO's name, so a path swapped between two calls cannot
 * redirect a chmod or an open to another file.  The blocking open of a
 * FIFO end goes through an O_PATH handle and /proc/self/fd/N after
 * checking that the handle still names the same inode (containerd/fifo's
 * technique), so that a pending open can be aborted by opening the other
 * direction on exactly that inode.
 */
#include "fifo.h"
#include "nofollow.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* The first mode a new node gets, before fchmod sets the final one: owner
 * only, so the FIFO is never more open than intended while it exists. */
#define FIFO_INITIAL_MODE 0600

/* openat(2), retried on EINTR.  Returns the fd or -1 with errno set. */
static int open_retry(int dirfd, const char *name, int flags)
{
    int fd;

    do {
        fd = openat(dirfd, name, flags);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

/* pcd_open_dir: the no-follow walk of csrc/nofollow.h (its contract). */
int pcd_open_dir(const char *path)
{
    return pcd_nofollow_open_dir(path);
}

/* Format "/proc/self/fd/<fd>" into buf; cannot fail for size >= 32. */
static void proc_fd_path(char *buf, size_t size, int fd)
{
    snprintf(buf, size, "/proc/self/fd/%d", fd);
}

/* pcd_fifo_create: make (or reuse) the FIFO `name` in `dirfd`.
 *
 * mkfifoat, then open the node O_RDONLY|O_NONBLOCK|O_NOFOLLOW|O_CLOEXEC
 * (never blocks, even with no writer), fstat it to confirm S_ISFIFO and,
 * for a node this call made, fchmod it to `mode` on that fd (so the umask
 * does not matter).  An existing FIFO is reused with its mode unchanged.
 *
 * Returns the read-end fd (>= 0) with *created = 1 if the node is new and
 * 0 if it was reused; on failure -errno, after removing a node this call
 * made:
 *   -EEXIST  `name` exists and is not a FIFO (a symlink included)
 *   other    errno of mkfifoat, fstatat, openat, fstat or fchmod
 */
int pcd_fifo_create(int dirfd, const char *name, unsigned int mode, int *created)
{
    struct stat st;
    int fd, err;

    *created = 0;
    if (mkfifoat(dirfd, name, FIFO_INITIAL_MODE) == 0) {
        *created = 1;
    } else if (errno != EEXIST) {
        return -errno;
    } else {
        /* Check before opening: opening some other node type (a device)
         * could have side effects. */
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return -errno;
        if (!S_ISFIFO(st.st_mode))
            return -EEXIST;
    }

    fd = open_retry(dirfd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        /* ELOOP: a symlink was swapped in after the check above. */
        err = errno == ELOOP ? EEXIST : errno;
        goto fail;
    }
    if (fstat(fd, &st) < 0) {
        err = errno;
        goto fail_close;
    }
    if (!S_ISFIFO(st.st_mode)) {
        err = EEXIST;
        goto fail_close;
    }
    if (*created && fchmod(fd, mode & 07777) < 0) {
        err = errno;
        goto fail_close;
    }
    return fd;

fail_close:
    close(fd);
fail:
    if (*created)
        unlinkat(dirfd, name, 0);
    *created = 0;
    return -err;
}

/* pcd_fifo_open_path: an O_PATH handle on the FIFO `name` in `dirfd`.
 *
 * The handle never blocks and grants no I/O; it pins the inode so that
 * pcd_fifo_reopen can later open exactly this FIFO.  *dev and *ino receive
 * its identity.
 *
 * Returns the O_PATH fd (>= 0, O_CLOEXEC) or -errno:
 *   -EEXIST  `name` is not a FIFO (a symlink included)
 *   other    errno of openat or fstat
 */
int pcd_fifo_open_path(int dirfd, const char *name, uint64_t *dev, uint64_t *ino)
{
    struct stat st;
    int fd, err;

    fd = open_retry(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        err = errno;
        close(fd);
        return -err;
    }
    if (!S_ISFIFO(st.st_mode)) {
        close(fd);
        return -EEXIST;
    }
    *dev = (uint64_t)st.st_dev;
    *ino = (uint64_t)st.st_ino;
    return fd;
}

/* 1 if st is the FIFO (dev, ino), else 0; no errno. */
static int same_fifo(const struct stat *st, uint64_t dev, uint64_t ino)
{
    return S_ISFIFO(st->st_mode) && (uint64_t)st->st_dev == dev && (uint64_t)st->st_ino == ino;
}

/* pcd_fifo_reopen: open the FIFO behind the O_PATH handle `pathfd`.
 *
 * Checks that /proc/self/fd/<pathfd> still names the FIFO (dev, ino), opens
 * it with `flags` | O_CLOEXEC (blocking unless `flags` has O_NONBLOCK: a
 * FIFO end waits for its peer; run it with the GIL released) and checks
 * the identity again on the new fd.  O_CREAT is never honoured.
 *
 * Returns the new fd (>= 0) or -errno:
 *   -ESTALE  the handle no longer names that FIFO
 *   -ENXIO   O_WRONLY|O_NONBLOCK and no reader (fifo(7))
 *   other    errno of stat, open or fstat
 */
int pcd_fifo_reopen(int pathfd, int flags, uint64_t dev, uint64_t ino)
{
    char proc[64];
    struct stat st;
    int fd, err;

    proc_fd_path(proc, sizeof proc, pathfd);
    if (stat(proc, &st) < 0)
        return -errno;
    if (!same_fifo(&st, dev, ino))
        return -ESTALE;
    fd = open_retry(AT_FDCWD, proc, (flags & ~O_CREAT) | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        err = errno;
        close(fd);
        return -err;
    }
    if (!same_fifo(&st, dev, ino)) {
        close(fd);
        return -ESTALE;
    }
    return fd;
}
