/*
 * object.h — object pools' constructors and destructors, run on the
 * engine's behalf with no library lock held. A slab of a type with init or
 * fini keeps one bit per object, set while the object is constructed, so
 * init runs once per object and fini once per constructed object.
 */
#ifndef ZP_OBJECT_H
#define ZP_OBJECT_H

#include "types.h"

/* Makes every object among items[0..n) that is not constructed yet into one
 * (init; with init NULL it is only marked). 0, or the failed init's error
 * as a negative errno (detail recorded): the objects before it are
 * constructed, the failing one and those after it may not be. */
int zp__object_construct(zp_pool *p, void *const *items, size_t n);

/* Moves the constructed objects of items[0..n) to its front and returns how
 * many there are (the rest, unconstructed, follow). */
size_t zp__object_partition(zp_pool *p, void **items, size_t n);

/* fini for one object if it is constructed (then it is no longer). */
void zp__object_fini(zp_pool *p, void *obj);

/* fini for every constructed object of a slab about to be released (all
 * idle). */
void zp__object_fini_slab(zp_pool *p, zp__slab *s);

#endif /* ZP_OBJECT_H */
