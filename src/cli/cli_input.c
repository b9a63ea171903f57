/* SPDX-License-Identifier: MIT */
#include "cli_input.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "str.h"
#include "strmap.h"
#include "xalloc.h"

#define CLI_STDIN_MAX (1LL << 30)
#define CLI_READ_MAX (4u << 20) /* larger files are memory-mapped */
#define CLI_MAX_DEPTH 32        /* folders below a path named */

/* The buffer the walk read the current file into, while its callback
 * runs (the walk runs on one thread); cli_input_take() hands it over. */
static char *cli_read_buf;
static size_t cli_read_len;

char *
cli_input_take(const char *data, size_t len)
{
	char *b = cli_read_buf;
	if (b == NULL || b != data || len != cli_read_len)
		return NULL; /* not a buffer read, or one message of an mbox */
	cli_read_buf = NULL;
	return b;
}

/* A message starts with "From " (mbox) or with a header line "Name:". */
static bool
cli_looks_like_message(const char *d, size_t n)
{
	if (n >= 5 && memcmp(d, "From ", 5) == 0)
		return true;
	size_t i = 0;
	while (i < n && i < 200 && d[i] != ':') {
		char c = d[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
		i++;
	}
	return i > 0 && i < n && d[i] == ':';
}

/* Whether a word of 3 letters at p[i] (followed by a space, a comma or
 * the end) is one of list (3 letters each, one string). */
static bool
cli_word_in(const char *p, size_t i, size_t len, const char *list)
{
	if (i + 3 > len || (i + 3 < len && p[i + 3] != ' ' && p[i + 3] != ',') || (i > 0 && p[i - 1] != ' '))
		return false;
	for (const char *l = list; *l; l += 3)
		if (memcmp(p + i, l, 3) == 0)
			return true;
	return false;
}

/* Whether the line at p (n bytes to the end of the data) is an mbox
 * separator: "From ", a sender, then a date with a weekday, a month and a
 * time hh:mm, as in "From alice@example.test  Thu Aug 22 14:44:07 2002".
 * A body line that starts "From the desk of ..." or "From now on, at
 * 10:30" and was not escaped (an mboxcl2 file, a careless writer) does not
 * split the message (the time alone used to be enough). */
static bool
cli_is_from_line(const char *p, size_t n)
{
	const char *nl = memchr(p, '\n', n < 1001 ? n : 1001);
	size_t len = nl ? (size_t)(nl - p) : n;
	size_t i = 5;
	if (len > 1000 || i >= len || p[i] == ' ' || p[i] == '\t')
		return false;
	while (i < len && p[i] != ' ' && p[i] != '\t') /* the sender */
		i++;
	bool wday = false, month = false;
	for (; i + 5 <= len; i++) {
		wday = wday || cli_word_in(p, i, len, "MonTueWedThuFriSatSun");
		month = month || (wday && cli_word_in(p, i, len, "JanFebMarAprMayJunJulAugSepOctNovDec"));
		if (month && p[i] >= '0' && p[i] <= '9' && p[i + 1] >= '0' && p[i + 1] <= '9' && p[i + 2] == ':' &&
		    p[i + 3] >= '0' && p[i + 3] <= '9' && p[i + 4] >= '0' && p[i + 4] <= '9')
			return true;
	}
	return false;
}

/* Splits an mbox at its separator lines (cli_is_from_line); a single
 * message (even with a "From " line) is one. */
static int
cli_split(const char *name, const char *d, size_t n, cli_msg_cb cb, void *arg)
{
	if (n < 5 || memcmp(d, "From ", 5) != 0)
		return cb(name, d, n, arg);
	size_t start = 0, k = 1;
	const char *p = d;
	for (;;) {
		const char *next = NULL;
		const char *q = p + 1;
		while ((q = mx_memmem2(q, (size_t)(d + n - q), "\nFrom ", 6)) != NULL) {
			if (cli_is_from_line(q + 1, (size_t)(d + n - q - 1))) {
				next = q + 1;
				break;
			}
			q++;
		}
		size_t end = next ? (size_t)(next - d) : n;
		if (next == NULL && k == 1)
			return cb(name, d + start, end - start, arg);
		char label[4200];
		snprintf(label, sizeof(label), "%s:%zu", name, k++);
		int rc = cb(label, d + start, end - start, arg);
		if (rc != 0 || next == NULL)
			return rc;
		start = end;
		p = next;
	}
}

/* Reads the regular file open on fd (and closes it). */
static int
cli_file(const char *path, int fd, const struct stat *sp, cli_msg_cb cb, void *arg, size_t *done,
         size_t *skipped)
{
	struct stat st = *sp;
	(*done)++;
	if (st.st_size == 0) {
		close(fd);
		(*skipped)++;
		return 0;
	}
	/* small files are read (mapping and unmapping each one costs more,
	 * and with worker threads every unmap interrupts all CPUs) */
	size_t size = (size_t)st.st_size;
	bool mapped = size > CLI_READ_MAX;
	void *m;
	if (mapped) {
		m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	} else {
		m = xmalloc(size);
		size_t got = 0;
		while (got < size) {
			ssize_t r = read(fd, (char *)m + got, size - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		size = got;
	}
	close(fd);
	if (m == MAP_FAILED || size == 0) {
		fprintf(stderr, "mxguard: %s: %s\n", path, size == 0 ? "could not be read" : strerror(errno));
		if (!mapped)
			free(m);
		return -1;
	}
	int rc = 0;
	if (!cli_looks_like_message(m, size)) {
		fprintf(stderr, "mxguard: %s: not a message, skipped\n", path);
		(*skipped)++;
	} else {
		cli_read_buf = mapped ? NULL : m;
		cli_read_len = size;
		rc = cli_split(path, m, size, cb, arg);
		if (!mapped && cli_read_buf == NULL)
			m = NULL; /* taken by the callback */
		cli_read_buf = NULL;
	}
	if (mapped)
		munmap(m, size);
	else
		free(m);
	return rc;
}

static int
cli_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists a folder's entries (sorted, hidden skipped). */
static char **
cli_list_dir(const char *path, size_t *n)
{
	DIR *d = opendir(path);
	*n = 0;
	if (d == NULL)
		return NULL;
	char **v = NULL;
	size_t cap = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		v = xgrow(v, &cap, *n + 1, sizeof(char *));
		v[(*n)++] = xasprintf("%s/%s", path, e->d_name);
	}
	closedir(d);
	if (*n)
		qsort(v, *n, sizeof(char *), cli_cmp);
	return v;
}

/* One walk: the callback, the counts, and the folders entered so far (by
 * device and inode), so that a symbolic link back up the tree, or two
 * links to one folder, cannot make the walk loop or multiply: every
 * folder is walked once, as `find -L` does. */
struct cli_walk {
	cli_msg_cb cb;
	void *arg;
	size_t *done, *skipped;
	struct strmap *seen;
};

/* Marks the folder st as entered; false when it was already. */
static bool
cli_mark_folder(struct strmap *seen, const struct stat *st)
{
	struct {
		dev_t dev;
		ino_t ino;
	} key;
	memset(&key, 0, sizeof(key)); /* no padding bytes of chance in the key */
	key.dev = st->st_dev;
	key.ino = st->st_ino;
	if (strmap_get(seen, (const char *)&key, sizeof(key), NULL))
		return false;
	strmap_put(seen, (const char *)&key, sizeof(key), NULL);
	return true;
}

static int cli_path(struct cli_walk *w, const char *p, int depth);

static int
cli_dir(struct cli_walk *w, const char *path, int depth)
{
	size_t n;
	char **v = cli_list_dir(path, &n);
	int rc = 0;
	bool failed = false; /* a file that could not be read: said, and the exit code says so */
	for (size_t i = 0; i < n; i++) {
		if (rc == 0) {
			int r = cli_path(w, v[i], depth + 1);
			if (r > 0)
				rc = r;
			else if (r < 0)
				failed = true;
		}
		free(v[i]);
	}
	free(v);
	return rc > 0 ? rc : failed ? -1 : 0;
}

static int
cli_path(struct cli_walk *w, const char *p, int depth)
{
	/* opened first and asked what it is: one path lookup, not two
	 * (O_NONBLOCK: a FIFO or device named by mistake must not hang) */
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "mxguard: %s: %s\n", p, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (S_ISREG(st.st_mode))
		return cli_file(p, fd, &st, w->cb, w->arg, w->done, w->skipped);
	close(fd);
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "mxguard: %s: not a file or a folder, skipped\n", p);
		(*w->skipped)++;
		return 0;
	}
	if (depth > CLI_MAX_DEPTH) {
		fprintf(stderr, "mxguard: %s: more than %d folders deep, skipped\n", p, CLI_MAX_DEPTH);
		return 0;
	}
	if (!cli_mark_folder(w->seen, &st)) {
		fprintf(stderr, "mxguard: %s: walked already under another name (a link), skipped\n", p);
		return 0;
	}
	return cli_dir(w, p, depth);
}

