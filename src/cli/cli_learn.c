/* SPDX-License-Identifier: MIT */
/*
 * mxguard learn --spam|--ham|--forget [-c FILE] PATH...
 * Adds the messages to the classifier's examples (a message learned twice
 * counts once; learning it with the other label corrects it; --forget
 * removes it), then retrains the model, all in one store transaction.
 * Messages are analysed by one worker thread per CPU (up to LEARN_WORKERS);
 * the walk over the inputs feeds them through a bounded queue.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_common.h"
#include "cli_input.h"
#include "cli_progress.h"
#include "clock.h"
#include "log.h"
#include "mime.h"
#include "xalloc.h"

#define LEARN_WORKERS 8
#define LEARN_QUEUE 16       /* batches waiting for a worker */
#define LEARN_BATCH 32       /* messages handed over at once ... */
#define LEARN_BATCH_BYTES (1u << 20) /* ... or this many bytes */

struct learn_msg {
	char *name, *data;
	size_t len;
};

struct learn_batch {
	struct learn_msg m[LEARN_BATCH];
	size_t n, bytes;
};

struct learn_run {
	struct classifier_batch *b;
	enum classifier_label label;
	struct mime_limits lim;
	size_t counts[CLASSIFIER_ERROR + 1];
	size_t messages;
	struct cli_progress prog;
	size_t *files_done;
	/* the worker pool; nworkers 0: everything on the calling thread */
	int nworkers;
	pthread_t workers[LEARN_WORKERS];
	pthread_mutex_t mu;
	pthread_cond_t more, room;
	struct learn_batch *q[LEARN_QUEUE];
	size_t head, queued;
	bool closed;
	struct learn_batch *filling; /* the walker's batch */
};

/* Learns one message; the result goes into counts (not locked). */
static void
learn_message(struct learn_run *r, const char *name, const char *data, size_t len,
              size_t counts[CLASSIFIER_ERROR + 1])
{
	struct mime_msg m;
	mime_analyse(data, len, &r->lim, &m);
	enum classifier_learn_rc rc = classifier_batch_add(r->b, &m, r->label);
	mime_msg_clear(&m);
	counts[rc]++;
	if (rc == CLASSIFIER_ERROR)
		fprintf(stderr, "mxguard: %s: could not be learned\n", name);
}

static void
learn_account(struct learn_run *r, const size_t counts[CLASSIFIER_ERROR + 1])
{
	for (int i = 0; i <= CLASSIFIER_ERROR; i++) {
		r->counts[i] += counts[i];
		r->messages += counts[i];
	}
	cli_progress_update(&r->prog, *r->files_done, r->messages);
}

static void *
learn_worker(void *arg)
{
	struct learn_run *r = arg;
	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (r->queued == 0 && !r->closed)
			pthread_cond_wait(&r->more, &r->mu);
		if (r->queued == 0)
			break;
		struct learn_batch *lb = r->q[r->head];
		r->head = (r->head + 1) % LEARN_QUEUE;
		r->queued--;
		pthread_cond_signal(&r->room);
		pthread_mutex_unlock(&r->mu);
		size_t counts[CLASSIFIER_ERROR + 1] = {0};
		for (size_t i = 0; i < lb->n; i++) {
			learn_message(r, lb->m[i].name, lb->m[i].data, lb->m[i].len, counts);
			free(lb->m[i].name);
			free(lb->m[i].data);
		}
		free(lb);
		pthread_mutex_lock(&r->mu);
		learn_account(r, counts);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static void
learn_hand_over(struct learn_run *r)
{
	struct learn_batch *lb = r->filling;
	r->filling = NULL;
	if (lb == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	while (r->queued == LEARN_QUEUE)
		pthread_cond_wait(&r->room, &r->mu);
	r->q[(r->head + r->queued) % LEARN_QUEUE] = lb;
	r->queued++;
	pthread_cond_signal(&r->more);
	pthread_mutex_unlock(&r->mu);
}

static int
learn_one(const char *name, const char *data, size_t len, void *arg)
{
	struct learn_run *r = arg;
	if (r->nworkers == 0) {
		size_t counts[CLASSIFIER_ERROR + 1] = {0};
		learn_message(r, name, data, len, counts);
		learn_account(r, counts);
		return 0;
	}
	/* the input is mapped or buffered only for this call: take the
	 * buffer of a file read whole, copy anything else */
	if (r->filling == NULL)
		r->filling = xcalloc(1, sizeof(*r->filling));
	struct learn_batch *lb = r->filling;
	lb->m[lb->n].name = xstrdup(name);
	lb->m[lb->n].data = cli_input_take(data, len);
	if (lb->m[lb->n].data == NULL) {
		lb->m[lb->n].data = xmalloc(len ? len : 1);
		memcpy(lb->m[lb->n].data, data, len);
	}
	lb->m[lb->n].len = len;
	lb->n++;
	lb->bytes += len;
	if (lb->n == LEARN_BATCH || lb->bytes >= LEARN_BATCH_BYTES)
		learn_hand_over(r);
	return 0;
}

static void
learn_pool_start(struct learn_run *r)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int want = ncpu > LEARN_WORKERS ? LEARN_WORKERS : (int)ncpu;
	if (want < 2)
		return;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->more, NULL);
	pthread_cond_init(&r->room, NULL);
	for (int i = 0; i < want; i++) {
		if (pthread_create(&r->workers[i], NULL, learn_worker, r) != 0)
			break;
		r->nworkers++;
	}
	if (r->nworkers == 0) {
		pthread_mutex_destroy(&r->mu);
		pthread_cond_destroy(&r->more);
		pthread_cond_destroy(&r->room);
	}
}

