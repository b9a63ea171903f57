/* SPDX-License-Identifier: MIT */
#include "evbase.h"

#include <event2/event.h>

struct event_base *
evbase_new(void)
{
	struct event_config *cfg = event_config_new();
	if (cfg == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	struct event_base *b = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return b;
}
