/*
 * serve.c: `vqs serve --data DIR [--host 127.0.0.1] [--port 6333]
 * [--threads N] [--api-key KEY] [--max-body BYTES] [--max-batch N]
 * [--verbose]`: the HTTP service of api/ until SIGTERM or SIGINT, then a
 * graceful stop (requests in flight finish, LMDB is closed cleanly).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vqs_http.h"

#define SERVE_USAGE                                                                                \
    "usage: vqs serve --data DIR [--host 127.0.0.1] [--port 6333] [--threads N] [--api-key KEY]\n" \
    "                 [--max-body BYTES] [--max-batch N] [--verbose]"

int vqs_cmd_serve(int argc, char **argv)
{
    static const struct option lo[] = {{"data", 1, 0, 'D'},     {"host", 1, 0, 'H'},      {"port", 1, 0, 'p'},
                                       {"threads", 1, 0, 't'},  {"api-key", 1, 0, 'k'},   {"max-body", 1, 0, 'b'},
                                       {"max-batch", 1, 0, 'n'}, {"verbose", 0, 0, 'v'}, {"help", 0, 0, 'h'},
                                       {0, 0, 0, 0}};
    const char *dir = NULL;
    vqs_server_opts o = {0};
    o.port = 6333;
    size_t v;
    int ch, rc;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'D':
            dir = optarg;
            break;
        case 'H':
            o.host = optarg;
            break;
        case 'p':
            if ((rc = vqs_cli_parse_size(optarg, &v, "--port")) || v > 65535)
                return vqs_cli_fail("serve", rc ? rc : vqs_seterr(VQS_EUSAGE, "--port %s: 0..65535", optarg));
            o.port = (int)v;
            break;
        case 't':
            if ((rc = vqs_cli_parse_size(optarg, &v, "--threads")) || v == 0 || v > 1024)
                return vqs_cli_fail("serve", rc ? rc : vqs_seterr(VQS_EUSAGE, "--threads %s: 1..1024", optarg));
            o.threads = (int)v;
            break;
        case 'k':
            o.api_key = optarg;
            break;
        case 'b':
            if ((rc = vqs_cli_parse_size(optarg, &o.max_body, "--max-body")) || o.max_body == 0)
                return vqs_cli_fail("serve", rc ? rc : vqs_seterr(VQS_EUSAGE, "--max-body must be > 0"));
            break;
        case 'n':
            if ((rc = vqs_cli_parse_size(optarg, &o.max_batch, "--max-batch")) || o.max_batch == 0)
                return vqs_cli_fail("serve", rc ? rc : vqs_seterr(VQS_EUSAGE, "--max-batch must be > 0"));
            break;
        case 'v':
            o.verbose = 1;
            break;
        case 'h':
            printf("%s\n", SERVE_USAGE);
            return 0;
        default:
            return vqs_cli_fail("serve", vqs_seterr(VQS_EUSAGE, SERVE_USAGE));
        }
    }
    if (!dir)
        return vqs_cli_fail("serve", vqs_seterr(VQS_EUSAGE, "--data is required\n" SERVE_USAGE));
    if (!o.api_key)
        o.api_key = getenv("VQS_API_KEY");
    /* the signals are taken synchronously by this thread: block them before
     * the server's threads start, so that they inherit the mask */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    vqs_server *s = NULL;
    if ((rc = vqs_server_start(dir, &o, &s)))
        return vqs_cli_fail("serve", rc);
    printf("vqs serve: listening on http://%s:%d (data %s, %d threads%s)\n", o.host ? o.host : "127.0.0.1",
           vqs_server_port(s), dir, o.threads ? o.threads : vqs_default_threads(),
           o.api_key && *o.api_key ? ", api-key required" : "");
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    printf("vqs serve: %s: stopping (requests in flight finish)\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    fflush(stdout);
    vqs_server_stop(s, 30);
    printf("vqs serve: stopped\n");
    return 0;
}
