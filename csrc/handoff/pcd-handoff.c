/* pcd-handoff: containerd logging binary that hands the container's own
 * stdout/stderr pipes to pycontainerd over a unix socket (issue 6).
 *
 * The runc shim (containerd 1.6/1.7 pkg/process/io.go NewBinaryIO; 2.x
 * cmd/containerd-shim-runc-v2/process/io.go) runs the program named by a
 * `binary:///path?k=v&...` stdout URI for non-TTY init and exec processes:
 *
 *   argv    the query pairs as separate words, `k v k v ...`, in Go map order
 *           (i.e. any order); only the first value of a repeated key.
 *   env     exactly CONTAINER_ID=<id> and CONTAINER_NAMESPACE=<ns>.
 *   fds     0-2 /dev/null; 3 = read end of the container's stdout pipe,
 *           4 = read end of its stderr pipe, 5 = write end of a readiness pipe.
 *   ready   the shim blocks reading one byte from fd 5; a byte or EOF both
 *           count ("binary"), "binary-v2" (containerd 2.2+) needs the byte.
 *   stop    on Tasks/Delete (of the task or the exec) the shim closes its
 *           pipe ends, sends SIGTERM and waits up to 12 s before SIGKILL.
 *
 * The shim keeps the pipes' write ends until that Delete, so a reader sees
 * EOF only after Delete, never at process exit. stdin is not connected at all
 * (binaryIO has none; the process reads /dev/null even if a FIFO is given).
 *
 * Arguments understood here (pairs, any order):
 *   socket <abs path>   where to listen (required); created mode 0600.
 *   owner_uid <uid>     who may receive the pipes besides root; default: our
 *                       euid. The socket file is chowned to this uid.
 *
 * Protocol: a client connects; if its SO_PEERCRED uid is owner_uid or 0 it
 * receives one message: 8 bytes {'P','C','D','H', version=1, flags=0, 0, 0}
 * with SCM_RIGHTS [stdout read end, stderr read end]; either way the
 * connection is then closed. We keep our own copies of the read ends so that
 * the container blocks (full pipe), rather than dying of EPIPE, while no
 * client is attached, and a restarted client can connect again.
 *
 * Exit: 0 on SIGTERM/SIGINT/SIGHUP, or once every writer of both pipes is
 * gone (the shim closed or lost its ends and the container's are gone too);
 * 1 on a setup failure (before readiness; the shim then sees EOF on fd 5);
 * 2 on a usage error. The socket is removed on every exit path after it was
 * created (SIGKILL excepted: it lives in the bundle dir, removed on delete).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

/* The socket directory lies in a bundle whose upper directories a remapped
 * container root may own and swap for symlinks. */
#include "../nofollow.h"

#define FD_STDOUT 3
#define FD_STDERR 4
#define FD_READY 5

#define PROTO_VERSION 1
#define MAX_LOGGED_ID 128
/* How long the listener rests after accept ran out of descriptors or memory:
 * the pending connection keeps the socket readable, so polling it at once
 * would spin at 100% CPU until a descriptor frees. */
#define ACCEPT_BACKOFF_MS 100

static const char *g_container = "?";
static const int stop_signals[] = {SIGTERM, SIGINT, SIGHUP};

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void logmsg(const char *fmt, ...)
{
    /* One write per line so that concurrent loggers do not interleave. */
    char buf[512];
    /* The id is cut so that the message always fits: containerd allows 76-byte
     * ids, but CONTAINER_ID comes from the environment and may be anything. */
    int n = snprintf(buf, sizeof(buf), "pcd-handoff[%.*s]: ", MAX_LOGGED_ID, g_container);
    va_list ap;

    if (n < 0 || (size_t)n >= sizeof(buf))
        return;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    n += ((size_t)m < sizeof(buf) - (size_t)n - 1) ? m : (int)(sizeof(buf) - (size_t)n - 2);
    buf[n++] = '\n';
    ssize_t rc;
    do {
        rc = write(STDERR_FILENO, buf, (size_t)n);
    } while (rc < 0 && errno == EINTR);
}

