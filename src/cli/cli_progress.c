/* SPDX-License-Identifier: MIT */
#include "cli_progress.h"

#include <stdio.h>
#include <unistd.h>

#include "clock.h"

bool
cli_progress_wanted(void)
{
	return isatty(2);
}

void
cli_progress_start(struct cli_progress *p, const char *what, size_t total)
{
	p->on = isatty(2) && total > 0;
	p->what = what;
	p->total = total;
	p->start_ms = p->last_ms = mx_clock_mono_ms();
}

void
cli_progress_update(struct cli_progress *p, size_t done, size_t messages)
{
	if (!p->on)
		return;
	uint64_t now = mx_clock_mono_ms();
	if (now - p->last_ms < 100 && done < p->total)
		return;
	p->last_ms = now;
	double frac = p->total ? (double)done / (double)p->total : 1;
	if (frac > 1)
		frac = 1;
	int width = 30, fill = (int)(frac * width);
	char bar[64];
	for (int i = 0; i < width; i++)
		bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
	bar[width] = '\0';
	double secs = (double)(now - p->start_ms) / 1000.0;
	fprintf(stderr, "\r%s [%s] %3d%% %zu/%zu files, %zu messages, %.0f msg/s ", p->what, bar,
	        (int)(frac * 100), done, p->total, messages, secs > 0 ? (double)messages / secs : 0.0);
	fflush(stderr);
}

void
cli_progress_end(struct cli_progress *p)
{
	if (p->on)
		fprintf(stderr, "\r\033[K");
}
