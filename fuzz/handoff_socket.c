/* libFuzzer harness: pcd-handoff's socket, from the path it is given to the
 * message each client gets.
 *
 * The input names the socket (a path below a private directory, any bytes but
 * NUL and "..", optionally with its directories created first, long enough to
 * need the /proc/self/fd detour, possibly through a planted symlink `link` to
 * the directory `real`), the owner uid, and what a handful of clients do: wait
 * for the message, hang up before it is sent, or shut their side down.
 * Checked: a socket that is published has mode 0600 and the owner; a path
 * through the symlink is refused and `real` stays empty; nothing is left
 * behind by a failure or by listener_close; every waiting client gets exactly
 * the 8-byte message with two descriptors, or (another uid, not root)
 * nothing; no descriptor leaks.
 */
#include "harness.h"

#include <sys/socket.h>
#include <sys/un.h>

/* The helper's log lines go to /dev/null, see handoff_args.c. */
#include <unistd.h>
#undef STDERR_FILENO
static int harness_log_fd = -1;
#define STDERR_FILENO harness_log_fd

#define main pcd_handoff_main
#include "../csrc/handoff/pcd-handoff.c"
#undef main

#define MAX_CLIENTS 8
#define MAX_REL 600

enum client_kind { C_WAIT, C_HANGUP, C_SHUT_RD, C_SHUT_WR, C_KINDS };

static int scratch_fd = -1;
static size_t scratch_len;

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* serve() hands over fds 3 and 4, the helper's pipe read ends: make them
     * pipe read ends here too. libFuzzer holds no descriptor there; anything
     * inherited is nothing this process uses. */
    for (int fd = FD_STDOUT; fd <= FD_STDERR; fd++) {
        int p[2];
        SETUP(pipe2(p, O_CLOEXEC) == 0);
        SETUP(p[0] == fd || dup2(p[0], fd) == fd);
        if (p[0] != fd)
            close(p[0]);
        close(p[1]);
    }
    harness_log_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    SETUP(harness_log_fd >= 0);
    const char *dir = scratch_dir("handoff");
    scratch_len = strlen(dir);
    scratch_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    SETUP(scratch_fd >= 0);
    return 0;
}

/* Create the directories of rel (a path relative to the scratch dir). */
static void make_parents(const char *rel)
{
    char buf[MAX_REL + 1];
    snprintf(buf, sizeof(buf), "%s", rel);
    for (char *p = buf; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (buf[0] != '\0')
            (void)mkdirat(scratch_fd, buf, 0755); /* may fail: a name too long, a file there */
        *p = '/';
    }
}

/* What a client reads: the message and any descriptors. Returns the byte count
 * (0 at EOF), filling msg and counting fds (closed here). */
static ssize_t client_read(int fd, unsigned char msg[16], int *nfds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(8 * sizeof(int))];
    } ctl;
    struct iovec iov = {.iov_base = msg, .iov_len = 16};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf)};
    ssize_t n;
    do {
        n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    *nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            int fds[8];
            memcpy(fds, CMSG_DATA(c), (size_t)count * sizeof(int));
            for (int i = 0; i < count; i++) {
                struct stat st;
                CHECK(fstat(fds[i], &st) == 0 && S_ISFIFO(st.st_mode), "received fd %d is not a pipe", i);
                close(fds[i]);
            }
            *nfds += count;
        }
    }
    CHECK(!(mh.msg_flags & MSG_CTRUNC), "control data truncated");
    return n;
}

/* The address a client can reach the socket by, as pycontainerd's connect()
 * does: the path, else through the directory's fd. 0 when neither fits
 * sun_path (a name that long is out of any client's reach). */
static int client_address(const struct listener *l, const char *path, struct sockaddr_un *addr)
{
    *addr = (struct sockaddr_un){.sun_family = AF_UNIX};
    int n = strlen(path) < sizeof(addr->sun_path)
                ? snprintf(addr->sun_path, sizeof(addr->sun_path), "%s", path)
                : snprintf(addr->sun_path, sizeof(addr->sun_path), "/proc/self/fd/%d/%s", l->dirfd, l->base);
    return n > 0 && (size_t)n < sizeof(addr->sun_path);
}

static int client_connect(const struct sockaddr_un *addr)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    SETUP(fd >= 0);
    CHECK(connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0, "connect %s: %s", addr->sun_path,
          strerror(errno));
    return fd;
}

