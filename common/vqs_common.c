/*
 * vqs_common.c: errors, threads, RNG and synthetic data.
 *
 * Design decisions:
 * - The detail string is thread-local (C11 _Thread_local) rather than stored
 *   in handles: many failures happen before a handle exists (opening a file),
 *   and LMDB/libuv-style callers already check rc after every call.
 * - vqs_parallel_for uses plain pthreads with an atomic work counter instead
 *   of OpenMP: the library then has no OpenMP runtime of its own (FAISS's
 *   libgomp is only linked into tests and benches), and ASan/TSan understand
 *   pthreads without extra suppression files.
 * - The threads are a persistent pool, started on first use and grown to the
 *   largest count asked for; a call hands its job to the pool under one
 *   mutex and the pool's threads join it. Starting threads per call cost
 *   ~20% of a small k-means in scheduler time (perf). Only one job owns the
 *   pool at a time: a concurrent call from another thread (two server
 *   requests) starts its own threads as before, and a nested call from
 *   inside a task runs serially in the calling thread (as OpenMP's default),
 *   so parallel loops never oversubscribe the cores or deadlock.
 * - The RNG is xoshiro256** seeded through splitmix64: fast, well tested and
 *   identical on every platform, unlike rand()/random().
 */
#define _GNU_SOURCE
#include "vqs_common.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char tl_detail[1024];

const char *vqs_strerror(int rc)
{
    if (rc == 0)
        return "success";
    switch (rc) {
#define X(name, off, msg) \
    case VQS_##name:      \
        return msg;
        VQS_ERRNO_MAP(X)
#undef X
    default:
        break;
    }
    if (rc < 0 && rc > -4096)
        return strerror(-rc);
    return "unknown error";
}

const char *vqs_err_name(int rc)
{
    if (rc == 0)
        return "OK";
    switch (rc) {
#define X(name, off, msg) \
    case VQS_##name:      \
        return "VQS_" #name;
        VQS_ERRNO_MAP(X)
#undef X
    default:
        break;
    }
    if (rc < 0 && rc > -4096) {
        const char *n = strerrorname_np(-rc);
        return n ? n : "E?";
    }
    return "UNKNOWN";
}

const char *vqs_errdetail(void) { return tl_detail; }

void vqs_clearerr(void) { tl_detail[0] = '\0'; }

int vqs_seterr(int rc, const char *fmt, ...)
{
    /* formatted aside first: callers may pass vqs_errdetail() as an
     * argument, to wrap the detail they got in their own words */
    char b[sizeof tl_detail];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    memcpy(tl_detail, b, sizeof b);
    return rc;
}

int vqs_metric_parse(const char *s, vqs_metric *out)
{
    static const struct {
        const char *name;
        vqs_metric m;
    } tab[] = {{"l2", VQS_METRIC_L2},     {"euclid", VQS_METRIC_L2}, {"euclidean", VQS_METRIC_L2},
               {"ip", VQS_METRIC_IP},     {"dot", VQS_METRIC_IP},    {"cos", VQS_METRIC_COS},
               {"cosine", VQS_METRIC_COS}};
    for (size_t i = 0; s && i < sizeof tab / sizeof tab[0]; i++)
        if (strcasecmp(s, tab[i].name) == 0) {
            *out = tab[i].m;
            return 0;
        }
    return vqs_seterr(VQS_EINVAL, "unknown metric '%s' (l2, ip, cos)", s ? s : "(null)");
}

const char *vqs_metric_name(vqs_metric m)
{
    switch (m) {
    case VQS_METRIC_L2:
        return "l2";
    case VQS_METRIC_IP:
        return "ip";
    case VQS_METRIC_COS:
        return "cos";
    }
    return "?";
}

/* ---- threads ---------------------------------------------------------- */

int vqs_default_threads(void)
{
    const char *e = getenv("VQS_THREADS");
    if (e && *e) {
        char *end;
        long v = strtol(e, &end, 10);
        if (*end == '\0' && v >= 1 && v <= 1024)
            return (int)v;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 1024 ? 1024 : (int)n);
}

typedef struct pf_shared {
    vqs_task_fn fn;
    void *ctx;
    size_t n;
    atomic_size_t next;
    atomic_int rc;
    char detail[1024]; /* the failing task's vqs_errdetail(), written by the
                          thread whose rc won; read after the join */
} pf_shared;

typedef struct pf_worker {
    pf_shared *sh;
    int tid;
} pf_worker;