struct config {
    const char *socket_path;
    uid_t owner_uid;
};

/* Parse "k v k v ..." as NewBinaryCmd builds it. Returns 0 or -1 (logged). */
static int parse_args(int argc, char **argv, struct config *cfg)
{
    cfg->socket_path = NULL;
    cfg->owner_uid = geteuid();
    if ((argc - 1) % 2 != 0) {
        logmsg("usage: pcd-handoff socket <path> [owner_uid <uid>] (pairs, any order)");
        return -1;
    }
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *key = argv[i], *val = argv[i + 1];
        if (strcmp(key, "socket") == 0) {
            cfg->socket_path = val;
        } else if (strcmp(key, "owner_uid") == 0) {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(val, &end, 10);
            /* uid_t is 32-bit; (uid_t)-1 means "no change" to chown, never a real owner. */
            if (errno != 0 || end == val || *end != '\0' || val[0] == '-' || v >= UINT32_MAX) {
                logmsg("invalid owner_uid %s", val);
                return -1;
            }
            cfg->owner_uid = (uid_t)v;
        } else {
            logmsg("unknown argument %s", key);
            return -1;
        }
    }
    if (cfg->socket_path == NULL || cfg->socket_path[0] != '/') {
        logmsg("socket must be an absolute path");
        return -1;
    }
    return 0;
}

/* fd must be the read end of a pipe: anything else means we were not started
 * by a shim with binary IO and must not serve it to clients. */
static int check_read_end(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        logmsg("fd %d: %s", fd, strerror(errno));
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (!S_ISFIFO(st.st_mode) || fl < 0 || (fl & O_ACCMODE) != O_RDONLY) {
        logmsg("fd %d is not the read end of a pipe", fd);
        return -1;
    }
    /* No exec happens here, but keep the invariant that nothing leaks. */
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
        logmsg("fd %d: F_SETFD: %s", fd, strerror(errno));
        return -1;
    }
    return 0;
}

