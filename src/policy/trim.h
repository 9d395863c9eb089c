/*
 * trim.h — giving idle memory back: trim, the retention cap and decay.
 * Works on depots and slabs only; callers flush caches first.
 */
#ifndef ZP_TRIM_H
#define ZP_TRIM_H

#include "types.h"

/* Gives back idle memory of class cls until `drop` bytes of resident idle
 * memory are gone (or nothing more can go): unmaps slabs whose buffers are
 * all idle in the depot, then, if purge, releases the pages of the coldest
 * idle buffers. Takes the depot lock. Returns the bytes given back. */
size_t zp__trim_class(zp_pool *p, unsigned cls, uint64_t drop, bool purge);
/* Pool-wide: down to keep resident idle bytes. */
size_t zp__trim_pool(zp_pool *p, uint64_t keep, bool purge);
/* Called on slow paths: enforces the retention cap, runs decay when due. */
void zp__idle_check(zp_pool *p);
/* The decay clock and, with ZP_DECAY_THREAD, its thread. 0 or -errno. */
int zp__decay_start(zp_pool *p);
void zp__decay_stop(zp_pool *p);
/* fork child: the decay thread did not survive; its lock and condition are
 * made afresh */
void zp__decay_fork_child(zp_pool *p);

#endif /* ZP_TRIM_H */
