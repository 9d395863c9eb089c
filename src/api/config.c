/*
 * config.c — zp_config: defaults, and loading a caller's config (which may
 * come from an older or newer header) with a precise reason for anything
 * invalid.
 */
#include "api/api.h"
#include "os/os.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- config */

#define ZP__DEFAULT_MIN_CLASS ((size_t)4 << 10)
#define ZP__DEFAULT_MAX_CLASS ((size_t)64 << 20)
#define ZP__DEFAULT_CACHE_DEPTH 256u
#define ZP__DEFAULT_CACHE_BYTES ((size_t)64 << 20)

void zp_config_init(zp_config *cfg)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof(*cfg));
    cfg->struct_size = sizeof(*cfg);
    cfg->min_class = ZP__DEFAULT_MIN_CLASS;
    cfg->max_class = ZP__DEFAULT_MAX_CLASS;
    cfg->cache_depth = ZP__DEFAULT_CACHE_DEPTH;
    cfg->cache_bytes = ZP__DEFAULT_CACHE_BYTES;
    cfg->flags = 0;
    cfg->debug = 0;
    cfg->max_cached_bytes = SIZE_MAX;
}

static bool is_pow2(size_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* Where a zp_config of each layout this library knows ends: a config from
 * an older header stops after one of these fields (the oldest accepted
 * ends with provider). */
#define FIELD_END(f) (offsetof(zp_config, f) + sizeof(((zp_config *)0)->f))
#define LAYOUT_MIN FIELD_END(provider)
static const size_t layout_ends[] = {
    FIELD_END(provider), FIELD_END(name),             FIELD_END(budget),
    FIELD_END(max_bytes), FIELD_END(max_cached_bytes), FIELD_END(decay_ms),
    FIELD_END(numa) /* = 0.1.0's sizeof: decay_ms and its padding */, sizeof(zp_config),
};

static bool layout_known(size_t size)
{
    for (size_t i = 0; i < sizeof layout_ends / sizeof layout_ends[0]; i++)
        if (layout_ends[i] == size)
            return true;
    return false;
}

/* Copies the caller's config (which may come from a newer header) and
 * rejects anything invalid with a precise reason. */
int zp__config_load(const char *fn, const zp_config *in, zp_config *cfg, bool objects)
{
    zp_config_init(cfg);
    if (in != NULL) {
        if (in->struct_size < LAYOUT_MIN)
            return zp__error(-EINVAL, "%s: config struct_size %zu is too small "
                             "(initialise the config with zp_config_init)", fn,
                             in->struct_size);
        if (in->struct_size < sizeof(zp_config) && !layout_known(in->struct_size))
            return zp__error(-EINVAL, "%s: config struct_size %zu ends inside a field: "
                             "it matches no zp_config layout (initialise the config with "
                             "zp_config_init)", fn,
                             in->struct_size);
        if (in->struct_size > sizeof(zp_config)) {
            const unsigned char *extra = (const unsigned char *)in + sizeof(zp_config);
            for (size_t i = 0; i < in->struct_size - sizeof(zp_config); i++)
                if (extra[i] != 0)
                    return zp__error(-EINVAL, "%s: config sets fields unknown to "
                                     "zeropool %s (struct_size %zu > %zu)", fn,
                                     ZP_VERSION_STRING, in->struct_size, sizeof(zp_config));
        }
        memcpy(cfg, in, in->struct_size < sizeof(*cfg) ? in->struct_size : sizeof(*cfg));
        /* a 0.1 config's sizeof ends where numa does, but those bytes were
         * its padding: numa and numa_node keep their defaults */
        if (in->struct_size < FIELD_END(numa_node)) {
            cfg->numa = ZP_NUMA_LOCAL;
            cfg->numa_node = 0;
        }
        if (objects) { /* an object pool's one class comes from its type */
            cfg->min_class = ZP__DEFAULT_MIN_CLASS;
            cfg->max_class = ZP__DEFAULT_MAX_CLASS;
        }
    }
    const char *env = getenv("ZEROPOOL_DEBUG");
    if (env != NULL && *env != '\0') {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end != '\0' || v < 0 || v > ZP_DEBUG_MAX)
            return zp__error(-EINVAL, "%s: ZEROPOOL_DEBUG=%s is not a debug level 0..%d", fn,
                             env, ZP_DEBUG_MAX);
        cfg->debug = (int)v;
    }
    if (!is_pow2(cfg->min_class))
        return zp__error(-EINVAL, "%s: min_class %zu is not a power of two", fn,
                         cfg->min_class);
    if (!is_pow2(cfg->max_class))
        return zp__error(-EINVAL, "%s: max_class %zu is not a power of two", fn,
                         cfg->max_class);
    if (cfg->min_class < ((size_t)1 << ZP__MIN_CLASS_SHIFT))
        return zp__error(-EINVAL, "%s: min_class %zu is below the minimum %zu", fn,
                         cfg->min_class, (size_t)1 << ZP__MIN_CLASS_SHIFT);
    if (cfg->max_class > ((size_t)1 << ZP__MAX_CLASS_SHIFT))
        return zp__error(-EINVAL, "%s: max_class %zu is above the maximum %zu", fn,
                         cfg->max_class, (size_t)1 << ZP__MAX_CLASS_SHIFT);
    if (cfg->min_class > cfg->max_class)
        return zp__error(-EINVAL, "%s: min_class %zu is larger than max_class %zu", fn,
                         cfg->min_class, cfg->max_class);
    if (cfg->cache_depth > ZP__MAX_CACHE_DEPTH)
        return zp__error(-EINVAL, "%s: cache_depth %u is above the maximum %u", fn,
                         cfg->cache_depth, ZP__MAX_CACHE_DEPTH);
    const unsigned known =
        ZP_ZERO_ON_GET | ZP_WIPE_ON_PUT | ZP_DECAY_THREAD | ZP_HUGE_PAGES | ZP_LOCKED;
    if (cfg->flags & ~known)
        return zp__error(-EINVAL, "%s: flags 0x%x has unknown bits 0x%x", fn,
                         cfg->flags, cfg->flags & ~known);
    if (cfg->budget != NULL && cfg->max_bytes != 0)
        return zp__error(-EINVAL, "%s: set either budget or max_bytes, not both", fn);
    if ((cfg->flags & ZP_DECAY_THREAD) && cfg->decay_ms == 0)
        return zp__error(-EINVAL, "%s: ZP_DECAY_THREAD needs decay_ms > 0", fn);
    if (cfg->debug < 0 || cfg->debug > ZP_DEBUG_MAX)
        return zp__error(-EINVAL, "%s: debug %d is not a debug level 0..%d", fn,
                         cfg->debug, ZP_DEBUG_MAX);
    if ((cfg->provider.map == NULL) != (cfg->provider.unmap == NULL))
        return zp__error(-EINVAL, "%s: provider needs both map and unmap (or neither)", fn);
    if (cfg->numa != ZP_NUMA_LOCAL && cfg->numa != ZP_NUMA_NONE && cfg->numa != ZP_NUMA_BIND)
        return zp__error(-EINVAL, "%s: numa %d is not ZP_NUMA_LOCAL (0), ZP_NUMA_NONE (1) or "
                                  "ZP_NUMA_BIND (2)", fn, cfg->numa);
    if (cfg->numa == ZP_NUMA_BIND && zp__os_node_index(cfg->numa_node) < 0)
        return zp__error(-EINVAL, "%s: numa_node %d is not an online NUMA node of this machine "
                                  "(%d online; see /sys/devices/system/node/online)", fn,
                         cfg->numa_node, zp__os_topology_get()->nnodes);
    if (cfg->name != NULL) {
        size_t len = strlen(cfg->name);
        if (len == 0 || len >= ZP_NAME_MAX)
            return zp__error(-EINVAL, "%s: name must have 1..%d characters", fn,
                             ZP_NAME_MAX - 1);
        if (strspn(cfg->name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                              "0123456789_.:-") != len)
            return zp__error(-EINVAL, "%s: name \"%s\" has characters outside "
                             "[A-Za-z0-9_.:-]", fn,
                             cfg->name);
    }
    return 0;
}
