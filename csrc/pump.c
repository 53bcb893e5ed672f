/* The native stdio pump: one epoll loop copying several (src, dst) pairs.
 *
 * Copy paths, chosen per stream when it starts:
 *  - splice(2) from a pipe into a pipe, a regular file, a block device, a
 *    character device that cannot be polled (/dev/null) or a non-blocking
 *    stream socket; and from a non-blocking stream socket into a pipe. Nothing
 *    is ever spliced *from* a regular file: the pages would reach the reader
 *    by reference, so a later write to the file could change bytes already
 *    "copied" (systemd#29044). Splicing *into* a file copies into its page
 *    cache, which is safe.
 *  - read/write through a 1 MiB buffer for every other pair, and whenever
 *    the kernel refuses splice (EINVAL for an O_APPEND file, ENOSYS,
 *    EOPNOTSUPP); the switch is per stream and loses nothing, because a
 *    refused splice consumed nothing.
 *
 * Blocking descriptors are never allowed to block the loop, so that a cancel
 * is seen promptly: pipes are spliced with SPLICE_F_NONBLOCK and read or
 * written with RWF_NOWAIT; sockets use MSG_DONTWAIT (and MSG_NOSIGNAL); any
 * other blocking pollable descriptor, and a pipe where the kernel refuses
 * RWF_NOWAIT (reads, on 6.18), is polled before each read or write.
 * Sockets are spliced only when O_NONBLOCK is set, because a socket's side of
 * splice() honours only the file's O_NONBLOCK, not SPLICE_F_NONBLOCK.
 *
 * Readiness is edge-triggered and tracked per descriptor; a flag is cleared
 * only after EAGAIN (or a zero-timeout poll() that says "not ready"), so no
 * wake-up is lost. A source is read only after epoll reported it readable or
 * hung up: a FIFO read end opened O_NONBLOCK before any writer exists reads 0
 * although no writer has come yet, and Linux reports neither EPOLLIN nor
 * EPOLLHUP on it until a writer connected (and left).
 *
 * SIGPIPE is blocked in the calling thread for the duration, and a SIGPIPE
 * the loop raised itself (write/splice into a pipe without readers) is
 * consumed before the old mask is restored, so EPIPE is an error result even
 * when the process has SIGPIPE at SIG_DFL.
 */
#include "pump.h"
#include "pump_engine.h"

#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

#define BUF_SIZE ((size_t)1 << 20)         /* read/write buffer per stream */
#define SPLICE_LEN ((size_t)4 << 20)       /* more than a full pipe holds */
/* Largest single write (or splice) into a regular file. Measured on Linux
 * 6.18/ext4 in a VM with free page reporting, six interleaved runs each: with
 * 1 MiB writes five runs crawled at ~0.8 GiB/s instead of ~4.5 (the copy into
 * freshly allocated large folios stalled on host page faults); 256 KiB ran at
 * 2.6-4.5 GiB/s every time, 64 KiB at ~2.7 GiB/s. */
#define FILE_CHUNK ((size_t)256 << 10)
#define ROUND_BUDGET ((int64_t)8 << 20)    /* bytes per stream between epoll checks */
#define PIPE_TARGET (1 << 20)              /* F_SETPIPE_SZ goal, capped by pipe-max-size */
#define GROW_AFTER ((int64_t)1 << 20)      /* bytes a stream moves before its pipes grow anyway */
#define MAX_STREAMS 4096
#define AMBIGUOUS_LIMIT 64                 /* EAGAINs with both sides ready before giving up splice */
#define CANCEL_KEY UINT32_MAX
#define DRAIN_KEY (UINT32_MAX - 1)

/* Read /proc/sys/fs/pipe-max-size once. Never fails: falls back to PIPE_TARGET
 * (an unprivileged F_SETPIPE_SZ above the limit then fails with EPERM, which
 * grow_pipe() ignores). */
