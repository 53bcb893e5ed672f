/* pycontainerd native stdio pump: copy bytes from several (src, dst) fd pairs
 * in one epoll loop, with splice(2) where a pipe is involved. */
#ifndef PCD_PUMP_H
#define PCD_PUMP_H

#include "pcd.h"

/* Flags for pcd_pump(); 0 is the normal mode. The others exist for tests and
 * benchmarks that compare the copy paths. */
#define PCD_PUMP_NO_SPLICE 0x1 /* always use read/write */
#define PCD_PUMP_NO_RESIZE 0x2 /* never enlarge pipe buffers (F_SETPIPE_SZ) */
/* When a destination fails (EPIPE, ENOSPC, EBADF, EIO...), record the error and
 * keep reading that stream's source to EOF, dropping the bytes: the writer on
 * the other side of the source never blocks on a full pipe. */
#define PCD_PUMP_DISCARD_ON_ERROR 0x4

/* pcd_pump() returns this when the cancel fd became readable. */
#define PCD_PUMP_CANCELLED 1

/* One (src, dst) pair. src and dst are inputs; the rest are outputs. */
struct pcd_pump_stream {
    int src;
    int dst;
    int64_t nbytes; /* bytes written to dst */
    int err;        /* positive errno that ended this stream, or 0 */
    int done;       /* 1 once the stream reached EOF or failed */
    int64_t dropped; /* bytes read but not delivered (PCD_PUMP_DISCARD_ON_ERROR) */
};

int pcd_pump(struct pcd_pump_stream *streams, int nstreams, int cancel_fd, unsigned int flags);
int pcd_pump_drain(struct pcd_pump_stream *streams, int nstreams, int cancel_fd, int drain_fd,
                   unsigned int flags);

#endif
