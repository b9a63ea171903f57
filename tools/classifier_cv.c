/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	classifier_cv - k-fold cross-validation of the classifier's recipe
 * SYNOPSIS
 *	classifier_cv [--mix R,T,H] [--folds K] [--fold-salt N] [--orders N]
 *	              [--ppm ORDER,BYTES | --nb MODEL,KIND,S[,DEV]] [--alphas A,...]
 *	              [--ppm-band LO,HI] SPAM_LIST HAM_LIST
 * DESCRIPTION
 *	Reads the messages named in the two lists (one path a line: the
 *	train part of the corpus split, never the test part), extracts their
 *	features as `learn` does, and for each fold trains the three models
 *	with classifier_train() on the other folds and scores the fold's
 *	messages. Prints, over all the folds pooled, the misordered ham/spam
 *	pairs (a tie counts a half), the ROC AUC, and the ham and spam on the
 *	wrong side of the tag threshold (score 3, z > 1.5).
 *
 *	The fold of a message is splitmix64(id ^ fold-salt) mod K. The
 *	training order depends on the examples' ids alone, so each of the
 *	--orders runs gives the training other ids (id ^ a constant per run)
 *	and the figures are averaged: one order's luck moves the misordered
 *	pairs by about 5 %, which is as much as many changes to the recipe.
 *	--mix weighs the models' log-odds (the recipe's is 0.2,0.4,0.4).
 *
 *	--ppm adds, as an experiment, a compression model of the decoded text
 *	(its first BYTES bytes): per class, a PPM-style character model of
 *	orders 0 to ORDER (Witten-Bell interpolation, counts in hash tables),
 *	scoring a message by the difference of its two code lengths per byte.
 *	It prints the ranking of that score alone, then the recipe's z plus
 *	alpha times it for each of --alphas (0.5,1,2,4), and on stderr the time
 *	it took to score a message. With --ppm-band, only messages whose z is
 *	within [LO, HI] get it.
 *
 *	--nb adds, the same way, a naive-Bayes view of model MODEL's feature
 *	sets (0 R, 1 T, 2 H), from document counts per class: KIND 0 sums the
 *	log-ratios (smoothing S) over sqrt(n); KIND 1 is bogofilter's method,
 *	Robinson's f(w) (strength S) of the features with |f - 0.5| >= DEV
 *	(0.1) combined by Fisher's chi-square.
 *
 *	docs/classifier.md says what was measured with it.
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "classifier.h"
#include "hash.h"
#include "mime.h"
#include "tokenize.h"

#define CV_MAX_MESSAGES 200000

/* --ppm: the compression model's order, prefix, and each message's text */
#define PPM_MAX_ORDER 8
#define PPM_BITS 24 /* slots per table: few collisions on the corpus */
static int ppm_order;
static size_t ppm_bytes = 10000;
struct cv_text {
	unsigned char *p;
	size_t n;
};
static struct cv_text *cv_texts;
static double ppm_lo = -1e300, ppm_hi = 1e300; /* --ppm-band: z where it is asked */

struct ppm {
	uint32_t *gram[PPM_MAX_ORDER + 1]; /* count of (context, byte) */
	uint32_t *seen[PPM_MAX_ORDER + 1]; /* count of the context */
	uint32_t *kinds[PPM_MAX_ORDER + 1]; /* distinct bytes after the context */
};

static void
ppm_clear(struct ppm *m)
{
	for (int k = 0; k <= ppm_order; k++) {
		uint32_t **t[3] = {&m->gram[k], &m->seen[k], &m->kinds[k]};
		for (int j = 0; j < 3; j++) {
			if (*t[j] == NULL && (*t[j] = malloc((size_t)4 << PPM_BITS)) == NULL)
				abort();
			memset(*t[j], 0, (size_t)4 << PPM_BITS);
		}
	}
}

static void
ppm_free(struct ppm *m)
{
	for (int k = 0; k <= PPM_MAX_ORDER; k++) {
		free(m->gram[k]);
		free(m->seen[k]);
		free(m->kinds[k]);
	}
}

static inline uint32_t
ppm_slot(uint64_t key)
{
	return (uint32_t)(mx_splitmix64(key) >> (64 - PPM_BITS));
}