static void *pf_run(void *arg)
{
    pf_worker *w = arg;
    pf_shared *sh = w->sh;
    for (;;) {
        if (atomic_load_explicit(&sh->rc, memory_order_relaxed) != 0)
            break;
        size_t i = atomic_fetch_add(&sh->next, 1);
        if (i >= sh->n)
            break;
        int rc = sh->fn(sh->ctx, i, w->tid);
        if (rc != 0) {
            int zero = 0;
            if (atomic_compare_exchange_strong(&sh->rc, &zero, rc)) /* the detail is thread-local */
                snprintf(sh->detail, sizeof sh->detail, "%s", vqs_errdetail());
            break;
        }
    }
    return NULL;
}

/* Per-call threads: the fallback when the pool is owned by another caller. */
static int pf_spawn(pf_shared *sh, int nthreads)
{
    pthread_t *th = malloc(sizeof *th * (size_t)nthreads);
    pf_worker *ws = malloc(sizeof *ws * (size_t)nthreads);
    if (!th || !ws) {
        free(th);
        free(ws);
        return vqs_seterr(VQS_ENOMEM, "parallel_for: %d threads", nthreads);
    }
    int started = 0, err = 0;
    /* Thread 0 is the caller; start the others first. */
    for (int t = 1; t < nthreads; t++) {
        ws[t] = (pf_worker){sh, t};
        err = pthread_create(&th[t], NULL, pf_run, &ws[t]);
        if (err) {
            /* Stop handing out work; the caller thread and those already
             * started finish what they took. Report the failure. */
            int zero = 0;
            atomic_compare_exchange_strong(&sh->rc, &zero, -err);
            break;
        }
        started = t;
    }
    ws[0] = (pf_worker){sh, 0};
    if (!err)
        pf_run(&ws[0]);
    for (int t = 1; t <= started; t++)
        pthread_join(th[t], NULL);
    free(th);
    free(ws);
    int rc = atomic_load(&sh->rc);
    if (err && rc == -err)
        vqs_seterr(rc, "parallel_for: pthread_create: %s", strerror(err));
    else if (rc)
        vqs_seterr(rc, "%s", sh->detail);
    return rc;
}

/* The pool. Everything below is guarded by mu, except that a worker reads
 * the job it joined (whose fields are atomics or constant during the job). */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    pthread_mutex_t owner; /* held by the caller whose job runs */
    int nworkers;          /* threads started */
    uint64_t gen;          /* bumped for every job */
    pf_shared *job;
    int want;   /* workers the job takes (thread ids 1..want) */
    int joined; /* workers that took an id */
    int active; /* workers still inside the job */
} pool = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .work = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
    .owner = PTHREAD_MUTEX_INITIALIZER,
};

static _Thread_local int tl_in_parallel; /* inside a task: nested loops run serially */

static void *pool_main(void *arg)
{
    (void)arg;
    tl_in_parallel = 1;
    uint64_t seen = 0;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (pool.gen == seen || pool.joined >= pool.want)
            pthread_cond_wait(&pool.work, &pool.mu);
        seen = pool.gen;
        pf_worker w = {pool.job, ++pool.joined};
        pool.active++;
        pthread_mutex_unlock(&pool.mu);
        pf_run(&w);
        pthread_mutex_lock(&pool.mu);
        if (--pool.active == 0)
            pthread_cond_broadcast(&pool.done);
    }
    return NULL;
}

/* Grows the pool to want workers; returns how many there are. */
static int pool_grow(int want)
{
    while (pool.nworkers < want) {
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int err = pthread_create(&t, &a, pool_main, NULL);
        pthread_attr_destroy(&a);
        if (err)
            break;
        pool.nworkers++;
    }
    return pool.nworkers;
}

