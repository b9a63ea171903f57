/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a file as `scan` and `learn` read it (cli_input: a
 * message, or an mbox split at its separator lines).  Checked besides "no
 * crash, no leak": the messages are the file cut in pieces, in order,
 * nothing lost or added; every piece after the first starts with a
 * separator line "From "; the names are PATH, or PATH:1, PATH:2, ...; and
 * a file that does not start like a message gives no message at all.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_input.h"
#include "fuzz_files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_mbox_seen {
	const char *path;
	const uint8_t *data;
	size_t size, at, n;
};

static int
fuzz_mbox_one(const char *name, const char *d, size_t len, void *arg)
{
	struct fuzz_mbox_seen *s = arg;
	if (len > s->size - s->at || memcmp(d, s->data + s->at, len) != 0)
		abort(); /* not the next piece of the file */
	if (s->n > 0 && (len < 5 || memcmp(d, "From ", 5) != 0))
		abort();
	char want[4200];
	snprintf(want, sizeof(want), "%s:%zu", s->path, s->n + 1);
	if (strcmp(name, s->path) != 0 && strcmp(name, want) != 0)
		abort();
	free(cli_input_take(d, len)); /* as learn does with a whole-file message */
	s->at += len;
	s->n++;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/m", fuzz_dir());
	fuzz_write(path, data, size);
	struct fuzz_mbox_seen s = {.path = path, .data = data, .size = size};
	size_t done = 0, skipped = 0;
	char *paths[] = {path};
	if (cli_input_walk(paths, 1, fuzz_mbox_one, &s, &done, &skipped) != 0)
		abort();
	if (done != 1 || (skipped == 0 && s.at != size) || (skipped == 1 && s.n != 0))
		abort();
	return 0;
}
