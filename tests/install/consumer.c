/* Install check: a program built only against the installed zeropool (header,
 * library, pkg-config / CMake package) that gets, writes and puts a buffer. */
#include <zeropool.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    if (zp_version() != ZP_VERSION_NUMBER) {
        fprintf(stderr, "consumer: header is %d but library is %u\n",
                ZP_VERSION_NUMBER, zp_version());
        return 1;
    }

    zp_pool *pool = NULL;
    int rc = zp_pool_create(NULL, &pool);
    if (rc != 0) {
        fprintf(stderr, "consumer: zp_pool_create: %s\n", zp_strerror(rc));
        return 1;
    }

    unsigned char *buf = zp_get(pool, 4096);
    if (buf == NULL) {
        perror("consumer: zp_get");
        zp_pool_destroy(pool);
        return 1;
    }
    memset(buf, 0xA5, 4096);
    if (buf[0] != 0xA5 || buf[4095] != 0xA5) {
        fprintf(stderr, "consumer: buffer contents lost\n");
        return 1;
    }
    zp_put(pool, buf);
    zp_pool_destroy(pool);

    printf("consumer: zeropool %s ok\n", zp_version_string());
    return 0;
}
