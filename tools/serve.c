/*
 * serve.c: `vqs serve --data DIR [options]` (vqs_serve_help): the HTTP service
 * of api/ until SIGTERM or SIGINT, then a graceful stop (requests in flight
 * finish, LMDB is closed cleanly). The api key may come from VQS_API_KEY
 * instead of --api-key (kept out of the process list).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "vqs_http.h"

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

static pthread_t main_thread;

/* Runs only in a thread that does not block the signal: one started before
 * main (OpenBLAS's pool). Forwards it to the main thread, which blocks it
 * and takes it in sigwait. pthread_kill is async-signal-safe. */
static void forward_stop_signal(int sig) { pthread_kill(main_thread, sig); }

static const vqs_cli_opt opts[] = {
    {"data", 'D', 0, "DIR", NULL, "the data directory (required; created if missing)"},
    {"host", 'H', 0, "ADDR", "127.0.0.1", "the address to bind"},
    {"port", 'p', 0, "PORT", "6333", "the port, 0..65535; 0: an ephemeral one (printed)"},
    {"threads", 't', 0, "N", "all cores, or VQS_THREADS", "workers for searches and writes, 1..1024"},
    {"api-key", 'k', 0, "KEY", "VQS_API_KEY, else none", "every request must carry it (header api-key, or Authorization:\nBearer KEY)"},
    {"max-body", 'b', 0, "BYTES", "64M", "one request body; larger ones get 413"},
    {"max-body-total", 'B', 0, "BYTES", "1G", "request bodies held at once; past it 503 + Retry-After"},
    {"max-batch", 'n', 0, "N", "10000", "points, searches or ids per request"},
    {"max-limit", 'L', 0, "N", "10000", "limit + offset of a search"},
    {"max-results", 'R', 0, "N", "100000", "the sum of limit + offset over a request"},
    {"max-candidates", 'C', 0, "N", "100000", "re-scored candidates per request"},
    {"max-response", 'r', 0, "BYTES", "64M", "one response body"},
    {"timeout", 'T', 0, "S", "30", "seconds per request, (0, 86400]"},
    {"queue", 'Q', 0, "N", "64", "requests waiting for a worker; then 503 + Retry-After"},
    {"max-conn", 'm', 0, "N", "1000", "open connections"},
    {"max-conn-per-ip", 'i', 0, "N", "128", "open connections from one address"},
    {"idle-timeout", 'I', 0, "S", "10", "seconds a connection may stay silent"},
    {"read-timeout", 'W', 0, "S", "30", "seconds from a connection's start, or its previous response,\nto a complete request"},
    {"verbose", 'v', 0, NULL, NULL, "a line per request on stderr (5xx are always logged)"},
    {0}};

const vqs_cli_help vqs_serve_help = {
    .cmd = "serve",
    .usage = "--data DIR [--host 127.0.0.1] [--port 6333] [--threads N] [--api-key KEY]\n"
             "[--max-body BYTES] [--max-body-total BYTES] [--max-batch N] [--max-limit N]\n"
             "[--max-results N] [--max-candidates N] [--max-response BYTES] [--timeout S]\n"
             "[--queue N] [--max-conn N] [--max-conn-per-ip N] [--idle-timeout S]\n"
             "[--read-timeout S] [--verbose]",
    .about = "The HTTP service over a data directory, in Qdrant's REST shapes (api/README.md:\n"
             "endpoints, limits), until SIGTERM or SIGINT; then requests in flight finish and\n"
             "the data is closed cleanly. A writer: holds the directory's lock. Sizes take K,\n"
             "M or G. The api key may also come from the environment: VQS_API_KEY (kept out of\n"
             "the process list).\n",
    .opts = opts,
    .example = "VQS_API_KEY=secret vqs serve --data /var/lib/vqs --port 6333 --threads 8\n",
};

int vqs_cmd_serve(int argc, char **argv)
{
    const char *dir = NULL;
    vqs_server_opts o = {0};
    o.port = 6333;
    size_t v;
    int ch, rc = 0;
    optind = 1;
    while ((ch = vqs_cli_getopt(argc, argv, &vqs_serve_help)) != -1) {
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
            vqs_cli_help_print(stdout, &vqs_serve_help);
            return 0;
        default:
            return vqs_cli_bad_option(&vqs_serve_help);
        }
        if (rc)
            return vqs_cli_fail("serve", rc);
    }
    if (!dir) {
        vqs_cli_usage(stderr, &vqs_serve_help);
        return vqs_cli_fail("serve", vqs_seterr(VQS_EUSAGE, "--data is required"));
    }
    if (!o.api_key)
        o.api_key = getenv("VQS_API_KEY");
    /* SIGTERM / SIGINT are blocked here before the server's threads start
     * (they inherit the mask) and taken by sigwait in this thread. Threads
     * started before main (OpenBLAS's pool) do not block them: a signal
     * delivered to one of those killed the process, so a handler there
     * forwards it to this thread. Rejected: a handler writing to a pipe read
     * here (under ThreadSanitizer the handler's delivery waited while this
     * thread sat in read, and the server never stopped). */
    main_thread = pthread_self();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward_stop_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
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
