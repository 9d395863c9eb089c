/*
 * registry.h — the process-wide list of live pools, their thread-cache
 * slots, and each pool's list of caches (threads' and handles'). One lock,
 * the registry lock, guards all of it; it comes first in the lock order
 * (registry -> depot -> pool -> budget queue).
 */
#ifndef ZP_REGISTRY_H
#define ZP_REGISTRY_H

#include "types.h"

void zp__registry_lock(void);
void zp__registry_unlock(void);
/* Registers a live pool, with a thread-cache slot if want_slot. 0, or
 * -ENOMEM when all ZP__MAX_POOLS slots are taken (detail recorded). */
int zp__registry_add(zp_pool *p, bool want_slot);

/* What zp__registry_remove found still attached. */
typedef struct zp__detached {
    uint64_t handles;         /* live handles, now freed */
    uint64_t handle_buffers;  /* buffers they cached */
} zp__detached;
/* Unregisters p: every cache is drained into the depot and its counters
 * folded into p->retired; thread caches are detached (their threads free
 * them later), live handles are freed; then the slot is free. */
void zp__registry_remove(zp_pool *p, zp__detached *out);

/* Registry lock held: links c into its pool's list of caches. */
void zp__registry_link(zp__cache *c);
/* Registry lock held: folds c's counters into its pool and unlinks it
 * (c->pool becomes NULL); what it caches stays in it. */
void zp__registry_detach(zp__cache *c);


/* Registry lock held: the first live pool (then p->live_next). */
zp_pool *zp__registry_pools(void);

#endif /* ZP_REGISTRY_H */
