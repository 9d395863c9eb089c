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

/* The pool's depot index of node id node: its index, p->nnodes for an
 * online node none of its depots is on, or -1 for a node that is not
 * online. */
int zp__stats_node_index(const zp_pool *p, int node);

#endif /* ZP_STATS_H */
