/* The service loop's side of the metrics: the endpoint's life and the snapshot a scrape reads. */
#pragma once

#include "agent/launcher/launcher.h"
#include "agent/metrics-http.h"
#include "agent/token.h"

struct agent_metrics_endpoint {
        struct metrics_http *http; /* NULL: not serving */
        char *listen;              /* the address it serves on */
};

/* Starts, moves or stops the endpoint to serve on want (NULL: stop). A failure to serve is logged, never
 * fatal: the agent keeps provisioning without metrics. */
void agent_metrics_endpoint_apply(struct agent_metrics_endpoint *e, const char *want);
/* Publishes the tokens' and the enclave's state for the next scrapes (a copy). */
void agent_metrics_publish_service(struct agent_token *const *tokens, size_t n, const struct launcher *l);
