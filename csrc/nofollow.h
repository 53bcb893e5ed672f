/* The no-follow directory walk, shared by the cffi module (csrc/fifo.c) and
 * the standalone pcd-handoff helper (csrc/handoff/pcd-handoff.c), which is
 * linked on its own and so cannot call into the module: one copy of the rule,
 * compiled into each.
 */
#ifndef PCD_NOFOLLOW_H
#define PCD_NOFOLLOW_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* pcd_nofollow_open_dir: open the directory `path` (absolute) as an O_PATH fd
 * without following a symlink in ANY component.
 *
 * Walks from "/" with openat(parent, component, O_PATH|O_DIRECTORY|O_NOFOLLOW):
 * open(2) with O_NOFOLLOW guards only the last component, and in a
 * user-namespace bundle the remapped root owns directories above the FIFO and
 * socket directories, so it could swap any of them for a symlink between our
 * check and our use.  This is the rule the bundle walk applies (csrc/bundle.c):
 * a path the bundle walk made can always be opened here.
 *
 * Returns the fd, or -errno: -ELOOP when a component is a symlink, -ENOTDIR
 * for another non-directory, -ENOENT when missing, -EINVAL for a relative
 * path or a "." / ".." component, -ENAMETOOLONG beyond PATH_MAX.
 */
static inline int pcd_nofollow_open_dir(const char *path)
{
    char buf[PATH_MAX];
    char *p, *save = NULL;
    int dirfd, next, err;
    struct stat st;

    if (path[0] != '/')
        return -EINVAL;
    if (strlen(path) >= sizeof buf)
        return -ENAMETOOLONG;
    strcpy(buf, path);
    do {
        dirfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    } while (dirfd < 0 && errno == EINTR);
    if (dirfd < 0)
        return -errno;
    for (p = strtok_r(buf, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
        if (strcmp(p, ".") == 0 || strcmp(p, "..") == 0) {
            close(dirfd);
            return -EINVAL;
        }
        do {
            next = openat(dirfd, p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        } while (next < 0 && errno == EINTR);
        if (next < 0) {
            err = errno;
            /* O_PATH|O_NOFOLLOW opens a symlink itself; with O_DIRECTORY that is ENOTDIR. */
            if (err == ENOTDIR && fstatat(dirfd, p, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                err = ELOOP;
            close(dirfd);
            return -err;
        }
        close(dirfd);
        dirfd = next;
    }
    return dirfd;
}

#endif
