struct pcd_pool;

int pcd_pool_new(struct pcd_pool **out);
int pcd_pool_notify_fd(const struct pcd_pool *pool);
int pcd_pool_run(struct pcd_pool *pool);
int pcd_pool_stop(struct pcd_pool *pool);
void pcd_pool_free(struct pcd_pool *pool);
int pcd_pool_submit(struct pcd_pool *pool, struct pcd_pump_stream *streams, int nstreams, uint64_t id,
                    unsigned int flags);
int pcd_pool_drain(struct pcd_pool *pool, uint64_t id);
int pcd_pool_cancel(struct pcd_pool *pool, uint64_t id);
int pcd_pool_reap(struct pcd_pool *pool, uint64_t *ids, int *cancelled, int max);
int pcd_pool_active(struct pcd_pool *pool);