/* log2 P(t) under m, each byte predicted from orders 0..ppm_order
 * interpolated (Witten-Bell: P_k = (c + u P_k-1) / (n + u)); with learn,
 * m counts t afterwards. */
static double
ppm_run(struct ppm *m, const unsigned char *t, size_t n, int learn)
{
	double bits = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t ctx = 0;
		double p = 1.0 / 256;
		for (int k = 0; k <= ppm_order && (size_t)k <= i; k++) {
			if (k > 0)
				ctx = ctx << 8 | t[i - (size_t)k];
			uint64_t key = ctx * 0x100000001b3ULL + (uint64_t)k * 0x9E3779B97F4A7C15ULL;
			uint32_t hx = ppm_slot(key);
			uint32_t hg = ppm_slot(key ^ ((uint64_t)t[i] + 1) * 0xC2B2AE3D27D4EB4FULL);
			double seen = m->seen[k][hx], kinds = m->kinds[k][hx];
			if (kinds < 1) /* a colliding slot */
				kinds = 1;
			if (seen > 0)
				p = (m->gram[k][hg] + kinds * p) / (seen + kinds);
			if (learn) {
				if (m->gram[k][hg]++ == 0)
					m->kinds[k][hx]++;
				m->seen[k][hx]++;
			}
		}
		bits += log2(p);
	}
	return bits;
}

/* --nb: a naive-Bayes view of one model's feature sets (document counts
 * per class).  kind 0: the sum of log-ratios (Bernoulli, present features
 * only) over sqrt(n); kind 1: Robinson's f(w) combined by Fisher's
 * chi-square (bogofilter's method) over features with |f - 0.5| > 0.1. */
static int nb_model = -1, nb_kind;
/* the weights the extra score is tried with (--alphas) */
#define CV_MAX_ALPHAS 16
static double alphas[CV_MAX_ALPHAS] = {0.5, 1, 2, 4};
static int n_alphas = 4;
static double nb_a = 1, nb_dev = 0.1;

static double
cv_chi2q(double x2, size_t v) /* Q(x2 | v), v even */
{
	double m = x2 / 2, sum, term;
	sum = term = exp(-m);
	for (size_t i = 1; i < v / 2; i++) {
		term *= m / (double)i;
		sum += term;
	}
	return sum < 1 ? sum : 1;
}

static void
nb_scores(const struct classifier_example *ex, const unsigned *fold, size_t n, unsigned folds, double *cz)
{
	uint32_t *cs = malloc(TOKENIZE_SPACE * 4), *ch = malloc(TOKENIZE_SPACE * 4);
	if (cs == NULL || ch == NULL)
		abort();
	for (unsigned f = 0; f < folds; f++) {
		memset(cs, 0, TOKENIZE_SPACE * 4);
		memset(ch, 0, TOKENIZE_SPACE * 4);
		double ns = 0, nh = 0;
		for (size_t i = 0; i < n; i++) {
			if (fold[i] == f)
				continue;
			uint32_t *c = ex[i].label ? cs : ch;
			*(ex[i].label ? &ns : &nh) += 1;
			for (uint32_t j = 0; j < ex[i].n[nb_model]; j++)
				c[ex[i].idx[nb_model][j]]++;
		}
		for (size_t i = 0; i < n; i++) {
			if (fold[i] != f)
				continue;
			const uint32_t *idx = ex[i].idx[nb_model];
			uint32_t m = ex[i].n[nb_model];
			if (nb_kind == 0) {
				double sum = 0;
				for (uint32_t j = 0; j < m; j++)
					sum += log((cs[idx[j]] + nb_a) / (ns + 2 * nb_a)) -
					       log((ch[idx[j]] + nb_a) / (nh + 2 * nb_a));
				cz[i] = m ? sum / sqrt((double)m) : 0;
			} else {
				double lnp = 0, lnq = 0;
				size_t k = 0;
				for (uint32_t j = 0; j < m; j++) {
					double bs = cs[idx[j]] / ns, bh = ch[idx[j]] / nh;
					double cnt = cs[idx[j]] + ch[idx[j]];
					if (cnt == 0)
						continue;
					double pw = bs / (bs + bh);
					double fw = (nb_a * 0.5 + cnt * pw) / (nb_a + cnt);
					if (fabs(fw - 0.5) < nb_dev)
						continue;
					lnp += log(1 - fw);
					lnq += log(fw);
					k++;
				}
				if (k == 0) {
					cz[i] = 0;
					continue;
				}
				double S = 1 - cv_chi2q(-2 * lnp, 2 * k), H = 1 - cv_chi2q(-2 * lnq, 2 * k);
				cz[i] = (S - H) / 2; /* -0.5 .. 0.5 */
			}
		}
	}
	free(cs);
	free(ch);
}

