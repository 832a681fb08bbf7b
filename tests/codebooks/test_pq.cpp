// Product quantizer stage: reconstruction MSE against FAISS's PQ (same M x
// nbits, 25 k-means iterations and at most 256 points per centroid on both
// sides), FAISS's LSB-first bit packing, look-up-table scores against the
// decoded vectors, serialisation and the error paths.
#include "vqs_test_faiss.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>

#include "faiss_c_extra.h"
#include "vqs_codebook.h"

using namespace vqs_test;

namespace {

codec_ptr make_codec(const char *spec, size_t d, int iters = 0, uint64_t seed = 0)
{
    vqs_codec_opts o = {};
    o.nthreads = 2;
    o.kmeans_iters = iters;
    o.seed = seed;
    vqs_codec *c = nullptr;
    REQUIRE_OK(vqs_codec_create(spec, d, &o, &c));
    return codec_ptr(c, vqs_codec_free);
}

// vqs trained with seeds 1..kRuns against FAISS trained on kRuns row orders of the same vectors
// (permuted_rows); see the comment above the test cases for the bounds on the mean MSE and on
// every vqs run, both relative to FAISS's mean.
const int kRuns = 5;

void compare_with_faiss(const char *spec, const std::vector<float> &xt,
                        const std::vector<float> &xq, size_t d, double mean_ratio,
                        double run_ratio)
{
    INFO(spec);
    const size_t nt = xt.size() / d, nq = xq.size() / d;
    // FAISS on one thread: on a shared, oversubscribed machine libgomp's
    // spin-waiting barriers make its many small parallel regions crawl
    // (PQ16x8 training took 145 s with 2 threads at load 5 on 2 cores).
    REQUIRE_FAISS(vqs_faiss_set_num_threads(1));
    // "np": no polysemous training, which only permutes the centroids (it
    // does not change the reconstruction) and takes minutes
    std::string fspec = std::string(spec) + "np";
    std::vector<double> mv, mf;
    double tv = 0, tf = 0;
    std::ostringstream runs;
    for (int s = 0; s < kRuns; s++) {
        auto c = make_codec(spec, d, 25, 1 + (uint64_t)s);
        double t0 = vqs_now();
        REQUIRE_OK(vqs_codec_train(c.get(), nt, xt.data()));
        tv += vqs_now() - t0;
        size_t cs = vqs_codec_code_size(c.get());
        std::vector<uint8_t> codes(nq * cs);
        std::vector<float> rec(nq * d);
        REQUIRE_OK(vqs_codec_encode(c.get(), nq, xq.data(), codes.data()));
        REQUIRE_OK(vqs_codec_decode(c.get(), nq, codes.data(), rec.data()));
        mv.push_back(mse(xq, rec, nq));

        auto xp = permuted_rows(xt, d, (uint64_t)s);
        FaissIndex *fi = nullptr;
        REQUIRE_FAISS(faiss_index_factory(&fi, (int)d, fspec.c_str(), METRIC_L2));
        faiss_ptr f(fi, faiss_Index_free);
        t0 = vqs_now();
        REQUIRE_FAISS(faiss_Index_train(f.get(), (idx_t)nt, xp.data()));
        tf += vqs_now() - t0;
        size_t fcs = 0;
        REQUIRE_FAISS(faiss_Index_sa_code_size(f.get(), &fcs));
        REQUIRE(fcs == cs); // same packing, same size
        std::vector<uint8_t> fcodes(nq * fcs);
        std::vector<float> frec(nq * d);
        REQUIRE_FAISS(faiss_Index_sa_encode(f.get(), (idx_t)nq, xq.data(), fcodes.data()));
        REQUIRE_FAISS(faiss_Index_sa_decode(f.get(), (idx_t)nq, fcodes.data(), frec.data()));
        mf.push_back(mse(xq, frec, nq));
        runs << (s ? ", " : "") << mv.back() << " / " << mf.back();
    }
    spread v = spread_of(mv), f = spread_of(mf);
    WARN(spec << " d=" << d << " train " << nt << " measure " << nq << " over " << kRuns
              << " runs: MSE vqs mean " << v.mean << " sd " << v.sd << " [" << v.lo << ", "
              << v.hi << "], FAISS mean " << f.mean << " sd " << f.sd << " [" << f.lo << ", "
              << f.hi << "], vqs / FAISS " << v.mean / f.mean << " (runs vqs / FAISS: "
              << runs.str() << "); train time vqs " << tv << " s, FAISS (1 thread) " << tf
              << " s");
    CHECK(v.mean <= mean_ratio * f.mean);
    CHECK(v.hi <= run_ratio * f.mean);
}

// Centroid tables (M, ksub, dsub) read back through decode, with codes the
// test packs itself (LSB-first) and a different index in every subspace, so
// a wrong bit order shows up as a permuted table.
std::vector<float> centroid_table(vqs_codec *c, size_t d, size_t M, size_t nbits)
{
    size_t ksub = (size_t)1 << nbits, dsub = d / M, cs = vqs_codec_code_size(c);
    std::vector<float> tab(M * ksub * dsub);
    std::vector<uint8_t> code(cs);
    std::vector<float> rec(d);
    for (size_t j = 0; j < ksub; j++) {
        std::fill(code.begin(), code.end(), 0);
        for (size_t m = 0; m < M; m++) {
            size_t v = (j + 3 * m) % ksub;
            for (size_t b = 0; b < nbits; b++)
                if (v >> b & 1)
                    code[(m * nbits + b) / 8] |= (uint8_t)(1u << ((m * nbits + b) % 8));
        }
        REQUIRE_OK(vqs_codec_decode(c, 1, code.data(), rec.data()));
        for (size_t m = 0; m < M; m++)
            std::copy(&rec[m * dsub], &rec[m * dsub] + dsub,
                      &tab[(m * ksub + (j + 3 * m) % ksub) * dsub]);
    }
    return tab;
}

} // namespace

