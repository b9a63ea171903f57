/* SPDX-License-Identifier: MIT */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "blob.h"
#include "fsutil.h"
#include "str.h"
#include "xalloc.h"

#define SPOOL_MAGIC "mxguard-queue 1\n"
#define SPOOL_HDR_MAX (8 << 20) /* envelope block, recipients included */

int
spool_prepare(const char *dir, char *err, size_t errlen)
{
	char p[4200];
	const char *sub[] = {"", "/q", "/tmp"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", dir, sub[i]);
		if (fsutil_mkdirs(p, 0750, err, errlen) < 0)
			return -1;
	}
	snprintf(p, sizeof(p), "%s/q", dir);
	if (access(p, W_OK | X_OK) < 0) {
		snprintf(err, errlen, "%s is not writable: %s", p, strerror(errno));
		return -1;
	}
	/* debris of a crash before 250: never acknowledged, safe to drop */
	snprintf(p, sizeof(p), "%s/tmp", dir);
	DIR *d = opendir(p);
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			char f[4500];
			snprintf(f, sizeof(f), "%s/%s", p, e->d_name);
			unlink(f);
		}
		closedir(d);
	}
	/* state files of no message (a crash between a delete's two unlinks)
	 * and half-written ones (a crash before a state's rename: the older
	 * state stands): never read, so removed here rather than kept */
	snprintf(p, sizeof(p), "%s/q", dir);
	d = opendir(p);
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			size_t l = strlen(e->d_name);
			bool torn = l > 7 && strcmp(e->d_name + l - 7, ".st.new") == 0;
			bool state = l > 3 && strcmp(e->d_name + l - 3, ".st") == 0;
			if (e->d_name[0] == '.' || (!torn && !state))
				continue;
			char f[4500], m[4500];
			snprintf(f, sizeof(f), "%s/%s", p, e->d_name);
			snprintf(m, sizeof(m), "%s/%.*s.msg", p, (int)(l - (torn ? 7 : 3)), e->d_name);
			if (torn || access(m, F_OK) < 0)
				unlink(f);
		}
		closedir(d);
	}
	return 0;
}

void
spool_msg_path(const char *dir, const char *id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/q/%s.msg", dir, id);
}

static int
spool_write_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) { /* no progress and no error: do not spin */
			errno = EIO;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int
spool_write(const char *dir, const struct envelope *env, enum spool_route route, bool nodsn)
{
	char tmp[4200], final[4200], qdir[4200];
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, env->id);
	spool_msg_path(dir, env->id, final, sizeof(final));
	snprintf(qdir, sizeof(qdir), "%s/q", dir);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	/* the envelope block */
	char *hdr = NULL;
	size_t hlen = 0;
	FILE *m = open_memstream(&hdr, &hlen);
	if (m == NULL) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	fprintf(m, SPOOL_MAGIC "id %s\narrival %lld\nfrom %s\n", env->id, (long long)env->arrival,
	        env->mail_from);
	for (size_t i = 0; i < env->n_rcpt; i++)
		fprintf(m, "rcpt %s\n", env->rcpt[i].addr);
	if (env->params.smtputf8) /* the client said SMTPUTF8: so will the delivery */
		fputs("smtputf8\n", m);
	fprintf(m, "route %s\n%s\n", route == SPOOL_ROUTE_BOUNCE ? "bounce" : "downstream",
	        nodsn ? "nodsn" : "dsn");
	int rc = fclose(m) == 0 && hdr != NULL && hlen > 0 ? spool_write_all(fd, hdr, hlen) : -1;
	free(hdr);
	if (rc == 0 && env->received)
		rc = spool_write_all(fd, env->received, strlen(env->received));
	if (rc == 0 && env->headers)
		rc = spool_write_all(fd, env->headers, env->headers_len);
	if (rc == 0 && env->body) {
		char buf[65536];
		size_t off = env->body_skip, end = blob_len(env->body);
		while (off < end) {
			ssize_t r = blob_read(env->body, off, buf, sizeof(buf));
			if (r <= 0) { /* 0: the body's temporary file ends early */
				if (r == 0)
					errno = EIO;
				rc = -1;
				break;
			}
			if (spool_write_all(fd, buf, (size_t)r) < 0) {
				rc = -1;
				break;
			}
			off += (size_t)r;
		}
	}
	if (rc == 0)
		rc = fdatasync(fd);
	int e = errno;
	if (close(fd) < 0 && rc == 0) {
		rc = -1;
		e = errno;
	}
	if (rc == 0 && rename(tmp, final) < 0) {
		rc = -1;
		e = errno;
	}
	if (rc == 0 && fsutil_fsync_dir(qdir) < 0) {
		/* the rename may not be durable: take the message back */
		e = errno;
		unlink(final);
		rc = -1;
	}
	if (rc < 0) {
		unlink(tmp);
		errno = e;
	}
	return rc;
}

