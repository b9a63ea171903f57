/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a queue file and its state file, as a restart reads
 * them (spool_load).  Input: the .msg file, a line "%%", the .st file.
 * A loaded entry must be saved and read back to the same state: what the
 * queue knows about a message (delivered, failed, reported, why, held)
 * must survive any number of restarts unchanged.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_files.h"
#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ID "00000000000000f1"

static bool
same(const struct spool_entry *a, const struct spool_entry *b)
{
	if (a->n_rcpt != b->n_rcpt || a->attempts != b->attempts || a->next != b->next ||
	    a->hold != b->hold || strcmp(a->last, b->last) != 0 ||
	    memcmp(a->done, b->done, a->n_rcpt) != 0)
		return false;
	for (size_t i = 0; i < a->n_rcpt; i++) {
		/* the why of a failure is kept while it is not reported */
		const char *wa = a->why && a->done[i] == SPOOL_FAILED ? a->why[i] : NULL;
		const char *wb = b->why && b->done[i] == SPOOL_FAILED ? b->why[i] : NULL;
		if ((wa == NULL) != (wb == NULL) || (wa && strcmp(wa, wb) != 0))
			return false;
	}
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char dir[128];
	if (dir[0] == '\0') {
		char err[256];
		snprintf(dir, sizeof(dir), "%s/spool", fuzz_dir());
		if (spool_prepare(dir, err, sizeof(err)) != 0)
			abort();
	}
	const char *p = (const char *)data, *sep = NULL;
	for (size_t i = 0; i + 4 <= size; i++)
		if (memcmp(p + i, "\n%%\n", 4) == 0) {
			sep = p + i + 1;
			break;
		}
	char path[256];
	spool_msg_path(dir, ID, path, sizeof(path));
	fuzz_write(path, p, sep ? (size_t)(sep - p) : size);
	snprintf(path, sizeof(path), "%s/q/%s.st", dir, ID);
	if (sep != NULL)
		fuzz_write(path, sep + 3, size - (size_t)(sep + 3 - p));
	else
		unlink(path);

	struct spool_entry a, b;
	if (spool_load(dir, ID, &a) == 0) {
		if (a.n_rcpt == 0 || a.from == NULL || strcmp(a.id, ID) != 0)
			abort();
		if (spool_save_state(dir, &a, false) != 0 || spool_load(dir, ID, &b) != 0 || !same(&a, &b))
			abort();
		spool_entry_clear(&b);
		spool_entry_clear(&a);
	}
	spool_remove(dir, ID);
	return 0;
}
