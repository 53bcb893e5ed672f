/* The shared pump pool: one long-running pump loop per worker thread, to
 * which the streams of many processes are added and from which they leave,
 * so that stdio costs a fixed number of threads however many processes run
 * (the asyncio client's stdio: no thread per container).
 *
 * A pool is driven by one thread calling pcd_pool_run(); every other call is
 * thread-safe and never blocks on the loop (a mutex held for list operations
 * only). Work is a *job*: the (src, dst) pairs of one process, copied exactly
 * as pcd_pump_drain() copies them (the same engine, pump_engine.h), with the
 * job's drain and cancel requested by pcd_pool_drain()/pcd_pool_cancel()
 * instead of eventfds. A finished job is queued for pcd_pool_reap() and the
 * notify eventfd becomes readable, which an event loop watches.
 *
 * The caller's pcd_pump_stream array is written by the worker until the job is
 * reaped: it must stay allocated and untouched until then. Descriptors are
 * never closed here; a job's descriptors leave the epoll set before the job is
 * reported finished, so the caller may close them as soon as it reaps it.
 *
 * SIGPIPE is blocked in the worker for as long as pcd_pool_run() runs, and a
 * SIGPIPE its own writes raised is consumed after each round, so a sink
 * without reader is an EPIPE result, never the death of the process.
 */
#include "pump_pool.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>

#include "pump_engine.h"

#define CONTROL_KEY UINT32_MAX
#define MAX_JOB_STREAMS 4096
#define EVENTS_PER_WAIT 512 /* more ready descriptors wait for the next epoll_wait */

enum op_kind { OP_SUBMIT, OP_DRAIN, OP_CANCEL };

struct job {
    uint64_t id;
    struct pcd_pump_stream *io; /* the caller's array */
    struct stream *ss;
    int n;
    unsigned int flags;
    bool draining;
    struct job *next;
};

struct op {
    enum op_kind kind;
    uint64_t id;
    struct job *job; /* OP_SUBMIT */
    struct op *next;
};

struct finished {
    uint64_t id;
    int cancelled;
};

struct pcd_pool {
    struct pump p;
    int control_fd; /* eventfd: ops queued or stop requested */
    int notify_fd;  /* eventfd: finished jobs queued */
    pthread_mutex_t lock;
    /* under lock */
    struct op *ops, *ops_tail;
    bool stopping;
    bool stopped; /* run() returned: no job will ever finish again */
    struct finished *done;
    int ndone, capdone;
    int active; /* submitted, not yet finished */
    /* the worker's own */
    struct job *jobs;
};

/* Add 1 to an eventfd. Returns 0 or -errno from write(2); retries EINTR. */
static int bump(int fd)
{
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(fd, &one, sizeof one);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : 0;
}

/* Reset an eventfd (non-blocking). */
static void clear(int fd)
{
    uint64_t value;
    ssize_t n;
    do
        n = read(fd, &value, sizeof value);
    while (n < 0 && errno == EINTR);
}

/* Create a pool. Returns 0 with *out set, or -errno: ENOMEM, or from
 * epoll_create1/eventfd/epoll_ctl/pthread_mutex_init. */
int pcd_pool_new(struct pcd_pool **out)
{
    struct pcd_pool *pool = calloc(1, sizeof *pool);
    if (pool == NULL)
        return -ENOMEM;
    pool->p.epfd = pool->control_fd = pool->notify_fd = -1;
    pool->p.can_grow = true;
    int rc = -pthread_mutex_init(&pool->lock, NULL);
    if (rc < 0) {
        free(pool);
        return rc;
    }
    pool->p.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (pool->p.epfd < 0)
        goto fail;
    pool->control_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (pool->control_fd < 0)
        goto fail;
    pool->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (pool->notify_fd < 0)
        goto fail;
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.u32 = CONTROL_KEY;
    if (epoll_ctl(pool->p.epfd, EPOLL_CTL_ADD, pool->control_fd, &ev) < 0)
        goto fail;
    *out = pool;
    return 0;
fail:
    rc = -errno;
    pcd_pool_free(pool);
    return rc;
}