static int pipe_target(void)
{
    static int cached;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v > 0)
        return v;
    v = PIPE_TARGET;
    int fd = open("/proc/sys/fs/pipe-max-size", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char text[32];
        ssize_t n;
        do
            n = read(fd, text, sizeof text - 1);
        while (n < 0 && errno == EINTR);
        if (n > 0) {
            text[n] = '\0';
            long max = strtol(text, NULL, 10);
            if (max > 0 && max < v)
                v = (int)max;
        }
        close(fd);
    }
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    return v;
}

/* Enlarge a pipe's buffer: fewer wake-ups per MiB for both the writer and the
 * pump. Best effort, no errno contract: EPERM (per-user pipe limit) and EBUSY
 * keep the current size. */
static void grow_pipe(int fd)
{
    int target = pipe_target();
    int cur = fcntl(fd, F_GETPIPE_SZ);
    if (cur >= 0 && cur < target)
        (void)fcntl(fd, F_SETPIPE_SZ, target);
}

/* Classify fd. Returns 0, or -errno from fstat/fcntl/getsockopt (EBADF for a
 * closed descriptor). */
static int classify(int fd, enum kind *kind, bool *nonblock)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    *nonblock = (fl & O_NONBLOCK) != 0;
    if (S_ISFIFO(st.st_mode)) {
        *kind = K_PIPE;
    } else if (S_ISSOCK(st.st_mode)) {
        int type = 0;
        socklen_t len = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
            return -errno;
        *kind = type == SOCK_STREAM ? K_STREAM_SOCK : K_MSG_SOCK;
    } else if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
        *kind = K_FILE;
    } else if (S_ISCHR(st.st_mode)) {
        *kind = isatty(fd) ? K_TTY : K_CHAR;
    } else {
        *kind = K_OTHER;
    }
    return 0;
}

/* Register fd (once per descriptor number) for edge-triggered in/out events.
 * Returns its table index, or -errno: from epoll_ctl, or ENOMEM when the
 * table is full and cannot grow. EPERM from epoll_ctl means "cannot be
 * polled" (regular files, /dev/null): such a descriptor is always ready.
 * A freed slot is reused with fresh flags, so readiness seen for the
 * descriptor that had it never leaks to the new one. */
static int add_fd(struct pump *p, int fd)
{
    int free_slot = -1;
    for (int i = 0; i < p->nfds; i++) {
        if (p->fds[i].users > 0 && p->fds[i].fd == fd) {
            p->fds[i].users++;
            return i;
        }
        if (p->fds[i].users == 0 && free_slot < 0)
            free_slot = i;
    }
    int slot = free_slot;
    if (slot < 0) {
        if (p->nfds == p->cap) {
            if (!p->can_grow)
                return -ENOMEM;
            int cap = p->cap > 0 ? 2 * p->cap : 16;
            struct fdent *grown = realloc(p->fds, (size_t)cap * sizeof *grown);
            if (grown == NULL)
                return -ENOMEM;
            p->fds = grown;
            p->cap = cap;
        }
        slot = p->nfds;
    }
    struct fdent *e = &p->fds[slot];
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
    ev.data.u32 = (uint32_t)slot;
    *e = (struct fdent){.fd = fd, .users = 1, .pollable = true};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int err = errno;
        if (err != EPERM) {
            e->users = 0;
            return -err;
        }
        e->pollable = false;
        e->in_ready = e->out_ready = true;
    }
    if (slot == p->nfds)
        p->nfds++;
    return slot;
}

/* Drop one user of a table entry; the last one leaves the epoll set (errors
 * ignored: the descriptor may already be closed by then). */
static void release_fd(struct pump *p, int i)
{
    struct fdent *e = &p->fds[i];
    if (--e->users == 0 && e->pollable)
        (void)epoll_ctl(p->epfd, EPOLL_CTL_DEL, e->fd, NULL);
}

