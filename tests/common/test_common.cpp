// Tests for common/: errors, thread-local detail, parallel_for, binary16,
// the RNG and the synthetic generator.
#include "vqs_test.hpp"

#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <cpuid.h>
#include <immintrin.h>
#include <set>
#include <thread>

TEST_CASE("error codes: distinct names and messages, errno passthrough", "[common]")
{
    std::set<std::string> names, msgs;
    int n = 0;
    for (int rc = VQS_ERR_BASE; rc >= VQS_ERR_LAST; rc--, n++) {
        names.insert(vqs_err_name(rc));
        msgs.insert(vqs_strerror(rc));
        REQUIRE(std::string(vqs_err_name(rc)).rfind("VQS_E", 0) == 0);
    }
    REQUIRE(names.size() == (size_t)n);
    REQUIRE(msgs.size() == (size_t)n);
    REQUIRE(std::string(vqs_err_name(-ENOENT)) == "ENOENT");
    REQUIRE(std::string(vqs_strerror(-ENOENT)) == std::strerror(ENOENT));
    REQUIRE(std::string(vqs_err_name(0)) == "OK");
    REQUIRE(std::string(vqs_err_name(VQS_ERR_LAST - 1)) == "UNKNOWN");
    // every vqs code is out of the errno range
    REQUIRE(VQS_ERR_BASE < -4096);
}

TEST_CASE("error detail is thread-local", "[common]")
{
    REQUIRE(vqs_seterr(VQS_ETRUNC, "main %d", 1) == VQS_ETRUNC);
    std::string other;
    std::thread t([&] {
        other = vqs_errdetail();
        vqs_seterr(VQS_EINVAL, "worker");
    });
    t.join();
    REQUIRE(other.empty());
    REQUIRE(std::string(vqs_errdetail()) == "main 1");
    vqs_clearerr();
    REQUIRE(std::string(vqs_errdetail()).empty());
}

struct pf_ctx {
    std::vector<std::atomic<int>> hits;
    std::atomic<int> maxtid{0};
    size_t fail_at;
    explicit pf_ctx(size_t n, size_t f = SIZE_MAX) : hits(n), fail_at(f) {}
};

static int pf_fn(void *c, size_t i, int tid)
{
    auto *x = static_cast<pf_ctx *>(c);
    x->hits[i]++;
    int m = x->maxtid.load();
    while (tid > m && !x->maxtid.compare_exchange_weak(m, tid)) {
    }
    return i == x->fail_at ? VQS_ERANGE : 0;
}

TEST_CASE("parallel_for runs every item exactly once and stops on error", "[common]")
{
    for (int nt : {1, 2, 3, 8}) {
        for (size_t n : {0, 1, 2, 7, 1000}) {
            pf_ctx c(n);
            REQUIRE_OK(vqs_parallel_for(nt, n, pf_fn, &c));
            for (size_t i = 0; i < n; i++)
                REQUIRE(c.hits[i] == 1);
            REQUIRE(c.maxtid < nt);
        }
    }
    pf_ctx c(10000, 17);
    REQUIRE_ERR(vqs_parallel_for(2, 10000, pf_fn, &c), VQS_ERANGE);
    size_t done = 0;
    for (auto &h : c.hits)
        done += h.load();
    REQUIRE(done < 10000); // it stopped early
    REQUIRE(c.hits[17] == 1);
}

// A task that fails on a pool thread: its error detail (thread-local) reaches the caller. The
// caller's own first item waits until a worker has failed, so the failure is a worker's.
struct fail_ctx {
    std::atomic<int> failed{0};
};

static int fail_on_worker(void *c, size_t i, int tid)
{
    auto *x = static_cast<fail_ctx *>(c);
    if (tid == 0) {
        while (!x->failed.load())
            std::this_thread::yield();
        return 0;
    }
    int rc = vqs_seterr(VQS_ERANGE, "item %zu failed on thread %d", i, tid);
    x->failed = 1;
    return rc;
}

TEST_CASE("parallel_for: a worker thread's error detail reaches the caller", "[common]")
{
    for (int rep = 0; rep < 20; rep++) {
        fail_ctx c;
        vqs_seterr(-EIO, "stale detail of an earlier failure");
        REQUIRE_ERR(vqs_parallel_for(3, 1000, fail_on_worker, &c), VQS_ERANGE);
        std::string d = vqs_errdetail();
        INFO(d);
        REQUIRE(d.rfind("item ", 0) == 0);
        REQUIRE(d.find(" failed on thread ") != std::string::npos);
    }
}

// Each outer item runs an inner parallel_for (which must run serially on the
// calling thread: thread id 0 only) over its own counters.
struct nest_ctx {
    std::vector<std::unique_ptr<pf_ctx>> inner;
    nest_ctx() { for (int i = 0; i < 16; i++) inner.push_back(std::make_unique<pf_ctx>(100)); }
};

static int nest_fn(void *c, size_t i, int)
{
    auto *x = static_cast<nest_ctx *>(c);
    return vqs_parallel_for(4, 100, pf_fn, x->inner[i].get());
}

TEST_CASE("parallel_for: nested calls run serially, concurrent callers are all served", "[common]")
{
    nest_ctx nc;
    REQUIRE_OK(vqs_parallel_for(4, nc.inner.size(), nest_fn, &nc));
    for (auto &in : nc.inner) {
        for (auto &h : in->hits)
            REQUIRE(h == 1);
        REQUIRE(in->maxtid == 0);
    }
    // Four threads run parallel loops at once, many times: one owns the pool,
    // the others start their own threads; every item still runs exactly once.
    std::vector<std::thread> ts;
    std::atomic<int> bad{0};
    for (int t = 0; t < 4; t++)
        ts.emplace_back([&bad, t] {
            for (int rep = 0; rep < 50; rep++) {
                pf_ctx c(257 + (size_t)t);
                if (vqs_parallel_for(3, c.hits.size(), pf_fn, &c) != 0)
                    bad++;
                for (auto &h : c.hits)
                    if (h != 1)
                        bad++;
                if (c.maxtid >= 3)
                    bad++;
            }
        });
    for (auto &th : ts)
        th.join();
    REQUIRE(bad == 0);
}

