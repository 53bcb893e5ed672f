#define PCD_PUMP_NO_SPLICE 0x1
#define PCD_PUMP_NO_RESIZE 0x2
#define PCD_PUMP_DISCARD_ON_ERROR 0x4
#define PCD_PUMP_CANCELLED 1

struct pcd_pump_stream {
    int src;
    int dst;
    int64_t nbytes;
    int err;
    int done;
    int64_t dropped;
};

int pcd_pump(struct pcd_pump_stream *streams, int nstreams, int cancel_fd, unsigned int flags);
int pcd_pump_drain(struct pcd_pump_stream *streams, int nstreams, int cancel_fd, int drain_fd,
                   unsigned int flags);