void
spool_entry_clear(struct spool_entry *e)
{
	free(e->from);
	for (size_t i = 0; i < e->n_rcpt; i++)
		free(e->rcpt[i]);
	free(e->rcpt);
	free(e->done);
	for (size_t i = 0; e->why != NULL && i < e->n_rcpt; i++)
		free(e->why[i]);
	free(e->why);
	memset(e, 0, sizeof(*e));
}

/* The permanent enhanced status an SMTP reply carries ("550 5.1.1 ..."),
 * into out (16 bytes); false if it has none (a 4.x.x one, the last try
 * of a recipient that expired, is not a failure's status). */
static bool
spool_reply_status(const char *reply, char out[16])
{
	const char *sp = strchr(reply, ' ');
	size_t sl = sp ? strspn(sp + 1, "0123456789.") : 0;
	if (sp == NULL || sl < 5 || sl >= 16 || sp[1] != '5' || sp[2] != '.')
		return false;
	mx_strlcpyn(out, sp + 1, sl, 16);
	return true;
}

void
spool_set_why(struct spool_entry *e, size_t i, const char *diagnostic, const char *dflt)
{
	if (i >= e->n_rcpt)
		return;
	if (e->why == NULL)
		e->why = xcalloc(e->n_rcpt, sizeof(char *));
	char status[16];
	if (!spool_reply_status(diagnostic, status))
		mx_strlcpy(status, dflt, sizeof(status));
	char buf[400];
	snprintf(buf, sizeof(buf), "%s %s", status, diagnostic);
	for (char *c = buf; *c; c++) /* one line in the state file */
		if (*c == '\r' || *c == '\n')
			*c = ' ';
	free(e->why[i]);
	e->why[i] = xstrdup(buf);
}

static void
spool_state_path(const char *dir, const char *id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/q/%s.st", dir, id);
}

static void
spool_load_state(const char *dir, struct spool_entry *e)
{
	char path[4200];
	spool_state_path(dir, e->id, path, sizeof(path));
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	char line[512];
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		unsigned long long v;
		if (strncmp(line, "attempts ", 9) == 0 && mx_parse_u64(line + 9, strlen(line + 9), &v) == 0)
			e->attempts = (unsigned)v;
		else if (strncmp(line, "next ", 5) == 0 && mx_parse_u64(line + 5, strlen(line + 5), &v) == 0)
			e->next = (time_t)v;
		else if (strcmp(line, "hold 1") == 0)
			e->hold = true;
		else if (strncmp(line, "last ", 5) == 0)
			mx_strlcpy(e->last, line + 5, sizeof(e->last));
		else if (strncmp(line, "done ", 5) == 0 || strncmp(line, "fail ", 5) == 0) {
			if (mx_parse_u64(line + 5, strlen(line + 5), &v) == 0 && v < e->n_rcpt &&
			    e->done[v] != SPOOL_REPORTED)
				e->done[v] = line[0] == 'd' ? SPOOL_DELIVERED : SPOOL_FAILED;
		} else if (strncmp(line, "why ", 4) == 0) {
			char *sp = strchr(line + 4, ' ');
			if (sp != NULL && mx_parse_u64(line + 4, (size_t)(sp - line - 4), &v) == 0 && v < e->n_rcpt &&
			    sp[1] != '\0') {
				if (e->why == NULL)
					e->why = xcalloc(e->n_rcpt, sizeof(char *));
				free(e->why[v]);
				e->why[v] = xstrdup(sp + 1);
			}
		} else if (strncmp(line, "dsn ", 4) == 0) {
			/* the failure was reported: never a second DSN for it */
			if (mx_parse_u64(line + 4, strlen(line + 4), &v) == 0 && v < e->n_rcpt)
				e->done[v] = SPOOL_REPORTED;
		}
	}
	fclose(f);
}