/* After a failure: no socket at the path and no temporary name beside it. */
static void check_nothing_left(const char *rel)
{
    const char *slash = strrchr(rel, '/');
    char dir[MAX_REL + 2];
    snprintf(dir, sizeof(dir), "%.*s", slash == NULL ? 1 : (int)(slash - rel) + 1, slash == NULL ? "." : rel);
    int fd = openat(scratch_fd, dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return; /* no such directory: nothing can be in it */
    char tmp[32];
    snprintf(tmp, sizeof(tmp), ".pcd-handoff.%ld", (long)getpid());
    struct stat st;
    const char *base = slash == NULL ? rel : slash + 1;
    CHECK(base[0] == '\0' || fstatat(fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISSOCK(st.st_mode),
          "socket %s left behind", rel);
    CHECK(fstatat(fd, tmp, &st, AT_SYMLINK_NOFOLLOW) < 0, "temporary name left behind in %s", dir);
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    uint8_t mode = in_u8(&in);
    uid_t owner = (mode & 1) ? geteuid() : (uid_t)(in_u32(&in) % 70000);
    int nclients = in_u8(&in) % (MAX_CLIENTS + 1);
    enum client_kind kinds[MAX_CLIENTS];
    for (int i = 0; i < nclients; i++)
        kinds[i] = (enum client_kind)(in_u8(&in) % C_KINDS);

    /* The rest is the socket's path below the scratch directory. */
    const uint8_t *raw;
    size_t rlen = in_bytes(&in, MAX_REL, &raw);
    char rel[MAX_REL + 1];
    memcpy(rel, raw, rlen);
    rel[rlen] = '\0';
    rlen = strlen(rel); /* up to the first NUL: argv cannot carry one */
    /* Stay inside the scratch directory: no ".." component anywhere. */
    for (const char *p = rel; *p != '\0';) {
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return -1; /* not a test case: libFuzzer drops it from the corpus */
        p += len + (p[len] == '/');
    }
    char path[PATH_MAX + MAX_REL + 2];
    snprintf(path, sizeof(path), "%s/%s", scratch_root, rel);
    int via_link = 0;
    if (mode & 4) {
        SETUP(mkdirat(scratch_fd, "real", 0755) == 0);
        SETUP(symlinkat("real", scratch_fd, "link") == 0);
        /* "link/x", "link//x", "./link/x": the symlink is a directory component. */
        const char *p = rel;
        while (p[0] == '/' || (p[0] == '.' && p[1] == '/'))
            p++;
        via_link = strncmp(p, "link/", 5) == 0;
    }
    /* Not through the symlink: mkdirat would follow it and fill `real` itself. */
    if ((mode & 2) && !via_link)
        make_parents(rel);

    int before = count_fds();
    struct listener l;
    /* A plain new name in an existing directory must always work. */
    int plain = rlen > 0 && rlen <= NAME_MAX && strchr(rel, '/') == NULL && strcmp(rel, ".") != 0 &&
                strncmp(rel, ".pcd-handoff.", 13) != 0 &&
                !((mode & 4) && (strcmp(rel, "link") == 0 || strcmp(rel, "real") == 0));
    if (listener_open(&l, path, owner) < 0) {
        CHECK(!plain, "listener_open(%s) failed", path);
        if (via_link) {
            int real = openat(scratch_fd, "real", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            SETUP(real >= 0);
            DIR *d = fdopendir(real);
            SETUP(d != NULL);
            struct dirent *e;
            while ((e = readdir(d)) != NULL)
                CHECK(e->d_name[0] == '.' && (e->d_name[1] == '\0' || strcmp(e->d_name, "..") == 0),
                      "%s appeared behind the symlink", e->d_name);
            closedir(d);
        }
        /* Nothing left behind, and the descriptors are closed. */
        CHECK(l.fd < 0 && l.dirfd < 0 && !l.created, "failed listener still holds something");
        CHECK(count_fds() == before, "listener_open leaked a descriptor");
        check_nothing_left(rel);
        goto out;
    }
    CHECK(!via_link, "listener_open(%s) went through a symlink", path);
    /* Published: a socket, mode 0600, the owner's, at exactly the path given. */
    struct stat st;
    CHECK(fstatat(l.dirfd, l.base, &st, AT_SYMLINK_NOFOLLOW) == 0, "no socket at %s", path);
    CHECK(S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0600 && st.st_uid == owner, "socket %s mode %o uid %u",
          path, (unsigned)st.st_mode, (unsigned)st.st_uid);
    CHECK(fstatat(l.dirfd, l.tmp, &st, AT_SYMLINK_NOFOLLOW) < 0, "temporary name %s left behind", l.tmp);
    CHECK(strncmp(path, scratch_root, scratch_len) == 0, "outside the scratch dir");

    struct sockaddr_un addr;
    if (!client_address(&l, path, &addr))
        nclients = 0;
    int clients[MAX_CLIENTS];
    for (int i = 0; i < nclients; i++) {
        clients[i] = client_connect(&addr);
        if (kinds[i] == C_HANGUP) {
            close(clients[i]);
            clients[i] = -1;
        } else if (kinds[i] == C_SHUT_RD) {
            shutdown(clients[i], SHUT_RD);
        } else if (kinds[i] == C_SHUT_WR) {
            shutdown(clients[i], SHUT_WR);
        }
    }
    CHECK(accept_all(l.fd, owner) == 0, "accept ran out of resources");
    int allowed = geteuid() == owner || geteuid() == 0;
    for (int i = 0; i < nclients; i++) {
        if (clients[i] < 0)
            continue;
        unsigned char msg[16];
        int nfds;
        ssize_t n = client_read(clients[i], msg, &nfds);
        if (kinds[i] == C_SHUT_RD) {
            CHECK(n <= 8, "read %zd bytes", n); /* the kernel may drop or keep it */
        } else if (allowed) {
            static const unsigned char want[8] = {'P', 'C', 'D', 'H', PROTO_VERSION, 0, 0, 0};
            CHECK(n == 8 && memcmp(msg, want, 8) == 0 && nfds == 2, "client %d got %zd bytes, %d fds", i, n,
                  nfds);
            /* One message, then the connection is closed. */
            CHECK(client_read(clients[i], msg, &nfds) == 0, "more after the message");
        } else {
            CHECK(n == 0 && nfds == 0, "refused client %d got %zd bytes, %d fds", i, n, nfds);
        }
        close(clients[i]);
    }
    char base[NAME_MAX + 1];
    snprintf(base, sizeof(base), "%s", l.base);
    int dirfd = dup(l.dirfd);
    SETUP(dirfd >= 0);
    listener_close(&l);
    CHECK(fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT, "socket %s not removed", path);
    close(dirfd);
    CHECK(count_fds() == before, "a descriptor leaked");
out:
    empty_dir(scratch_fd);
    return 0;
}
