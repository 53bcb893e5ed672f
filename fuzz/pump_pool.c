/* libFuzzer harness: the shared pump pool (pcd_pool_*) with jobs submitted,
 * drained, cancelled and reaped at random while its worker runs.
 *
 * Per input: a pool and its worker thread; then up to eight jobs of one or two
 * streams each. A stream's source is a pipe holding a chunk of the input (its
 * writer closed, or left open), its destination a memfd, /dev/null, or a pipe
 * without reader (broken). The ops are interleaved as the input says (submit
 * the next job, drain or cancel one, reap). At the end every job whose writer
 * stays open is drained, and the harness reaps until every job came back.
 *
 * Checked: every job is reaped exactly once; a job that was not cancelled has
 * every stream done, and a memfd destination holds exactly the source's bytes
 * (a cancelled one: a prefix, and nbytes says how long); a broken destination
 * reports its error (discarding: with the bytes dropped); SIGPIPE never kills
 * the process; the pool stops and frees cleanly; no descriptor leaks.
 */
#include "harness.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/mman.h>

#include "pump_pool.h"

#define MAX_JOBS 8
#define MAX_CHUNK 65536 /* less than a pipe holds: writing never blocks */

enum dst_kind { D_MEMFD, D_NULL, D_BROKEN };

struct job {
    struct pcd_pump_stream io[2];
    int n;
    int src_w[2]; /* writer kept open, or -1 */
    enum dst_kind dk[2];
    const uint8_t *data[2];
    size_t len[2];
    unsigned flags;
    bool submitted, cancelled_req, reaped, cancelled;
};

static void *run_pool(void *pool)
{
    int rc = pcd_pool_run(pool);
    CHECK(rc == 0, "pcd_pool_run: %d", rc);
    return NULL;
}

