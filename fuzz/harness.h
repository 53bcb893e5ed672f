/* Shared by the libFuzzer harnesses in fuzz/: reading decisions out of the
 * input, checks that abort (so libFuzzer records the input as a crash), and a
 * private scratch directory.
 *
 * The harnesses take their decisions (how many streams, which kind of
 * descriptor, which path component...) from the front of the input one value
 * at a time; past the end every value is 0, so any input, even an empty one, is
 * a complete test case.
 */
#ifndef PCD_FUZZ_HARNESS_H
#define PCD_FUZZ_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct input {
    const uint8_t *p;
    size_t n;
};

static inline uint8_t in_u8(struct input *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint32_t in_u32(struct input *in)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 8 | in_u8(in);
    return v;
}

/* Up to max bytes; returns how many, pointing *out at them. */
static inline size_t in_bytes(struct input *in, size_t max, const uint8_t **out)
{
    size_t len = in->n < max ? in->n : max;
    *out = in->p;
    in->p += len;
    in->n -= len;
    return len;
}

/* A failed check is a finding: print it and abort, which libFuzzer reports
 * with the input that caused it. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A failure of the harness's own set-up (not of the code under test). */
#define SETUP(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: harness set-up failed: %s: %s\n", __FILE__, __LINE__, #cond,   \
                    strerror(errno));                                                              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Number of open descriptors: a harness compares it before and after a call. */
static inline int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    SETUP(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* Remove everything below dirfd (not dirfd itself); symlinks are removed, never
 * followed. */
static inline void empty_dir(int dirfd)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    SETUP(fd >= 0);
    DIR *d = fdopendir(fd);
    SETUP(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            /* A directory the code under test left without search permission
             * for its owner must still be emptied. */
            int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                SETUP(fchmodat(dirfd, e->d_name, 0700, 0) == 0);
                sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            }
            SETUP(sub >= 0);
            empty_dir(sub);
            close(sub);
            SETUP(unlinkat(dirfd, e->d_name, AT_REMOVEDIR) == 0);
        } else {
            SETUP(unlinkat(dirfd, e->d_name, 0) == 0);
        }
    }
    closedir(d);
}

/* A fresh private directory for this process, removed at exit. Mode 0711:
 * a walk from "/" may need to pass through it as any uid. */
static char scratch_root[128];

static inline void scratch_cleanup(void)
{
    int fd = open(scratch_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        empty_dir(fd);
        close(fd);
        rmdir(scratch_root);
    }
}

static inline const char *scratch_dir(const char *name)
{
    if (scratch_root[0] == '\0') {
        const char *tmp = getenv("TMPDIR");
        snprintf(scratch_root, sizeof(scratch_root), "%s/pcd-fuzz-%s-XXXXXX",
                 tmp != NULL && tmp[0] == '/' && strlen(tmp) < 64 ? tmp : "/tmp", name);
        SETUP(mkdtemp(scratch_root) != NULL);
        SETUP(chmod(scratch_root, 0711) == 0);
        atexit(scratch_cleanup);
    }
    return scratch_root;
}

#endif
