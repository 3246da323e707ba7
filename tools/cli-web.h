/* `enclave-acm web apply`: the parsed command line, shared by its parser and its applying side. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "parent/webapply.h"
#include "common/cleanup.h"

#define WEB_MAX_LIST 16 /* entries of --env (the two defaults included), --disable-include */

struct web_args {
        enum webapply_server server;
        const char *cert, *token, *key_label, *pin_file, *key_uri;
        unsigned long key_id;
        const char *stanza, *main_conf, *conf;
        const char *server_name;
        unsigned long port;
        const char *env[WEB_MAX_LIST + 1], *disable[WEB_MAX_LIST + 1];
        size_t n_env, n_disable;
        const char *engine;
        bool no_crypto_device, dry_run;
        enum webapply_control control;
        const char *binary, *httpd_config, *pid_file, *service;
        unsigned long timeout_s;
        unsigned long reload_wait_ms; /* how long the server is watched after a reload or a start */
        bool no_start;                /* a server that is not running is left so (not started) */
        const char *found_pid_file;   /* direct mode without --pid-file: the server's, as found */
        char *pin_mask;               /* the pin-value= of --key-uri, masked in the servers' output */
        const char *uri;              /* the key's, built from the options above */
};

/* Render / edit the files of a->server and apply each one with webapply_file(), saying what changed
 * and the server's verdict; in direct mode without --pid-file, the server's pid file is found first
 * (webapply_pid_file_find()). Logs its failures. Returns 0 or a negative errno. (cli-web-apply.c) */
int cli_web_apply(const struct web_args *a);

/* For strings that may hold a PIN (a pin-value= URI, a stanza, a config file). */
static inline void wipe_freep(char **p) {
        if (*p)
                explicit_bzero(*p, strlen(*p));
        free(*p);
}
