/* SPDX-License-Identifier: MIT */
#include "netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"

int
netaddr_parse(const char *s, struct netaddr *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port;
	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		const char *e = strchr(s, ']');
		if (e == NULL || e[1] != ':')
			return -1;
		if (mx_strlcpyn(host, s + 1, (size_t)(e - s - 1), sizeof(host)) < 0)
			return -1;
		port = e + 2;
	} else {
		const char *c = strrchr(s, ':');
		if (c == NULL || strchr(s, ':') != c)
			return -1;
		if (mx_strlcpyn(host, s, (size_t)(c - s), sizeof(host)) < 0)
			return -1;
		port = c + 1;
	}
	unsigned long long p;
	if (mx_parse_u64(port, strlen(port), &p) < 0 || p > 65535)
		return -1;
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		out->len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		out->len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

void
netaddr_ip_str(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *a = NULL;
	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (a == NULL || inet_ntop(sa->sa_family, a, buf, (socklen_t)len) == NULL)
		mx_strlcpy(buf, "unknown", len);
}

int
netaddr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

void
netaddr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	netaddr_ip_str(sa, ip, sizeof(ip));
	if (sa->sa_family == AF_INET6)
		snprintf(buf, len, "[%s]:%d", ip, netaddr_port(sa));
	else
		snprintf(buf, len, "%s:%d", ip, netaddr_port(sa));
}

/* The address bytes of sa, IPv4-mapped IPv6 folded to IPv4. */
static int
netaddr_bytes(const struct sockaddr *sa, uint8_t out[16])
{
	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			memcpy(out, a->s6_addr + 12, 4);
			return AF_INET;
		}
		memcpy(out, a->s6_addr, 16);
		return AF_INET6;
	}
	return -1;
}

int
netaddr_cidr_parse(const char *s, struct netaddr_cidr *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	if (mx_strlcpyn(host, s, hl, sizeof(host)) < 0)
		return -1;
	memset(out, 0, sizeof(*out));
	unsigned max;
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	out->prefix = max;
	if (slash != NULL) {
		unsigned long long p;
		if (mx_parse_u64(slash + 1, strlen(slash + 1), &p) < 0 || p > max)
			return -1;
		out->prefix = (unsigned)p;
	}
	return 0;
}

static bool
netaddr_prefix_eq(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;
	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

bool
netaddr_cidr_match(const struct netaddr_cidr *net, const struct sockaddr *sa)
{
	uint8_t b[16];
	int fam = netaddr_bytes(sa, b);
	if (fam != net->family)
		return false;
	return netaddr_prefix_eq(net->addr, b, net->prefix);
}

void
netaddr_client_key(const struct sockaddr *sa, char *buf, size_t len)
{
	uint8_t b[16];
	int fam = netaddr_bytes(sa, b);
	if (fam == AF_INET) {
		inet_ntop(AF_INET, b, buf, (socklen_t)len);
	} else if (fam == AF_INET6) {
		char ip[INET6_ADDRSTRLEN];
		memset(b + 8, 0, 8);
		inet_ntop(AF_INET6, b, ip, sizeof(ip));
		snprintf(buf, len, "%s/64", ip);
	} else {
		mx_strlcpy(buf, "unknown", len);
	}
}
