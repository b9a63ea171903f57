/* SPDX-License-Identifier: MIT */
/* placeholder until the learner is in */
#include "classifier.h"

#include <stdlib.h>

#include "xalloc.h"

struct classifier {
	struct store *st;
};
struct classifier_batch {
	struct classifier *c;
};

struct classifier *
classifier_open(struct store *st)
{
	struct classifier *c = xcalloc(1, sizeof(*c));
	c->st = st;
	return c;
}
void
classifier_close(struct classifier *c)
{
	free(c);
}
double
classifier_classify(struct classifier *c, const struct mime_msg *m)
{
	(void)c;
	(void)m;
	return -1;
}
struct classifier_batch *
classifier_batch_begin(struct classifier *c)
{
	struct classifier_batch *b = xcalloc(1, sizeof(*b));
	b->c = c;
	return b;
}
enum classifier_learn_rc
classifier_batch_add(struct classifier_batch *b, const struct mime_msg *m, enum classifier_label l)
{
	(void)b;
	(void)m;
	(void)l;
	return CLS_LEARNED;
}
int
classifier_batch_commit(struct classifier_batch *b)
{
	free(b);
	return 0;
}
void
classifier_batch_abort(struct classifier_batch *b)
{
	free(b);
}
int
classifier_stats(struct classifier *c, struct classifier_stats *out)
{
	(void)c;
	*out = (struct classifier_stats){0};
	return 0;
}