static long pipe_max_size(void)
{
    long max = 1L << 20;
    int fd;
    do {
        fd = open("/proc/sys/fs/pipe-max-size", O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return max;
    char buf[32];
    ssize_t n;
    do {
        n = read(fd, buf, sizeof(buf) - 1);
    } while (n < 0 && errno == EINTR);
    close(fd);
    if (n > 0) {
        buf[n] = '\0';
        char *end = NULL;
        long v = strtol(buf, &end, 10);
        if (end != buf && v > 0)
            max = v;
    }
    return max;
}

/* Bigger pipes mean fewer wakeups for the container and the client. An
 * unprivileged owner may hit pipe-user-pages-soft: halve until it fits, and
 * keep the default size if nothing does. */
static void enlarge_pipe(int fd, long max)
{
    int cur = fcntl(fd, F_GETPIPE_SZ);
    for (long want = max; cur >= 0 && want > cur; want /= 2) {
        if (want > INT_MAX)
            continue;
        if (fcntl(fd, F_SETPIPE_SZ, (int)want) >= 0)
            return;
        if (errno != EPERM && errno != ENOMEM && errno != EBUSY)
            return;
    }
}

struct listener {
    int fd;
    int dirfd;
    const char *base; /* the published name, in dirfd */
    const char *name; /* the name the socket file has now: tmp, then base */
    char tmp[32];
    dev_t dev;
    ino_t ino;
    int created;
};

/* Remove the socket file only if it is still the one we bound. */
static void listener_remove(struct listener *l)
{
    struct stat st;
    if (l->created && fstatat(l->dirfd, l->name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        st.st_dev == l->dev && st.st_ino == l->ino) {
        if (unlinkat(l->dirfd, l->name, 0) < 0)
            logmsg("unlink %s: %s", l->name, strerror(errno));
    }
    l->created = 0;
}

static void listener_close(struct listener *l)
{
    listener_remove(l);
    if (l->fd >= 0)
        close(l->fd);
    if (l->dirfd >= 0)
        close(l->dirfd);
    l->fd = l->dirfd = -1;
}

/* Give the socket file its final name without replacing anything there. */
static int publish(struct listener *l)
{
    if (renameat2(l->dirfd, l->tmp, l->dirfd, l->base, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    /* A filesystem without RENAME_NOREPLACE: link(2) never replaces either. */
    if (linkat(l->dirfd, l->tmp, l->dirfd, l->base, 0) < 0)
        return -1;
    if (unlinkat(l->dirfd, l->tmp, 0) < 0)
        logmsg("unlink %s: %s", l->tmp, strerror(errno));
    return 0;
}

/* Create the listening socket at path, mode 0600, owned by owner.
 * The socket is bound under a temporary name, listening and verified before
 * it is renamed into place, so a client that sees the path can connect
 * (never ECONNREFUSED) and never finds a socket with the wrong owner or mode.
 * Everything works on the parent directory's fd, opened without following a
 * symlink in any component: the bind goes through /proc/self/fd (which also
 * reaches a path longer than sun_path), and the checks and removal act on the
 * directory we bound in. Returns 0 or -1 (logged, nothing left behind). */
static int listener_open(struct listener *l, const char *path, uid_t owner)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t dlen = (size_t)(slash - path);
    struct sockaddr_un addr;
    struct stat st;

    l->fd = l->dirfd = -1;
    l->created = 0;
    l->base = slash + 1;
    if (l->base[0] == '\0' || strcmp(l->base, ".") == 0 || strcmp(l->base, "..") == 0 || dlen >= sizeof(dir)) {
        logmsg("bad socket path %s", path);
        return -1;
    }
    if (dlen == 0)
        dlen = 1; /* "/name" lives in "/" */
    memcpy(dir, path, dlen);
    dir[dlen] = '\0';
    l->dirfd = pcd_nofollow_open_dir(dir);
    if (l->dirfd < 0) {
        logmsg("open %s: %s", dir, strerror(-l->dirfd));
        l->dirfd = -1;
        return -1;
    }
    /* Our pid makes the name ours: a leftover can only be from a dead
     * helper that had our pid, so it may go. */
    snprintf(l->tmp, sizeof(l->tmp), ".pcd-handoff.%ld", (long)getpid());
    l->name = l->tmp;
    if (fstatat(l->dirfd, l->tmp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode))
        unlinkat(l->dirfd, l->tmp, 0);

    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    /* Always through the directory fd: resolving `dir` again by name would
     * follow a component swapped for a symlink since the walk above. */
    int n = snprintf(addr.sun_path, sizeof(addr.sun_path), "/proc/self/fd/%d/%s", l->dirfd, l->tmp);
    if (n < 0 || (size_t)n >= sizeof(addr.sun_path)) {
        logmsg("socket address for %s too long", path);
        goto fail;
    }

    l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (l->fd < 0) {
        logmsg("socket: %s", strerror(errno));
        goto fail;
    }
    /* bind creates the file with mode 0777 & ~umask: 0600 from the start. */
    mode_t old = umask(0177);
    int rc = bind(l->fd, (struct sockaddr *)&addr, sizeof(addr));
    int saved = errno;
    umask(old);
    if (rc < 0) {
        logmsg("bind %s: %s", addr.sun_path, strerror(saved));
        goto fail;
    }
    if (fstatat(l->dirfd, l->tmp, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        logmsg("stat %s: %s", l->tmp, strerror(errno));
        goto fail;
    }
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    l->created = 1;
    if (st.st_uid != owner && fchownat(l->dirfd, l->tmp, owner, (gid_t)-1, AT_SYMLINK_NOFOLLOW) < 0) {
        logmsg("chown %s to %u: %s", l->tmp, (unsigned)owner, strerror(errno));
        goto fail;
    }
    /* Verify rather than trust: the mode is what keeps other users out. */
    if (fstatat(l->dirfd, l->tmp, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISSOCK(st.st_mode) ||
        (st.st_mode & 07777) != 0600 || st.st_uid != owner || st.st_dev != l->dev || st.st_ino != l->ino) {
        logmsg("socket %s does not have mode 0600 and owner %u", l->tmp, (unsigned)owner);
        goto fail;
    }
    if (listen(l->fd, 16) < 0) {
        logmsg("listen: %s", strerror(errno));
        goto fail;
    }
    if (publish(l) < 0) {
        logmsg("rename %s to %s: %s", l->tmp, path, strerror(errno));
        goto fail;
    }
    l->name = l->base;
    return 0;
fail:
    listener_close(l);
    return -1;
}

/* Hand both read ends to one accepted connection, or refuse it. Either way
 * the connection is closed here; nothing ever blocks (the socket is
 * non-blocking and the message is 8 bytes into an empty buffer). */
static void serve(int conn, uid_t owner)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred)) {
        logmsg("SO_PEERCRED: %s", strerror(errno));
        return;
    }
    if (cred.uid != owner && cred.uid != 0) {
        logmsg("refused pid %d uid %u", (int)cred.pid, (unsigned)cred.uid);
        return;
    }

    unsigned char payload[8] = {'P', 'C', 'D', 'H', PROTO_VERSION, 0, 0, 0};
    struct iovec iov = {.iov_base = payload, .iov_len = sizeof(payload)};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } ctl;
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    memset(&ctl, 0, sizeof(ctl));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof(ctl.buf);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(2 * sizeof(int));
    int fds[2] = {FD_STDOUT, FD_STDERR};
    memcpy(CMSG_DATA(c), fds, sizeof(fds));

    ssize_t n;
    do {
        n = sendmsg(conn, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(payload))
        logmsg("sendmsg to pid %d: %s", (int)cred.pid, n < 0 ? strerror(errno) : "short write");
}

/* Serve every pending connection. Returns 1 when accept ran out of resources
 * (EMFILE, ENFILE, ENOBUFS, ENOMEM): the caller stops polling the listener for
 * a while, and the waiting client is served once a descriptor frees. */
static int accept_all(int lfd, uid_t owner)
{
    for (;;) {
        int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            logmsg("accept: %s", strerror(errno));
            return errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM;
        }
        serve(conn, owner);
        close(conn);
    }
}

/* close_range(first, ~0U); where the kernel lacks it (before 5.9) or a seccomp
 * filter refuses it: close what /proc/self/fd lists, else every number up to
 * the descriptor limit. try_syscall 0 forces the fallback (tests). */
static int close_from(int first, int try_syscall)
{
    if (try_syscall) {
        if (syscall(SYS_close_range, (unsigned)first, ~0U, 0) == 0)
            return 0;
        if (errno != ENOSYS && errno != EINVAL && errno != EPERM)
            return -1;
    }
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        int self = dirfd(d);
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char *end;
            long fd = strtol(e->d_name, &end, 10);
            if (*end == '\0' && end != e->d_name && fd >= first && fd != self)
                close((int)fd);
        }
        closedir(d);
        return 0;
    }
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = first; fd < (max > 0 ? max : 1024); fd++)
        close((int)fd);
    return 0;
}