void pump_finish(struct pump *p, struct stream *s, int err)
{
    if (!s->discard || err != 0)
        s->io->err = err; /* a discarding stream keeps its destination's error at EOF */
    s->io->done = 1;
    if (s->si >= 0)
        release_fd(p, s->si);
    if (s->di >= 0)
        release_fd(p, s->di);
    s->si = s->di = -1;
    free(s->buf);
    s->buf = NULL;
}

/* Stop a stream that is not done (a cancel): release its descriptors and
 * buffer, leaving its outcome as it is (done stays 0; bytes buffered and not
 * yet written are not counted, as for the blocking pump's cancel). */
void pump_abandon(struct pump *p, struct stream *s)
{
    if (s->si >= 0)
        release_fd(p, s->si);
    if (s->di >= 0)
        release_fd(p, s->di);
    s->si = s->di = -1;
    free(s->buf);
    s->buf = NULL;
}

/* The destination failed with err: end the stream, or (PCD_PUMP_DISCARD_ON_ERROR)
 * keep it reading its source into nothing. Bytes still buffered are dropped.
 * The destination leaves the epoll set: a broken descriptor must not wake the
 * loop, and its number may be reused once the caller learns of the error. */
static void dst_failed(struct pump *p, struct stream *s, int err)
{
    if (!s->may_discard) {
        pump_finish(p, s, err);
        return;
    }
    s->io->err = err;
    s->io->dropped += (int64_t)s->len;
    s->off = s->len = 0;
    s->discard = true;
    s->splice = false;
    s->grow = false;
    if (s->di >= 0)
        release_fd(p, s->di);
    s->di = -1;
}

/* poll() one descriptor with a zero timeout. Returns its revents (>= 0) or
 * -errno from poll(); retries EINTR. */
static int poll_now(int fd, short events)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    int n;
    do
        n = poll(&pfd, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return n == 0 ? 0 : pfd.revents;
}

/* After an ambiguous EAGAIN from splice: ask the kernel which side is not
 * ready and clear that side's flag. Returns 1 if both still look ready, 0 if
 * one side now waits, or -errno from poll(). */
static int refresh(struct fdent *se, struct fdent *de)
{
    if (se->pollable) {
        int r = poll_now(se->fd, POLLIN);
        if (r < 0)
            return r;
        se->in_ready = (r & (POLLIN | POLLHUP | POLLERR)) != 0;
    }
    if (de->pollable) {
        int r = poll_now(de->fd, POLLOUT);
        if (r < 0)
            return r;
        de->out_ready = (r & (POLLOUT | POLLHUP | POLLERR)) != 0;
    }
    return se->in_ready && de->out_ready;
}

/* One splice attempt of up to len bytes. Returns bytes moved (> 0), 0 at EOF, or -errno
 * (EAGAIN: a side would block; EINVAL/ENOSYS/EOPNOTSUPP: splice refused;
 * EPIPE: no reader). Retries EINTR. */
static ssize_t splice_once(int src, int dst, size_t len)
{
    ssize_t n;
    do
        n = splice(src, NULL, dst, NULL, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

/* Fill the stream's buffer from its source without blocking. Returns bytes
 * read (> 0), 0 at EOF (including EIO from a pty master whose slave closed),
 * or -errno (EAGAIN: nothing to read now; EMSGSIZE: a datagram larger than
 * the buffer, which would otherwise be truncated silently). Retries EINTR. */
static ssize_t src_read(struct stream *s, const struct fdent *e)
{
    for (;;) {
        ssize_t n;
        if (s->skind == K_STREAM_SOCK) {
            n = recv(e->fd, s->buf, BUF_SIZE, MSG_DONTWAIT);
        } else if (s->skind == K_MSG_SOCK) {
            n = recv(e->fd, s->buf, BUF_SIZE, MSG_DONTWAIT | MSG_TRUNC);
            if (n > (ssize_t)BUF_SIZE)
                return -EMSGSIZE;
        } else if (!e->pollable || s->s_nonblock) {
            n = read(e->fd, s->buf, BUF_SIZE);
        } else if (s->s_nowait) {
            struct iovec iov = {.iov_base = s->buf, .iov_len = BUF_SIZE};
            n = preadv2(e->fd, &iov, 1, -1, RWF_NOWAIT);
            if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL)) {
                s->s_nowait = false;
                continue;
            }
        } else {
            /* A blocking descriptor that polls readable returns what it has. */
            int r = poll_now(e->fd, POLLIN);
            if (r < 0)
                return r;
            if (!(r & (POLLIN | POLLHUP | POLLERR)))
                return -EAGAIN;
            n = read(e->fd, s->buf, BUF_SIZE);
        }
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EIO && s->skind == K_TTY)
            return 0;
        return -errno;
    }
}

