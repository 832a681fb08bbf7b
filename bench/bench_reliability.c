/*
 * bench_reliability.c: figures for bench/README "Reliability (issue 13)".
 *
 *   bench_reliability VQS_BINARY WORKDIR [kills]
 *
 * 1. crash: `vqs import` is SIGKILLed `kills` times (default 20) after a
 *    varying number of acknowledged batches; after each kill the directory
 *    is opened again and must hold every acknowledged point (and whole
 *    batches only). Counts kills survived and acknowledged points lost.
 * 2. cost: a server with 2 workers and the default limits over 100,000
 *    points: the issue's request (200 searches x limit 10,000), the largest
 *    batch the defaults allow, two clients sending it back to back while a
 *    third asks `points/count` 200 times (the cheap request's latency
 *    percentiles, peak RSS), and a request stopped by its deadline.
 * 3. slow clients: 1,100 connections from 127.0.0.2 each send one byte
 *    every 0.25 s; a client on 127.0.0.1 sends GET /collections meanwhile:
 *    requests answered, their p50/p99, and how long until every attacking
 *    connection was closed by the server.
 * 4. disk full: `vqs serve` under a 64 MB file size limit takes 1 MB
 *    upserts until LMDB's file cannot grow: the status answered, the points
 *    acknowledged and found after a restart without the limit.
 * Everything runs on loopback; each part is bounded in requests and time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vqs_collection.h"
#include "vqs_http.h"
#include "vqs_index.h"
#include "vqs_store.h"

static const char *vqs_bin;

/* ---- a minimal HTTP client ------------------------------------------------ */

