// SPDX-License-Identifier: GPL-2.0-only
#include <stdio.h>
int main(void){return 0;}