/* Write part of the stream's pending bytes without blocking. Returns bytes
 * written (> 0) or -errno (EAGAIN: the destination is full; EPIPE: no reader,
 * recorded so the SIGPIPE can be consumed). Retries EINTR; shrinks the write
 * size on EMSGSIZE so a message socket gets messages it can take. */
static ssize_t dst_write(struct pump *p, struct stream *s, const struct fdent *e)
{
    for (;;) {
        size_t len = s->len < s->wmax ? s->len : s->wmax;
        const char *b = s->buf + s->off;
        ssize_t n;
        if (s->dkind == K_STREAM_SOCK || s->dkind == K_MSG_SOCK) {
            n = send(e->fd, b, len, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n < 0 && errno == EMSGSIZE && len > 1) {
                s->wmax = len / 2;
                continue;
            }
        } else if (!e->pollable || s->d_nonblock) {
            n = write(e->fd, b, len);
        } else if (s->d_nowait) {
            struct iovec iov = {.iov_base = (void *)b, .iov_len = len};
            n = pwritev2(e->fd, &iov, 1, -1, RWF_NOWAIT);
            if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL)) {
                s->d_nowait = false;
                continue;
            }
        } else {
            /* A blocking pipe that polls writable has a free page, so up to
             * PIPE_BUF bytes go in without waiting. */
            int r = poll_now(e->fd, POLLOUT);
            if (r < 0)
                return r;
            if (!(r & (POLLOUT | POLLHUP | POLLERR)))
                return -EAGAIN;
            n = write(e->fd, b, len < PIPE_BUF ? len : PIPE_BUF);
        }
        if (n > 0)
            return n;
        if (n == 0)
            return -EIO; /* no progress and no error: do not spin */
        if (errno == EINTR)
            continue;
        if (errno == EPIPE)
            p->saw_epipe = true;
        return -errno;
    }
}

/* Enlarge the stream's pipes once it has to wait or has moved GROW_AFTER
 * bytes: resizing costs more than a short copy (one that finds all its data
 * in the pipe) gains from it. */
static void maybe_grow(struct stream *s)
{
    if (!s->grow)
        return;
    s->grow = false;
    if (s->skind == K_PIPE)
        grow_pipe(s->io->src);
    if (s->dkind == K_PIPE)
        grow_pipe(s->io->dst);
}

/* Advance one stream until it would block, ends, or has moved ROUND_BUDGET
 * bytes. Returns true if it did anything (so the loop must not sleep). */
