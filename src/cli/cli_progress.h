/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	cli_progress - a progress bar on a terminal, nothing otherwise
 * DESCRIPTION
 *	Drawn on stderr only when stderr is a terminal, at most 10 times a
 *	second; cleared at the end.
 */
#ifndef MX_CLI_PROGRESS_H
#define MX_CLI_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cli_progress {
	bool on;
	const char *what;
	size_t total;
	uint64_t start_ms, last_ms;
};

/* Whether a bar would show (standard error is a terminal): counting the
 * input for its total is only worth it then. */
bool cli_progress_wanted(void);
void cli_progress_start(struct cli_progress *p, const char *what, size_t total);
void cli_progress_update(struct cli_progress *p, size_t done, size_t messages);
void cli_progress_end(struct cli_progress *p);

#endif
