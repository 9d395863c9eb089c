/*
 * The harness's io_uring part (zp_test.h, "io_uring"): built into the
 * zp_test_uring library only where liburing is, for the libzeropool-uring
 * tests.
 */
#include "zp_test.h"

int zpt_uring_init(struct io_uring *ring, unsigned entries, char *why, size_t len)
{
    int rc = io_uring_queue_init(entries, ring, 0);
    if (rc < 0)
        snprintf(why, len, "io_uring_queue_init: %s%s", strerror(-rc),
                 rc == -EPERM || rc == -ENOSYS || rc == -EACCES
                     ? " (io_uring refused by the kernel or a sandbox)" : "");
    return rc;
}

int zpt_uring_wait(struct io_uring *ring, struct io_uring_cqe *out, int timeout_ms)
{
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                   .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
    int rc;
    io_uring_submit(ring);
    do
        rc = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
    while (rc == -EINTR);
    if (rc < 0)
        return rc;
    *out = *cqe;
    io_uring_cqe_seen(ring, cqe);
    return 0;
}