int main(int argc, char **argv)
{
    struct config cfg;
    struct listener l = {.fd = -1, .dirfd = -1};
    sigset_t mask;
    int sfd = -1, status = 1;

    const char *cid = getenv("CONTAINER_ID");
    if (cid != NULL && cid[0] != '\0')
        g_container = cid;

    if (parse_args(argc, argv, &cfg) < 0)
        return 2;

    /* A client that leaves early must cost a failed send, not our life. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        logmsg("signal(SIGPIPE): %s", strerror(errno));
        return 1;
    }
    /* Only fds we open ourselves may land on 0-5 if the starter left gaps;
     * note now which of ours were really inherited. */
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd) {
            logmsg("cannot open /dev/null for fd %d", fd);
            return 1;
        }
    }
    int have_ready = fcntl(FD_READY, F_GETFD) >= 0;
    if (check_read_end(FD_STDOUT) < 0 || check_read_end(FD_STDERR) < 0)
        return 1;

    /* Hold nothing but 0-2 (/dev/null), the two read ends and the readiness
     * pipe: an inherited write end of a container pipe would keep EOF from
     * ever reaching the client. */
    /* PCD_HANDOFF_NO_CLOSE_RANGE=1 takes the fallback path, as an old kernel would. */
    if (close_from(FD_READY + 1, getenv("PCD_HANDOFF_NO_CLOSE_RANGE") == NULL) < 0) {
        logmsg("close_range: %s", strerror(errno));
        return 1;
    }
    /* Stop signals arrive through signalfd: the poll loop owns all state,
     * so the socket is removed from one place with no async-signal concerns. */
    sigemptyset(&mask);
    for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++) {
        /* An ignored signal is discarded even while blocked, and SIG_IGN
         * survives exec: a starter that ignores SIGHUP must not make us deaf. */
        if (signal(stop_signals[i], SIG_DFL) == SIG_ERR || sigaddset(&mask, stop_signals[i]) < 0) {
            logmsg("signal(%d): %s", stop_signals[i], strerror(errno));
            return 1;
        }
    }
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
        logmsg("sigprocmask: %s", strerror(errno));
        return 1;
    }
    sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        logmsg("signalfd: %s", strerror(errno));
        return 1;
    }

    long max = pipe_max_size();
    enlarge_pipe(FD_STDOUT, max);
    enlarge_pipe(FD_STDERR, max);

    if (listener_open(&l, cfg.socket_path, cfg.owner_uid) < 0)
        goto out;

    /* Readiness: one byte (binary-v2 requires it), then close so that a
     * reader waiting for EOF (old "binary" semantics) wakes too. fd 5 being
     * absent is fine: we were started by hand. */
    if (have_ready) {
        ssize_t w;
        do {
            w = write(FD_READY, "R", 1);
        } while (w < 0 && errno == EINTR);
        if (w < 0)
            logmsg("readiness write: %s", strerror(errno));
        close(FD_READY);
    }

    struct pollfd pfd[4] = {
        {.fd = sfd, .events = POLLIN},
        {.fd = l.fd, .events = POLLIN},
        /* events 0: only POLLHUP/POLLERR, i.e. "every writer is gone". */
        {.fd = FD_STDOUT, .events = 0},
        {.fd = FD_STDERR, .events = 0},
    };
    for (;;) {
        /* Every writer of both pipes is gone: the shim closed its ends (a
         * Delete whose SIGTERM is on its way, or the shim died, e.g. after a
         * failed create) and so did the container. Nothing more can be
         * written; clients holding the pipes keep any unread bytes. Waiting
         * for a reader of leftovers could leave us running forever. */
        if (pfd[2].fd < 0 && pfd[3].fd < 0) {
            status = 0;
            break;
        }
        int n = poll(pfd, 4, pfd[1].fd < 0 ? ACCEPT_BACKOFF_MS : -1);
        if (pfd[1].fd < 0)
            pfd[1].fd = l.fd; /* the rest is over: accept again */
        if (n < 0) {
            if (errno == EINTR)
                continue;
            logmsg("poll: %s", strerror(errno));
            break;
        }
        if (pfd[0].revents) {
            struct signalfd_siginfo si;
            ssize_t r;
            do {
                r = read(sfd, &si, sizeof(si));
            } while (r < 0 && errno == EINTR);
            if (r == (ssize_t)sizeof(si)) {
                status = 0;
                break;
            }
        }
        if (n == 0)
            continue;
        if (pfd[1].revents & POLLIN) {
            if (accept_all(l.fd, cfg.owner_uid))
                pfd[1].fd = -1; /* poll ignores negative fds */
        } else if (pfd[1].revents & (POLLERR | POLLNVAL)) {
            logmsg("listening socket failed");
            break;
        }
        for (int i = 2; i < 4; i++)
            if (pfd[i].revents & (POLLHUP | POLLERR))
                pfd[i].fd = -1;
    }
out:
    listener_close(&l);
    if (sfd >= 0)
        close(sfd);
    return status;
}
