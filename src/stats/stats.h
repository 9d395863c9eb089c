/*
 * stats.h — summing the counters that caches and depots keep apart.
 */
#ifndef ZP_STATS_H
#define ZP_STATS_H

#include "types.h"

/* Counters of class cls summed over every cache (live and retired) and the
 * depot's direct ones; the registry lock and the class's depot lock must be
 * held. */
zp__counts zp__class_counts(zp_pool *p, unsigned cls);

#endif /* ZP_STATS_H */
