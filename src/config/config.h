/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	config - the configuration: libconfig file -> immutable struct
 * DESCRIPTION
 *	config_load() parses a libconfig file against the schema in
 *	config_schema.c: every key is known, typed, bounded and documented.
 *	Unknown keys, wrong types and out-of-range values are errors, reported
 *	as "file:line: what is wrong".  The result is immutable and
 *	refcounted: a session keeps the config it started with across a
 *	reload (SIGHUP).
 *	Durations are stored in milliseconds, sizes in bytes.  A duration is an
 *	integer (seconds) or a string with a unit ("500ms", "30s", "5m", "1h",
 *	"2d"); a size is an integer (bytes) or a string with a unit ("64k",
 *	"25M", "1G").
 */
#ifndef MX_CONFIG_H
#define MX_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define CONFIG_MAX_ERRORS 32

struct config_errors {
	char *msg[CONFIG_MAX_ERRORS];
	size_t n;
	size_t dropped;
};

struct config_downstream {
	char *target; /* "smtp:HOST:PORT", "lmtp:HOST:PORT", "lmtp:/path", "file:DIR" */
	int priority; /* lower is tried first; equal means random choice */
	int line;     /* where it was written, for later error messages */
};

struct mx_config {
	_Atomic int refs;
	char *path;

	/* top level */
	char **listen;
	size_t n_listen;
	char *hostname;
	char **domains;
	size_t n_domains;
	bool subdomains;
	int workers;
	char *log_level;
	char *banner;
	bool soft_bounce;
	char *tmp_dir;
	char *delivery_mode; /* "proxy" (issue 2); "queue" later */

	/* recipients */
	char *rcpt_file;
	char *rcpt_delimiter;
	const char *rcpt_source; /* derived: "file", "ldap", "pgsql", "mysql" or "callout" */
	long long rcpt_timeout;  /* a directory's answer, connection included */
	long long rcpt_positive_ttl, rcpt_negative_ttl; /* answer cache; 0 = off */
	char **ldap_uris;
	size_t n_ldap_uris;
	char *ldap_base;
	char *ldap_scope; /* "sub" | "one" | "base" */
	char *ldap_filter;
	char *ldap_bind_dn;
	char *ldap_bind_password; /* never logged */
	bool ldap_starttls;
	char *ldap_tls_ca;
	bool ldap_tls_verify;
	bool ldap_replica; /* derived: recipients.ldap.replica is present */
	long long ldap_replica_interval;
	char *ldap_replica_filter;
	char **ldap_replica_attrs;
	size_t n_ldap_replica_attrs;
	char *pgsql_conninfo;
	char *pgsql_query;
	char *mysql_host;
	int mysql_port;
	char *mysql_user;
	char *mysql_password; /* never logged */
	char *mysql_database;
	char *mysql_query;
	int mysql_connections;
	char *callout_target; /* NULL: the first downstream */
	char *callout_sender;

	/* harvest: dictionary-attack defence */
	bool harvest; /* derived: the harvest group is present */
	long long harvest_window;
	int harvest_tarpit_after;
	long long harvest_tarpit_delay;
	int harvest_block_after;
	long long harvest_block_time;
	int harvest_block_code; /* 421 or 554 */
	char **harvest_allow;
	size_t n_harvest_allow;

	/* downstream */
	struct config_downstream *down;
	size_t n_down;
	char *down_helo;
	char *down_tls; /* "may" | "encrypt" | "none" */

	/* smtp */
	long long greet_delay_ms;

	/* limits */
	long long message_size;
	int max_recipients;
	int max_errors;
	int max_unknown_rcpt;
	long long line_length;
	int max_connections;
	int max_conn_per_ip;
	long long memory_per_message;

	/* timeouts, milliseconds */
	long long t_command;
	long long t_data;
	long long t_down_connect;
	long long t_down_reply;
	long long t_down_data;
	long long t_down_idle;
	long long t_down_retry;
	long long t_shutdown;

	/* tls */
	char *tls_cert;
	char *tls_key;
	char *tls_protocols;
	char *tls_ciphers;

	/* admin */
	char *admin_listen;

	/* store */
	char *store_path;
	long long store_size;

	/* content filter */
	bool content_enabled;
	char *rules_path;
	long long scan_limit;
	double reject_score;
	double tempfail_score; /* 0: never tempfail */
	double tag_score;
	char *subject_prefix;
	bool classifier_enabled;
	char *content_headers; /* "all" | "tagged" | "none" */

	/* queue (delivery = "queue") */
	char *queue_path;
	char **queue_retry;
	size_t n_queue_retry;
	long long queue_lifetime;
	int queue_concurrency;
	long long queue_min_free;
	long long queue_max_size;
	int queue_writers;
	char *queue_bounce;
	int queue_mx_port;

	/* dns */
	char *dns_resolver;
	long long dns_timeout;
};

/*
 * Loads and validates path.  Returns a new config with one reference, or
 * NULL with every problem found in errs (each "file:line: message").
 */
struct mx_config *config_load(const char *path, struct config_errors *errs);
/* A config with every default and nothing else (for offline tools). */
struct mx_config *config_defaults(void);
struct mx_config *config_ref(struct mx_config *c);
void config_unref(struct mx_config *c);
void config_errors_clear(struct config_errors *errs);
/* Adds an error (printf-style). */
void config_error(struct config_errors *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Every key of the schema, dotted ("limits.message_size"), for the docs
 * check and `mxguard check-config --keys`. NULL-terminated. */
const char *const *config_key_names(void);

/* Parses "30s"-style durations and "25M"-style sizes; -1 on junk. */
int config_parse_duration(const char *s, long long *ms);
int config_parse_size(const char *s, long long *bytes);

#endif
