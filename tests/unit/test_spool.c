/* SPDX-License-Identifier: MIT */
/* Unit tests: queue/spool - write, state round trip (reported failures
 * survive a restart), a short body file is an error; file: delivery too. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "blob.h"
#include "delivery.h"
#include "envelope.h"
#include "queue.h"
#include "spool.h"

static char top[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(top, sizeof(top), "/tmp/mx-spool-XXXXXX");
	if (mkdtemp(top) == NULL)
		return -1;
	char err[256], p[128];
	snprintf(p, sizeof(p), "%s/spool", top);
	return spool_prepare(p, err, sizeof(err));
}

static int
teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	return system(cmd) == 0 ? 0 : -1;
}

static void
make_env(struct envelope *env, const char *id, size_t nrcpt)
{
	envelope_init(env);
	snprintf(env->id, sizeof(env->id), "%s", id);
	env->arrival = 1700000000;
	snprintf(env->mail_from, sizeof(env->mail_from), "writer@remote.test");
	const char *r[] = {"alice@example.test", "bob@example.test", "carol@example.test"};
	for (size_t i = 0; i < nrcpt; i++)
		envelope_add_rcpt(env, r[i]);
	env->body = blob_new(1024, top);
	const char *m = "Subject: t\r\n\r\nhello\r\n";
	assert_int_equal(blob_append(env->body, m, strlen(m)), 0);
}

static size_t
count_files(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* A failure that was reported (DSN queued) reads back as reported after a
 * restart; one not yet reported reads back as failed; the file keeps
 * "fail" too so that an older version still sees a failure. */
static void
test_state_dsn_survives_restart(void **state)
{
	(void)state;
	char dir[128];
	snprintf(dir, sizeof(dir), "%s/spool", top);
	struct envelope env;
	make_env(&env, "00000000000000a1", 3);
	assert_int_equal(spool_write(dir, &env, SPOOL_ROUTE_DOWNSTREAM, false), 0);
	envelope_clear(&env);

	struct spool_entry e;
	assert_int_equal(spool_load(dir, "00000000000000a1", &e), 0);
	assert_int_equal(e.n_rcpt, 3);
	assert_int_equal(e.done[0], SPOOL_PENDING);
	e.done[0] = SPOOL_DELIVERED;
	e.done[1] = SPOOL_REPORTED;
	e.done[2] = SPOOL_FAILED;
	spool_set_why(&e, 2, "550 5.1.1 <c@example.test>:\r\n no such user", "5.0.0");
	spool_set_why(&e, 1, "host not found", "5.4.4"); /* reported: not kept */
	e.attempts = 2;
	e.next = 1700000300;
	assert_int_equal(spool_save_state(dir, &e, true), 0);
	spool_entry_clear(&e);

	char path[256], text[512] = "";
	snprintf(path, sizeof(path), "%s/q/00000000000000a1.st", dir);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	assert_non_null(strstr(text, "done 0\n"));
	assert_non_null(strstr(text, "fail 1\ndsn 1\n"));
	assert_non_null(strstr(text, "fail 2\nwhy 2 5.1.1 550 5.1.1 <c@example.test>:   no such user\n"));
	assert_null(strstr(text, "why 1"));
	assert_null(strstr(text, "dsn 2"));
	snprintf(path, sizeof(path), "%s/q/00000000000000a1.st.new", dir);
	assert_int_equal(access(path, F_OK), -1);

	/* "the restart" */
	assert_int_equal(spool_load(dir, "00000000000000a1", &e), 0);
	assert_int_equal(e.done[0], SPOOL_DELIVERED);
	assert_int_equal(e.done[1], SPOOL_REPORTED);
	assert_int_equal(e.done[2], SPOOL_FAILED);
	assert_non_null(e.why);
	assert_string_equal(e.why[2], "5.1.1 550 5.1.1 <c@example.test>:   no such user");
	assert_null(e.why[0]);
	assert_int_equal(e.attempts, 2);
	assert_int_equal(e.next, 1700000300);
	/* a diagnostic without an enhanced status takes the default */
	spool_set_why(&e, 0, "host not found", "5.4.4");
	assert_string_equal(e.why[0], "5.4.4 host not found");
	/* a 4.x.x status (an expired recipient's last try) is not a failure's */
	spool_set_why(&e, 0, "451 4.2.0 busy", "5.4.7");
	assert_string_equal(e.why[0], "5.4.7 451 4.2.0 busy");
	spool_set_why(&e, 7, "out of range", "5.0.0"); /* ignored */
	spool_entry_clear(&e);
	assert_int_equal(spool_remove(dir, "00000000000000a1"), 0);
}

