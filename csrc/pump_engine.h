/* The pump's per-stream engine, shared by its two drivers: pcd_pump_drain()
 * (pump.c: one blocking call per set of streams) and the shared pool
 * (pump_pool.c: one long-running loop per worker thread, streams added and
 * removed while it runs). Internal: not part of the cffi interface.
 *
 * A driver owns a struct pump (its epoll set and descriptor table), calls
 * pump_setup_stream() once per stream, marks descriptors ready from epoll
 * events (in_ready/out_ready), calls pump_run_stream() while streams are not
 * done, and may end a stream with pump_finish() (cancel) or after
 * pump_drained() says it is empty (drain). Every function runs in the
 * driver's thread only. */
#ifndef PCD_PUMP_ENGINE_H
#define PCD_PUMP_ENGINE_H

#include <stdbool.h>

#include "pump.h"

#define PCD_HIDDEN __attribute__((visibility("hidden")))

enum kind { K_PIPE, K_STREAM_SOCK, K_MSG_SOCK, K_FILE, K_TTY, K_CHAR, K_OTHER };

/* One distinct descriptor number in the epoll set (pairs may share one). A
 * slot whose users dropped to 0 is free and is reused by the next add. */
struct fdent {
    int fd;
    int users;
    bool pollable; /* epoll accepted it; regular files and /dev/null are not */
    bool in_ready;
    bool out_ready;
};

struct stream {
    struct pcd_pump_stream *io;
    int si, di; /* fd table indices, -1 until registered */
    enum kind skind, dkind;
    bool s_nonblock, d_nonblock;
    bool s_nowait, d_nowait; /* RWF_NOWAIT not yet refused */
    bool splice;
    bool eof;
    bool grow; /* pipes still to be enlarged */
    int ambiguous;
    char *buf;
    size_t off, len; /* pending bytes in buf */
    size_t wmax;     /* largest write: FILE_CHUNK for files, shrunk for message sockets */
    size_t splice_len;
    bool may_discard; /* PCD_PUMP_DISCARD_ON_ERROR */
    bool discard;     /* the destination failed: read the source to EOF, drop the bytes */
};

struct pump {
    int epfd;
    struct fdent *fds; /* epoll events carry an index into this table */
    int nfds;          /* slots in use or freed (the table's high-water mark) */
    int cap;           /* allocated slots; the table grows when a driver allows it */
    bool can_grow;     /* realloc fds when full (the pool); the blocking pump sizes it once */
    bool saw_epipe;
};

/* Prepare one stream and register its descriptors; a failure (EBADF, ENOMEM)
 * ends only that stream (io->done = 1, io->err set). */
PCD_HIDDEN void pump_setup_stream(struct pump *p, struct stream *s, struct pcd_pump_stream *io,
                                  unsigned int flags);
/* Advance one stream until it would block, ends, or used its round budget.
 * Returns true if it did anything (the driver must not sleep then). */
PCD_HIDDEN bool pump_run_stream(struct pump *p, struct stream *s);
/* Whether a stream being drained is finished: nothing buffered, source empty. */
PCD_HIDDEN bool pump_drained(struct pump *p, struct stream *s);
/* End a stream with err (0: EOF); releases its descriptors and buffer. */
PCD_HIDDEN void pump_finish(struct pump *p, struct stream *s, int err);

/* Stop a stream that is not done (a cancel): release its descriptors and
 * buffer; its outcome stays "not done". */
PCD_HIDDEN void pump_abandon(struct pump *p, struct stream *s);

#endif
