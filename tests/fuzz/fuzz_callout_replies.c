/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the callout recipient check (rcpt/rcpt_callout.c)
 * against a mailbox server that answers with the input's bytes: its
 * greeting, EHLO, MAIL and RCPT replies, well-formed, broken or garbage,
 * cut into writes as the first byte says, then it hangs up (and hangs up
 * at once on any later connection).  Three
 * recipients are asked at once.  Checked besides "no crash, no leak":
 * each lookup is answered exactly once; an address is said to exist only
 * when the server said something starting with 2, and said not to exist
 * only when it said 550, 551 or 553 (anything else, a garbled reply or a
 * hang-up included, is a temporary failure: a broken mailbox server must
 * never turn into "user unknown", which the sender would take for good).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "config.h"
#include "fuzz_client.h"
#include "fuzz_files.h"
#include "fuzz_server.h"
#include "log.h"
#include "rcpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int lfd = -1;
static struct sockaddr_in laddr;
static struct mx_config *cfg;

#define N_ASK 3
static int answers[N_ASK], answered[N_ASK];

static void
init(void)
{
	log_set_sink(fuzz_log_sink, NULL);
	lfd = fuzz_listen(&laddr);
	char conf[512], path[128];
	snprintf(path, sizeof(path), "%s/mxguard.conf", fuzz_dir());
	int n = snprintf(conf, sizeof(conf),
	                 "listen = [\"127.0.0.1:2525\"]; domains = [\"example.test\"];\n"
	                 "recipients = { callout = { target = \"smtp:127.0.0.1:%d\"; };\n"
	                 "               timeout = \"1s\"; };\n"
	                 "downstream = \"smtp:127.0.0.1:1\";\n",
	                 ntohs(laddr.sin_port));
	fuzz_write(path, conf, (size_t)n);
	struct config_errors errs = {0};
	cfg = config_load(path, &errs);
	if (cfg == NULL)
		abort();
}

static void
on_answer(enum mx_lookup r, void *arg)
{
	size_t i = (size_t)(uintptr_t)arg;
	answers[i] = (int)r;
	answered[i]++;
}

/* Does some line of the server's bytes start with prefix? */
static bool
said(const char *p, size_t n, const char *prefix)
{
	size_t pl = strlen(prefix);
	for (size_t i = 0; i < n; i++)
		if ((i == 0 || p[i - 1] == '\n') && n - i >= pl && memcmp(p + i, prefix, pl) == 0)
			return true;
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (lfd < 0)
		init();
	if (size < 1)
		return 0;
	unsigned cut = data[0];
	const char *srv = (const char *)data + 1;
	size_t srv_n = size - 1;

	struct event_base *base = event_base_new();
	struct config_errors errs = {0};
	struct rcpt_map *m = rcpt_map_build(cfg, NULL, &errs);
	if (m == NULL)
		abort();
	static const char *const addrs[N_ASK] = {"<alice@example.test>", "<bob@example.test>",
	                                         "<carol@example.test>"};
	struct smtp_addr a[N_ASK];
	for (size_t i = 0; i < N_ASK; i++) {
		const char *rest;
		size_t rl;
		if (smtp_parse_path(addrs[i], strlen(addrs[i]), 0, &a[i], &rest, &rl) != SMTP_ADDR_OK)
			abort();
		answered[i] = 0;
		enum mx_lookup r = rcpt_lookup(m, base, &a[i], on_answer, (void *)(uintptr_t)i);
		if (r != MX_PENDING) {
			answers[i] = (int)r;
			answered[i]++;
		}
	}

	struct fuzz_server fs = {.lfd = lfd, .cfd = -1, .srv = srv, .n = srv_n, .cut = cut};
	/* the lookups' own timeout (1 s) ends any wait: 8 s is a hang */
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		bool all = true;
		for (size_t i = 0; i < N_ASK; i++)
			all = all && answered[i] > 0;
		if (all)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > 8)
			abort();
		event_base_loop(base, EVLOOP_NONBLOCK);
		fuzz_server_step(&fs);
	}
	/* and no second answer comes later */
	for (int k = 0; k < 20; k++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	bool any2 = said(srv, srv_n, "2");
	bool any55x = said(srv, srv_n, "550") || said(srv, srv_n, "551") || said(srv, srv_n, "553");
	for (size_t i = 0; i < N_ASK; i++) {
		if (getenv("FUZZ_DEBUG"))
			fprintf(stderr, "%s: %d (%d answers)\n", addrs[i], answers[i], answered[i]);
		if (answered[i] != 1)
			abort();
		if (answers[i] == MX_FOUND && !any2)
			abort();
		if (answers[i] == MX_NOTFOUND && !any55x)
			abort();
	}
	fuzz_server_end(&fs);
	rcpt_worker_end(base);
	rcpt_map_free(m);
	event_base_free(base);
	return 0;
}