/* A body whose temporary file ends before what was written to it: the
 * spool and file: delivery fail (the client gets 451) and leave nothing. */
static void
test_short_body_is_an_error(void **state)
{
	(void)state;
	char dir[128], path[160];
	snprintf(dir, sizeof(dir), "%s/spool", top);
	snprintf(path, sizeof(path), "%s/body", top);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "Subject: t\r\n\r\n", 14), 14);
	unlink(path);
	struct envelope env;
	make_env(&env, "00000000000000a2", 1);
	blob_free(env.body);
	env.body = blob_from_fd(fd, 0, 5000); /* says 5000 bytes, holds 14 */
	errno = 0;
	assert_int_equal(spool_write(dir, &env, SPOOL_ROUTE_DOWNSTREAM, false), -1);
	assert_int_equal(errno, EIO);
	snprintf(path, sizeof(path), "%s/q", dir);
	assert_int_equal(count_files(path), 0);
	snprintf(path, sizeof(path), "%s/tmp", dir);
	assert_int_equal(count_files(path), 0);

	char out[4200], fdir[128], err[256];
	snprintf(fdir, sizeof(fdir), "%s/mail", top);
	assert_int_equal(deliver_file_prepare(fdir, err, sizeof(err)), 0);
	errno = 0;
	assert_int_equal(deliver_file_write(fdir, &env, out, sizeof(out)), -1);
	assert_int_equal(errno, EIO);
	assert_int_equal(count_files(fdir), 0);
	envelope_clear(&env);

	/* and the whole body goes through */
	make_env(&env, "00000000000000a3", 1);
	assert_int_equal(deliver_file_write(fdir, &env, out, sizeof(out)), 0);
	assert_int_equal(count_files(fdir), 1);
	assert_int_equal(spool_write(dir, &env, SPOOL_ROUTE_DOWNSTREAM, false), 0);
	envelope_clear(&env);
	struct spool_entry e;
	assert_int_equal(spool_load(dir, "00000000000000a3", &e), 0);
	assert_int_equal(e.size, strlen("Subject: t\r\n\r\nhello\r\n"));
	spool_entry_clear(&e);
	assert_int_equal(spool_remove(dir, "00000000000000a3"), 0);
}

/* ---- queue_worker_end: a worker's loop stopped for good ------------------- */

struct ended {
	int calls, written, cancelled, other;
};

static void
ended_cb(int err, const char *id, void *arg)
{
	(void)id;
	struct ended *e = arg;
	e->calls++;
	if (err == 0)
		e->written++;
	else if (err == ECANCELED)
		e->cancelled++;
	else
		e->other++;
}

static int
no_routes(void *arg, struct queue_routes *out)
{
	(void)arg;
	(void)out;
	return -1; /* nothing is delivered in this test */
}

static void
no_release(void *arg, void *token)
{
	(void)arg;
	(void)token;
}

/* Every job of the stopped loop is answered exactly once, on the caller's
 * thread, before its base is freed: those not started ECANCELED, the
 * others with their result; none of them later (the writers would
 * otherwise activate events of a freed base). Jobs of another loop are
 * left alone. */