int
spool_load(const char *dir, const char *id, struct spool_entry *e)
{
	char path[4200];
	memset(e, 0, sizeof(*e));
	spool_msg_path(dir, id, path, sizeof(path));
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	char line[SMTP_PATH_MAX + 64];
	bool ok = false;
	size_t cap = 0;
	if (fgets(line, sizeof(line), f) == NULL || strcmp(line, SPOOL_MAGIC) != 0)
		goto out;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (ftell(f) > SPOOL_HDR_MAX)
			goto out;
		size_t l = strlen(line);
		if (l == 0 || line[l - 1] != '\n')
			goto out;
		line[l - 1] = '\0';
		if (strncmp(line, "id ", 3) == 0) {
			mx_strlcpy(e->id, line + 3, sizeof(e->id));
		} else if (strncmp(line, "arrival ", 8) == 0) {
			unsigned long long v;
			if (mx_parse_u64(line + 8, strlen(line + 8), &v) == 0)
				e->arrival = (time_t)v;
		} else if (strncmp(line, "from ", 5) == 0 || strcmp(line, "from") == 0) {
			free(e->from); /* a second "from" line: the last one counts */
			e->from = xstrdup(l > 6 ? line + 5 : "");
		} else if (strncmp(line, "rcpt ", 5) == 0) {
			if (e->n_rcpt >= SPOOL_RCPT_MAX)
				goto out;
			e->rcpt = xgrow(e->rcpt, &cap, e->n_rcpt + 1, sizeof(char *));
			e->rcpt[e->n_rcpt++] = xstrdup(line + 5);
		} else if (strcmp(line, "smtputf8") == 0) {
			e->smtputf8 = true;
		} else if (strncmp(line, "route ", 6) == 0) {
			e->route = strcmp(line + 6, "bounce") == 0 ? SPOOL_ROUTE_BOUNCE : SPOOL_ROUTE_DOWNSTREAM;
		} else if (strcmp(line, "nodsn") == 0 || strcmp(line, "dsn") == 0) {
			e->nodsn = line[0] == 'n';
			ok = true; /* the last envelope line */
			break;
		}
	}
	if (!ok || e->from == NULL || e->n_rcpt == 0 || strcmp(e->id, id) != 0) {
		ok = false;
		goto out;
	}
	e->data_off = (size_t)ftell(f);
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && (size_t)st.st_size >= e->data_off)
		e->size = (size_t)st.st_size - e->data_off;
	e->done = xcalloc(e->n_rcpt, 1);
	spool_load_state(dir, e);
out:
	fclose(f);
	if (!ok)
		spool_entry_clear(e);
	return ok ? 0 : -1;
}

int
spool_save_state(const char *dir, const struct spool_entry *e, bool sync)
{
	char path[4200], tmp[4300];
	spool_state_path(dir, e->id, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	FILE *f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "attempts %u\nnext %lld\nhold %d\n", e->attempts, (long long)e->next, e->hold ? 1 : 0);
	if (e->last[0])
		fprintf(f, "last %s\n", e->last);
	for (size_t i = 0; i < e->n_rcpt; i++) {
		if (e->done[i] == SPOOL_DELIVERED)
			fprintf(f, "done %zu\n", i);
		else if (e->done[i] == SPOOL_FAILED && e->why != NULL && e->why[i] != NULL)
			fprintf(f, "fail %zu\nwhy %zu %s\n", i, i, e->why[i]);
		else if (e->done[i] == SPOOL_FAILED)
			fprintf(f, "fail %zu\n", i);
		else if (e->done[i] == SPOOL_REPORTED) /* "fail" too: older versions read that */
			fprintf(f, "fail %zu\ndsn %zu\n", i, i);
	}
	int rc = fflush(f) == 0 && !ferror(f) ? 0 : -1;
	if (rc == 0 && sync)
		rc = fdatasync(fileno(f));
	int e2 = errno;
	if (fclose(f) != 0 && rc == 0) {
		rc = -1;
		e2 = errno;
	}
	if (rc == 0 && rename(tmp, path) < 0) {
		rc = -1;
		e2 = errno;
	}
	if (rc != 0) {
		unlink(tmp);
		errno = e2;
		return -1;
	}
	if (sync) { /* the rename is durable only once the folder is */
		char qdir[4200];
		snprintf(qdir, sizeof(qdir), "%s/q", dir);
		if (fsutil_fsync_dir(qdir) < 0)
			return -1;
	}
	return 0;
}

int
spool_remove(const char *dir, const char *id)
{
	/* the message first: if it cannot go, its state (held, recipients
	 * done) stays with it; a state left alone by a crash between the
	 * two is never read (the scan goes by the .msg files) */
	char path[4200];
	spool_msg_path(dir, id, path, sizeof(path));
	if (unlink(path) < 0 && errno != ENOENT)
		return -1;
	spool_state_path(dir, id, path, sizeof(path));
	unlink(path);
	return 0;
}

int
spool_scan(const char *dir, int (*cb)(const char *id, void *arg), void *arg)
{
	char p[4200];
	snprintf(p, sizeof(p), "%s/q", dir);
	DIR *d = opendir(p);
	if (d == NULL)
		return -1;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l < 5 || l > 40 || strcmp(de->d_name + l - 4, ".msg") != 0 || de->d_name[0] == '.')
			continue;
		char id[40];
		mx_strlcpyn(id, de->d_name, l - 4, sizeof(id));
		if (cb(id, arg) != 0)
			break;
	}
	closedir(d);
	return 0;
}

int
spool_usage(const char *dir, uint64_t *used, uint64_t *free_bytes)
{
	char p[4200];
	snprintf(p, sizeof(p), "%s/q", dir);
	struct statvfs vfs;
	if (statvfs(p, &vfs) < 0)
		return -1;
	*free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	*used = 0;
	DIR *d = opendir(p);
	if (d == NULL)
		return -1;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char f[4500];
		struct stat st;
		snprintf(f, sizeof(f), "%s/%s", p, de->d_name);
		if (de->d_name[0] != '.' && stat(f, &st) == 0)
			*used += (uint64_t)st.st_size;
	}
	closedir(d);
	return 0;
}
