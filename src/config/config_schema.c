/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	config_schema - the table of every configuration key
 * DESCRIPTION
 *	Defaults follow RFC 5321 section 4.5.3.2 for timeouts and Postfix's
 *	defaults for limits where RFC 5321 is silent.
 */
#include "config_schema.h"

#include <limits.h>
#include <stddef.h>

#include "config.h"

#define OFF(f) offsetof(struct mx_config, f)
#define LL_MAX 0x7fffffffffffffffLL
#define DAY_MS (86400LL * 1000)

/* clang-format off */
const struct cfg_key config_schema[] = {
	{"listen",              CT_STRINGS, OFF(listen), OFF(n_listen), NULL, 1, 64, NULL, 1},
	{"hostname",            CT_STRING,  OFF(hostname), 0, NULL, 1, 255, NULL, 0},
	{"domains",             CT_STRINGS, OFF(domains), OFF(n_domains), NULL, 1, 100000, NULL, 1},
	{"subdomains",          CT_BOOL,    OFF(subdomains), 0, "false", 0, 0, NULL, 0},
	{"workers",             CT_INT,     OFF(workers), 0, "0", 0, 256, NULL, 0},
	{"log_level",           CT_STRING,  OFF(log_level), 0, "\"info\"", 0, 0, "debug|info|warn|err", 0},
	{"banner",              CT_STRING,  OFF(banner), 0, "\"ESMTP mxguard\"", 0, 200, NULL, 0},
	{"soft_bounce",         CT_BOOL,    OFF(soft_bounce), 0, "false", 0, 0, NULL, 0},
	{"tmp_dir",             CT_STRING,  OFF(tmp_dir), 0, "\"/tmp\"", 1, 4095, NULL, 0},
	{"delivery",            CT_STRING,  OFF(delivery_mode), 0, "\"proxy\"", 0, 0, "proxy|queue", 0},

	{"recipients",          CT_GROUP,   0, 0, NULL, 0, 0, NULL, 1},
	{"recipients.file",     CT_STRING,  OFF(rcpt_file), 0, NULL, 1, 4095, NULL, 0},
	{"recipients.delimiter", CT_STRING, OFF(rcpt_delimiter), 0, "\"+\"", 0, 8, NULL, 0},
	{"recipients.timeout",  CT_DURATION, OFF(rcpt_timeout), 0, "\"5s\"", 100, 600000, NULL, 0},
	{"recipients.cache",    CT_GROUP,   0, 0, NULL, 0, 0, NULL, 0},
	{"recipients.cache.positive_ttl", CT_DURATION, OFF(rcpt_positive_ttl), 0, "\"1h\"", 0, 30 * DAY_MS, NULL, 0},
	{"recipients.cache.negative_ttl", CT_DURATION, OFF(rcpt_negative_ttl), 0, "\"5m\"", 0, 30 * DAY_MS, NULL, 0},
	{"recipients.ldap",     CT_GROUP,   0, 0, NULL, 0, 0, NULL, 0},
	{"recipients.ldap.uris", CT_STRINGS, OFF(ldap_uris), OFF(n_ldap_uris), NULL, 1, 16, NULL, 0},
	{"recipients.ldap.base", CT_STRING, OFF(ldap_base), 0, "\"\"", 0, 1024, NULL, 0},
	{"recipients.ldap.scope", CT_STRING, OFF(ldap_scope), 0, "\"sub\"", 0, 0, "sub|one|base", 0},
	{"recipients.ldap.filter", CT_STRING, OFF(ldap_filter), 0, "\"(mail=%s)\"", 3, 1024, NULL, 0},
	{"recipients.ldap.bind_dn", CT_STRING, OFF(ldap_bind_dn), 0, NULL, 1, 1024, NULL, 0},
	{"recipients.ldap.bind_password", CT_STRING, OFF(ldap_bind_password), 0, NULL, 0, 1024, NULL, 0},
	{"recipients.ldap.starttls", CT_BOOL, OFF(ldap_starttls), 0, "false", 0, 0, NULL, 0},
	{"recipients.ldap.tls_ca", CT_STRING, OFF(ldap_tls_ca), 0, NULL, 1, 4095, NULL, 0},
	{"recipients.ldap.tls_verify", CT_BOOL, OFF(ldap_tls_verify), 0, "true", 0, 0, NULL, 0},
	{"recipients.ldap.replica", CT_GROUP, 0, 0, NULL, 0, 0, NULL, 0},
	{"recipients.ldap.replica.interval", CT_DURATION, OFF(ldap_replica_interval), 0, "\"10m\"", 1000, 7 * DAY_MS, NULL, 0},
	{"recipients.ldap.replica.filter", CT_STRING, OFF(ldap_replica_filter), 0, "\"(mail=*)\"", 3, 1024, NULL, 0},
	{"recipients.ldap.replica.attributes", CT_STRINGS, OFF(ldap_replica_attrs), OFF(n_ldap_replica_attrs), "[\"mail\"]", 1, 16, NULL, 0},
	{"recipients.pgsql",    CT_GROUP,   0, 0, NULL, 0, 0, NULL, 0},
	{"recipients.pgsql.conninfo", CT_STRING, OFF(pgsql_conninfo), 0, "\"\"", 0, 4095, NULL, 0},
	{"recipients.pgsql.query", CT_STRING, OFF(pgsql_query), 0, NULL, 1, 4095, NULL, 0},
	{"recipients.mysql",    CT_GROUP,   0, 0, NULL, 0, 0, NULL, 0},
	{"recipients.mysql.host", CT_STRING, OFF(mysql_host), 0, "\"127.0.0.1\"", 1, 255, NULL, 0},
	{"recipients.mysql.port", CT_INT,   OFF(mysql_port), 0, "3306", 0, 65535, NULL, 0},
	{"recipients.mysql.user", CT_STRING, OFF(mysql_user), 0, NULL, 1, 255, NULL, 0},
	{"recipients.mysql.password", CT_STRING, OFF(mysql_password), 0, NULL, 0, 1024, NULL, 0},
	{"recipients.mysql.database", CT_STRING, OFF(mysql_database), 0, NULL, 1, 255, NULL, 0},
	{"recipients.mysql.query", CT_STRING, OFF(mysql_query), 0, NULL, 1, 4095, NULL, 0},
	{"recipients.mysql.connections", CT_INT, OFF(mysql_connections), 0, "4", 1, 64, NULL, 0},
	{"recipients.callout",  CT_GROUP,   0, 0, NULL, 0, 0, NULL, 0},
	{"recipients.callout.target", CT_STRING, OFF(callout_target), 0, NULL, 1, 300, NULL, 0},
	{"recipients.callout.sender", CT_STRING, OFF(callout_sender), 0, "\"\"", 0, 256, NULL, 0},

	{"harvest",             CT_GROUP,   0, 0, NULL, 0, 0, NULL, 0},
	{"harvest.window",      CT_DURATION, OFF(harvest_window), 0, "\"10m\"", 1000, 7 * DAY_MS, NULL, 0},
	{"harvest.tarpit_after", CT_INT,    OFF(harvest_tarpit_after), 0, "10", 1, 10000000, NULL, 0},
	{"harvest.tarpit_delay", CT_DURATION, OFF(harvest_tarpit_delay), 0, "\"2s\"", 0, 300000, NULL, 0},
	{"harvest.block_after", CT_INT,     OFF(harvest_block_after), 0, "50", 1, 10000000, NULL, 0},
	{"harvest.block_time",  CT_DURATION, OFF(harvest_block_time), 0, "\"1h\"", 1000, 30 * DAY_MS, NULL, 0},
	{"harvest.block_code",  CT_INT,     OFF(harvest_block_code), 0, "421", 421, 554, NULL, 0},
	{"harvest.allow",       CT_STRINGS, OFF(harvest_allow), OFF(n_harvest_allow), NULL, 0, 10000, NULL, 0},

	{"downstream",          CT_DOWNSTREAM, 0, 0, NULL, 0, 0, NULL, 1},
	{"downstream_helo",     CT_STRING,  OFF(down_helo), 0, NULL, 1, 255, NULL, 0},
	{"downstream_tls",      CT_STRING,  OFF(down_tls), 0, "\"may\"", 0, 0, "may|encrypt|none", 0},

	{"smtp",                CT_GROUP,   0, 0, NULL, 0, 0, NULL, 0},
	{"smtp.greet_delay",    CT_DURATION, OFF(greet_delay_ms), 0, "0", 0, 60000, NULL, 0},

	{"limits",              CT_GROUP,   0, 0, NULL, 0, 0, NULL, 0},
	{"limits.message_size", CT_SIZE,    OFF(message_size), 0, "\"25M\"", 1024, 1LL << 32, NULL, 0},
	{"limits.recipients",   CT_INT,     OFF(max_recipients), 0, "1000", 1, 100000, NULL, 0},
	{"limits.errors",       CT_INT,     OFF(max_errors), 0, "20", 1, 10000, NULL, 0},
	{"limits.unknown_recipients", CT_INT, OFF(max_unknown_rcpt), 0, "20", 1, 100000, NULL, 0},
	{"limits.line_length",  CT_SIZE,    OFF(line_length), 0, "\"1M\"", 1000, 1LL << 30, NULL, 0},
	{"limits.connections",  CT_INT,     OFF(max_connections), 0, "20000", 1, 1000000, NULL, 0},
	{"limits.connections_per_ip", CT_INT, OFF(max_conn_per_ip), 0, "50", 1, 1000000, NULL, 0},
	{"limits.memory_per_message", CT_SIZE, OFF(memory_per_message), 0, "\"1M\"", 4096, 1LL << 30, NULL, 0},

	{"timeouts",            CT_GROUP,   0, 0, NULL, 0, 0, NULL, 0},
	{"timeouts.command",    CT_DURATION, OFF(t_command), 0, "\"5m\"", 100, DAY_MS, NULL, 0},
	{"timeouts.data",       CT_DURATION, OFF(t_data), 0, "\"3m\"", 100, DAY_MS, NULL, 0},
	{"timeouts.downstream_connect", CT_DURATION, OFF(t_down_connect), 0, "\"30s\"", 100, DAY_MS, NULL, 0},
	{"timeouts.downstream_reply", CT_DURATION, OFF(t_down_reply), 0, "\"5m\"", 100, DAY_MS, NULL, 0},
	{"timeouts.downstream_data", CT_DURATION, OFF(t_down_data), 0, "\"10m\"", 100, DAY_MS, NULL, 0},
	{"timeouts.downstream_idle", CT_DURATION, OFF(t_down_idle), 0, "\"30s\"", 0, DAY_MS, NULL, 0},
	{"timeouts.downstream_retry", CT_DURATION, OFF(t_down_retry), 0, "\"30s\"", 0, DAY_MS, NULL, 0},
	{"timeouts.shutdown",   CT_DURATION, OFF(t_shutdown), 0, "\"60s\"", 0, DAY_MS, NULL, 0},

	{"tls",                 CT_GROUP,   0, 0, NULL, 0, 0, NULL, 0},
	{"tls.cert",            CT_STRING,  OFF(tls_cert), 0, NULL, 1, 4095, NULL, 0},
	{"tls.key",             CT_STRING,  OFF(tls_key), 0, NULL, 1, 4095, NULL, 0},
	{"tls.protocols",       CT_STRING,  OFF(tls_protocols), 0, "\"TLSv1.2\"", 0, 0, "TLSv1|TLSv1.1|TLSv1.2|TLSv1.3", 0},
	{"tls.ciphers",         CT_STRING,  OFF(tls_ciphers), 0, NULL, 1, 4096, NULL, 0},

	{"admin",               CT_GROUP,   0, 0, NULL, 0, 0, NULL, 0},
	{"admin.listen",        CT_STRING,  OFF(admin_listen), 0, NULL, 1, 128, NULL, 0},

	{"store",               CT_GROUP,   0, 0, NULL, 0, 0, NULL, 0},
	{"store.path",          CT_STRING,  OFF(store_path), 0, "\"var/store\"", 1, 4095, NULL, 0},
	{"store.size",          CT_SIZE,    OFF(store_size), 0, "\"4G\"", 16LL << 20, 1LL << 40, NULL, 0},

	{"queue",               CT_GROUP,   0, 0, NULL, 0, 0, NULL, 0},
	{"queue.path",          CT_STRING,  OFF(queue_path), 0, "\"var/queue\"", 1, 80, NULL, 0},
	{"queue.retry",         CT_STRINGS, OFF(queue_retry), OFF(n_queue_retry), "[\"1m\", \"5m\", \"15m\", \"30m\", \"1h\", \"2h\", \"4h\"]", 1, 100, NULL, 0},
	{"queue.lifetime",      CT_DURATION, OFF(queue_lifetime), 0, "\"5d\"", 1000, 365 * DAY_MS, NULL, 0},
	{"queue.concurrency",   CT_INT,     OFF(queue_concurrency), 0, "20", 1, 10000, NULL, 0},
	{"queue.min_free",      CT_SIZE,    OFF(queue_min_free), 0, "\"100M\"", 0, 1LL << 50, NULL, 0},
	{"queue.max_size",      CT_SIZE,    OFF(queue_max_size), 0, "\"10G\"", 1LL << 20, 1LL << 50, NULL, 0},
	{"queue.writers",       CT_INT,     OFF(queue_writers), 0, "4", 1, 64, NULL, 0},
	{"queue.bounce",        CT_STRING,  OFF(queue_bounce), 0, NULL, 1, 300, NULL, 0},
	{"queue.mx_port",       CT_INT,     OFF(queue_mx_port), 0, "25", 1, 65535, NULL, 0},

	{"dns",                 CT_GROUP,   0, 0, NULL, 0, 0, NULL, 0},
	{"dns.resolver",        CT_STRING,  OFF(dns_resolver), 0, NULL, 1, 200, NULL, 0},
	{"dns.timeout",         CT_DURATION, OFF(dns_timeout), 0, "\"5s\"", 100, 60000, NULL, 0},

	{"content",             CT_GROUP,   0, 0, NULL, 0, 0, NULL, 0},
	{"content.enabled",     CT_BOOL,    OFF(content_enabled), 0, "true", 0, 0, NULL, 0},
	{"content.rules",       CT_STRING,  OFF(rules_path), 0, NULL, 1, 4095, NULL, 0},
	{"content.scan_limit",  CT_SIZE,    OFF(scan_limit), 0, "\"1M\"", 4096, 1LL << 30, NULL, 0},
	{"content.reject_score", CT_DOUBLE, OFF(reject_score), 0, "12.0", -1000, 1000, NULL, 0},
	{"content.tempfail_score", CT_DOUBLE, OFF(tempfail_score), 0, "0.0", -1000, 1000, NULL, 0},
	{"content.tag_score",   CT_DOUBLE,  OFF(tag_score), 0, "3.0", -1000, 1000, NULL, 0},
	{"content.subject_prefix", CT_STRING, OFF(subject_prefix), 0, NULL, 0, 100, NULL, 0},
	{"content.classifier",  CT_BOOL,    OFF(classifier_enabled), 0, "true", 0, 0, NULL, 0},
	{"content.headers",     CT_STRING,  OFF(content_headers), 0, "\"all\"", 0, 0, "all|tagged|none", 0},
};
/* clang-format on */

const size_t config_schema_len = sizeof(config_schema) / sizeof(config_schema[0]);
