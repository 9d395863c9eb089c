/* Consumer of an installed libzeropool-uring (check_install.sh): builds
 * against <zeropool/uring.h>, links, and checks an argument error. */
#include <errno.h>
#include <stdio.h>
#include <zeropool/uring.h>

int main(void)
{
    zp_bufring_config cfg;
    zp_bufring *br;
    zp_bufring_config_init(&cfg);
    if (zp_bufring_create(&cfg, &br) != -EINVAL) {
        fprintf(stderr, "uring consumer: an empty config was accepted\n");
        return 1;
    }
    printf("uring consumer: ok (zeropool %s)\n", zp_version_string());
    return 0;
}