// Quality: the MSE of the query vectors against FAISS's, both trained on the same 10,000 base
// vectors. One training run of either side is one draw (k-means starts from seeded random rows),
// and a draw can move with the OpenBLAS kernel (see test_rvq.cpp), so each side trains kRuns
// times and the means are compared. Measured over 10 runs each (AMD EPYC with AVX-512; under
// OpenBLAS's default, Haswell and SkylakeX kernels vqs's runs were the same bit for bit and
// FAISS's moved by at most 0.002%), one run's relative standard deviation and the ratio of the
// means:
//
//             vqs sd   FAISS sd   vqs / FAISS   4 sd of the 5-run ratio   bounds: mean, each run
//   PQ16x8    0.24%    0.19%      0.9965        0.55%                     1.006   1.011
//   PQ32x4    0.33%    0.55%      0.9895        1.16%                     1.012   1.017
//   PQ96x4    0.11%    0.15%      1.0007        0.33%                     1.005   1.006
//
// The mean bound is 1, plus the gap where vqs is behind, plus four standard deviations of the
// ratio of two 5-run means (sqrt((sd_vqs^2 + sd_faiss^2) / 5)); each vqs run's bound uses four
// standard deviations of one run against a 5-run mean (sqrt(sd_vqs^2 + sd_faiss^2 / 5)); both
// rounded up. The single runs compared before against 1.01 gave 0.9976, 0.9838 and 1.0001 under
// all three kernels, but a kernel that redraws them would make each one draw against a fixed
// margin. vqs with 3 k-means iterations instead of 25 fails all three (mean ratios 1.021, 1.046,
// 1.036), with 10 PQ96x4 (1.0075; PQ16x8 1.0016, PQ32x4 0.998). Runtime: 17 s and 4.5 s.
TEST_CASE("PQ16x8 and PQ32x4 MSE vs FAISS on siftsmall", "[pq][faiss][data]")
{
    size_t d = 0, dq = 0;
    auto xt = load_rows(data_path("siftsmall/siftsmall_base.fvecs"), 10000, &d);
    auto xq = load_rows(data_path("siftsmall/sift_query1000.fvecs"), 1000, &dq);
    REQUIRE(d == dq);
    compare_with_faiss("PQ16x8", xt, xq, d, 1.006, 1.011);
    compare_with_faiss("PQ32x4", xt, xq, d, 1.012, 1.017);
}

// PQ48x8 also passes (ratio 0.997) but trains for ~15 s; PQ96x4 keeps CI fast.
TEST_CASE("PQ96x4 MSE vs FAISS on sts15k BERT", "[pq][faiss][data]")
{
    size_t d = 0, dq = 0;
    auto xt = load_rows(data_path("sts15k_bert768/base.fvecs"), 10000, &d);
    auto xq = load_rows(data_path("sts15k_bert768/queries.fvecs"), 500, &dq);
    REQUIRE(d == dq);
    compare_with_faiss("PQ96x4", xt, xq, d, 1.005, 1.006);
}