/* The eventfd that is readable while finished jobs wait for pcd_pool_reap().
 * Never fails. */
int pcd_pool_notify_fd(const struct pcd_pool *pool)
{
    return pool->notify_fd;
}

/* Free a pool whose run() returned (or never ran). Jobs never reaped are
 * dropped: their streams were finished or abandoned already. */
void pcd_pool_free(struct pcd_pool *pool)
{
    if (pool == NULL)
        return;
    struct op *op = pool->ops;
    while (op != NULL) {
        struct op *next = op->next;
        if (op->job != NULL) {
            free(op->job->ss);
            free(op->job);
        }
        free(op);
        op = next;
    }
    for (struct job *j = pool->jobs; j != NULL;) {
        struct job *next = j->next;
        free(j->ss);
        free(j);
        j = next;
    }
    free(pool->done);
    free(pool->p.fds);
    if (pool->p.epfd >= 0)
        close(pool->p.epfd);
    if (pool->control_fd >= 0)
        close(pool->control_fd);
    if (pool->notify_fd >= 0)
        close(pool->notify_fd);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

/* Queue an op for the worker. Returns 0, -ESHUTDOWN once the pool stops, or
 * -errno from write(2) on the control eventfd (the op is then dropped). */
static int enqueue(struct pcd_pool *pool, struct op *op)
{
    pthread_mutex_lock(&pool->lock);
    if (pool->stopping) {
        pthread_mutex_unlock(&pool->lock);
        return -ESHUTDOWN;
    }
    if (pool->ops_tail != NULL)
        pool->ops_tail->next = op;
    else
        pool->ops = op;
    pool->ops_tail = op;
    if (op->kind == OP_SUBMIT)
        pool->active++;
    pthread_mutex_unlock(&pool->lock);
    return bump(pool->control_fd);
}

/* Add a job copying streams[0..nstreams) (pcd_pump_drain's semantics, flags
 * PCD_PUMP_*); id is the caller's key for it. Returns 0, or -errno: EINVAL
 * (nstreams out of range), ENOMEM, ESHUTDOWN (the pool is stopping), or from
 * write(2). streams must stay valid until the job is reaped. */
int pcd_pool_submit(struct pcd_pool *pool, struct pcd_pump_stream *streams, int nstreams, uint64_t id,
                    unsigned int flags)
{
    if (nstreams < 0 || nstreams > MAX_JOB_STREAMS || (nstreams > 0 && streams == NULL))
        return -EINVAL;
    struct job *job = calloc(1, sizeof *job);
    struct op *op = calloc(1, sizeof *op);
    struct stream *ss = calloc((size_t)(nstreams > 0 ? nstreams : 1), sizeof *ss);
    if (job == NULL || op == NULL || ss == NULL) {
        free(job);
        free(op);
        free(ss);
        return -ENOMEM;
    }
    *job = (struct job){.id = id, .io = streams, .ss = ss, .n = nstreams, .flags = flags};
    for (int i = 0; i < nstreams; i++) {
        streams[i].nbytes = streams[i].dropped = 0;
        streams[i].err = streams[i].done = 0;
    }
    *op = (struct op){.kind = OP_SUBMIT, .id = id, .job = job};
    int rc = enqueue(pool, op);
    if (rc == -ESHUTDOWN) {
        free(ss);
        free(job);
        free(op);
    }
    return rc;
}

static int request(struct pcd_pool *pool, enum op_kind kind, uint64_t id)
{
    struct op *op = calloc(1, sizeof *op);
    if (op == NULL)
        return -ENOMEM;
    *op = (struct op){.kind = kind, .id = id};
    int rc = enqueue(pool, op);
    if (rc == -ESHUTDOWN)
        free(op);
    return rc;
}

/* From now on, end each stream of job id once its source is empty and its
 * bytes are written (pcd_pump_drain's drain_fd). Unknown or finished ids are
 * ignored. Returns 0, or -errno: ENOMEM, ESHUTDOWN, or from write(2). */
int pcd_pool_drain(struct pcd_pool *pool, uint64_t id)
{
    return request(pool, OP_DRAIN, id);
}

/* Stop job id promptly; it is reaped with cancelled = 1 (streams not done
 * keep done = 0). Unknown or finished ids are ignored. Returns 0, or -errno:
 * ENOMEM, ESHUTDOWN, or from write(2). */
int pcd_pool_cancel(struct pcd_pool *pool, uint64_t id)
{
    return request(pool, OP_CANCEL, id);
}

/* Ask pcd_pool_run() to return; jobs still running are cancelled and reported
 * as such. Idempotent. Returns 0 or -errno from write(2). */
int pcd_pool_stop(struct pcd_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_mutex_unlock(&pool->lock);
    return bump(pool->control_fd);
}

/* Take up to max finished jobs: ids[i] and cancelled[i] (1 when cancelled or
 * when the pool stopped first). Resets the notify eventfd first, so a job
 * finished after the last one taken leaves it readable. Returns the number
 * taken (0..max), or -EINVAL for a negative max. */
int pcd_pool_reap(struct pcd_pool *pool, uint64_t *ids, int *cancelled, int max)
{
    if (max < 0)
        return -EINVAL;
    clear(pool->notify_fd);
    pthread_mutex_lock(&pool->lock);
    int n = pool->ndone < max ? pool->ndone : max;
    for (int i = 0; i < n; i++) {
        ids[i] = pool->done[i].id;
        cancelled[i] = pool->done[i].cancelled;
    }
    pool->ndone -= n;
    if (n > 0) /* done is NULL until the first job finished */
        memmove(pool->done, pool->done + n, (size_t)pool->ndone * sizeof *pool->done);
    bool more = pool->ndone > 0;
    pthread_mutex_unlock(&pool->lock);
    if (more)
        (void)bump(pool->notify_fd);
    return n;
}

/* Jobs submitted and not yet finished (for spreading jobs over pools). */
int pcd_pool_active(struct pcd_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    int n = pool->active;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

/* Worker side: take the job out of the list, free it, queue its completion.
 * The descriptors of every stream are out of the epoll set by now. Returns
 * false if the completion could not be queued (ENOMEM): the caller retries. */
static bool publish(struct pcd_pool *pool, uint64_t id, int cancelled)
{
    pthread_mutex_lock(&pool->lock);
    if (pool->ndone == pool->capdone) {
        int cap = pool->capdone > 0 ? 2 * pool->capdone : 64;
        struct finished *grown = realloc(pool->done, (size_t)cap * sizeof *grown);
        if (grown == NULL) {
            pthread_mutex_unlock(&pool->lock);
            return false;
        }
        pool->done = grown;
        pool->capdone = cap;
    }
    pool->done[pool->ndone++] = (struct finished){.id = id, .cancelled = cancelled};
    pool->active--;
    pthread_mutex_unlock(&pool->lock);
    return true;
}

static void unlink_job(struct pcd_pool *pool, struct job *job)
{
    for (struct job **at = &pool->jobs; *at != NULL; at = &(*at)->next) {
        if (*at == job) {
            *at = job->next;
            return;
        }
    }
}

/* End a job: abandon what is not done when cancelled, then queue its
 * completion (retrying an out-of-memory queue: a job must never vanish). */
static void complete(struct pcd_pool *pool, struct job *job, int cancelled)
{
    for (int i = 0; i < job->n; i++) {
        if (!job->io[i].done)
            pump_abandon(&pool->p, &job->ss[i]);
    }
    unlink_job(pool, job);
    uint64_t id = job->id;
    free(job->ss);
    free(job);
    while (!publish(pool, id, cancelled)) {
        static const struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
}

static struct job *find(struct pcd_pool *pool, uint64_t id)
{
    for (struct job *j = pool->jobs; j != NULL; j = j->next) {
        if (j->id == id)
            return j;
    }
    return NULL;
}

/* Apply queued ops in order. Returns true if the pool is stopping. */
static bool apply_ops(struct pcd_pool *pool, bool *notify)
{
    pthread_mutex_lock(&pool->lock);
    struct op *op = pool->ops;
    pool->ops = pool->ops_tail = NULL;
    bool stopping = pool->stopping;
    pthread_mutex_unlock(&pool->lock);
    struct job **tail = &pool->jobs;
    while (*tail != NULL)
        tail = &(*tail)->next;
    while (op != NULL) {
        struct op *next = op->next;
        if (op->kind == OP_SUBMIT) {
            struct job *job = op->job;
            for (int i = 0; i < job->n; i++)
                pump_setup_stream(&pool->p, &job->ss[i], &job->io[i], job->flags);
            /* Appended: jobs run in submission order within a round. */
            *tail = job;
            tail = &job->next;
        } else {
            struct job *job = find(pool, op->id);
            if (job != NULL && op->kind == OP_DRAIN) {
                job->draining = true;
            } else if (job != NULL) {
                complete(pool, job, 1);
                *notify = true;
                tail = &pool->jobs;
                while (*tail != NULL)
                    tail = &(*tail)->next;
            }
        }
        free(op);
        op = next;
    }
    return stopping;
}

/* One round over every job. Returns true if any stream made progress. */
static bool run_jobs(struct pcd_pool *pool, bool *notify)
{
    bool progress = false;
    struct job *job = pool->jobs;
    while (job != NULL) {
        struct job *next = job->next;
        bool active = false;
        for (int i = 0; i < job->n; i++) {
            struct stream *s = &job->ss[i];
            if (s->io->done)
                continue;
            if (job->draining && pump_drained(&pool->p, s)) {
                pump_finish(&pool->p, s, 0); /* like EOF: everything read was written */
                progress = true;
                continue;
            }
            if (pump_run_stream(&pool->p, s))
                progress = true;
            if (!s->io->done)
                active = true;
        }
        if (!active) {
            complete(pool, job, 0);
            *notify = true;
            progress = true;
        }
        job = next;
    }
    return progress;
}

/* Run the pool's loop in the calling thread until pcd_pool_stop(). Returns 0
 * after a stop, or -errno when the loop itself failed (from
 * pthread_sigmask/epoll_wait); either way every job not finished is reported
 * cancelled, and later submits fail with ESHUTDOWN. */
int pcd_pool_run(struct pcd_pool *pool)
{
    sigset_t pipeset, oldmask;
    sigemptyset(&pipeset);
    sigaddset(&pipeset, SIGPIPE);
    int rc = -pthread_sigmask(SIG_BLOCK, &pipeset, &oldmask);
    if (rc < 0)
        return rc;
    struct epoll_event evs[EVENTS_PER_WAIT];
    int timeout = 0;
    for (;;) {
        int n = epoll_wait(pool->p.epfd, evs, EVENTS_PER_WAIT, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        for (int k = 0; k < n; k++) {
            if (evs[k].data.u32 == CONTROL_KEY) {
                clear(pool->control_fd);
                continue;
            }
            struct fdent *e = &pool->p.fds[evs[k].data.u32];
            uint32_t ev = evs[k].events;
            if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                e->in_ready = true;
            if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
                e->out_ready = true;
        }
        bool notify = false;
        bool stopping = apply_ops(pool, &notify);
        if (stopping)
            break;
        bool progress = run_jobs(pool, &notify);
        if (pool->p.saw_epipe) {
            static const struct timespec zero = {0, 0};
            while (sigtimedwait(&pipeset, NULL, &zero) > 0 || errno == EINTR)
                ;
            pool->p.saw_epipe = false;
        }
        if (notify)
            (void)bump(pool->notify_fd);
        timeout = progress ? 0 : -1;
    }
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_mutex_unlock(&pool->lock);
    bool notify = false;
    (void)apply_ops(pool, &notify); /* submits already queued are set up, then cancelled */
    while (pool->jobs != NULL)
        complete(pool, pool->jobs, 1);
    pthread_mutex_lock(&pool->lock);
    pool->stopped = true;
    pthread_mutex_unlock(&pool->lock);
    (void)bump(pool->notify_fd);
    if (pool->p.saw_epipe) {
        static const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipeset, NULL, &zero) > 0 || errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
    return rc;
}
