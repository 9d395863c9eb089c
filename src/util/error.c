/*
 * error.c — error text and version.
 *
 * zp_strerror returns the precise detail of the calling thread's last
 * failure when asked about that failure's code, and a fixed text otherwise.
 * The detail lives in thread-local storage: no global error state.
 */
#include "base.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static __thread int last_err;
static __thread char last_detail[256];
static __thread char unknown_text[48];

static void record(int err, const char *fmt, va_list ap)
{
    vsnprintf(last_detail, sizeof last_detail, fmt, ap);
    last_err = err;
}

int zp__error(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(zp__public_err(err), fmt, ap);
    va_end(ap);
    return err;
}

int zp_error_set(int err, const char *fmt, ...)
{
    if (err > 0)
        err = -err;
    if (err == 0 || fmt == NULL)
        return err;
    va_list ap;
    va_start(ap, fmt);
    record(err, fmt, ap);
    va_end(ap);
    return err;
}

const char *zp_strerror(int err)
{
    if (err > 0)
        err = -err;
    if (err != 0 && err == last_err && last_detail[0] != '\0')
        return last_detail;
    switch (err) {
    case 0: return "success";
    case -EINVAL: return "invalid argument";
    case -ENOMEM: return "out of memory: the provider (or the system) refused memory";
    case -EOVERFLOW: return "size can never be served";
    case -ENOBUFS: return "memory budget exhausted";
    case -ETIMEDOUT: return "timed out";
    case -EBUSY: return "resource busy";
    case -ENOTSUP: return "not supported";
    case -EBADMSG: return "corrupt or truncated data";
    case -EFBIG: return "result too large";
    case -ENOENT: return "no such entry";
    case -EINPROGRESS: return "in progress";
    default:
        snprintf(unknown_text, sizeof unknown_text, "unknown error %d", err);
        return unknown_text;
    }
}

unsigned zp_version(void)
{
    return ZP_VERSION_NUMBER;
}

const char *zp_version_string(void)
{
    return ZP_VERSION_STRING;
}
