/*
 * provider.c — the default providers: memory straight from the OS layer
 * (anonymous private mappings, aligned as the pool asks), and for pools
 * with ZP_HUGE_PAGES the same backed by huge pages (reserved ones, or
 * transparent ones by madvise).
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

/* ZP_HUGE_PAGES: the pool asks for huge-page alignment exactly for the
 * regions meant to be huge (slabs, oversize regions of a huge page or
 * more: region_align in slab.c); others (a short oversize region) are mapped
 * as usual. */
static void *os_map_huge(size_t size, size_t align, void *ctx)
{
    (void)ctx;
    size_t hs = zp__os_huge_page_size();
    if (align >= hs && size % hs == 0)
        return zp__os_map_huge(size, align);
    void *m = zp__os_map(size, align);
    if (m != NULL && align >= hs)
        (void)zp__os_advise_huge(m, size - size % hs); /* the whole huge pages */
    return m;
}

const zp_provider zp__huge_provider = {os_map_huge, os_unmap, NULL};