bool pump_run_stream(struct pump *p, struct stream *s)
{
    int64_t budget = ROUND_BUDGET;
    bool progress = false;
    if (s->io->nbytes >= GROW_AFTER)
        maybe_grow(s);
    while (!s->io->done && budget > 0) {
        struct fdent *se = &p->fds[s->si];
        if (s->discard) {
            if (!se->in_ready)
                break;
            if (s->buf == NULL && (s->buf = malloc(BUF_SIZE)) == NULL) {
                pump_finish(p, s, ENOMEM);
                return true;
            }
            ssize_t n = src_read(s, se);
            if (n == -EAGAIN) {
                se->in_ready = false;
                break;
            }
            if (n <= 0) {
                pump_finish(p, s, (int)-n);
                return true;
            }
            s->io->dropped += n;
            budget -= n;
            progress = true;
            continue;
        }
        struct fdent *de = &p->fds[s->di];
        if (s->splice) {
            if (!se->in_ready || !de->out_ready)
                break;
            ssize_t n = splice_once(se->fd, de->fd, s->splice_len);
            if (n > 0) {
                s->io->nbytes += n;
                budget -= n;
                s->ambiguous = 0;
                progress = true;
            } else if (n == 0) {
                pump_finish(p, s, 0);
                return true;
            } else if (n == -EAGAIN) {
                maybe_grow(s);
                int r = refresh(se, de);
                if (r < 0) {
                    pump_finish(p, s, -r);
                    return true;
                }
                s->ambiguous = r ? s->ambiguous + 1 : 0;
                if (s->ambiguous > AMBIGUOUS_LIMIT)
                    s->splice = false; /* read/write has no ambiguous EAGAIN */
            } else if (n == -EINVAL || n == -ENOSYS || n == -EOPNOTSUPP) {
                s->splice = false;
            } else {
                if (n == -EPIPE)
                    p->saw_epipe = true;
                /* splice does not say which side failed, and it checks the
                 * destination before the source: from an empty source at EOF
                 * into a pipe without readers it fails with EPIPE, into a
                 * read-only file with EBADF, although no byte is lost. The
                 * read/write path settles both: a failing source fails its
                 * read, EOF ends the stream cleanly, and a byte that cannot
                 * be written fails with the destination's own errno. */
                s->splice = false;
            }
            continue;
        }
        if (s->buf == NULL) {
            s->buf = malloc(BUF_SIZE);
            if (s->buf == NULL) {
                pump_finish(p, s, ENOMEM);
                return true;
            }
        }
        if (s->len == 0) {
            if (s->eof) {
                pump_finish(p, s, 0);
                return true;
            }
            if (!se->in_ready)
                break;
            ssize_t n = src_read(s, se);
            if (n == -EAGAIN) {
                maybe_grow(s);
                se->in_ready = false;
                break;
            }
            if (n < 0) {
                pump_finish(p, s, (int)-n);
                return true;
            }
            progress = true;
            if (n == 0) {
                s->eof = true;
                continue;
            }
            s->off = 0;
            s->len = (size_t)n;
        }
        if (!de->out_ready)
            break;
        ssize_t n = dst_write(p, s, de);
        if (n == -EAGAIN) {
            maybe_grow(s);
            de->out_ready = false;
            break;
        }
        if (n < 0) {
            dst_failed(p, s, (int)-n);
            return true;
        }
        s->off += (size_t)n;
        s->len -= (size_t)n;
        s->io->nbytes += n;
        budget -= n;
        progress = true;
    }
    return progress;
}

static bool splice_ok(const struct stream *s, const struct fdent *de)
{
    if (s->skind == K_PIPE)
        return s->dkind == K_PIPE || s->dkind == K_FILE || (s->dkind == K_CHAR && !de->pollable) ||
               (s->dkind == K_STREAM_SOCK && s->d_nonblock);
    if (s->skind == K_STREAM_SOCK && s->s_nonblock)
        return s->dkind == K_PIPE;
    return false;
}