static void
learn_pool_stop(struct learn_run *r)
{
	if (r->nworkers == 0)
		return;
	learn_hand_over(r);
	pthread_mutex_lock(&r->mu);
	r->closed = true;
	pthread_cond_broadcast(&r->more);
	pthread_mutex_unlock(&r->mu);
	for (int i = 0; i < r->nworkers; i++)
		pthread_join(r->workers[i], NULL);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->more);
	pthread_cond_destroy(&r->room);
}

int
cli_learn(int argc, char **argv)
{
	static const struct option opts[] = {
		{"spam", no_argument, NULL, 's'},  {"ham", no_argument, NULL, 'H'},
		{"forget", no_argument, NULL, 'f'}, {"config", required_argument, NULL, 'c'},
		{"files-from", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},  {NULL, 0, NULL, 0},
	};
	const char *config = NULL;
	int label = -1, c;
	char **paths = NULL;
	size_t npaths = 0, cap = 0;
	const char *usage = "usage: mxguard learn --spam|--ham|--forget [-c FILE] [-T LIST] PATH...\n";
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:T:h", opts, NULL)) != -1) {
		switch (c) {
		case 'T':
			if (cli_input_files_from(optarg, &paths, &npaths, &cap) < 0)
				return 1;
			break;
		case 's': label = label < 0 ? CLASSIFIER_SPAM : 99; break;
		case 'H': label = label < 0 ? CLASSIFIER_HAM : 99; break;
		case 'f': label = label < 0 ? CLASSIFIER_FORGET : 99; break;
		case 'c': config = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	for (int i = optind; i < argc; i++) {
		paths = xgrow(paths, &cap, npaths + 1, sizeof(char *));
		paths[npaths++] = xstrdup(argv[i]);
	}
	if (label < 0 || label == 99 || npaths == 0) {
		fputs(label == 99 ? "mxguard learn: give one of --spam, --ham, --forget\n" : usage, stderr);
		return 2;
	}
	struct cli_env env;
	if (cli_env_open(&env, config, false, false) < 0)
		return 1;
	struct learn_run r = {.label = (enum classifier_label)label};
	mime_limits_default(&r.lim);
	r.lim.max_bytes = (size_t)env.cfg->scan_limit;
	size_t done = 0, skipped = 0;
	r.files_done = &done;
	uint64_t t0 = mx_clock_mono_ms();
	r.b = classifier_batch_begin(env.cls);
	if (r.b == NULL) {
		fprintf(stderr, "mxguard learn: the store is not writable\n");
		cli_env_close(&env);
		return 1;
	}
	cli_progress_start(&r.prog, "learn", cli_progress_wanted() ? cli_input_count(paths, (int)npaths) : 0);
	/* per-message buffers come and go: keep them in the heap rather than
	 * mapping and unmapping them (each unmap stops every worker's CPU).
	 * For glibc's malloc, in a build without mimalloc (MX_MIMALLOC=OFF,
	 * the sanitizer builds); mimalloc keeps its pages by itself */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	mallopt(M_TOP_PAD, 16 << 20);
	learn_pool_start(&r);
	int rc = cli_input_walk(paths, (int)npaths, learn_one, &r, &done, &skipped);
	learn_pool_stop(&r);
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	cli_progress_end(&r.prog);
	/* on a terminal, say what the classifier does that takes a while
	 * (waiting for another learn's training, removing old examples) */
	if (cli_progress_wanted() && log_get_level() > LOG_LVL_INFO)
		log_set_level(LOG_LVL_INFO);
	if (classifier_batch_commit(r.b) < 0) {
		fprintf(stderr, "mxguard learn: could not write the store\n");
		cli_env_close(&env);
		return 1;
	}
	struct classifier_stats st;
	classifier_stats(env.cls, &st);
	double secs = (double)(mx_clock_mono_ms() - t0) / 1000.0;
	double rate = secs > 0 ? (double)r.messages / secs : 0.0;
	char model[160];
	if (st.trained)
		snprintf(model, sizeof(model), "model: %llu spam, %llu ham, trained in %.2f s",
		         (unsigned long long)st.spam, (unsigned long long)st.ham, st.train_seconds);
	else
		snprintf(model, sizeof(model), "no model yet: %llu spam, %llu ham learned, %u of each needed",
		         (unsigned long long)st.stored_spam, (unsigned long long)st.stored_ham,
		         classifier_min_each);
	printf("learned %zu, already known %zu, corrected %zu, forgotten %zu, not known %zu, "
	       "failed %zu, skipped %zu; %s (%.2f s, %.*f msg/s in all)\n",
	       r.counts[CLASSIFIER_LEARNED], r.counts[CLASSIFIER_DUPLICATE], r.counts[CLASSIFIER_RELABELED],
	       r.counts[CLASSIFIER_FORGOTTEN], r.counts[CLASSIFIER_UNKNOWN], r.counts[CLASSIFIER_ERROR], skipped,
	       model, secs, rate < 10 ? 1 : 0, rate);
	bool out_failed = fflush(stdout) != 0 || ferror(stdout);
	if (out_failed)
		fprintf(stderr, "mxguard learn: cannot write the output: %s\n", strerror(errno));
	cli_env_close(&env);
	return rc < 0 || r.counts[CLASSIFIER_ERROR] || out_failed ? 1 : 0;
}