int vqs_parallel_for(int nthreads, size_t n, vqs_task_fn fn, void *ctx)
{
    if (nthreads <= 0)
        nthreads = vqs_default_threads();
    if ((size_t)nthreads > n)
        nthreads = n == 0 ? 1 : (int)n;
    if (tl_in_parallel)
        nthreads = 1;
    pf_shared sh = {.fn = fn, .ctx = ctx, .n = n};
    atomic_init(&sh.next, 0);
    atomic_init(&sh.rc, 0);
    if (nthreads == 1) {
        pf_worker w = {&sh, 0};
        int was = tl_in_parallel;
        tl_in_parallel = 1;
        pf_run(&w);
        tl_in_parallel = was;
        return atomic_load(&sh.rc);
    }
    if (pthread_mutex_trylock(&pool.owner) != 0)
        return pf_spawn(&sh, nthreads);
    pthread_mutex_lock(&pool.mu);
    int have = pool_grow(nthreads - 1);
    if (have == 0) {
        pthread_mutex_unlock(&pool.mu);
        pthread_mutex_unlock(&pool.owner);
        return pf_spawn(&sh, nthreads); /* reports the pthread_create error */
    }
    pool.job = &sh;
    pool.want = have < nthreads - 1 ? have : nthreads - 1;
    pool.joined = 0;
    pool.active = 0;
    pool.gen++;
    pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.mu);

    pf_worker w = {&sh, 0};
    tl_in_parallel = 1;
    pf_run(&w);
    tl_in_parallel = 0;

    /* Close the job to latecomers, then wait for those inside it: sh lives
     * on this stack. */
    pthread_mutex_lock(&pool.mu);
    pool.want = pool.joined;
    while (pool.active > 0)
        pthread_cond_wait(&pool.done, &pool.mu);
    pool.job = NULL;
    pthread_mutex_unlock(&pool.mu);
    pthread_mutex_unlock(&pool.owner);
    int rc = atomic_load(&sh.rc);
    if (rc) /* the failing task's detail, whichever thread ran it */
        vqs_seterr(rc, "%s", sh.detail);
    return rc;
}

/* OpenBLAS exports this; vqs links OpenBLAS directly (see CMakeLists.txt). */
extern void openblas_set_num_threads(int);

void vqs_blas_single_thread(void)
{
    static atomic_int done;
    /* a load first: callers on per-query paths (transforms) must not write
     * the shared flag every time */
    if (!atomic_load_explicit(&done, memory_order_relaxed) && !atomic_exchange(&done, 1))
        openblas_set_num_threads(1);
}

/* ---- RNG -------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void vqs_rng_seed(vqs_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t vqs_rng_next(vqs_rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

double vqs_rng_uniform(vqs_rng *r) { return (double)(vqs_rng_next(r) >> 11) * 0x1.0p-53; }

double vqs_rng_normal(vqs_rng *r)
{
    /* Box-Muller; one value per call keeps the stream independent of how
     * callers interleave calls. */
    double u1 = vqs_rng_uniform(r), u2 = vqs_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- synthetic data --------------------------------------------------- */

int vqs_synth_gmm(const vqs_synth_opts *o, size_t n, size_t d, float *x)
{
    vqs_synth_opts def = {0};
    if (!o)
        o = &def;
    if (d == 0 || (n > 0 && !x))
        return vqs_seterr(VQS_EINVAL, "synth_gmm: d = %zu, x = %p", d, (void *)x);
    size_t nc = o->ncenters ? o->ncenters : 16;
    double spread = o->spread > 0 ? o->spread : 4.0;
    double aniso = o->anisotropy > 0 ? o->anisotropy : 10.0;
    double ofrac = o->outlier_frac == 0 ? 0.002 : (o->outlier_frac < 0 ? 0 : o->outlier_frac);
    double oscale = o->outlier_scale > 0 ? o->outlier_scale : 20.0;

    float *cent = malloc(sizeof(float) * nc * d);
    float *sd = malloc(sizeof(float) * nc * d); /* per-cluster std per dim */
    if (!cent || !sd) {
        free(cent);
        free(sd);
        return vqs_seterr(VQS_ENOMEM, "synth_gmm: %zu centres x %zu dims", nc, d);
    }
    vqs_rng r;
    vqs_rng_seed(&r, o->seed);
    for (size_t c = 0; c < nc; c++) {
        for (size_t j = 0; j < d; j++)
            cent[c * d + j] = (float)(spread * vqs_rng_normal(&r));
        /* geometric decay 1 -> 1/aniso, placed on a random permutation */
        for (size_t j = 0; j < d; j++)
            sd[c * d + j] = (float)pow(aniso, -(double)j / (double)(d > 1 ? d - 1 : 1));
        for (size_t j = d; j > 1; j--) {
            size_t k = (size_t)(vqs_rng_next(&r) % j);
            float t = sd[c * d + j - 1];
            sd[c * d + j - 1] = sd[c * d + k];
            sd[c * d + k] = t;
        }
    }
    for (size_t i = 0; i < n; i++) {
        /* a per-row stream keeps rows independent of n */
        vqs_rng rr;
        vqs_rng_seed(&rr, o->seed ^ (0xA24BAED4963EE407ull * (i + 1)));
        size_t c = (size_t)(vqs_rng_next(&rr) % nc);
        int outlier = vqs_rng_uniform(&rr) < ofrac;
        float *row = x + i * d;
        double nrm = 0;
        for (size_t j = 0; j < d; j++) {
            double v = cent[c * d + j] + sd[c * d + j] * vqs_rng_normal(&rr);
            if (outlier)
                v = oscale * spread * vqs_rng_normal(&rr);
            row[j] = (float)v;
            nrm += v * v;
        }
        if (o->unit_norm) {
            double inv = nrm > 0 ? 1.0 / sqrt(nrm) : 0;
            for (size_t j = 0; j < d; j++)
                row[j] = (float)(row[j] * inv);
        }
    }
    free(cent);
    free(sd);
    return 0;
}

