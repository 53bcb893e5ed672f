/* libFuzzer harness: pcd_pump and pcd_pump_drain over real descriptors,
 * chunked, cancelled and drained at random.
 *
 * The input picks the flags, up to four streams (each a source kind and a
 * destination kind: pipes and unix sockets, blocking or not, memfds, O_APPEND
 * files, /dev/null, a destination shared with the stream before, and broken
 * ones: a pipe without reader, a read-only fd, a closed number), the chunks
 * written into each source beforehand, whether a source's writer stays open,
 * the cancel descriptor (none, an eventfd, a timer, a closed number), and the
 * drain descriptor (none: pcd_pump; else pcd_pump_drain with an eventfd that is
 * set from the start, a timer, or a closed number).
 *
 * Everything is written before the call and is small (the input's size), so no
 * destination ever fills up and every source whose writer is closed reaches
 * EOF: the call must return by itself, unless a writer stays open, and then a
 * timer cancels or drains it. Checked after each call: every byte delivered is
 * the source's, in order, and complete once a stream is done without error (a
 * drained stream too: its bytes were all written before the call); the
 * counters add up (PCD_PUMP_DISCARD_ON_ERROR: written + dropped = read); the
 * errors are the destination's; SIGPIPE is neither left pending nor unblocked
 * wrongly; no descriptor leaks.
 */
#include "harness.h"

#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include "pump.h"

#define MAX_STREAMS 4
#define MAX_CHUNKS 8
#define MAX_DATA 4096

enum src_kind { S_PIPE, S_PIPE_NB, S_STREAM, S_STREAM_NB, S_SEQPACKET, S_FILE, S_CLOSED, S_KINDS };
enum dst_kind {
    D_PIPE,
    D_PIPE_NB,
    D_STREAM,
    D_STREAM_NB,
    D_SEQPACKET,
    D_FILE,
    D_APPEND,
    D_DEVNULL,
    D_NO_READER,
    D_READ_ONLY,
    D_CLOSED,
    D_SHARED,
    D_KINDS
};
enum cancel_kind { C_NONE, C_EVENTFD, C_EVENTFD_SET, C_TIMER, C_CLOSED, C_KINDS };
/* The drain descriptor: the same kinds, C_NONE meaning pcd_pump. */

struct side {
    int fd;   /* given to pcd_pump */
    int peer; /* the harness's end: the writer of a source, the reader of a destination */
};

struct case_stream {
    enum src_kind sk;
    enum dst_kind dk;
    int shared_with; /* index of the stream whose destination this one shares, or -1 */
    struct side src, dst;
    int keep_open;
    unsigned char data[MAX_DATA];
    size_t len; /* bytes really written into the source */
};

/* A closed descriptor number: the lowest free one (pcd_pump's epoll fd will
 * get that number, a case the pump must tell apart), or a high one. */
static int closed_fd(int high)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    SETUP(fd >= 0);
    if (high) {
        int h = fcntl(fd, F_DUPFD_CLOEXEC, 1000);
        SETUP(h >= 0);
        close(fd);
        fd = h;
    }
    close(fd);
    return fd;
}

static void make_pipe(struct side *reader_side, struct side *writer_side, int nonblock_read, int nonblock_write)
{
    int p[2];
    SETUP(pipe2(p, O_CLOEXEC) == 0);
    if (nonblock_read)
        SETUP(fcntl(p[0], F_SETFL, O_NONBLOCK) == 0);
    if (nonblock_write)
        SETUP(fcntl(p[1], F_SETFL, O_NONBLOCK) == 0);
    reader_side->fd = p[0];
    writer_side->fd = p[1];
}

static void make_socketpair(struct side *s, int type, int nonblock)
{
    int sv[2];
    SETUP(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) == 0);
    if (nonblock)
        SETUP(fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0);
    s->fd = sv[0];
    s->peer = sv[1];
}

static int make_memfd(void)
{
    int fd = memfd_create("pcd-fuzz", MFD_CLOEXEC);
    SETUP(fd >= 0);
    return fd;
}

static int reopen(int fd, int flags)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    int r = open(path, flags | O_CLOEXEC);
    SETUP(r >= 0);
    return r;
}

/* Write the chunks into the source; returns the bytes that went in (a
 * non-blocking writer stops at the first EAGAIN, which small inputs never reach). */
