/* stats.c — a pool under a little traffic, then its statistics.
 * Usage: stats [text|json|prometheus]   (the README's stats example) */
#include <zeropool.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    int format = ZP_FORMAT_TEXT;
    if (argc > 1 && strcmp(argv[1], "json") == 0)
        format = ZP_FORMAT_JSON;
    else if (argc > 1 && strcmp(argv[1], "prometheus") == 0)
        format = ZP_FORMAT_PROMETHEUS;

    zp_config cfg;
    zp_config_init(&cfg);
    cfg.name = "rx";
    cfg.max_class = 1 << 20;
    zp_pool *pool;
    int rc = zp_pool_create(&cfg, &pool);
    if (rc != 0) {
        fprintf(stderr, "zp_pool_create: %s\n", zp_strerror(rc));
        return 1;
    }
    void *bufs[48];
    for (int round = 0; round < 1000; round++) {
        /* a burst of 48 receive buffers, then all back */
        for (int i = 0; i < 48; i++) {
            bufs[i] = zp_get(pool, i % 4 ? 16 * 1024 : 64 * 1024);
            if (bufs[i] == NULL) {
                perror("zp_get");
                return 1;
            }
            memset(bufs[i], i, 64);
        }
        for (int i = 0; i < 48; i++)
            zp_put(pool, bufs[i]);
    }
    zp_put(pool, zp_get(pool, (size_t)4 << 20)); /* above max_class: oversize */

    rc = zp_stats_write(pool, stdout, format);
    if (rc != 0)
        fprintf(stderr, "zp_stats_write: %s\n", zp_strerror(rc));
    zp_pool_destroy(pool);
    return rc != 0;
}