static void reap(struct pcd_pool *pool, struct job *jobs, int njobs, int *left, int wait_ms)
{
    struct pollfd pfd = {.fd = pcd_pool_notify_fd(pool), .events = POLLIN};
    if (wait_ms > 0)
        (void)poll(&pfd, 1, wait_ms);
    uint64_t ids[16];
    int cancelled[16];
    int n;
    do {
        n = pcd_pool_reap(pool, ids, cancelled, 16);
        CHECK(n >= 0, "pcd_pool_reap: %d", n);
        for (int i = 0; i < n; i++) {
            CHECK(ids[i] < (uint64_t)njobs, "unknown job id %llu", (unsigned long long)ids[i]);
            struct job *j = &jobs[ids[i]];
            CHECK(j->submitted && !j->reaped, "job %llu reaped twice or never submitted",
                  (unsigned long long)ids[i]);
            j->reaped = true;
            j->cancelled = cancelled[i] != 0;
            (*left)--;
        }
    } while (n == 16);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE the pool failed to consume would kill us */
    int fds_before = count_fds();
    struct pcd_pool *pool = NULL;
    int rc = pcd_pool_new(&pool);
    SETUP(rc == 0);
    pthread_t worker;
    SETUP(pthread_create(&worker, NULL, run_pool, pool) == 0);

    int njobs = 1 + in_u8(&in) % MAX_JOBS;
    struct job jobs[MAX_JOBS];
    memset(jobs, 0, sizeof jobs);
    for (int k = 0; k < njobs; k++) {
        struct job *j = &jobs[k];
        uint8_t shape = in_u8(&in);
        j->n = 1 + (shape & 1);
        j->flags = (shape & 2) ? PCD_PUMP_DISCARD_ON_ERROR : 0;
        for (int s = 0; s < j->n; s++) {
            int p[2];
            SETUP(pipe2(p, O_CLOEXEC) == 0);
            uint8_t want = in_u8(&in);
            size_t len = (size_t)in_u8(&in) << 8 | in_u8(&in);
            if (len > MAX_CHUNK)
                len = MAX_CHUNK;
            j->len[s] = in_bytes(&in, len, &j->data[s]);
            if (j->len[s] > 0)
                SETUP(write(p[1], j->data[s], j->len[s]) == (ssize_t)j->len[s]);
            j->src_w[s] = -1;
            if (want & 1)
                j->src_w[s] = p[1]; /* stays open: no EOF until drained */
            else
                close(p[1]);
            j->io[s].src = p[0];
            j->dk[s] = (enum dst_kind)((want >> 1) % 3);
            if (j->dk[s] == D_MEMFD) {
                j->io[s].dst = memfd_create("pool-fuzz", MFD_CLOEXEC);
            } else if (j->dk[s] == D_NULL) {
                j->io[s].dst = open("/dev/null", O_WRONLY | O_CLOEXEC);
            } else {
                int b[2];
                SETUP(pipe2(b, O_CLOEXEC) == 0);
                close(b[0]);
                j->io[s].dst = b[1];
            }
            SETUP(j->io[s].dst >= 0);
        }
    }

    int next = 0, left = 0;
    for (int steps = 0; steps < 4 * MAX_JOBS && (next < njobs || in.n > 0); steps++) {
        uint8_t op = in_u8(&in);
        int target = in_u8(&in) % njobs;
        switch (op % 4) {
        case 0:
        case 1:
            if (next < njobs) {
                rc = pcd_pool_submit(pool, jobs[next].io, jobs[next].n, (uint64_t)next, jobs[next].flags);
                CHECK(rc == 0, "pcd_pool_submit: %d", rc);
                jobs[next].submitted = true;
                next++;
                left++;
            }
            break;
        case 2:
            rc = op & 4 ? pcd_pool_cancel(pool, (uint64_t)target) : pcd_pool_drain(pool, (uint64_t)target);
            CHECK(rc == 0, "cancel/drain: %d", rc);
            if (op & 4 && jobs[target].submitted)
                jobs[target].cancelled_req = true;
            break;
        default:
            reap(pool, jobs, njobs, &left, 0);
        }
    }
    for (; next < njobs; next++) {
        rc = pcd_pool_submit(pool, jobs[next].io, jobs[next].n, (uint64_t)next, jobs[next].flags);
        CHECK(rc == 0, "pcd_pool_submit: %d", rc);
        jobs[next].submitted = true;
        left++;
    }
    /* Sources whose writer stays open end only by a drain (or a cancel). */
    for (int k = 0; k < njobs; k++)
        CHECK(pcd_pool_drain(pool, (uint64_t)k) == 0, "drain");
    for (int rounds = 0; left > 0; rounds++) {
        CHECK(rounds < 6000, "%d jobs never came back", left);
        reap(pool, jobs, njobs, &left, 10);
    }
    CHECK(pcd_pool_active(pool) == 0, "active jobs left: %d", pcd_pool_active(pool));

    for (int k = 0; k < njobs; k++) {
        struct job *j = &jobs[k];
        CHECK(!j->cancelled || j->cancelled_req, "job %d cancelled without a cancel", k);
        for (int s = 0; s < j->n; s++) {
            struct pcd_pump_stream *io = &j->io[s];
            if (!j->cancelled)
                CHECK(io->done, "job %d stream %d not done", k, s);
            if (j->dk[s] == D_MEMFD) {
                CHECK(io->err == 0, "memfd destination failed: %d", io->err);
                CHECK((size_t)io->nbytes <= j->len[s], "more bytes than the source had");
                if (io->done)
                    CHECK((size_t)io->nbytes == j->len[s], "stream done short: %lld of %zu",
                          (long long)io->nbytes, j->len[s]);
                uint8_t *got = malloc(j->len[s] + 1);
                SETUP(got != NULL);
                ssize_t r = pread(io->dst, got, j->len[s] + 1, 0);
                CHECK(r == io->nbytes, "memfd holds %zd, nbytes %lld", r, (long long)io->nbytes);
                CHECK(r == 0 || memcmp(got, j->data[s], (size_t)r) == 0, "bytes differ");
                free(got);
            } else if (j->dk[s] == D_BROKEN && io->done && j->len[s] > 0) {
                CHECK(io->err == EPIPE, "broken destination reported %d", io->err);
                if (j->flags & PCD_PUMP_DISCARD_ON_ERROR)
                    CHECK((size_t)(io->nbytes + io->dropped) == j->len[s], "written + dropped != read");
            }
            close(io->src);
            close(io->dst);
            if (j->src_w[s] >= 0)
                close(j->src_w[s]);
        }
    }
    CHECK(pcd_pool_stop(pool) == 0, "stop");
    SETUP(pthread_join(worker, NULL) == 0);
    pcd_pool_free(pool);
    CHECK(count_fds() == fds_before, "descriptors leaked: %d before, %d after", fds_before, count_fds());
    return 0;
}