static int connect_from(int port, const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (src) {
        struct sockaddr_in me = {0};
        me.sin_family = AF_INET;
        inet_pton(AF_INET, src, &me.sin_addr);
        if (bind(fd, (struct sockaddr *)&me, sizeof me)) {
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* one request on a new connection; returns the status (0: no answer); body, if
 * wanted, malloc'd */
static int http(int port, const char *method, const char *path, const char *ctype, const void *body, size_t len,
                char **out)
{
    int fd = connect_from(port, NULL);
    if (fd < 0)
        return 0;
    char h[512];
    int hl = snprintf(h, sizeof h,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: %s\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      method, path, ctype, len);
    if (send(fd, h, (size_t)hl, MSG_NOSIGNAL) != hl) {
        close(fd);
        return 0;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, (const char *)body + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    for (ssize_t r; buf && (r = recv(fd, buf + n, cap - n - 1, 0)) > 0;) {
        n += (size_t)r;
        if (n + 1 == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b)
                break;
            buf = b;
        }
    }
    close(fd);
    int code = 0;
    if (buf) {
        buf[n] = 0;
        if (n > 12 && !strncmp(buf, "HTTP/1.1 ", 9))
            code = atoi(buf + 9);
    }
    if (out)
        *out = buf;
    else
        free(buf);
    return code;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_d);
    return n ? v[(size_t)(p * (double)(n - 1) + 0.5)] : 0;
}

/* ---- 1. crash ---------------------------------------------------------------- */

static void part_crash(const char *work, int kills)
{
    char dir[600], vec[600];
    snprintf(dir, sizeof dir, "%s/crash", work);
    snprintf(vec, sizeof vec, "%s/crash.fvecs", work);
    const size_t n = 200000, d = 64, batch = 1000;
    float *x = malloc(sizeof(float) * n * d);
    vqs_synth_opts so = {.seed = 7};
    vqs_synth_gmm(&so, n, d, x);
    vqs_write_fvecs(vec, n, d, x);
    free(x);
    int survived = 0;
    uint64_t lost = 0, partial = 0, acked_total = 0;
    for (int k = 0; k < kills; k++) {
        char cmd[1400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            return;
        int pfd[2];
        if (pipe(pfd))
            return;
        pid_t pid = fork();
        if (pid == 0) {
            dup2(pfd[1], 1);
            close(pfd[0]);
            close(pfd[1]);
            int nul = open("/dev/null", O_WRONLY);
            dup2(nul, 2);
            execl(vqs_bin, "vqs", "import", "--data", dir, "--collection", "c", "--spec", "IVF64,SQ8", "--vectors",
                  vec, "--batch", "1000", "--train-size", "20000", (char *)NULL);
            _exit(127);
        }
        close(pfd[1]);
        FILE *f = fdopen(pfd[0], "r");
        int want = 3 + k * 7 % 60; /* acknowledged batches before the kill */
        char line[256];
        unsigned long long acked = 0;
        for (int i = 0; i < want && fgets(line, sizeof line, f); i++)
            sscanf(line, "committed %*u points, total %llu", &acked);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fclose(f);
        vqs_catalog *cat = NULL;
        uint64_t have = 0;
        if (vqs_catalog_open(dir, NULL, &cat) == 0) {
            vqs_coll *c = NULL;
            if (vqs_coll_open(cat, "c", NULL, &c) == 0)
                have = vqs_coll_count(c);
            vqs_coll_close(c);
            vqs_catalog_close(cat);
        }
        acked_total += acked;
        if (have >= acked)
            survived++;
        else
            lost += acked - have;
        partial += have % batch != 0;
    }
    printf("crash: %d SIGKILLs of vqs import (200,000 x 64, batches of 1,000, IVF64,SQ8): %d reopened with every "
           "acknowledged point (%llu acknowledged in all), %llu acknowledged points lost, %llu partial batches\n",
           kills, survived, (unsigned long long)acked_total, (unsigned long long)lost,
           (unsigned long long)partial);
}

/* ---- 2. cost ------------------------------------------------------------------ */

typedef struct heavy_arg {
    int port, stop;
    const char *path, *ctype;
    const char *body;
    size_t len;
    int n200, n503, nother, requests;
    double secs;
} heavy_arg;

static void *heavy_main(void *p)
{
    heavy_arg *a = p;
    while (!__atomic_load_n(&a->stop, __ATOMIC_RELAXED)) {
        double t0 = vqs_now();
        int code = http(a->port, "POST", a->path, a->ctype, a->body, a->len, NULL);
        a->secs += vqs_now() - t0;
        a->requests++;
        if (code == 200)
            a->n200++;
        else if (code == 503)
            a->n503++;
        else
            a->nother++;
    }
    return NULL;
}

/* JSON batch of ns searches with limit lim, queries from x */
static char *batch_json(const float *x, size_t d, size_t ns, size_t lim, size_t *len)
{
    size_t cap = ns * (d * 16 + 64) + 64, o = 0;
    char *b = malloc(cap);
    o += (size_t)sprintf(b + o, "{\"searches\":[");
    for (size_t i = 0; i < ns; i++) {
        o += (size_t)sprintf(b + o, "%s{\"limit\":%zu,\"with_payload\":true,\"vector\":[", i ? "," : "", lim);
        for (size_t j = 0; j < d; j++)
            o += (size_t)sprintf(b + o, "%s%.7g", j ? "," : "", (double)x[i * d + j]);
        o += (size_t)sprintf(b + o, "]}");
    }
    o += (size_t)sprintf(b + o, "]}");
    *len = o;
    return b;
}

static long rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

static void part_cost(const char *work)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/cost", work);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return;
    vqs_server_opts o = {0};
    o.threads = 2;
    vqs_server *s = NULL;
    if (vqs_server_start(dir, &o, &s)) {
        fprintf(stderr, "cost: %s\n", vqs_errdetail());
        return;
    }
    int port = vqs_server_port(s);
    /* the issue's setting: 100,000 points (here 128-d, the default SQ8 collection with
     * float32 re-scoring from disk, trained automatically at 10,000 points), each
     * with a small payload */
    const size_t n = 100000, d = 128;
    const char *cfg = "{\"vectors\":{\"size\":128,\"distance\":\"Euclid\"}}";
    http(port, "PUT", "/collections/c", "application/json", cfg, strlen(cfg), NULL);
    float *x = malloc(sizeof(float) * n * d);
    vqs_synth_opts so = {.seed = 3};
    vqs_synth_gmm(&so, n, d, x);
    size_t per = 2000;
    char *b = malloc(per * (d * 16 + 100) + 64);
    for (size_t b0 = 0; b0 < n; b0 += per) {
        size_t off = (size_t)sprintf(b, "{\"points\":[");
        for (size_t i = 0; i < per; i++) {
            off += (size_t)sprintf(b + off, "%s{\"id\":%zu,\"payload\":{\"n\":%zu,\"tag\":\"t%zu\"},\"vector\":[",
                                   i ? "," : "", b0 + i, b0 + i, (b0 + i) % 7);
            for (size_t j = 0; j < d; j++)
                off += (size_t)sprintf(b + off, "%s%.7g", j ? "," : "", (double)x[(b0 + i) * d + j]);
            off += (size_t)sprintf(b + off, "]}");
        }
        off += (size_t)sprintf(b + off, "]}");
        if (http(port, "PUT", "/collections/c/points", "application/json", b, off, NULL) != 200)
            fprintf(stderr, "cost: upsert failed\n");
    }
    free(b);
    long rss0 = rss_mb();
    /* (a) the issue's request: 200 searches x limit 10,000 */
    size_t len;
    char *issue = batch_json(x, d, 200, 10000, &len);
    char *ans = NULL;
    double t0 = vqs_now();
    int code = http(port, "POST", "/collections/c/points/search/batch", "application/json", issue, len, &ans);
    double ta = vqs_now() - t0;
    const char *m = ans ? strstr(ans, "\"error\":\"") : NULL;
    printf("cost: the issue's request (search/batch, 200 searches x limit 10,000, with payloads, 100,000 x 128 "
           "points): HTTP %d in %.1f ms: %.150s\n",
           code, ta * 1e3, m ? m + 9 : "");
    free(ans);
    free(issue);
    /* (b) the largest batch the defaults allow: 10 searches x limit 2,500 (x
     * oversampling 4 = 100,000 re-scored candidates, --max-candidates) */
    char *big = batch_json(x, d, 10, 2500, &len);
    ans = NULL;
    t0 = vqs_now();
    code = http(port, "POST", "/collections/c/points/search/batch", "application/json", big, len, &ans);
    double tb = vqs_now() - t0;
    printf("cost: the largest batch the defaults allow (10 searches x limit 2,500, with payloads): HTTP %d in %.2f "
           "s, %.1f MB answered\n",
           code, tb, ans ? strlen(ans) / 1e6 : 0.0);
    free(ans);
    /* (c) two clients send (b) back to back, keeping both workers busy, while
     * a third asks points/count */
    double alone[200], busy[200];
    for (int i = 0; i < 200; i++) {
        double t1 = vqs_now();
        http(port, "POST", "/collections/c/points/count", "application/json", "{}", 2, NULL);
        alone[i] = vqs_now() - t1;
    }
    heavy_arg h[2] = {{port, 0, "/collections/c/points/search/batch", "application/json", big, len, 0, 0, 0, 0, 0},
                      {port, 0, "/collections/c/points/search/batch", "application/json", big, len, 0, 0, 0, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, heavy_main, &h[i]);
    usleep(300000);
    int ok = 0;
    for (int i = 0; i < 200; i++) {
        double t1 = vqs_now();
        ok += http(port, "POST", "/collections/c/points/count", "application/json", "{}", 2, NULL) == 200;
        busy[i] = vqs_now() - t1;
        usleep(50000);
    }
    for (int i = 0; i < 2; i++)
        __atomic_store_n(&h[i].stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    printf("cost: two clients sending that batch back to back: %d requests, %d answered 200 (mean %.2f s), %d 503, "
           "%d other; process peak RSS %ld MB (%ld MB before the searches; the server runs in this process, with "
           "the client's 51 MB of vectors)\n",
           h[0].requests + h[1].requests, h[0].n200 + h[1].n200,
           (h[0].secs + h[1].secs) / (double)(h[0].requests + h[1].requests), h[0].n503 + h[1].n503,
           h[0].nother + h[1].nother, rss_mb(), rss0);
    printf("cost: points/count (cheap), 200 requests: alone p50 %.2f ms p99 %.2f ms; while both workers run those "
           "batches: %d/200 answered 200, p50 %.2f ms p99 %.2f ms, max %.2f ms\n",
           pct(alone, 200, 0.5) * 1e3, pct(alone, 200, 0.99) * 1e3, ok, pct(busy, 200, 0.5) * 1e3,
           pct(busy, 200, 0.99) * 1e3, pct(busy, 200, 1.0) * 1e3);
    free(big);
    /* (d) the deadline: 10,000 queries in one binary request, ?timeout=2 */
    size_t nq = 10000;
    t0 = vqs_now();
    ans = NULL;
    code = http(port, "POST", "/collections/c/points/search?limit=10&rescore=false&timeout=2",
                "application/octet-stream", x, nq * d * 4, &ans);
    double td = vqs_now() - t0;
    m = ans ? strstr(ans, "\"error\":\"") : NULL;
    printf("cost: 10,000 binary queries (limit 10, no re-scoring) with ?timeout=2: HTTP %d after %.2f s%s%.100s\n", code, td,
           m ? ": " : "", m ? m + 9 : "");
    free(ans);
    free(x);
    vqs_server_stop(s, 30);
}

/* ---- 3. slow clients ------------------------------------------------------------ */

static void part_slow(const char *work)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max < 8192 ? rl.rlim_max : 8192;
    setrlimit(RLIMIT_NOFILE, &rl);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/slow", work);
    vqs_server_opts o = {0}; /* the defaults: 1,000 connections, 128 per address, idle 10 s, read 30 s */
    vqs_server *s = NULL;
    if (vqs_server_start(dir, &o, &s)) {
        fprintf(stderr, "slow: %s\n", vqs_errdetail());
        return;
    }
    int port = vqs_server_port(s);
    enum { NATT = 1100 };
    static int fds[NATT];
    static char closed[NATT];
    int made = 0;
    for (int i = 0; i < NATT; i++)
        if ((fds[made] = connect_from(port, "127.0.0.2")) >= 0)
            made++;
    const char *slow = "POST /collections/x/points/search HTTP/1.1\r\nHost: a\r\n";
    size_t slen = strlen(slow), step = 0;
    int open_ = made, answered = 0, asked = 0;
    static double lat[4000];
    double t0 = vqs_now(), all_closed = -1;
    int early = -1; /* closed within the first 2 s */
    while (vqs_now() - t0 < 45 && asked < 4000) {
        for (int i = 0; i < made; i++) {
            if (closed[i])
                continue;
            struct pollfd p = {fds[i], POLLIN, 0};
            char buf[64];
            if (poll(&p, 1, 0) > 0 && recv(fds[i], buf, sizeof buf, MSG_DONTWAIT) <= 0) {
                closed[i] = 1;
                open_--;
                continue;
            }
            send(fds[i], slow + step % slen, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        step++;
        if (open_ == 0 && all_closed < 0)
            all_closed = vqs_now() - t0;
        if (early < 0 && vqs_now() - t0 > 2)
            early = made - open_;
        for (int r = 0; r < 10; r++) {
            double a = vqs_now();
            int code = http(port, "GET", "/collections", "application/json", "", 0, NULL);
            lat[asked++] = vqs_now() - a;
            answered += code == 200;
        }
        usleep(250000);
    }
    for (int i = 0; i < made; i++)
        close(fds[i]);
    printf("slow clients: %d connections from 127.0.0.2 sending one byte every 0.25 s (defaults: 128 per address, "
           "idle 10 s, read deadline 30 s): %d closed by the server within 2 s, %s%.1f s until it had closed all "
           "of them; GET /collections from 127.0.0.1 meanwhile: %d/%d answered 200, p50 %.2f ms, p99 %.2f ms\n",
           made, early, all_closed < 0 ? "more than " : "", all_closed < 0 ? 45.0 : all_closed, answered, asked,
           pct(lat, (size_t)asked, 0.5) * 1e3, pct(lat, (size_t)asked, 0.99) * 1e3);
    vqs_server_stop(s, 5);
}

/* ---- 4. disk full ----------------------------------------------------------------- */

static pid_t serve_limited(const char *dir, off_t limit, int *port)
{
    int pfd[2];
    if (pipe(pfd))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        if (limit) {
            struct rlimit rl = {(rlim_t)limit, (rlim_t)limit};
            setrlimit(RLIMIT_FSIZE, &rl);
        }
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execl(vqs_bin, "vqs", "serve", "--data", dir, "--port", "0", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char line[512] = "";
    FILE *f = fdopen(pfd[0], "r");
    if (!fgets(line, sizeof line, f))
        line[0] = 0;
    fclose(f);
    const char *p = strstr(line, "127.0.0.1:");
    *port = p ? atoi(p + 10) : 0;
    return pid;
}

static void part_full(const char *work)
{
    char dir[600], cmd[700];
    snprintf(dir, sizeof dir, "%s/full", work);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return;
    int port;
    pid_t pid = serve_limited(dir, 64 << 20, &port);
    const char *cfg = "{\"vectors\":{\"size\":4,\"distance\":\"Dot\"},\"vqs\":{\"train_size\":0,\"rerank\":\"none\"}}";
    http(port, "PUT", "/collections/p", "application/json", cfg, strlen(cfg), NULL);
    size_t pad = 100000, per = 10;
    char *body = malloc(per * (pad + 100) + 64);
    unsigned long long acked = 0;
    int code = 0, reqs = 0;
    char *err = NULL;
    for (; reqs < 200; reqs++) {
        size_t o = (size_t)sprintf(body, "{\"points\":[");
        for (size_t i = 0; i < per; i++) {
            o += (size_t)sprintf(body + o, "%s{\"id\":%llu,\"vector\":[1,2,3,4],\"payload\":{\"pad\":\"", i ? "," : "",
                                 acked + i);
            memset(body + o, 'p', pad);
            o += pad;
            o += (size_t)sprintf(body + o, "\"}}");
        }
        o += (size_t)sprintf(body + o, "]}");
        free(err);
        err = NULL;
        code = http(port, "PUT", "/collections/p/points", "application/json", body, o, &err);
        if (code != 200)
            break;
        acked += per;
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    pid = serve_limited(dir, 0, &port);
    char *cnt = NULL;
    http(port, "POST", "/collections/p/points/count", "application/json", "{}", 2, &cnt);
    const char *c = cnt ? strstr(cnt, "\"count\":") : NULL;
    unsigned long long after = c ? strtoull(c + 8, NULL, 10) : 0;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    const char *msg = err ? strstr(err, "\"error\":\"") : NULL;
    printf("disk full: vqs serve under a 64 MB file size limit, upserts of 10 points x 100 KB payloads: %d "
           "acknowledged (%llu points), then HTTP %d (%.160s); after a restart without the limit %llu points, "
           "%s\n",
           reqs, acked, code, msg ? msg + 9 : "?", after, after == acked ? "none lost" : "MISMATCH");
    free(err);
    free(cnt);
    free(body);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_reliability VQS_BINARY WORKDIR [kills]\n");
        return 2;
    }
    vqs_bin = argv[1];
    signal(SIGPIPE, SIG_IGN);
    mkdir(argv[2], 0755);
    part_crash(argv[2], argc > 3 ? atoi(argv[3]) : 20);
    part_cost(argv[2]);
    part_slow(argv[2]);
    part_full(argv[2]);
    return 0;
}
