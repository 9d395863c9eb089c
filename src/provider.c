/*
 * provider.c — the default provider: anonymous private mmap, aligned to the
 * requested alignment (over-mapped and trimmed when the kernel's choice is
 * not aligned).
 */
#define _GNU_SOURCE
#include "internal.h"

#include <stdint.h>
#include <sys/mman.h>

static void *mmap_map(size_t size, size_t align, void *ctx)
{
    (void)ctx;
    if (size > SIZE_MAX - align)
        return NULL;
    /* The kernel places new mappings next to the previous ones, so once
     * one region is aligned the next exact-size one usually is too: try
     * that first (one system call), and over-map and trim only if not. */
    char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    if (((uintptr_t)m & (align - 1)) == 0)
        return m;
    munmap(m, size);
    size_t span = size + align;
    m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    uintptr_t start = ((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = start - (uintptr_t)m;
    size_t tail = span - head - size;
    if (head)
        munmap(m, head);
    if (tail)
        munmap((char *)start + size, tail);
    return (void *)start;
}

static void mmap_unmap(void *ptr, size_t size, void *ctx)
{
    (void)ctx;
    munmap(ptr, size);
}

const zp_provider zp__default_provider = {mmap_map, mmap_unmap, NULL};