double vqs_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void vqs_normalize_rows(size_t n, size_t d, float *x)
{
    for (size_t i = 0; i < n; i++) {
        float *r = x + i * d;
        double s = 0;
        for (size_t j = 0; j < d; j++)
            s += (double)r[j] * r[j];
        if (s > 0) {
            float inv = (float)(1.0 / sqrt(s));
            for (size_t j = 0; j < d; j++)
                r[j] *= inv;
        }
    }
}

/* A row passes the check (vqs_check_vectors) for sure: every element
 * finite (the sum of r[j] * 0 stays 0), the squared norm in range. Four
 * independent sums: this runs on every query and every added row, and one
 * double chain with the largest-element search cost ~5 cycles an element. */
static int row_surely_ok(vqs_metric m, size_t d, const float *r)
{
    double s[4] = {0, 0, 0, 0};
    float z[4] = {0, 0, 0, 0};
    size_t j = 0;
    for (; j + 4 <= d; j += 4)
        for (int u = 0; u < 4; u++) {
            z[u] += r[j + u] * 0.0f;
            s[u] += (double)r[j + u] * r[j + u];
        }
    for (; j < d; j++) {
        z[0] += r[j] * 0.0f;
        s[0] += (double)r[j] * r[j];
    }
    double t = (s[0] + s[1]) + (s[2] + s[3]);
    /* margins of 1e-9: another order of the same double sum cannot cross a
     * limit that this one stays clear of */
    return z[0] == 0 && z[1] == 0 && z[2] == 0 && z[3] == 0 && t <= VQS_MAX_SQNORM * (1 - 1e-9) &&
           !(m == VQS_METRIC_COS && t > 0 && t < VQS_MIN_COS_SQNORM * (1 + 1e-9));
}

int vqs_check_vectors(vqs_metric m, size_t n, size_t d, size_t ld, const float *x, size_t *bad)
{
    for (size_t i = 0; i < n; i++) {
        const float *r = x + i * ld;
        if (row_surely_ok(m, d, r))
            continue;
        /* the row that fails (or is at a limit): the exact check and message */
        double s = 0;
        size_t big = 0;
        for (size_t j = 0; j < d; j++) {
            if (!isfinite(r[j])) {
                if (bad)
                    *bad = i;
                return vqs_seterr(VQS_ENONFINITE, "element %zu is %g", j, (double)r[j]);
            }
            s += (double)r[j] * r[j];
            if (fabsf(r[j]) > fabsf(r[big]))
                big = j;
        }
        if (s > VQS_MAX_SQNORM) {
            if (bad)
                *bad = i;
            return vqs_seterr(VQS_ERANGE,
                              "squared norm %.3g is above %.3g (a norm of %.3g; its largest element is %g at "
                              "element %zu): scores of such a vector overflow float32",
                              s, VQS_MAX_SQNORM, sqrt(VQS_MAX_SQNORM), (double)r[big], big);
        }
        if (m == VQS_METRIC_COS && s > 0 && s < VQS_MIN_COS_SQNORM) {
            if (bad)
                *bad = i;
            return vqs_seterr(VQS_ERANGE,
                              "norm %.3g is below %.3g (its largest element is %g at element %zu): it underflows "
                              "float32 and the vector cannot be normalised for cosine",
                              sqrt(s), sqrt(VQS_MIN_COS_SQNORM), (double)r[big], big);
        }
    }
    return 0;
}

/* ---- checksums ------------------------------------------------------------- */

static uint32_t crc_tab[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_tab[i] = c;
    }
}

uint32_t vqs_crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *b = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_tab[(crc ^ b[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}
