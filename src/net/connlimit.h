/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	connlimit - connections in all and per client, across worker threads
 * DESCRIPTION
 *	Clients are counted under netaddr_client_key() (IPv6 by /64).  One
 *	mutex; taken twice per connection (accept and close).
 */
#ifndef MX_CONNLIMIT_H
#define MX_CONNLIMIT_H

#include <sys/socket.h>

enum connlimit_rc { CONNLIMIT_OK = 0, CONNLIMIT_TOTAL, CONNLIMIT_PER_IP };

struct connlimit;

struct connlimit *connlimit_new(void);
void connlimit_free(struct connlimit *cl);
/* Counts the connection unless a limit is reached. */
enum connlimit_rc connlimit_acquire(struct connlimit *cl, const struct sockaddr *sa,
                                    int max_total, int max_per_ip);
void connlimit_release(struct connlimit *cl, const struct sockaddr *sa);
int connlimit_total(struct connlimit *cl);

#endif
