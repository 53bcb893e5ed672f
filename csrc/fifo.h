/* FIFO creation and race-safe (re)opening for pycontainerd.fifo. */
#ifndef PCD_FIFO_H
#define PCD_FIFO_H

#include "pcd.h"

int pcd_open_dir(const char *path);
int pcd_fifo_create(int dirfd, const char *name, unsigned int mode, int *created);
int pcd_fifo_open_path(int dirfd, const char *name, uint64_t *dev, uint64_t *ino);
int pcd_fifo_reopen(int pathfd, int flags, uint64_t dev, uint64_t ino);

#endif