static void
test_worker_end(void **state)
{
	(void)state;
	enum { N = 40 };
	char dir[128], err[256];
	evthread_use_pthreads(); /* as the daemon: writers wake other threads' loops */
	snprintf(dir, sizeof(dir), "%s/q", top);
	struct queue_opts o = {.dir = dir, .writers = 2, .hostname = "mx.test", .dns_timeout_ms = 1000,
	                       .acquire = no_routes, .release = no_release};
	struct queue *q = queue_start(&o, err, sizeof(err));
	assert_non_null(q);
	struct event_base *stopped = event_base_new(), *other = event_base_new();
	struct envelope env[N + 1];
	struct ended e = {0}, e_other = {0};
	for (int i = 0; i < N; i++) {
		char id[32];
		snprintf(id, sizeof(id), "%016x", 0x100 + i);
		make_env(&env[i], id, 1);
		queue_submit(q, stopped, &env[i], false, ended_cb, &e);
	}
	make_env(&env[N], "00000000000000ff", 1);
	queue_submit(q, other, &env[N], false, ended_cb, &e_other);
	queue_worker_end(q, stopped);
	assert_int_equal(e.calls, N);
	assert_int_equal(e.written + e.cancelled, N);
	assert_int_equal(e.other, 0);
	event_base_free(stopped);
	/* the other loop's job still calls back on its own loop */
	while (e_other.calls == 0)
		event_base_loop(other, EVLOOP_ONCE);
	assert_int_equal(e_other.calls, 1);
	assert_int_equal(e_other.written, 1);
	assert_int_equal(e.calls, N); /* nothing more for the stopped one */
	queue_stop(q);
	event_base_free(other);
	for (int i = 0; i <= N; i++)
		envelope_clear(&env[i]);
}

static void
touch(const char *dir, const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/q/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("attempts 1\n", f);
	fclose(f);
}

static bool
exists(const char *dir, const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/q/%s", dir, name);
	return access(path, F_OK) == 0;
}

/* At start, state files without their message (a crash between the two
 * unlinks of a delete) and torn ones (.st.new: a crash before the
 * rename) are removed; a message's own state stays. */
static void
test_orphan_states_removed(void **state)
{
	(void)state;
	char dir[128], err[256];
	snprintf(dir, sizeof(dir), "%s/spool", top);
	struct envelope env;
	make_env(&env, "00000000000000c1", 1);
	assert_int_equal(spool_write(dir, &env, SPOOL_ROUTE_DOWNSTREAM, false), 0);
	envelope_clear(&env);
	touch(dir, "00000000000000c1.st");
	touch(dir, "00000000000000c1.st.new");
	touch(dir, "00000000000000c2.st");
	touch(dir, "00000000000000c3.st.new");
	assert_int_equal(spool_prepare(dir, err, sizeof(err)), 0);
	assert_true(exists(dir, "00000000000000c1.msg"));
	assert_true(exists(dir, "00000000000000c1.st"));
	assert_false(exists(dir, "00000000000000c1.st.new"));
	assert_false(exists(dir, "00000000000000c2.st"));
	assert_false(exists(dir, "00000000000000c3.st.new"));
	assert_int_equal(spool_remove(dir, "00000000000000c1"), 0);
	assert_false(exists(dir, "00000000000000c1.st"));
}

/* A damaged queue file that names its sender twice loads with the last
 * one, and the first is not leaked (ASan build; found by fuzz_spool). */
static void
test_repeated_from(void **state)
{
	(void)state;
	char dir[128], path[256];
	snprintf(dir, sizeof(dir), "%s/spool", top);
	spool_msg_path(dir, "00000000000000d1", path, sizeof(path));
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("mxguard-queue 1\nid 00000000000000d1\nfrom a@x.test\nfrom b@x.test\n"
	      "rcpt c@example.test\nroute downstream\ndsn\nSubject: x\r\n\r\nbody\r\n", f);
	fclose(f);
	struct spool_entry e;
	assert_int_equal(spool_load(dir, "00000000000000d1", &e), 0);
	assert_string_equal(e.from, "b@x.test");
	assert_int_equal(e.n_rcpt, 1);
	spool_entry_clear(&e);
	assert_int_equal(spool_remove(dir, "00000000000000d1"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_dsn_survives_restart),
		cmocka_unit_test(test_short_body_is_an_error),
		cmocka_unit_test(test_worker_end),
		cmocka_unit_test(test_orphan_states_removed),
		cmocka_unit_test(test_repeated_from),
	};
	return cmocka_run_group_tests_name("spool", tests, setup, teardown);
}
