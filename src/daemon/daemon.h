/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	daemon - the gateway's lifecycle: start, reload, drain, stop
 * DESCRIPTION
 *	daemon_serve() builds the runtime, opens one SO_REUSEPORT socket per
 *	listen address per worker, starts the workers, and then runs the main
 *	thread's loop, which only handles signals and the admin endpoint:
 *	  SIGHUP   rebuild the runtime from the file; on any error keep the
 *	           running one and log why
 *	  SIGTERM, SIGINT  stop accepting, let transactions in flight finish,
 *	           exit; after timeouts.shutdown (or a second signal) close
 *	           everything
 *	  SIGUSR1  log the counters
 */
#ifndef MX_DAEMON_H
#define MX_DAEMON_H

#include <stdbool.h>

/* Runs until shut down. Returns the process exit code. */
int daemon_serve(const char *config_path, bool use_syslog);

#endif