/* Prepare one stream; a failure (EBADF, ...) ends only that stream. */
void pump_setup_stream(struct pump *p, struct stream *s, struct pcd_pump_stream *io, unsigned int flags)
{
    *s = (struct stream){.io = io, .si = -1, .di = -1, .s_nowait = true, .d_nowait = true, .wmax = BUF_SIZE,
                         .may_discard = (flags & PCD_PUMP_DISCARD_ON_ERROR) != 0};
    io->nbytes = 0;
    io->err = 0;
    io->done = 0;
    io->dropped = 0;
    /* The loop's own epoll fd can only carry a caller's number if the caller
     * closed that descriptor before the call. */
    int r = io->src == p->epfd ? -EBADF : classify(io->src, &s->skind, &s->s_nonblock);
    if (r == 0)
        r = add_fd(p, io->src);
    if (r < 0) {
        pump_finish(p, s, -r);
        return;
    }
    s->si = r;
    /* A bad destination (closed, ...) fails like one that breaks later. */
    r = io->dst == p->epfd ? -EBADF : classify(io->dst, &s->dkind, &s->d_nonblock);
    if (r == 0)
        r = add_fd(p, io->dst);
    if (r < 0) {
        dst_failed(p, s, -r);
        return;
    }
    s->di = r;
    if (s->dkind == K_FILE)
        s->wmax = FILE_CHUNK;
    s->splice_len = s->dkind == K_FILE ? FILE_CHUNK : SPLICE_LEN;
    s->splice = !(flags & PCD_PUMP_NO_SPLICE) && splice_ok(s, &p->fds[s->di]);
    s->grow = !(flags & PCD_PUMP_NO_RESIZE) && (s->skind == K_PIPE || s->dkind == K_PIPE);
}

/* Copy every stream until EOF or error, or until cancel_fd (-1: none; an
 * eventfd in practice) becomes readable. Per-stream outcomes go to
 * streams[i].nbytes/err/done; one stream's error does not stop the others.
 *
 * With PCD_PUMP_DISCARD_ON_ERROR a stream whose destination fails keeps
 * reading its source to EOF (err holds the destination's error, dropped the
 * bytes not delivered), so that one broken sink can never stall the writer.
 *
 * Returns 0 when every stream is done, PCD_PUMP_CANCELLED (1) when cancelled
 * (streams not done have done == 0), or -errno for a failure of the loop
 * itself: EINVAL (nstreams out of range), ENOMEM, or an errno from
 * pthread_sigmask/epoll_create1/epoll_ctl (EBADF: a bad cancel_fd)/epoll_wait.
 * The descriptors are never closed and their flags are never changed; pipe
 * buffers are enlarged (F_SETPIPE_SZ) once a stream waits or has moved 1 MiB,
 * unless PCD_PUMP_NO_RESIZE.
 *
 * pcd_pump_drain also watches drain_fd (-1: none; not cancel_fd, which
 * epoll_ctl refuses with EEXIST): once it is readable, a stream whose source
 * holds no more bytes (FIONREAD, and poll() for a tty) and whose bytes were
 * all written ends as if at EOF (done, err 0). This is the end of a process's
 * output when its pipes see no EOF at exit (the handoff: the shim holds the
 * write ends until Delete, and no writer is left). A destination that blocks
 * keeps the stream going, still cancellable. */
/* Whether a drained stream is finished: nothing of it is buffered here and its
 * source holds no bytes. FIONREAD on a pipe is taken under the pipe's lock, so
 * a splice is never half-seen. On a tty FIONREAD counts only the line
 * discipline's queue, not input a kernel worker has yet to move there from
 * the tty's flip buffer (a pty slave's write returns before that happens);
 * poll() runs that worker first, so a tty that FIONREAD calls empty is asked
 * again with poll(). A source that cannot say (not a pipe, socket or tty)
 * counts as empty once the loop last saw it would block. */
bool pump_drained(struct pump *p, struct stream *s)
{
    if (s->len > 0)
        return false;
    int unread = 0;
    if (ioctl(s->io->src, FIONREAD, &unread) == 0) {
        if (unread == 0 && s->skind == K_TTY && p->fds[s->si].pollable && poll_now(s->io->src, POLLIN) > 0)
            unread = 1; /* input, a hangup or an error: the read settles which */
        if (unread > 0) {
            p->fds[s->si].in_ready = true; /* read it, whatever the edge said */
            return false;
        }
        return true;
    }
    return !p->fds[s->si].in_ready;
}

