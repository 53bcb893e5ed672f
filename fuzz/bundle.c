/* libFuzzer harness: the bundle walks (pcd_mkdir_all_new, pcd_mkdir_chown,
 * pcd_bundle_userns) over random paths and random existing trees.
 *
 * Everything happens below a private scratch directory S: the walk's paths
 * are S/in/<components>, and S/out is a canary that symlinks planted in S/in
 * point to. The input picks the walk, mode, uid and gid, a tree to plant first
 * (directories with odd modes and owners, files, symlinks to S/out, to
 * themselves, to nowhere), and the path's components (names from a small
 * alphabet so that walks meet the planted tree, "." and "..", empty ones,
 * names of NAME_MAX and longer, suffixed `<name>.<uid>.<gid>` ones).
 *
 * Checked after each call: S/out never changes (no symlink is followed); a
 * failure leaves the tree exactly as it was (rollback) and names a component
 * of the path; a success made exactly the directories it should, with the
 * mode and owner it should, and changed nothing else (pcd_mkdir_chown: only
 * the last component); "." and ".." are refused with EINVAL before anything
 * is touched; no descriptor leaks.
 *
 * The walks start at "/": the set-up refuses to run unless every directory
 * above S lets others search it, or pcd_bundle_userns could create suffixed
 * directories beside one of them, outside S.
 */
#include "harness.h"

#include <limits.h>

#include "bundle.h"

#define MAX_COMPONENTS 8
#define MAX_PLANTED 6
#define MAX_ENTRIES 256

enum op { OP_ALL_NEW, OP_CHOWN, OP_USERNS, OP_KINDS };
enum plant { P_DIR, P_FILE, P_LINK_OUT_ABS, P_LINK_OUT_REL, P_LINK_SELF, P_LINK_NOWHERE, P_KINDS };

static char root[PATH_MAX]; /* S */
static int root_fd = -1, in_fd = -1;
static int base_depth; /* components of S/in */
static char long_name[NAME_MAX + 2];

static const char *const names[] = {"a", "b", "c", "a.0.0", "b.1000.1000", "c.65534.65534", ".", "..", "", "long",
                                    "toolong"};
#define NNAMES ((int)(sizeof(names) / sizeof(names[0])))

static const char *component(int i)
{
    if (strcmp(names[i], "long") == 0) {
        long_name[NAME_MAX] = '\0';
        return long_name;
    }
    if (strcmp(names[i], "toolong") == 0) {
        long_name[NAME_MAX] = 'x';
        return long_name;
    }
    return names[i];
}

struct entry {
    char path[3 * (NAME_MAX + 2)];
    mode_t mode;
    uid_t uid;
    gid_t gid;
    char link[PATH_MAX];
};

struct tree {
    struct entry e[MAX_ENTRIES];
    int n;
};

static void snapshot_dir(struct tree *t, int dirfd, const char *prefix)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    SETUP(fd >= 0);
    DIR *d = fdopendir(fd);
    SETUP(d != NULL);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        SETUP(t->n < MAX_ENTRIES);
        struct entry *e = &t->e[t->n++];
        struct stat st;
        SETUP(fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0);
        snprintf(e->path, sizeof(e->path), "%s/%s", prefix, de->d_name);
        e->mode = st.st_mode;
        e->uid = st.st_uid;
        e->gid = st.st_gid;
        e->link[0] = '\0';
        if (S_ISLNK(st.st_mode)) {
            ssize_t n = readlinkat(dirfd, de->d_name, e->link, sizeof(e->link) - 1);
            SETUP(n >= 0);
            e->link[n] = '\0';
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            SETUP(sub >= 0);
            char sub_prefix[sizeof(e->path)];
            snprintf(sub_prefix, sizeof(sub_prefix), "%s", e->path);
            snapshot_dir(t, sub, sub_prefix);
            close(sub);
        }
    }
    closedir(d);
}

static void snapshot(struct tree *t)
{
    t->n = 0;
    snapshot_dir(t, root_fd, "");
}

static const struct entry *find(const struct tree *t, const char *path)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->e[i].path, path) == 0)
            return &t->e[i];
    return NULL;
}