TEST_CASE("PQ codes are the nearest centroids, bit-packed LSB-first", "[pq]")
{
    struct cfg {
        const char *spec;
        size_t d, M, nbits, code_size;
    };
    for (cfg g : {cfg{"PQ6x4", 24, 6, 4, 3}, cfg{"PQ3x4", 12, 3, 4, 2}, cfg{"PQ4x5", 20, 4, 5, 3},
                  cfg{"PQ4", 16, 4, 8, 4}, cfg{"PQ2x9", 8, 2, 9, 3}}) {
        INFO(g.spec);
        const size_t n = 2000, ksub = (size_t)1 << g.nbits, dsub = g.d / g.M;
        auto x = synth(n, g.d, 17);
        auto c = make_codec(g.spec, g.d, 8);
        REQUIRE(vqs_codec_code_size(c.get()) == g.code_size);
        REQUIRE_OK(vqs_codec_train(c.get(), n, x.data()));
        auto tab = centroid_table(c.get(), g.d, g.M, g.nbits);
        std::vector<uint8_t> codes(n * g.code_size);
        std::vector<float> rec(n * g.d);
        REQUIRE_OK(vqs_codec_encode(c.get(), n, x.data(), codes.data()));
        REQUIRE_OK(vqs_codec_decode(c.get(), n, codes.data(), rec.data()));
        for (size_t i = 0; i < n; i++)
            for (size_t m = 0; m < g.M; m++) {
                size_t idx = 0; // unpack LSB-first
                for (size_t b = 0; b < g.nbits; b++) {
                    size_t bit = m * g.nbits + b;
                    idx |= (size_t)(codes[i * g.code_size + bit / 8] >> (bit % 8) & 1) << b;
                }
                auto dist = [&](size_t j) {
                    double s = 0;
                    for (size_t t = 0; t < dsub; t++) {
                        double v = (double)x[i * g.d + m * dsub + t] - tab[(m * ksub + j) * dsub + t];
                        s += v * v;
                    }
                    return s;
                };
                double best = INFINITY;
                for (size_t j = 0; j < ksub; j++)
                    best = std::min(best, dist(j));
                INFO("row " << i << " subspace " << m << " index " << idx);
                REQUIRE(dist(idx) <= best * (1 + 1e-5) + 1e-6);
                for (size_t t = 0; t < dsub; t++)
                    REQUIRE(rec[i * g.d + m * dsub + t] == tab[(m * ksub + idx) * dsub + t]);
            }
        // unused high bits of the last byte stay zero
        size_t used = g.M * g.nbits;
        if (used % 8)
            for (size_t i = 0; i < n; i++)
                REQUIRE((codes[i * g.code_size + g.code_size - 1] >> (used % 8)) == 0);
    }
}

TEST_CASE("PQ look-up-table scores equal distances to the decoded vectors", "[pq]")
{
    for (const char *spec : {"PQ8x8", "PQ6x4", "PQ4x5"}) {
        INFO(spec);
        const size_t d = 24, n = 3000, nq = 5;
        auto x = synth(n, d, 4);
        auto q = synth(nq, d, 5);
        auto c = make_codec(spec, d, 10);
        REQUIRE_OK(vqs_codec_train(c.get(), n, x.data()));
        size_t cs = vqs_codec_code_size(c.get());
        std::vector<uint8_t> codes(n * cs);
        std::vector<float> rec(n * d), sc(n);
        REQUIRE_OK(vqs_codec_encode(c.get(), n, x.data(), codes.data()));
        REQUIRE_OK(vqs_codec_decode(c.get(), n, codes.data(), rec.data()));
        for (vqs_metric m : {VQS_METRIC_L2, VQS_METRIC_IP})
            for (size_t qi = 0; qi < nq; qi++) {
                vqs_codec_query *qq = nullptr;
                REQUIRE_OK(vqs_codec_query_create(c.get(), m, &q[qi * d], &qq));
                REQUIRE_OK(vqs_codec_query_score(qq, n, codes.data(), sc.data()));
                vqs_codec_query_free(qq);
                for (size_t i = 0; i < n; i++) {
                    double ref = 0, mag = 0;
                    for (size_t t = 0; t < d; t++) {
                        double a = q[qi * d + t], b = rec[i * d + t];
                        ref += m == VQS_METRIC_L2 ? (a - b) * (a - b) : a * b;
                        mag += m == VQS_METRIC_L2 ? (a - b) * (a - b) : std::fabs(a * b);
                    }
                    REQUIRE(std::fabs(sc[i] - ref) <= 1e-5 * mag + 1e-5);
                }
            }
    }
}