static size_t fill_source(struct case_stream *c, struct input *in)
{
    int nchunks = in_u8(in) % (MAX_CHUNKS + 1);
    size_t total = 0;
    int writer = c->sk == S_FILE ? c->src.fd : c->src.peer;
    for (int i = 0; i < nchunks; i++) {
        const uint8_t *bytes;
        size_t want = in_u8(in);
        size_t len = in_bytes(in, want, &bytes);
        if (total + len > MAX_DATA)
            len = MAX_DATA - total;
        /* An empty message on a SOCK_SEQPACKET socket reads as EOF: not data. */
        if (len == 0)
            continue;
        ssize_t n = c->sk == S_SEQPACKET ? send(writer, bytes, len, MSG_DONTWAIT | MSG_NOSIGNAL)
                                         : write(writer, bytes, len);
        if (n <= 0)
            break;
        memcpy(c->data + total, bytes, (size_t)n);
        total += (size_t)n;
    }
    if (c->sk == S_FILE)
        SETUP(lseek(c->src.fd, 0, SEEK_SET) == 0);
    return total;
}

static void setup_source(struct case_stream *c)
{
    c->src.fd = c->src.peer = -1;
    switch (c->sk) {
    case S_PIPE:
    case S_PIPE_NB: {
        struct side w;
        make_pipe(&c->src, &w, c->sk == S_PIPE_NB, 1);
        c->src.peer = w.fd;
        break;
    }
    case S_STREAM:
    case S_STREAM_NB:
        make_socketpair(&c->src, SOCK_STREAM, c->sk == S_STREAM_NB);
        break;
    case S_SEQPACKET:
        make_socketpair(&c->src, SOCK_SEQPACKET, 1);
        break;
    case S_FILE:
        c->src.fd = make_memfd();
        break;
    case S_CLOSED:
    case S_KINDS:
        break;
    }
}

static void setup_destination(struct case_stream *c, struct case_stream *all, int index)
{
    c->dst.fd = c->dst.peer = -1;
    c->shared_with = -1;
    if (c->dk == D_SHARED) {
        for (int j = index - 1; j >= 0; j--) {
            if (all[j].dst.fd >= 0 && all[j].shared_with < 0) {
                c->shared_with = j;
                c->dk = all[j].dk; /* for the error it must see */
                c->dst.fd = all[j].dst.fd;
                return;
            }
        }
        c->dk = D_FILE; /* nothing to share yet */
    }
    switch (c->dk) {
    case D_PIPE:
    case D_PIPE_NB:
    case D_NO_READER: {
        struct side r;
        make_pipe(&r, &c->dst, 1, c->dk == D_PIPE_NB);
        if (c->dk == D_NO_READER)
            close(r.fd);
        else
            c->dst.peer = r.fd;
        break;
    }
    case D_STREAM:
    case D_STREAM_NB:
        make_socketpair(&c->dst, SOCK_STREAM, c->dk == D_STREAM_NB);
        SETUP(fcntl(c->dst.peer, F_SETFL, O_NONBLOCK) == 0);
        break;
    case D_SEQPACKET:
        make_socketpair(&c->dst, SOCK_SEQPACKET, 1);
        SETUP(fcntl(c->dst.peer, F_SETFL, O_NONBLOCK) == 0);
        break;
    case D_FILE:
        c->dst.fd = make_memfd();
        c->dst.peer = reopen(c->dst.fd, O_RDONLY);
        break;
    case D_APPEND: {
        int base = make_memfd();
        c->dst.fd = reopen(base, O_WRONLY | O_APPEND);
        c->dst.peer = base;
        break;
    }
    case D_DEVNULL:
        c->dst.fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        SETUP(c->dst.fd >= 0);
        break;
    case D_READ_ONLY:
        c->dst.peer = make_memfd();
        c->dst.fd = reopen(c->dst.peer, O_RDONLY);
        break;
    case D_CLOSED:
    case D_SHARED:
    case D_KINDS:
        break;
    }
}

/* What reached the destination (through the harness's end); -1 if unreadable. */
static ssize_t delivered(const struct case_stream *c, unsigned char *buf, size_t cap)
{
    size_t got = 0;
    switch (c->dk) {
    case D_FILE:
    case D_APPEND:
        for (;;) {
            ssize_t n = pread(c->dst.peer, buf + got, cap - got, (off_t)got);
            SETUP(n >= 0);
            if (n == 0 || got + (size_t)n == cap)
                return (ssize_t)(got + (size_t)n);
            got += (size_t)n;
        }
    case D_PIPE:
    case D_PIPE_NB:
    case D_STREAM:
    case D_STREAM_NB:
    case D_SEQPACKET:
        for (;;) {
            ssize_t n = read(c->dst.peer, buf + got, cap - got);
            if (n < 0 && errno == EAGAIN)
                return (ssize_t)got;
            SETUP(n >= 0);
            got += (size_t)n;
            if (n == 0 || got == cap)
                return (ssize_t)got;
        }
    default:
        return -1;
    }
}