static int same(const struct entry *a, const struct entry *b)
{
    return a->mode == b->mode && a->uid == b->uid && a->gid == b->gid && strcmp(a->link, b->link) == 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    memset(long_name, 'x', NAME_MAX);
    SETUP(realpath(scratch_dir("bundle"), root) != NULL);
    /* Every directory from "/" down to S must be searchable by others (see above). */
    char up[PATH_MAX];
    snprintf(up, sizeof(up), "%s", root);
    for (;;) {
        struct stat st;
        SETUP(stat(up[0] == '\0' ? "/" : up, &st) == 0);
        if (!(st.st_mode & S_IXOTH)) {
            fprintf(stderr, "bundle harness: %s is not searchable by others; set TMPDIR elsewhere\n", up);
            abort();
        }
        if (up[0] == '\0')
            break;
        *strrchr(up, '/') = '\0';
    }
    /* The walks number the components from "/": S's, then "in", then ours. */
    base_depth = 1;
    for (const char *p = root; *p != '\0'; p++)
        base_depth += *p == '/' && p[1] != '/' && p[1] != '\0';
    root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    SETUP(root_fd >= 0);
    return 0;
}

/* Plant one entry at a path of one to three alphabet names below S/in. */
static void plant(struct input *in)
{
    char path[3 * (NAME_MAX + 2)] = "";
    int depth = 1 + in_u8(in) % 3;
    for (int i = 0; i < depth; i++) {
        int k = in_u8(in) % NNAMES;
        const char *name = component(k);
        if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strlen(name) > NAME_MAX)
            name = "a";
        size_t len = strlen(path);
        snprintf(path + len, sizeof(path) - len, "%s%s", i ? "/" : "", name);
    }
    enum plant kind = (enum plant)(in_u8(in) % P_KINDS);
    uint16_t mode = (uint16_t)(in_u8(in) << 8 | in_u8(in));
    uid_t uid = in_u8(in) & 1 ? (uid_t)(in_u32(in) % 70000) : 0;
    char target[PATH_MAX + 8];
    int rc = -1;
    switch (kind) {
    case P_DIR:
        rc = mkdirat(in_fd, path, 0700);
        if (rc == 0) {
            (void)fchownat(in_fd, path, uid, uid, AT_SYMLINK_NOFOLLOW);
            (void)fchmodat(in_fd, path, mode & 07777, 0);
        }
        return;
    case P_FILE:
        rc = openat(in_fd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (rc >= 0)
            close(rc);
        return;
    case P_LINK_OUT_ABS:
        snprintf(target, sizeof(target), "%s/out", root);
        break;
    case P_LINK_OUT_REL:
        snprintf(target, sizeof(target), "%s", "../out");
        break;
    case P_LINK_SELF:
        snprintf(target, sizeof(target), "%s", ".");
        break;
    case P_LINK_NOWHERE:
    case P_KINDS:
        snprintf(target, sizeof(target), "%s", "nowhere");
        break;
    }
    (void)symlinkat(target, in_fd, path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    static struct tree before, after;
    enum op op = (enum op)(in_u8(&in) % OP_KINDS);
    unsigned int mode = (in_u8(&in) << 8 | in_u8(&in)) & 07777;
    uint32_t uid = in_u32(&in) % 70000, gid = in_u32(&in) % 70000;

    SETUP(mkdirat(root_fd, "out", 0700) == 0);
    SETUP(mkdirat(root_fd, "in", 0755) == 0);
    SETUP(fchmodat(root_fd, "in", 0755, 0) == 0); /* umask */
    int canary = openat(root_fd, "out/canary", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    SETUP(canary >= 0);
    close(canary);
    in_fd = openat(root_fd, "in", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    SETUP(in_fd >= 0);
    int nplant = in_u8(&in) % (MAX_PLANTED + 1);
    for (int i = 0; i < nplant; i++)
        plant(&in);

    /* The path: S/in, then the components (each an alphabet index). */
    int ncomp = in_u8(&in) % (MAX_COMPONENTS + 1);
    int comp[MAX_COMPONENTS];
    char path[PATH_MAX + MAX_COMPONENTS * (NAME_MAX + 2)];
    int len = snprintf(path, sizeof(path), "%s/in", root);
    int dots = -1; /* index of the first "." or ".." component */
    int index = base_depth;
    for (int i = 0; i < ncomp; i++) {
        comp[i] = in_u8(&in) % NNAMES;
        const char *name = component(comp[i]);
        len += snprintf(path + len, sizeof(path) - (size_t)len, "/%s", name);
        if (name[0] != '\0') {
            if (dots < 0 && (strcmp(name, ".") == 0 || strcmp(name, "..") == 0))
                dots = index;
            index++;
        }
    }
    if (in_u8(&in) & 1)
        len += snprintf(path + len, sizeof(path) - (size_t)len, "/");
    int last = index - 1; /* index of the path's last component */
    SETUP(strncmp(path, root, strlen(root)) == 0);

    snapshot(&before);
    int fds_before = count_fds();
    int failed = -2, first_suffixed = -2, detail = -2, rc;
    switch (op) {
    case OP_ALL_NEW:
        rc = pcd_mkdir_all_new(path, mode, uid, gid, &failed);
        break;
    case OP_CHOWN:
        rc = pcd_mkdir_chown(path, mode, uid, gid, &failed);
        break;
    default:
        rc = pcd_bundle_userns(path, uid, gid, &failed, &first_suffixed, &detail);
        break;
    }
    CHECK(count_fds() == fds_before, "descriptors leaked");
    snapshot(&after);

    /* The canary: nothing below S/out ever changes. */
    for (int i = 0; i < before.n; i++) {
        if (strncmp(before.e[i].path, "/out", 4) != 0)
            continue;
        const struct entry *e = find(&after, before.e[i].path);
        CHECK(e != NULL && same(e, &before.e[i]), "%s changed: a symlink was followed", before.e[i].path);
    }
    for (int i = 0; i < after.n; i++)
        CHECK(strncmp(after.e[i].path, "/out", 4) != 0 || find(&before, after.e[i].path) != NULL,
              "%s appeared: a symlink was followed", after.e[i].path);

    CHECK(rc <= 0, "rc %d", rc);
    if (dots >= 0) {
        CHECK(rc == -EINVAL && failed == dots, "path with . or ..: rc %d failed %d, expected EINVAL at %d", rc,
              failed, dots);
    }
    if (rc < 0) {
        CHECK(failed >= -1 && failed <= last, "failed %d out of range (last %d)", failed, last);
        /* Rolled back: exactly the tree that was there before. */
        CHECK(before.n == after.n, "failed with rc %d but %d entries became %d", rc, before.n, after.n);
        for (int i = 0; i < before.n; i++) {
            const struct entry *e = find(&after, before.e[i].path);
            CHECK(e != NULL && same(e, &before.e[i]), "failed with rc %d, but %s changed", rc, before.e[i].path);
        }
    } else {
        CHECK(failed == -1, "success with failed %d", failed);
        for (int i = 0; i < after.n; i++) {
            const struct entry *a = &after.e[i];
            const struct entry *b = find(&before, a->path);
            if (b == NULL) {
                /* Made by this call: a directory with the walk's mode and owner. */
                unsigned int want = op == OP_USERNS ? 0700 : mode;
                CHECK(S_ISDIR(a->mode) && (a->mode & 07777) == want && a->uid == uid && a->gid == gid,
                      "new %s: mode %o uid %u gid %u, expected %o %u:%u", a->path, (unsigned)a->mode,
                      (unsigned)a->uid, (unsigned)a->gid, want, uid, gid);
            } else if (!same(a, b)) {
                /* pcd_mkdir_chown may fix up the last component, nothing else does. */
                CHECK(op == OP_CHOWN, "%s changed", a->path);
                CHECK(S_ISDIR(a->mode) && (a->mode & 07777) == mode && a->uid == uid && a->gid == gid,
                      "fixed-up %s: mode %o uid %u gid %u", a->path, (unsigned)a->mode, (unsigned)a->uid,
                      (unsigned)a->gid);
            }
        }
        if (op != OP_USERNS) {
            struct stat st;
            CHECK(lstat(path, &st) == 0 && S_ISDIR(st.st_mode), "%s is not a directory after success", path);
        }
    }
    if (op == OP_USERNS)
        CHECK(first_suffixed >= -1 && first_suffixed <= last, "first_suffixed %d", first_suffixed);

    close(in_fd);
    in_fd = -1;
    empty_dir(root_fd);
    return 0;
}
