/* The service loop's side of the metrics: starting and stopping the endpoint, publishing a snapshot. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/metrics-service.h"
#include "common/log.h"

void agent_metrics_endpoint_apply(struct agent_metrics_endpoint *e, const char *want) {
        struct metrics_listen l;
        int r;

        if (want && e->listen && strcmp(want, e->listen) == 0)
                return;
        e->http = metrics_http_stop(e->http);
        free(e->listen);
        e->listen = NULL;
        if (!want)
                return;
        r = metrics_listen_parse(want, &l, NULL);
        if (r >= 0)
                r = metrics_http_start(&l, &e->http);
        if (r >= 0 && !(e->listen = strdup(want))) {
                e->http = metrics_http_stop(e->http);
                r = -ENOMEM;
        }
        if (r < 0) {
                log_error_errno(r, "Cannot serve metrics on '%s', continuing without them: %m", want);
                return;
        }
        log_info("Serving metrics on '%s' (GET /metrics)", want);
}

void agent_metrics_publish_service(struct agent_token *const *tokens, size_t n, const struct launcher *l) {
        _cleanup_free_ struct agent_metrics_token *t = NULL;

        t = calloc(MAX(n, (size_t) 1), sizeof(*t));
        if (!t)
                return;
        for (size_t i = 0; i < n; i++) {
                const struct agent_token *a = tokens[i];

                t[i] = (struct agent_metrics_token){
                        .not_after = a->cur.not_after,
                        .synced_at = a->synced_at,
                        .refreshed_at = a->refreshed_at,
                        /* an encrypted key is provisioned and refreshed only through an attested round */
                        .attested_at = agent_config_token_encrypted(a->cfg) ? a->refreshed_at : 0,
                        .expires = a->expires,
                        .ready = a->state == AGENT_TOKEN_READY,
                };
                (void) snprintf(t[i].label, sizeof(t[i].label), "%s", a->label);
        }
        if (agent_metrics_publish(t, n, l->running ? l->control_address : NULL) < 0)
                log_debug("Cannot publish the metrics snapshot (out of memory), ignoring");
}
