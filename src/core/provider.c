/*
 * provider.c — the default provider: memory straight from the OS layer
 * (anonymous private mappings, aligned as the pool asks).
 */
#include "core/slab.h"
#include "os/os.h"

static void *os_map(size_t size, size_t align, void *ctx)
{
    (void)ctx;
    return zp__os_map(size, align);
}

static void os_unmap(void *ptr, size_t size, void *ctx)
{
    (void)ctx;
    zp__os_unmap(ptr, size);
}

const zp_provider zp__default_provider = {os_map, os_unmap, NULL};