TEST_CASE("PQ save/load round trip, damaged blobs are refused", "[pq]")
{
    const size_t d = 32, n = 3000;
    auto x = synth(n, d, 8);
    auto c = make_codec("PQ8x4", d, 10);
    REQUIRE_OK(vqs_codec_train(c.get(), n, x.data()));
    void *blob = nullptr;
    size_t len = 0;
    REQUIRE_OK(vqs_codec_save(c.get(), &blob, &len));
    std::vector<uint8_t> b((uint8_t *)blob, (uint8_t *)blob + len);
    free(blob);
    vqs_codec *l = nullptr;
    REQUIRE_OK(vqs_codec_load(b.data(), b.size(), &l));
    codec_ptr lc(l, vqs_codec_free);
    size_t cs = vqs_codec_code_size(c.get());
    REQUIRE(vqs_codec_code_size(l) == cs);
    std::vector<uint8_t> c1(n * cs), c2(n * cs);
    std::vector<float> r1(n * d), r2(n * d);
    REQUIRE_OK(vqs_codec_encode(c.get(), n, x.data(), c1.data()));
    REQUIRE_OK(vqs_codec_encode(l, n, x.data(), c2.data()));
    REQUIRE(c1 == c2);
    REQUIRE_OK(vqs_codec_decode(c.get(), n, c1.data(), r1.data()));
    REQUIRE_OK(vqs_codec_decode(l, n, c1.data(), r2.data()));
    REQUIRE(r1 == r2);

    for (size_t pos : {b.size() / 2, b.size() - 5, (size_t)20}) {
        auto bad = b;
        bad[pos] ^= 0x40;
        vqs_codec *x2 = nullptr;
        INFO("flipped byte " << pos);
        REQUIRE_ERR(vqs_codec_load(bad.data(), bad.size(), &x2), VQS_ECORRUPT);
        REQUIRE(x2 == nullptr);
    }
    for (size_t cut : {(size_t)1, (size_t)4, b.size() / 3}) {
        vqs_codec *x2 = nullptr;
        REQUIRE_ERR(vqs_codec_load(b.data(), b.size() - cut, &x2), VQS_ECORRUPT);
    }
}

TEST_CASE("PQ spec errors name the token, too few training vectors", "[pq]")
{
    vqs_codec *c = nullptr;
    REQUIRE_ERR(vqs_codec_create("PQ7x8", 128, nullptr, &c), VQS_ESPEC);
    REQUIRE(std::string(vqs_errdetail()).find("PQ7x8") != std::string::npos);
    REQUIRE(std::string(vqs_errdetail()).find("does not divide") != std::string::npos);
    for (const char *bad : {"PQ16x0", "PQ16x17", "PQ0x8", "PQx8", "PQ16x", "PQ16y8"}) {
        INFO(bad);
        REQUIRE_ERR(vqs_codec_create(bad, 128, nullptr, &c), VQS_ESPEC);
        REQUIRE(std::string(vqs_errdetail()).find(bad) != std::string::npos);
    }
    auto k = make_codec("PQ16", 128);
    REQUIRE(vqs_codec_code_size(k.get()) == 16);
    REQUIRE(std::string(vqs_codec_spec(k.get())) == "PQ16");
    auto k2 = make_codec("PQ4x8", 16);
    auto x = synth(100, 16, 1);
    REQUIRE_ERR(vqs_codec_train(k2.get(), 100, x.data()), VQS_EINVAL);
    REQUIRE(std::string(vqs_errdetail()).find("256") != std::string::npos);
}

// With M >= threads the sub-quantizers are trained in parallel, each by a
// single-threaded k-means; otherwise one at a time, each threaded. Both must
// give the same codebooks (the blob holds no thread count).
TEST_CASE("PQ training gives the same codebooks for any thread count", "[pq]")
{
    const size_t d = 32, n = 3000;
    auto x = synth(n, d, 81);
    std::vector<std::vector<uint8_t>> blobs;
    for (int threads : {1, 2, 3, 8, 9}) {
        vqs_codec_opts o = {};
        o.nthreads = threads;
        o.seed = 5;
        o.kmeans_iters = 10;
        vqs_codec *c = nullptr;
        REQUIRE_OK(vqs_codec_create("PQ8x6", d, &o, &c));
        codec_ptr cp(c, vqs_codec_free);
        REQUIRE_OK(vqs_codec_train(c, n, x.data()));
        void *blob = nullptr;
        size_t len = 0;
        REQUIRE_OK(vqs_codec_save(c, &blob, &len));
        blobs.emplace_back((uint8_t *)blob, (uint8_t *)blob + len);
        free(blob);
    }
    for (size_t i = 1; i < blobs.size(); i++) {
        INFO("run " << i);
        REQUIRE(blobs[i] == blobs[0]);
    }
}
