/* pycontainerd native layer: the real header shared by every csrc/<name>.c.
 *
 * Convention for every exported pcd_* function: return >= 0 on success and
 * -errno on failure (errno is saved before any cleanup close()). Every fd
 * opened here carries O_CLOEXEC; every loop retries EINTR.
 */
#ifndef PCD_H
#define PCD_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <unistd.h>

#endif
