/* SPDX-License-Identifier: MIT */
/* mxguard version: the version and the libraries it runs with. */
#include <stdio.h>

#include <event2/event.h>
#include <libconfig.h>
#include <openssl/crypto.h>

#include "cli.h"

int
cli_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("mxguard %s\n", MX_VERSION);
	printf("libevent %s, %s, libconfig %d.%d.%d\n", event_get_version(),
	       OpenSSL_version(OPENSSL_VERSION), LIBCONFIG_VER_MAJOR, LIBCONFIG_VER_MINOR,
	       LIBCONFIG_VER_REVISION);
	return 0;
}
