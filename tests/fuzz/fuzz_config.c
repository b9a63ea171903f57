/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a configuration file through config_load(): libconfig's
 * grammar, then the schema's types, bounds and cross-checks.  A file is
 * either a config or a list of "file:line: what" errors; never both, never
 * neither, and every error names the file.
 */
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "fuzz_files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/mxguard.conf", fuzz_dir());
	fuzz_write(path, data, size);
	struct config_errors errs = { 0 };
	struct mx_config *c = config_load(path, &errs);
	if ((c != NULL) == (errs.n > 0))
		abort();
	for (size_t i = 0; i < errs.n; i++)
		if (strstr(errs.msg[i], path) == NULL)
			abort();
	if (c != NULL)
		config_unref(c);
	config_errors_clear(&errs);
	return 0;
}