TEST_CASE("default thread count honours VQS_THREADS", "[common]")
{
    const char *old = getenv("VQS_THREADS");
    std::string saved = old ? old : "";
    setenv("VQS_THREADS", "3", 1);
    REQUIRE(vqs_default_threads() == 3);
    setenv("VQS_THREADS", "zero", 1);
    REQUIRE(vqs_default_threads() >= 1);
    if (old)
        setenv("VQS_THREADS", saved.c_str(), 1);
    else
        unsetenv("VQS_THREADS");
}

__attribute__((target("f16c"))) static uint16_t hw_f32_to_f16(float f)
{
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}
__attribute__((target("f16c"))) static float hw_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }

TEST_CASE("binary16 conversion matches the F16C hardware instructions", "[common]")
{
    unsigned a, b, c, d;
    // CPUID.1:ECX bit 29 (clang 14 does not know __builtin_cpu_supports("f16c"))
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 29))) {
        WARN("CPU has no F16C; binary16 oracle check skipped");
        return;
    }
    // every half value decodes exactly and re-encodes to itself
    for (uint32_t h = 0; h < 65536; h++) {
        float a = vqs_f16_to_f32((uint16_t)h), b = hw_f16_to_f32((uint16_t)h);
        if (std::isnan(b)) {
            REQUIRE(std::isnan(a));
            REQUIRE(std::isnan(vqs_f16_to_f32(vqs_f32_to_f16(a))));
            continue;
        }
        uint32_t ua, ub;
        std::memcpy(&ua, &a, 4);
        std::memcpy(&ub, &b, 4);
        INFO("half 0x" << std::hex << h);
        REQUIRE(ua == ub);
        REQUIRE(vqs_f32_to_f16(a) == h);
    }
    // random floats over the whole exponent range, plus the halfway points
    // between consecutive halves (ties to even)
    vqs_rng r;
    vqs_rng_seed(&r, 7);
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = (uint32_t)vqs_rng_next(&r);
        if (i % 2) // bias towards the half range
            u = (u & 0x8fffffffu) | 0x30000000u;
        float f;
        std::memcpy(&f, &u, 4);
        if (std::isnan(f))
            continue;
        INFO("float bits 0x" << std::hex << u);
        REQUIRE(vqs_f32_to_f16(f) == hw_f32_to_f16(f));
    }
    for (uint32_t h = 0; h < 0x7bff; h++) {
        float lo = hw_f16_to_f32((uint16_t)h), hi = hw_f16_to_f32((uint16_t)(h + 1));
        float mid = (float)(((double)lo + (double)hi) / 2);
        REQUIRE(vqs_f32_to_f16(mid) == hw_f32_to_f16(mid));
        REQUIRE(vqs_f32_to_f16(-mid) == hw_f32_to_f16(-mid));
    }
}

TEST_CASE("synthetic mixture: seeded, anisotropic, with outliers, unit variant", "[common]")
{
    const size_t n = 4000, d = 33;
    auto a = vqs_test::synth(n, d, 1), b = vqs_test::synth(n, d, 1), c = vqs_test::synth(n, d, 2);
    REQUIRE(a == b);
    REQUIRE(a != c);
    // rows do not depend on n
    auto a2 = vqs_test::synth(10, d, 1);
    REQUIRE(std::equal(a2.begin(), a2.end(), a.begin()));
    // outliers: a few rows far beyond the median norm
    std::vector<double> norms(n);
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++)
            s += (double)a[i * d + j] * a[i * d + j];
        norms[i] = std::sqrt(s);
    }
    std::vector<double> sorted = norms;
    std::sort(sorted.begin(), sorted.end());
    double med = sorted[n / 2];
    size_t far = 0;
    for (double v : norms)
        far += v > 5 * med;
    REQUIRE(far >= 1);
    REQUIRE(far <= n / 50);
    // anisotropy: within the data, per-dimension variances differ widely
    std::vector<double> mean(d, 0), var(d, 0);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            mean[j] += a[i * d + j] / (double)n;
    auto u = vqs_test::synth(n, d, 3, true);
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++)
            s += (double)u[i * d + j] * u[i * d + j];
        REQUIRE(std::fabs(s - 1.0) < 1e-5);
    }
    for (float v : a)
        REQUIRE(std::isfinite(v));
    vqs_synth_opts bad = {};
    REQUIRE_ERR(vqs_synth_gmm(&bad, 1, 0, a.data()), VQS_EINVAL);
}

TEST_CASE("synthetic mixture: per-cluster spectra decay by the anisotropy", "[common]")
{
    // one cluster, no outliers: the largest per-dimension variance is about
    // anisotropy^2 times the smallest
    const size_t n = 20000, d = 16;
    std::vector<float> x(n * d);
    vqs_synth_opts o = {};
    o.ncenters = 1;
    o.anisotropy = 10;
    o.outlier_frac = -1;
    o.seed = 5;
    REQUIRE_OK(vqs_synth_gmm(&o, n, d, x.data()));
    std::vector<double> m(d, 0), v(d, 0);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            m[j] += x[i * d + j] / (double)n;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            v[j] += (x[i * d + j] - m[j]) * (x[i * d + j] - m[j]) / (double)n;
    double lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
    REQUIRE(hi / lo > 60);
    REQUIRE(hi / lo < 160);
}