static int expected_error(const struct case_stream *c)
{
    if (c->sk == S_CLOSED)
        return EBADF;
    /* A closed number fails when the stream is set up; a broken destination
     * only once there is something to write. */
    switch (c->dk) {
    case D_NO_READER:
        return c->len > 0 ? EPIPE : 0;
    case D_READ_ONLY:
        return c->len > 0 ? EBADF : 0;
    case D_CLOSED:
        return EBADF;
    default:
        return 0;
    }
}

/* A cancel or drain descriptor: an eventfd, set or not, or a timer that
 * fires after (1 + delay) * 20 us; -1 for none (a closed one is made later). */
static int make_signal_fd(enum cancel_kind kind, uint8_t delay)
{
    int fd = -1;
    if (kind == C_EVENTFD || kind == C_EVENTFD_SET) {
        fd = eventfd(kind == C_EVENTFD_SET, EFD_CLOEXEC | EFD_NONBLOCK);
        SETUP(fd >= 0);
    } else if (kind == C_TIMER) {
        fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        SETUP(fd >= 0);
        struct itimerspec when = {.it_value = {.tv_nsec = (1 + (long)delay) * 20000}};
        SETUP(timerfd_settime(fd, 0, &when, NULL) == 0);
    }
    return fd;
}

static void close_side(struct side *s)
{
    if (s->fd >= 0)
        close(s->fd);
    if (s->peer >= 0)
        close(s->peer);
    s->fd = s->peer = -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct case_stream cs[MAX_STREAMS];
    static unsigned char got[MAX_DATA * MAX_STREAMS + 1];
    struct input in = {data, size};
    uint8_t first = in_u8(&in);
    unsigned int flags = first & 0xF; /* 0x8: a flag pcd_pump does not know */
    int n = 1 + in_u8(&in) % MAX_STREAMS;
    enum cancel_kind ck = (enum cancel_kind)(in_u8(&in) % C_KINDS);
    uint8_t delay = in_u8(&in);
    uint8_t drain_byte = in_u8(&in);
    enum cancel_kind dk = (enum cancel_kind)(drain_byte % C_KINDS);
    if (dk == C_EVENTFD)
        dk = C_NONE; /* a drain that never comes is pcd_pump */
    if (ck == C_CLOSED && dk == C_CLOSED)
        dk = C_NONE; /* one bad descriptor at a time: the error is then known */

    int fds_before = count_fds();
    /* Only the kernel's part of a sigset_t is filled in: clear the rest first. */
    sigset_t mask_before, mask_after, pending;
    sigemptyset(&mask_before);
    sigemptyset(&mask_after);
    SETUP(pthread_sigmask(SIG_SETMASK, NULL, &mask_before) == 0);

    int any_open = 0;
    for (int i = 0; i < n; i++) {
        struct case_stream *c = &cs[i];
        uint8_t kinds = in_u8(&in);
        c->sk = (enum src_kind)(kinds % S_KINDS);
        c->dk = (enum dst_kind)(in_u8(&in) % D_KINDS);
        c->keep_open = (kinds & 0x80) && c->sk != S_FILE && c->sk != S_CLOSED;
        any_open |= c->keep_open;
        setup_source(c);
        setup_destination(c, cs, i);
        c->len = c->sk == S_CLOSED ? 0 : fill_source(c, &in);
    }
    /* A writer that stays open never lets its stream end: only a cancel or a
     * drain can. */
    if (any_open && ck != C_TIMER && ck != C_EVENTFD_SET && dk != C_TIMER && dk != C_EVENTFD_SET)
        ck = C_TIMER;
    int cancel = make_signal_fd(ck, delay);
    int drain = make_signal_fd(dk, (uint8_t)(delay ^ drain_byte));
    /* Sources' and destinations' numbers are only known now: closed ones last. */
    struct pcd_pump_stream io[MAX_STREAMS];
    int dead = closed_fd(first & 0x10);
    /* Not the lowest free number: that would be the epoll fd's (EINVAL). */
    if (ck == C_CLOSED)
        cancel = closed_fd(1);
    if (dk == C_CLOSED)
        drain = closed_fd(1);
    for (int i = 0; i < n; i++) {
        struct case_stream *c = &cs[i];
        if (c->sk != S_FILE && c->sk != S_CLOSED && !c->keep_open) {
            close(c->src.peer);
            c->src.peer = -1;
        }
        io[i] = (struct pcd_pump_stream){.src = c->sk == S_CLOSED ? dead : c->src.fd,
                                         .dst = c->dk == D_CLOSED ? dead : c->dst.fd,
                                         .nbytes = -7, .err = -7, .done = -7, .dropped = -7};
    }

    int rc = dk == C_NONE ? pcd_pump(io, n, cancel, flags) : pcd_pump_drain(io, n, cancel, drain, flags);

    SETUP(pthread_sigmask(SIG_SETMASK, NULL, &mask_after) == 0);
    for (int sig = 1; sig < NSIG; sig++)
        CHECK(sigismember(&mask_before, sig) == sigismember(&mask_after, sig), "signal %d: blocked %d, now %d", sig,
              sigismember(&mask_before, sig), sigismember(&mask_after, sig));
    SETUP(sigpending(&pending) == 0);
    CHECK(!sigismember(&pending, SIGPIPE), "SIGPIPE left pending");

    if (ck == C_CLOSED || dk == C_CLOSED) {
        CHECK(rc == -EBADF, "closed cancel or drain fd: rc %d", rc);
    } else {
        CHECK(rc == 0 || (rc == PCD_PUMP_CANCELLED && cancel >= 0), "rc %d", rc);
        for (int i = 0; i < n; i++) {
            struct case_stream *c = &cs[i];
            struct pcd_pump_stream *s = &io[i];
            int64_t len = (int64_t)c->len;
            CHECK(s->done == 0 || s->done == 1, "stream %d: done %d", i, s->done);
            CHECK(rc != 0 || s->done, "stream %d not done after rc 0", i);
            CHECK(s->nbytes >= 0 && s->nbytes <= len && s->dropped >= 0, "stream %d: nbytes %lld dropped %lld of %lld",
                  i, (long long)s->nbytes, (long long)s->dropped, (long long)len);
            int want_err = expected_error(c);
            /* A running stream may already hold its destination's error
             * (PCD_PUMP_DISCARD_ON_ERROR reads on). */
            CHECK(s->err == want_err || (!s->done && s->err == 0),
                  "stream %d (src %d, dst %d, done %d): err %d, expected %d", i, c->sk, c->dk, s->done, s->err,
                  want_err);
            if (s->done && s->err == 0)
                CHECK(s->nbytes == len && s->dropped == 0, "stream %d: done with %lld of %lld bytes", i,
                      (long long)s->nbytes, (long long)len);
            if (s->done && want_err != 0 && c->sk != S_CLOSED && (flags & PCD_PUMP_DISCARD_ON_ERROR))
                CHECK(s->nbytes + s->dropped == len, "stream %d: %lld written + %lld dropped != %lld", i,
                      (long long)s->nbytes, (long long)s->dropped, (long long)len);
            if (!(flags & PCD_PUMP_DISCARD_ON_ERROR))
                CHECK(s->dropped == 0, "stream %d dropped %lld without the flag", i, (long long)s->dropped);
            if (c->shared_with >= 0)
                continue;
            /* Exactly the source's first nbytes, for a destination only this stream writes. */
            int shared = 0;
            for (int j = i + 1; j < n; j++)
                shared |= cs[j].shared_with == i;
            if (shared)
                continue;
            ssize_t g = delivered(c, got, sizeof(got));
            if (g >= 0) {
                CHECK(g == s->nbytes, "stream %d (src %d, dst %d): %zd bytes arrived, nbytes %lld", i, c->sk, c->dk, g,
                      (long long)s->nbytes);
                CHECK(memcmp(got, c->data, (size_t)g) == 0, "stream %d: the bytes differ", i);
            }
        }
    }

    for (int i = 0; i < n; i++) {
        if (cs[i].shared_with >= 0)
            cs[i].dst.fd = -1; /* closed with the stream it shares */
        close_side(&cs[i].src);
        close_side(&cs[i].dst);
    }
    if (cancel >= 0 && ck != C_CLOSED)
        close(cancel);
    if (drain >= 0 && dk != C_CLOSED)
        close(drain);
    CHECK(count_fds() == fds_before, "descriptors leaked: %d before, %d after", fds_before, count_fds());
    return 0;
}
