/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	netaddr - socket addresses as text, CIDR networks, client keys
 * DESCRIPTION
 *	Numeric only: nothing here resolves names.  "HOST:PORT" means
 *	"1.2.3.4:25" or "[2001:db8::1]:25".
 */
#ifndef MX_NETADDR_H
#define MX_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define NETADDR_STRLEN 64 /* "[" v6 "]:" port, with room */

struct netaddr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* Parses a numeric "IP:PORT" or "[IPv6]:PORT". Returns 0 or -1. */
int netaddr_parse(const char *s, struct netaddr *out);
/* The IP alone, no port (IPv6 without brackets). */
void netaddr_ip_str(const struct sockaddr *sa, char *buf, size_t len);
/* "1.2.3.4:25" or "[::1]:25". */
void netaddr_str(const struct sockaddr *sa, char *buf, size_t len);
int netaddr_port(const struct sockaddr *sa);

/* A network: family, 16 address bytes, prefix length. */
struct netaddr_cidr {
	int family;
	uint8_t addr[16];
	unsigned prefix;
};
/* Parses "192.0.2.0/24", "2001:db8::/32" or a single address. */
int netaddr_cidr_parse(const char *s, struct netaddr_cidr *out);
bool netaddr_cidr_match(const struct netaddr_cidr *net, const struct sockaddr *sa);

/*
 * The key a client is counted under: its IPv4 address, or its IPv6 /64
 * (one host usually owns the whole /64).  IPv4-mapped IPv6 counts as IPv4.
 * Writes text like "192.0.2.1" or "2001:db8:1:2::/64".
 */
void netaddr_client_key(const struct sockaddr *sa, char *buf, size_t len);

#endif
