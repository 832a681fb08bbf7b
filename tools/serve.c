/*
 * serve.c: `vqs serve --data DIR [options]` (SERVE_USAGE): the HTTP service
 * of api/ until SIGTERM or SIGINT, then a graceful stop (requests in flight
 * finish, LMDB is closed cleanly). The api key may come from VQS_API_KEY
 * instead of --api-key (kept out of the process list).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "vqs_http.h"

#define SERVE_USAGE                                                                                    \
    "usage: vqs serve --data DIR [--host 127.0.0.1] [--port 6333] [--threads N] [--api-key KEY]\n"     \
    "                 [--max-body BYTES] [--max-body-total BYTES] [--max-batch N] [--max-limit N]\n"    \
    "                 [--max-results N] [--max-candidates N] [--max-response BYTES] [--timeout S]\n"    \
    "                 [--queue N] [--max-conn N] [--max-conn-per-ip N] [--idle-timeout S]\n"            \
    "                 [--read-timeout S] [--verbose]\n"                                                  \
    "limits (defaults): --max-body 64M (one body), --max-body-total 1G (bodies held at once),\n"       \
    "  --max-batch 10000 (points, searches or ids per request), --max-limit 10000 (limit + offset),\n" \
    "  --max-results 100000 (sum of limit + offset over a request), --max-candidates 100000\n"         \
    "  (re-scored candidates per request), --max-response 64M, --timeout 30 (seconds per request),\n" \
    "  --queue 64 (requests waiting for a worker; then 503 + Retry-After), --max-conn 1000,\n"         \
    "  --max-conn-per-ip 128, --idle-timeout 10, --read-timeout 30 (a complete request within S s).\n" \
    "Sizes take K, M or G. The api key may also come from the environment: VQS_API_KEY."

/* a count in 1..1,000,000 (queue and connection limits) */
static int parse_int_opt(const char *arg, int *out, const char *what)
{
    size_t v;
    int rc = vqs_cli_parse_positive(arg, &v, what);
    if (!rc && v > 1000000)
        rc = vqs_seterr(VQS_EUSAGE, "%s %s: 1..1000000", what, arg);
    if (!rc)
        *out = (int)v;
    return rc;
}

/* seconds in (0, 86400] */
static int parse_secs(const char *arg, double *out, const char *what)
{
    char *end;
    double x = strtod(arg, &end);
    if (*end || !(x > 0 && x <= 86400))
        return vqs_seterr(VQS_EUSAGE, "%s %s: seconds in (0, 86400]", what, arg);
    *out = x;
    return 0;
}

int vqs_cmd_serve(int argc, char **argv)
{
    static const struct option lo[] = {{"data", 1, 0, 'D'},     {"host", 1, 0, 'H'},      {"port", 1, 0, 'p'},
                                       {"threads", 1, 0, 't'},  {"api-key", 1, 0, 'k'},   {"max-body", 1, 0, 'b'},
                                       {"max-batch", 1, 0, 'n'}, {"verbose", 0, 0, 'v'}, {"help", 0, 0, 'h'},
                                       {"max-limit", 1, 0, 'L'}, {"max-results", 1, 0, 'R'},
                                       {"max-candidates", 1, 0, 'C'}, {"max-response", 1, 0, 'r'},
                                       {"timeout", 1, 0, 'T'}, {"queue", 1, 0, 'Q'}, {"max-conn", 1, 0, 'm'},
                                       {"max-conn-per-ip", 1, 0, 'i'}, {"idle-timeout", 1, 0, 'I'},
                                       {"read-timeout", 1, 0, 'W'}, {"max-body-total", 1, 0, 'B'},
                                       {0, 0, 0, 0}};
    const char *dir = NULL;
    vqs_server_opts o = {0};
    o.port = 6333;
    size_t v;
    int ch, rc = 0;
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
        case 'L':
            rc = vqs_cli_parse_positive(optarg, &o.max_limit, "--max-limit");
            break;
        case 'R':
            rc = vqs_cli_parse_positive(optarg, &o.max_results, "--max-results");
            break;
        case 'C':
            rc = vqs_cli_parse_positive(optarg, &o.max_candidates, "--max-candidates");
            break;
        case 'B':
            rc = vqs_cli_parse_positive(optarg, &o.max_body_total, "--max-body-total");
            break;
        case 'r':
            rc = vqs_cli_parse_positive(optarg, &o.max_response, "--max-response");
            break;
        case 'Q':
            rc = parse_int_opt(optarg, &o.queue, "--queue");
            break;
        case 'm':
            rc = parse_int_opt(optarg, &o.max_conn, "--max-conn");
            break;
        case 'i':
            rc = parse_int_opt(optarg, &o.max_conn_per_ip, "--max-conn-per-ip");
            break;
        case 'T':
            rc = parse_secs(optarg, &o.timeout, "--timeout");
            break;
        case 'I':
            rc = parse_secs(optarg, &o.idle_timeout, "--idle-timeout");
            break;
        case 'W':
            rc = parse_secs(optarg, &o.read_timeout, "--read-timeout");
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
        if (rc)
            return vqs_cli_fail("serve", rc);
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
