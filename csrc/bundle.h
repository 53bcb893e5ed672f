/* Race-safe directory walks for pycontainerd.bundle (libcontainerd's
 * prepareBundleDir and idtools' MkdirAllAndChownNew / MkdirAndChown). */
#ifndef PCD_BUNDLE_H
#define PCD_BUNDLE_H

#include "pcd.h"

/* Values of *detail when pcd_bundle_userns refuses an existing suffixed dir. */
#define PCD_BUNDLE_WRONG_OWNER 1
#define PCD_BUNDLE_WRITABLE 2

int pcd_mkdir_all_new(const char *path, unsigned int mode, uint32_t uid, uint32_t gid, int *failed);
int pcd_mkdir_chown(const char *path, unsigned int mode, uint32_t uid, uint32_t gid, int *failed);
int pcd_bundle_userns(const char *path, uint32_t uid, uint32_t gid, int *failed, int *first_suffixed,
                      int *detail);

#endif