static int
cli_stdin(cli_msg_cb cb, void *arg, size_t *done)
{
	size_t cap = 1 << 16, len = 0;
	char *b = xmalloc(cap);
	for (;;) {
		if (len == cap) {
			if ((long long)cap * 2 > CLI_STDIN_MAX) {
				fprintf(stderr, "mxguard: standard input over 1 GiB\n");
				free(b);
				return -1;
			}
			cap *= 2;
			b = xrealloc(b, cap);
		}
		ssize_t r = read(0, b + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) { /* not an end of input */
			fprintf(stderr, "mxguard: standard input: %s\n", strerror(errno));
			free(b);
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	(*done)++;
	int rc = cli_split("-", b, len, cb, arg);
	free(b);
	return rc;
}

static size_t
cli_count_path(struct strmap *seen, const char *p, int depth)
{
	struct stat st;
	if (stat(p, &st) < 0)
		return 0;
	if (S_ISREG(st.st_mode))
		return 1;
	if (!S_ISDIR(st.st_mode) || depth > CLI_MAX_DEPTH)
		return 0;
	if (!cli_mark_folder(seen, &st))
		return 0;
	size_t n, total = 0;
	char **v = cli_list_dir(p, &n);
	for (size_t i = 0; i < n; i++) {
		total += cli_count_path(seen, v[i], depth + 1);
		free(v[i]);
	}
	free(v);
	return total;
}

size_t
cli_input_count(char **paths, int n)
{
	struct strmap *seen = strmap_new();
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += strcmp(paths[i], "-") == 0 ? 1 : cli_count_path(seen, paths[i], 0);
	strmap_free(seen);
	return total;
}

int
cli_input_walk(char **paths, int n, cli_msg_cb cb, void *arg, size_t *done, size_t *skipped)
{
	struct cli_walk w = {.cb = cb, .arg = arg, .done = done, .skipped = skipped, .seen = strmap_new()};
	int rc = 0;
	for (int i = 0; i < n; i++) {
		int r = strcmp(paths[i], "-") == 0 ? cli_stdin(cb, arg, done) : cli_path(&w, paths[i], 0);
		if (r < 0)
			rc = -1;
		else if (r > 0)
			break;
	}
	strmap_free(w.seen);
	return rc;
}

int
cli_input_files_from(const char *file, char ***paths, size_t *n, size_t *cap)
{
	FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	if (f == NULL) {
		fprintf(stderr, "mxguard: %s: %s\n", file, strerror(errno));
		return -1;
	}
	char line[PATH_MAX + 1];
	bool too_long, nul;
	for (int lineno = 1; fsutil_read_line(f, line, PATH_MAX, &too_long, &nul); lineno++) {
		if (too_long || nul) { /* no path: skipped whole, never read in pieces */
			fprintf(stderr, "mxguard: %s:%d: %s; skipped\n", file, lineno,
			        nul ? "NUL byte" : "longer than a path can be");
			continue;
		}
		line[strcspn(line, "\r")] = '\0';
		if (line[0] == '\0')
			continue;
		*paths = xgrow(*paths, cap, *n + 1, sizeof(char *));
		(*paths)[(*n)++] = xstrdup(line);
	}
	if (f != stdin)
		fclose(f);
	return 0;
}
