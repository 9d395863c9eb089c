/* Prints the version zeropool.h was compiled with and the one the linked
 * shared library reports, one per line, for check_version.sh. */
#include <stdio.h>

#include <zeropool.h>

int main(void)
{
    printf("header %s %u\n", ZP_VERSION_STRING, (unsigned)ZP_VERSION_NUMBER);
    printf("header_parts %d.%d.%d\n", ZP_VERSION_MAJOR, ZP_VERSION_MINOR, ZP_VERSION_PATCH);
    printf("library %s %u\n", zp_version_string(), zp_version());
    return 0;
}