/* Each message's score, from models trained on the other folds. */
static void
ppm_scores(const struct classifier_example *ex, const unsigned *fold, size_t n, unsigned folds, double *cz)
{
	struct ppm ms = {0}, mh = {0};
	double us = 0;
	size_t scored = 0;
	for (unsigned f = 0; f < folds; f++) {
		ppm_clear(&ms);
		ppm_clear(&mh);
		for (size_t i = 0; i < n; i++)
			if (fold[i] != f)
				ppm_run(ex[i].label ? &ms : &mh, cv_texts[i].p, cv_texts[i].n, 1);
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (size_t i = 0; i < n; i++) {
			if (fold[i] != f)
				continue;
			const struct cv_text *t = &cv_texts[i];
			double s = ppm_run(&ms, t->p, t->n, 0), h = ppm_run(&mh, t->p, t->n, 0);
			cz[i] = t->n > 0 ? (s - h) / (double)t->n : 0;
			scored++;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		us += (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
	}
	fprintf(stderr, "ppm: %.0f us to score a message\n", us / (double)scored);
	ppm_free(&ms);
	ppm_free(&mh);
}

static int
cv_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Reads the messages of the list into ex[*n...], labelled. */
static int
cv_read(const char *list, int label, struct classifier_example *ex, uint64_t *ids, size_t *n)
{
	FILE *l = fopen(list, "r");
	if (l == NULL) {
		perror(list);
		return -1;
	}
	struct mime_limits lim;
	mime_limits_default(&lim);
	char path[4096];
	while (fgets(path, sizeof(path), l) != NULL && *n < CV_MAX_MESSAGES) {
		path[strcspn(path, "\n")] = '\0';
		if (path[0] == '\0')
			continue;
		FILE *f = fopen(path, "rb");
		if (f == NULL) {
			perror(path);
			continue;
		}
		size_t cap = 1 << 16, len = 0;
		char *buf = malloc(cap);
		for (size_t r; buf != NULL && (r = fread(buf + len, 1, cap - len, f)) > 0;) {
			len += r;
			if (len == cap)
				buf = realloc(buf, cap *= 2);
		}
		fclose(f);
		if (buf == NULL)
			return -1;
		struct mime_msg m;
		mime_analyse(buf, len, &lim, &m);
		struct tokenize_sets fs;
		tokenize_extract(&m, &fs);
		tokenize_sort(&fs);
		if (ppm_order > 0) {
			size_t tn = m.text.len < ppm_bytes ? m.text.len : ppm_bytes;
			cv_texts[*n].p = malloc(tn + 1);
			if (cv_texts[*n].p == NULL)
				return -1;
			memcpy(cv_texts[*n].p, m.text.data, tn);
			cv_texts[*n].n = tn;
		}
		struct classifier_example *e = &ex[*n];
		ids[*n] = tokenize_message_id(&m);
		e->label = label;
		for (int k = 0; k < TOKENIZE_MODELS; k++) {
			e->n[k] = (uint32_t)fs.set[k].n;
			e->idx[k] = fs.set[k].v; /* taken over */
			fs.set[k].v = NULL;
		}
		tokenize_clear(&fs);
		mime_msg_clear(&m);
		free(buf);
		(*n)++;
	}
	fclose(l);
	return 0;
}

/* The misordered ham/spam pairs of scores z (a tie counts a half), and the
 * ham over and spam under the tag threshold. hz is scratch for n. */
static double
cv_eval(const struct classifier_example *ex, const double *z, size_t n, double *hz, size_t *fp, size_t *fn)
{
	size_t nh = 0;
	*fp = *fn = 0;
	for (size_t i = 0; i < n; i++)
		if (!ex[i].label) {
			hz[nh++] = z[i];
			*fp += z[i] > 1.5;
		}
	qsort(hz, nh, sizeof(*hz), cv_cmp_double);
	double bad = 0;
	for (size_t i = 0; i < n; i++) {
		if (!ex[i].label)
			continue;
		*fn += z[i] <= 1.5;
		size_t lo = 0, hi = nh;
		while (lo < hi) { /* hams below this spam */
			size_t mid = (lo + hi) / 2;
			if (hz[mid] < z[i])
				lo = mid + 1;
			else
				hi = mid;
		}
		size_t eq = lo;
		while (eq < nh && hz[eq] == z[i])
			eq++;
		bad += (double)(nh - eq) + 0.5 * (double)(eq - lo);
	}
	return bad;
}

int
main(int argc, char **argv)
{
	double mix[TOKENIZE_MODELS] = {0.2, 0.4, 0.4};
	unsigned folds = 5, orders = 3;
	uint64_t salt = 0;
	int a = 1;
	for (; a + 1 < argc && strncmp(argv[a], "--", 2) == 0; a += 2) {
		if (strcmp(argv[a], "--mix") == 0 &&
		    sscanf(argv[a + 1], "%lf,%lf,%lf", &mix[0], &mix[1], &mix[2]) == 3)
			continue;
		if (strcmp(argv[a], "--folds") == 0 && (folds = (unsigned)atoi(argv[a + 1])) >= 2)
			continue;
		if (strcmp(argv[a], "--fold-salt") == 0) {
			salt = strtoull(argv[a + 1], NULL, 10);
			continue;
		}
		if (strcmp(argv[a], "--ppm") == 0 &&
		    sscanf(argv[a + 1], "%d,%zu", &ppm_order, &ppm_bytes) == 2 && ppm_order >= 1 &&
		    ppm_order <= PPM_MAX_ORDER)
			continue;
		if (strcmp(argv[a], "--ppm-band") == 0 &&
		    sscanf(argv[a + 1], "%lf,%lf", &ppm_lo, &ppm_hi) == 2)
			continue;
		if (strcmp(argv[a], "--alphas") == 0) {
			n_alphas = 0;
			for (char *t = strtok(argv[a + 1], ","); t != NULL && n_alphas < CV_MAX_ALPHAS;
			     t = strtok(NULL, ","))
				alphas[n_alphas++] = atof(t);
			continue;
		}
		if (strcmp(argv[a], "--nb") == 0 &&
		    sscanf(argv[a + 1], "%d,%d,%lf,%lf", &nb_model, &nb_kind, &nb_a, &nb_dev) >= 3)
			continue;
		if (strcmp(argv[a], "--orders") == 0 && (orders = (unsigned)atoi(argv[a + 1])) >= 1)
			continue;
		break;
	}
	if (argc - a != 2) {
		fprintf(stderr, "usage: classifier_cv [--mix R,T,H] [--folds K] [--fold-salt N] "
		                "[--orders N] [--ppm ORDER,BYTES | --nb MODEL,KIND,S[,DEV]] "
		                "[--alphas A,...] [--ppm-band LO,HI] SPAM_LIST HAM_LIST\n");
		return 2;
	}
	struct classifier_example *ex = calloc(CV_MAX_MESSAGES, sizeof(*ex));
	uint64_t *ids = calloc(CV_MAX_MESSAGES, sizeof(*ids));
	size_t n = 0;
	cv_texts = calloc(CV_MAX_MESSAGES, sizeof(*cv_texts));
	if (ex == NULL || cv_texts == NULL || ids == NULL || cv_read(argv[a], 1, ex, ids, &n) < 0 ||
	    cv_read(argv[a + 1], 0, ex, ids, &n) < 0)
		return 1;
	unsigned *fold = malloc(n * sizeof(*fold));
	struct classifier_example *train = malloc(n * sizeof(*train));
	float *w = malloc((size_t)TOKENIZE_MODELS * TOKENIZE_SPACE * sizeof(float));
	double *z = malloc(n * sizeof(*z)), *hz = malloc(n * sizeof(*hz));
	double *cz = calloc(n, sizeof(*cz)), *zz = malloc(n * sizeof(*zz));
	if (fold == NULL || train == NULL || w == NULL || z == NULL || hz == NULL || cz == NULL ||
	    zz == NULL)
		return 1;
	for (size_t i = 0; i < n; i++)
		fold[i] = (unsigned)(mx_splitmix64(ids[i] ^ salt) % folds);
	double sum_bad = 0, sum_fp = 0, sum_fn = 0;
	double a_bad[CV_MAX_ALPHAS] = {0}, a_fp[CV_MAX_ALPHAS] = {0}, a_fn[CV_MAX_ALPHAS] = {0};
	if (nb_model >= 0) {
		size_t fp, fn;
		nb_scores(ex, fold, n, folds, cz);
		printf("nb alone: misordered %.1f\n", cv_eval(ex, cz, n, hz, &fp, &fn));
		ppm_order = -1; /* the sums below */
	}
	if (ppm_order > 0) {
		size_t fp, fn;
		ppm_scores(ex, fold, n, folds, cz);
		double bad = cv_eval(ex, cz, n, hz, &fp, &fn);
		printf("ppm alone: misordered %.1f\n", bad);
	}
	for (unsigned o = 0; o < orders; o++) {
		uint64_t perturb = o ? mx_splitmix64(o) : 0;
		for (unsigned f = 0; f < folds; f++) {
			size_t nt = 0;
			for (size_t i = 0; i < n; i++)
				if (fold[i] != f) {
					train[nt] = ex[i];
					train[nt++].id = ids[i] ^ perturb;
				}
			memset(w, 0, (size_t)TOKENIZE_MODELS * TOKENIZE_SPACE * sizeof(float));
			classifier_train(train, nt, w);
			for (size_t i = 0; i < n; i++) {
				if (fold[i] != f)
					continue;
				z[i] = 0;
				for (int k = 0; k < TOKENIZE_MODELS; k++) {
					struct tokenize_set set = {ex[i].idx[k], ex[i].n[k], ex[i].n[k]};
					z[i] += mix[k] * classifier_dot(w + (size_t)k * TOKENIZE_SPACE, &set);
				}
			}
		}
		size_t nh = 0, ns = 0, fp, fn;
		for (size_t i = 0; i < n; i++)
			ex[i].label ? ns++ : nh++;
		double bad = cv_eval(ex, z, n, hz, &fp, &fn);
		for (int ai = 0; ppm_order != 0 && ai < n_alphas; ai++) {
			size_t fp2, fn2;
			size_t asked = 0;
			for (size_t i = 0; i < n; i++) {
				int in = z[i] >= ppm_lo && z[i] <= ppm_hi;
				zz[i] = z[i] + (in ? alphas[ai] * cz[i] : 0);
				asked += in;
			}
			if (ai == 0 && o == 0 && ppm_order > 0)
				printf("ppm asked for %zu of %zu messages\n", asked, n);
			a_bad[ai] += cv_eval(ex, zz, n, hz, &fp2, &fn2);
			a_fp[ai] += (double)fp2;
			a_fn[ai] += (double)fn2;
		}
		printf("order %u: misordered %.1f  AUC %.6f  ham over the tag threshold %zu  spam under it %zu\n", o,
		       bad, 1 - bad / ((double)ns * (double)nh), fp, fn);
		sum_bad += bad;
		sum_fp += (double)fp;
		sum_fn += (double)fn;
	}
	for (int ai = 0; ppm_order != 0 && ai < n_alphas; ai++)
		printf("plus %g x that: misordered %.1f  ham over %.1f  spam under %.1f\n", alphas[ai],
		       a_bad[ai] / orders, a_fp[ai] / orders, a_fn[ai] / orders);
	printf("mean of %u orders, %u folds, %zu messages: misordered %.1f  ham over %.1f  spam under %.1f\n",
	       orders, folds, n, sum_bad / orders, sum_fp / orders, sum_fn / orders);
	for (size_t i = 0; i < n; i++) {
		for (int k = 0; k < TOKENIZE_MODELS; k++)
			free(ex[i].idx[k]);
		free(cv_texts[i].p);
	}
	free(cv_texts);
	free(cz);
	free(zz);
	free(ex);
	free(ids);
	free(fold);
	free(train);
	free(w);
	free(z);
	free(hz);
	return 0;
}
