/*
 * api.h — what the public entry points (src/api/) share among themselves.
 * The front doors check their arguments, pick the cache (the calling
 * thread's, or the handle given), and call the engine with it.
 */
#ifndef ZP_API_H
#define ZP_API_H

#include "types.h"

/* Copies and validates a caller's config (NULL: defaults) into *cfg. 0 or
 * -EINVAL with the reason recorded. */
int zp__config_load(const zp_config *in, zp_config *cfg);

/* A public call got a NULL pool or handle: records the detail and returns
 * -EINVAL (callers returning a pointer also set errno). */
int zp__null_arg(const char *fn, const char *what);

#endif /* ZP_API_H */
