/*
 * zpz: reads and writes that finish (EINTR, short counts), and the
 * buffered input the decoders parse headers from.
 */
#include "zpz.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

ssize_t zpz_read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int zpz_write_full(int fd, const void *buf, size_t n)
{
    return zpz_write2(fd, buf, n, NULL, 0);
}

int zpz_write2(int fd, const void *a, size_t alen, const void *b, size_t blen)
{
    struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
    int i = 0;
    while (i < 2) {
        if (iov[i].iov_len == 0) {
            i++;
            continue;
        }
        ssize_t w = writev(fd, iov + i, 2 - i);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        size_t left = (size_t)w;
        while (i < 2 && left >= iov[i].iov_len) {
            left -= iov[i].iov_len;
            iov[i].iov_len = 0;
            i++;
        }
        if (i < 2) {
            iov[i].iov_base = (char *)iov[i].iov_base + left;
            iov[i].iov_len -= left;
        }
    }
    return 0;
}

int zpz_in_open(zpz_in *in, zp_pool *pool, int fd, size_t cap)
{
    memset(in, 0, sizeof *in);
    in->fd = fd;
    in->buf = zp_get(pool, cap);
    if (in->buf == NULL)
        return -errno;
    in->cap = cap;
    return 0;
}

void zpz_in_close(zpz_in *in, zp_pool *pool)
{
    zp_put(pool, in->buf);
    in->buf = NULL;
}

ssize_t zpz_in_fill(zpz_in *in, size_t n)
{
    if (n > in->cap)
        n = in->cap;
    if (in->len - in->pos >= n || in->eof)
        return (ssize_t)(in->len - in->pos);
    if (in->pos + n > in->cap) { /* slide the unread bytes to the front */
        memmove(in->buf, in->buf + in->pos, in->len - in->pos);
        in->len -= in->pos;
        in->pos = 0;
    }
    while (in->len - in->pos < n && !in->eof) {
        ssize_t r = read(in->fd, in->buf + in->len, in->cap - in->len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            in->eof = 1;
        in->len += (size_t)r;
    }
    return (ssize_t)(in->len - in->pos);
}

int zpz_in_take(zpz_in *in, void *dst, size_t n)
{
    unsigned char *d = dst;
    size_t have = in->len - in->pos;
    size_t k = have < n ? have : n;
    memcpy(d, in->buf + in->pos, k);
    in->pos += k;
    in->consumed += k;
    d += k;
    n -= k;
    if (n == 0)
        return 0;
    /* the rest straight from the descriptor, past the buffer */
    ssize_t r = zpz_read_full(in->fd, d, n);
    if (r < 0)
        return (int)r;
    in->consumed += (uint64_t)r;
    if ((size_t)r < n) {
        in->eof = 1;
        return -EBADMSG;
    }
    return 0;
}
