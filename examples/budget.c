/* budget.c — two pools sharing a 64 MiB budget, a waiter woken by a put,
 * and idle memory given back with zp_trim (the README's budget example). */
#define _POSIX_C_SOURCE 200809L
#include <zeropool.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static zp_pool *rx, *tx;
static void *held;

static void *release_later(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    zp_put(rx, held); /* makes room: wakes the waiter below */
    return NULL;
}

int main(void)
{
    zp_budget *budget;
    if (zp_budget_create((size_t)64 << 20, &budget) != 0)
        return 1;
    zp_config cfg;
    zp_config_init(&cfg);
    cfg.budget = budget;
    cfg.name = "rx";
    if (zp_pool_create(&cfg, &rx) != 0)
        return 1;
    cfg.name = "tx";
    if (zp_pool_create(&cfg, &tx) != 0)
        return 1;
    zp_budget_destroy(budget); /* the pools keep it alive */

    void *bufs[65];
    int n = 0;
    while (n < 65 && (bufs[n] = zp_get(rx, 1 << 20)) != NULL)
        memset(bufs[n++], 1, 1 << 20);
    printf("rx got %d x 1 MiB, then: %s\n", n, strerror(errno));

    held = bufs[--n];
    pthread_t t;
    pthread_create(&t, NULL, release_later, NULL);
    void *b = zp_get_timed(tx, 1 << 20, 1000); /* waits for the put */
    printf("tx waited and got %s\n", b ? "a buffer" : strerror(errno));
    pthread_join(t, NULL);
    zp_put(tx, b);

    while (n > 0)
        zp_put(rx, bufs[--n]);
    printf("rx trim gave back %zu bytes\n", zp_trim(rx, 0));
    printf("tx trim gave back %zu bytes\n", zp_trim(tx, 0));
    zp_pool_destroy(tx);
    zp_pool_destroy(rx);
    return 0;
}