int pcd_pump(struct pcd_pump_stream *streams, int nstreams, int cancel_fd, unsigned int flags)
{
    return pcd_pump_drain(streams, nstreams, cancel_fd, -1, flags);
}

int pcd_pump_drain(struct pcd_pump_stream *streams, int nstreams, int cancel_fd, int drain_fd,
                   unsigned int flags)
{
    if (nstreams < 0 || nstreams > MAX_STREAMS || (nstreams > 0 && streams == NULL))
        return -EINVAL;

    sigset_t pipeset, oldmask, pending;
    sigemptyset(&pipeset);
    sigaddset(&pipeset, SIGPIPE);
    int rc = pthread_sigmask(SIG_BLOCK, &pipeset, &oldmask);
    if (rc != 0)
        return -rc;
    bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;

    int maxev = 2 * nstreams + 1;
    struct pump p = {.epfd = -1, .cap = maxev};
    struct stream *ss = calloc((size_t)(nstreams > 0 ? nstreams : 1), sizeof *ss);
    struct epoll_event *evs = calloc((size_t)maxev, sizeof *evs);
    p.fds = calloc((size_t)maxev, sizeof *p.fds);
    if (ss == NULL || evs == NULL || p.fds == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    p.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p.epfd < 0) {
        rc = -errno;
        goto out;
    }
    if (cancel_fd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET};
        ev.data.u32 = CANCEL_KEY;
        if (epoll_ctl(p.epfd, EPOLL_CTL_ADD, cancel_fd, &ev) < 0) {
            rc = -errno;
            goto out;
        }
    }
    if (drain_fd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET};
        ev.data.u32 = DRAIN_KEY;
        if (epoll_ctl(p.epfd, EPOLL_CTL_ADD, drain_fd, &ev) < 0) {
            rc = -errno;
            goto out;
        }
    }
    for (int i = 0; i < nstreams; i++)
        pump_setup_stream(&p, &ss[i], &streams[i], flags);

    rc = 0;
    int timeout = 0;
    bool draining = false;
    for (;;) {
        int n = epoll_wait(p.epfd, evs, maxev, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        bool cancelled = false;
        for (int k = 0; k < n; k++) {
            if (evs[k].data.u32 == CANCEL_KEY) {
                cancelled = true;
                continue;
            }
            if (evs[k].data.u32 == DRAIN_KEY) {
                draining = true;
                continue;
            }
            struct fdent *e = &p.fds[evs[k].data.u32];
            uint32_t ev = evs[k].events;
            if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                e->in_ready = true;
            if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                e->out_ready = true;
        }
        if (cancelled) {
            rc = PCD_PUMP_CANCELLED;
            break;
        }
        bool progress = false, active = false;
        for (int i = 0; i < nstreams; i++) {
            if (ss[i].io->done)
                continue;
            if (draining && pump_drained(&p, &ss[i])) {
                pump_finish(&p, &ss[i], 0); /* like EOF: everything written so far was delivered */
                progress = true;
                continue;
            }
            if (pump_run_stream(&p, &ss[i]))
                progress = true;
            if (!ss[i].io->done)
                active = true;
        }
        if (!active)
            break;
        timeout = progress ? 0 : -1;
    }

out:
    if (ss != NULL) {
        for (int i = 0; i < nstreams; i++)
            free(ss[i].buf);
    }
    free(ss);
    free(evs);
    free(p.fds);
    if (p.epfd >= 0)
        close(p.epfd);
    if (p.saw_epipe && !was_pending) {
        sigset_t now;
        if (sigpending(&now) == 0 && sigismember(&now, SIGPIPE) == 1) {
            static const struct timespec zero = {0, 0};
            while (sigtimedwait(&pipeset, NULL, &zero) < 0 && errno == EINTR)
                ;
        }
    }
    pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
    return rc;
}
