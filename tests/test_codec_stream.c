/* placeholder */
#include "zp_test_codec.h"
int main(void){return 77;}
