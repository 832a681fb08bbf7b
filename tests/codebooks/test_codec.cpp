// Tests for codebooks/codec.c: every codec round-trips through the spec
// string and the serialised blob; spec and blob errors; thread invariance;
// prepared-query scores against decoded vectors.
#include "vqs_test.hpp"

#include "codebook_internal.h"
#include "vqs_codebook.h"

#include <cmath>
#include <cstring>

using namespace vqs_test;

namespace {


codec_ptr make(const char *spec, size_t d, vqs_codec_opts *o = nullptr)
{
    vqs_codec *c = nullptr;
    int rc = vqs_codec_create(spec, d, o, &c);
    INFO("create '" << spec << "' -> " << vqs_err_name(rc) << ": " << vqs_errdetail());
    REQUIRE(rc == 0);
    return codec_ptr(c, vqs_codec_free);
}

double total_var(const std::vector<float> &x, size_t d)
{
    size_t n = x.size() / d;
    std::vector<double> m(d, 0);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            m[j] += x[i * d + j] / (double)n;
    double v = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            v += (x[i * d + j] - m[j]) * (x[i * d + j] - m[j]);
    return v / (double)n;
}

struct spec_case {
    const char *spec;
    size_t code_size;   // for d = 64; 0: not checked
    double max_rel_mse; // a sanity bound that catches a broken codec (garbage is ~1);
                        // quality against FAISS is tested per family
};

} // namespace

TEST_CASE("every codec round-trips through its spec and its blob", "[codec]")
{
    const size_t d = 64, n = 6000, nq = 500;
    // no outliers here: min/max-trained grids would be dominated by them and
    // the sanity bounds below would say little (outliers are covered by the
    // per-family tests and the clip option)
    std::vector<float> all((n + nq) * d);
    vqs_synth_opts so = {};
    so.seed = 2024;
    so.outlier_frac = -1;
    REQUIRE_OK(vqs_synth_gmm(&so, n + nq, d, all.data()));
    std::vector<float> xt(all.begin(), all.begin() + n * d), xq(all.begin() + n * d, all.end());
    const double var = total_var(xq, d);
    const spec_case cases[] = {
        {"SQfp16", 128, 1e-6},       {"SQbf16", 128, 1e-4},       {"SQfp8", 64, 0.05},
        {"SQe4m3", 64, 0.05},        {"SQe5m2", 64, 0.1},        {"SQfp8t", 64, 0.1},
        {"SQ8", 64, 1e-3},           {"SQint8", 64, 1e-3},        {"SQ4", 32, 0.05},
        {"SQ8s", 64, 0.01},          {"PQ16x8", 16, 0.5},         {"PQ16x4", 8, 0.6},
        {"PQ8", 8, 0.6},             {"RVQ4x8", 0, 0.6},          {"BIN", 0, 1.0},
        {"ROT,BIN", 0, 1.0},         {"PCA32,SQ8", 32, 0.5},      {"PCA64R,SQint8", 64, 1e-2},
        {"PCA48WR,SQ8", 48, 0.5},    {"HAD,SQ8", 64, 1e-3},       {"ROT,SQfp8", 64, 0.05},
        {"OPQ16,PQ16x8", 16, 0.5},   {"ROT,PQ8x8", 8, 0.7},       {"SQfp32", 256, 0.0},
        {"PCA64,Flat", 256, 1e-9},   {"PCA16,Flat", 64, 0.9},     {"ROT,SQfp32", 256, 1e-9},
    };
    for (const auto &tc : cases) {
        INFO("spec " << tc.spec);
        vqs_codec_opts o = {};
        o.seed = 7;
        o.nthreads = 2;
        o.kmeans_iters = 10;
        auto c = make(tc.spec, d, &o);
        REQUIRE(std::string(vqs_codec_spec(c.get())) == tc.spec);
        REQUIRE(vqs_codec_d(c.get()) == d);
        REQUIRE_FALSE(vqs_codec_is_trained(c.get()));
        REQUIRE_OK(vqs_codec_train(c.get(), n, xt.data()));
        REQUIRE(vqs_codec_is_trained(c.get()));
        size_t cs = vqs_codec_code_size(c.get());
        if (tc.code_size)
            REQUIRE(cs == tc.code_size);
        std::vector<uint8_t> codes(cs * nq), codes2(cs * nq);
        std::vector<float> rec(nq * d), rec2(nq * d);
        REQUIRE_OK(vqs_codec_encode(c.get(), nq, xq.data(), codes.data()));
        REQUIRE_OK(vqs_codec_decode(c.get(), nq, codes.data(), rec.data()));
        double rel = mse(xq, rec, nq) / var;
        INFO("relative MSE " << rel);
        REQUIRE(std::isfinite(rel));
        REQUIRE(rel <= tc.max_rel_mse);

        // blob round trip: identical codes and reconstructions
        void *blob = nullptr;
        size_t len = 0;
        REQUIRE_OK(vqs_codec_save(c.get(), &blob, &len));
        vqs_codec *l = nullptr;
        int rc = vqs_codec_load(blob, len, &l);
        std::free(blob);
        REQUIRE_OK(rc);
        codec_ptr loaded(l, vqs_codec_free);
        REQUIRE(std::string(vqs_codec_spec(loaded.get())) == tc.spec);
        REQUIRE(vqs_codec_code_size(loaded.get()) == cs);
        REQUIRE_OK(vqs_codec_encode(loaded.get(), nq, xq.data(), codes2.data()));
        REQUIRE(codes2 == codes);
        REQUIRE_OK(vqs_codec_decode(loaded.get(), nq, codes.data(), rec2.data()));
        REQUIRE(rec2 == rec);

        // the thread count does not change the codes
        vqs_codec_opts o1 = o;
        o1.nthreads = 1;
        auto c1 = make(tc.spec, d, &o1);
        REQUIRE_OK(vqs_codec_train(c1.get(), n, xt.data()));
        REQUIRE_OK(vqs_codec_encode(c1.get(), nq, xq.data(), codes2.data()));
        REQUIRE(codes2 == codes);
    }
}

TEST_CASE("prepared queries score like the decoded vectors", "[codec]")
{
    const size_t d = 48, n = 4000, nq = 300;
    auto all = synth(n + nq + 1, d, 99);
    std::vector<float> xt(all.begin(), all.begin() + n * d);
    const float *xq = all.data() + n * d, *q = all.data() + (n + nq) * d;
    // orthonormal transforms keep distances, so scores in the transformed
    // space equal those against the decoded (reverse-transformed) vectors
    for (const char *spec : {"SQ8", "SQ4", "SQfp16", "SQfp8", "PQ12x8", "PQ12x4", "ROT,PQ8x8",
                             "ROT,SQ8", "OPQ8,PQ8x8"}) {
        INFO("spec " << spec);
        vqs_codec_opts o = {};
        o.kmeans_iters = 8;
        auto c = make(spec, d, &o);
        REQUIRE_OK(vqs_codec_train(c.get(), n, xt.data()));
        size_t cs = vqs_codec_code_size(c.get());
        std::vector<uint8_t> codes(cs * nq);
        std::vector<float> rec(nq * d), sc(nq);
        REQUIRE_OK(vqs_codec_encode(c.get(), nq, xq, codes.data()));
        REQUIRE_OK(vqs_codec_decode(c.get(), nq, codes.data(), rec.data()));
        for (vqs_metric m : {VQS_METRIC_L2, VQS_METRIC_IP}) {
            vqs_codec_query *qq = nullptr;
            REQUIRE_OK(vqs_codec_query_create(c.get(), m, q, &qq));
            std::unique_ptr<vqs_codec_query, decltype(&vqs_codec_query_free)> hold(
                qq, vqs_codec_query_free);
            REQUIRE_OK(vqs_codec_query_score(qq, nq, codes.data(), sc.data()));
            for (size_t i = 0; i < nq; i++) {
                double ref = 0, qn = 0, rn = 0;
                for (size_t j = 0; j < d; j++) {
                    double a = q[j], b = rec[i * d + j];
                    ref += m == VQS_METRIC_L2 ? (a - b) * (a - b) : a * b;
                    qn += a * a;
                    rn += b * b;
                }
                INFO("metric " << vqs_metric_name(m) << " row " << i);
                REQUIRE(std::fabs(sc[i] - ref) <= 1e-4 * (qn + rn + 1));
            }
        }
        vqs_codec_query *bad = nullptr;
        REQUIRE_ERR(vqs_codec_query_create(c.get(), VQS_METRIC_COS, q, &bad), VQS_EINVAL);
    }
}

TEST_CASE("a block of queries forwarded at once scores as the same queries prepared one by one", "[codec]")
{
    const size_t d = 40, n = 3000, nq = 37, nc = 200;
    auto all = synth(n + nq + nc, d, 123);
    // far from the origin, so that a mishandled PCA mean shows
    for (size_t i = 0; i < all.size(); i++)
        all[i] += (float)(3.0 + 0.05 * (double)(i % d));
    std::vector<float> xt(all.begin(), all.begin() + n * d);
    const float *q = all.data() + n * d, *xc = all.data() + (n + nq) * d;
    for (const char *spec : {"SQ8", "PCA16,SQ8", "PCA16W,PQ4x8", "PCA40,SQfp16", "ROT,SQ8", "HAD,SQfp8",
                             "OPQ8,PQ8x8", "PCA24,ROT,PQ6x4", "PCA20,Flat"}) {
        INFO("spec " << spec);
        vqs_codec_opts o = {};
        o.kmeans_iters = 4;
        auto c = make(spec, d, &o);
        REQUIRE_OK(vqs_codec_train(c.get(), n, xt.data()));
        REQUIRE(vqs_codec_has_transform(c.get()) == (std::string(spec).find(',') != std::string::npos));
        size_t cs = vqs_codec_code_size(c.get()), dq = vqs_codec_query_dim(c.get());
        std::vector<uint8_t> codes(cs * nc);
        REQUIRE_OK(vqs_codec_encode(c.get(), nc, xc, codes.data()));
        for (vqs_metric m : {VQS_METRIC_L2, VQS_METRIC_IP}) {
            std::vector<float> fq(nq * dq, NAN), cst(nq, NAN), one(nc), blk(nc);
            REQUIRE_OK(vqs_codec_query_forward(c.get(), m, nq, q, fq.data(), cst.data()));
            vqs_codec_query *a = nullptr, *b = nullptr;
            REQUIRE_OK(vqs_codec_query_create(c.get(), m, q, &a));
            REQUIRE_OK(vqs_codec_query_create(c.get(), m, q, &b));
            std::unique_ptr<vqs_codec_query, decltype(&vqs_codec_query_free)> ha(a, vqs_codec_query_free),
                hb(b, vqs_codec_query_free);
            for (size_t i = 0; i < nq; i++) {
                INFO("metric " << vqs_metric_name(m) << " query " << i);
                REQUIRE_OK(vqs_codec_query_reset(a, q + i * d));
                REQUIRE_OK(vqs_codec_query_reset_forwarded(b, fq.data() + i * dq, cst[i]));
                REQUIRE_OK(vqs_codec_query_score(a, nc, codes.data(), one.data()));
                REQUIRE_OK(vqs_codec_query_score(b, nc, codes.data(), blk.data()));
                double qn = 0;
                for (size_t j = 0; j < d; j++)
                    qn += (double)q[i * d + j] * q[i * d + j];
                for (size_t r = 0; r < nc; r++)
                    REQUIRE(std::fabs(one[r] - blk[r]) <= 1e-5 * (std::fabs(one[r]) + qn + 1));
            }
        }
    }
    SECTION("bad arguments are refused")
    {
        auto c = make("PCA16,SQ8", d, nullptr);
        std::vector<float> fq(16), cst(1);
        // untrained
        REQUIRE_ERR(vqs_codec_query_forward(c.get(), VQS_METRIC_L2, 1, q, fq.data(), cst.data()), VQS_EINVAL);
        REQUIRE_OK(vqs_codec_train(c.get(), n, xt.data()));
        // cosine is inner product on normalised rows: the caller's job
        REQUIRE_ERR(vqs_codec_query_forward(c.get(), VQS_METRIC_COS, 1, q, fq.data(), cst.data()), VQS_EINVAL);
        REQUIRE_ERR(vqs_codec_query_forward(c.get(), VQS_METRIC_L2, 1, q, nullptr, cst.data()), VQS_EINVAL);
        REQUIRE_ERR(vqs_codec_query_forward(nullptr, VQS_METRIC_L2, 1, q, fq.data(), cst.data()), VQS_EINVAL);
        REQUIRE_OK(vqs_codec_query_forward(c.get(), VQS_METRIC_L2, 0, nullptr, nullptr, nullptr));
        REQUIRE_ERR(vqs_codec_query_reset_forwarded(nullptr, fq.data(), 0), VQS_EINVAL);
    }
}

// Anisotropic data far from the origin: per-dimension scales from 0.2 to 3
// and a mean of norm ~ 40, so that a transform that mishandles its mean is
// off by far more than rounding.
static std::vector<float> offset_data(size_t n, size_t d, uint64_t seed)
{
    auto x = synth(n, d, seed);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = x[i * d + j] * (float)(0.2 + 2.8 * j / d) + (float)(5.0 + 0.1 * j);
    return x;
}

TEST_CASE("inner-product scores of transform specs are dot products with the decoded vectors",
          "[codec]")
{
    // PCA centres the data; its IP query must not be centred: the score must
    // be <q, decode(code)>. FAISS (and vqs before) mapped the query like the
    // data, which added -<P mean, code> to each score. Whitened PCA, two PCA
    // stages (two means), and PCA followed by ROT or HAD are covered too.
    const size_t d = 48, n = 4000, nq = 400;
    auto all = offset_data(n + nq + 3, d, 17);
    std::vector<float> xt(all.begin(), all.begin() + n * d);
    const float *xq = all.data() + n * d;
    for (const char *spec :
         {"PCA24,SQfp16", "PCA24,SQ8", "PCA48,SQ4", "PCA24W,SQ8", "PCA24R,PQ6x8", "PCA24WR,SQfp16",
          "PCA16,PQ8x4", "PCA16,RVQ2x8", "PCA40,PCA20,SQ8", "PCA32,ROT,SQ8", "PCA32,HAD,SQ8",
          "OPQ8,PQ8x8", "ROT,PCA24,SQfp16"}) {
        INFO("spec " << spec);
        vqs_codec_opts o = {};
        o.kmeans_iters = 6;
        o.seed = 3;
        auto c = make(spec, d, &o);
        REQUIRE_OK(vqs_codec_train(c.get(), n, xt.data()));
        size_t cs = vqs_codec_code_size(c.get());
        std::vector<uint8_t> codes(cs * nq);
        std::vector<float> rec(nq * d), ip(nq), l2(nq);
        REQUIRE_OK(vqs_codec_encode(c.get(), nq, xq, codes.data()));
        REQUIRE_OK(vqs_codec_decode(c.get(), nq, codes.data(), rec.data()));
        // (RVQ's L2 score adds the error of its 8-bit norm code, which is not
        // a constant; whitened PCA measures L2 in the whitened space)
        bool l2_offset = !std::strchr(spec, 'W') && !std::strstr(spec, "RVQ");
        for (int qi = 0; qi < 3; qi++) {
            const float *q = all.data() + (n + nq + qi) * d;
            vqs_codec_query *a = nullptr, *b = nullptr;
            REQUIRE_OK(vqs_codec_query_create(c.get(), VQS_METRIC_IP, q, &a));
            REQUIRE_OK(vqs_codec_query_create(c.get(), VQS_METRIC_L2, q, &b));
            std::unique_ptr<vqs_codec_query, decltype(&vqs_codec_query_free)> ha(a, vqs_codec_query_free),
                hb(b, vqs_codec_query_free);
            REQUIRE_OK(vqs_codec_query_score(a, nq, codes.data(), ip.data()));
            REQUIRE_OK(vqs_codec_query_score(b, nq, codes.data(), l2.data()));
            double off0 = 0;
            for (size_t i = 0; i < nq; i++) {
                double dot = 0, dist = 0, qn = 0, rn = 0;
                for (size_t j = 0; j < d; j++) {
                    double u = q[j], v = rec[i * d + j];
                    dot += u * v;
                    dist += (u - v) * (u - v);
                    qn += u * u;
                    rn += v * v;
                }
                // float rounding of sums of d products of this size
                double tol = 2e-5 * std::sqrt(qn * rn);
                INFO("query " << qi << " row " << i << " IP score " << ip[i] << " <q, decoded> " << dot);
                REQUIRE(std::fabs(ip[i] - dot) <= tol);
                // L2 is measured in the quantizer's space: without whitening it
                // differs from |q - decoded|^2 by one constant per query (the
                // query's energy outside the kept subspace)
                if (l2_offset) {
                    double off = dist - l2[i];
                    INFO("L2 score " << l2[i] << " |q - decoded|^2 " << dist);
                    if (i == 0)
                        off0 = off;
                    REQUIRE(off >= -tol);
                    REQUIRE(std::fabs(off - off0) <= 4 * tol);
                }
            }
        }
    }
}

TEST_CASE("bad specs name the offending token", "[codec][errors]")
{
    struct {
        const char *spec;
        const char *token;
    } bad[] = {
        {"", "empty"},
        {"FOO", "FOO"},
        {"SQ8,", "empty"},
        {"SQ8,PQ8x8", "SQ8"},         // quantizer not last
        {"PCA32", "PCA32"},           // transform without a quantizer
        {"PQ7x8", "PQ7x8"},           // M does not divide d
        {"PQ8x0", "PQ8x0"},           // nbits out of range
        {"PQ8x17", "PQ8x17"},
        {"PCA128,SQ8", "PCA128"},     // PCA larger than d
        {"ROT,ROT,ROT,ROT,ROT,ROT,ROT,ROT,SQ8", "more than"},
        {"ROT,AVERYLONGTOKENTHATNOBODYWOULDEVERWRITE", "too long"},
        {"RVQ0x8", "RVQ0x8"},
        {"OPQ7,PQ8x8", "OPQ7"},
        {"SQ3", "SQ3"},
        {"Flat", "Flat"},             // the float32 alias follows a transform
        {"PCA0%,SQ8", "PCA0%"},
        {"PCA101%,SQ8", "PCA101%"},
        {"PCA50%%,SQ8", "PCA50%%"},
        {"PCA50%x,SQ8", "PCA50%x"},
        {"SQfp32,Flat", "SQfp32"},
    };
    for (auto &b : bad) {
        vqs_codec *c = nullptr;
        int rc = vqs_codec_create(b.spec, 64, nullptr, &c);
        std::string det = vqs_errdetail();
        INFO("spec '" << b.spec << "' -> " << vqs_err_name(rc) << ": " << det);
        REQUIRE(rc == VQS_ESPEC);
        REQUIRE(c == nullptr);
        REQUIRE(det.find(b.token) != std::string::npos);
    }
    vqs_codec *c = nullptr;
    REQUIRE_ERR(vqs_codec_create("SQ8", 0, nullptr, &c), VQS_EINVAL);
    REQUIRE_ERR(vqs_codec_create(nullptr, 8, nullptr, &c), VQS_EINVAL);
}

TEST_CASE("training and encoding errors", "[codec][errors]")
{
    const size_t d = 16;
    auto x = synth(300, d, 5);
    auto c = make("SQ8", d);
    std::vector<uint8_t> codes(d * 300);
    REQUIRE_ERR(vqs_codec_encode(c.get(), 300, x.data(), codes.data()), VQS_EINVAL); // untrained
    x[7 * d + 3] = NAN;
    REQUIRE_ERR(vqs_codec_train(c.get(), 300, x.data()), VQS_ENONFINITE);
    REQUIRE(std::string(vqs_errdetail()).find("row 7") != std::string::npos);
    REQUIRE_FALSE(vqs_codec_is_trained(c.get()));
    x[7 * d + 3] = 0;
    auto p = make("PQ4x8", d);
    REQUIRE_ERR(vqs_codec_train(p.get(), 100, x.data()), VQS_EINVAL); // 100 < 256 points
    REQUIRE(std::string(vqs_errdetail()).find("256") != std::string::npos);
}

TEST_CASE("damaged blobs are refused, never crash", "[codec][errors]")
{
    const size_t d = 16;
    auto x = synth(2000, d, 6);
    vqs_codec_opts o = {};
    o.kmeans_iters = 4;
    for (const char *spec : {"SQ8", "PCA8,PQ4x4", "ROT,SQfp16"}) {
        INFO("spec " << spec);
        auto c = make(spec, d, &o);
        REQUIRE_OK(vqs_codec_train(c.get(), 2000, x.data()));
        void *blob = nullptr;
        size_t len = 0;
        REQUIRE_OK(vqs_codec_save(c.get(), &blob, &len));
        std::vector<uint8_t> b((uint8_t *)blob, (uint8_t *)blob + len);
        std::free(blob);
        vqs_codec *l = nullptr;
        for (size_t cut = 0; cut < len; cut++) { // every truncation
            std::vector<uint8_t> t(b.begin(), b.begin() + cut);
            int rc = vqs_codec_load(cut ? t.data() : b.data(), cut, &l);
            INFO("cut at " << cut);
            REQUIRE(rc == VQS_ECORRUPT);
            REQUIRE(l == nullptr);
        }
        for (size_t i = 0; i < len; i++) { // every single-byte corruption
            auto t = b;
            t[i] ^= 0x5a;
            int rc = vqs_codec_load(t.data(), t.size(), &l);
            INFO("byte " << i);
            REQUIRE((rc == VQS_ECORRUPT || rc == VQS_EVERSION));
            REQUIRE(l == nullptr);
        }
        // a newer format version with a valid checksum is refused as such
        auto t = b;
        t[8] = 2;
        uint32_t crc = vqs_crc32c(0, t.data(), t.size() - 4);
        std::memcpy(&t[t.size() - 4], &crc, 4);
        REQUIRE_ERR(vqs_codec_load(t.data(), t.size(), &l), VQS_EVERSION);
        REQUIRE(std::string(vqs_errdetail()).find("version 2") != std::string::npos);
    }
}

TEST_CASE("vqs_codec_error_of: centred SQNR unchanged by an offset and a hand-computed case", "[codec]")
{
    // by hand: x = [[1, 2], [3, 6]], xr = [[1, 3], [2, 6]]: mean (2, 4),
    // variance ((1 + 4) + (1 + 4)) / 2 = 5 per vector, MSE (1 + 1) / 2 = 1,
    // relative MSE 0.2, SQNR 10 log10 5 = 6.9897 dB
    const float x[] = {1, 2, 3, 6}, xr[] = {1, 3, 2, 6};
    vqs_codec_error e;
    REQUIRE_OK(vqs_codec_error_of(2, 2, x, xr, &e));
    REQUIRE(e.mse == Approx(1.0).epsilon(1e-12));
    REQUIRE(e.variance == Approx(5.0).epsilon(1e-12));
    REQUIRE(e.rel_mse == Approx(0.2).epsilon(1e-12));
    REQUIRE(e.sqnr_db == Approx(6.98970004336).epsilon(1e-10));

    // a codec on data far from the origin: SQNR = -10 log10(relative MSE),
    // and both are unchanged when a constant vector is added to the data and
    // its reconstruction; the uncentred power (the old definition) is not
    const size_t d = 24, n = 1500;
    auto xs = synth(n, d, 8);
    auto c = make("SQ4", d);
    REQUIRE_OK(vqs_codec_train(c.get(), n, xs.data()));
    std::vector<uint8_t> codes(n * vqs_codec_code_size(c.get()));
    std::vector<float> rec(n * d);
    REQUIRE_OK(vqs_codec_encode(c.get(), n, xs.data(), codes.data()));
    REQUIRE_OK(vqs_codec_decode(c.get(), n, codes.data(), rec.data()));
    vqs_codec_error a, b;
    REQUIRE_OK(vqs_codec_error_of(n, d, xs.data(), rec.data(), &a));
    REQUIRE(a.sqnr_db == Approx(-10 * std::log10(a.rel_mse)).epsilon(1e-12));
    REQUIRE(a.rel_mse == Approx(a.mse / a.variance).epsilon(1e-12));
    REQUIRE(a.variance == Approx(total_var(xs, d)).epsilon(1e-9));
    auto shift = [&](std::vector<float> v) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++)
                v[i * d + j] += 100.0f + (float)j;
        return v;
    };
    auto xs2 = shift(xs), rec2 = shift(rec);
    REQUIRE_OK(vqs_codec_error_of(n, d, xs2.data(), rec2.data(), &b));
    // float rounding of the shifted values moves the error by ~ulp(100) per
    // component: relative 1e-3 of the MSE at most here, far below the old
    // definition's change
    REQUIRE(b.sqnr_db == Approx(a.sqnr_db).margin(0.01));
    REQUIRE(b.variance == Approx(a.variance).epsilon(1e-5));
    double sig = 0, sig2 = 0;
    for (size_t i = 0; i < n * d; i++) {
        sig += (double)xs[i] * xs[i];
        sig2 += (double)xs2[i] * xs2[i];
    }
    double old_a = 10 * std::log10(sig / n / a.mse), old_b = 10 * std::log10(sig2 / n / b.mse);
    WARN("SQ4 SQNR " << a.sqnr_db << " dB, shifted " << b.sqnr_db << " dB; uncentred definition "
                     << old_a << " dB, shifted " << old_b << " dB");
    REQUIRE(old_b - old_a > 10); // what the offset did to the old figure

    // edge cases: no error is +Inf, constant data with an error is -Inf, and
    // bad arguments are refused
    REQUIRE_OK(vqs_codec_error_of(2, 2, x, x, &e));
    REQUIRE(e.mse == 0);
    REQUIRE(e.sqnr_db == INFINITY);
    const float k2[] = {3, 3, 3, 3};
    REQUIRE_OK(vqs_codec_error_of(2, 2, k2, x, &e));
    REQUIRE(e.variance == 0);
    REQUIRE(e.sqnr_db == -INFINITY);
    REQUIRE(e.rel_mse == INFINITY);
    REQUIRE_ERR(vqs_codec_error_of(0, 2, x, xr, &e), VQS_EINVAL);
    REQUIRE_ERR(vqs_codec_error_of(2, 2, nullptr, xr, &e), VQS_EINVAL);
    REQUIRE_ERR(vqs_codec_error_of(2, 2, x, xr, nullptr), VQS_EINVAL);
}

TEST_CASE("CRC-32C matches the published check value", "[codec]")
{
    // RFC 3720 / iSCSI check value for "123456789"
    REQUIRE(vqs_crc32c(0, "123456789", 9) == 0xE3069283u);
}

TEST_CASE("PCA<P>%: P percent of d, rounded to the nearest integer, at least 1, and the canonical spec names it",
          "[codec][transform]")
{
    struct {
        const char *spec;
        size_t d;
        const char *canonical;
    } cases[] = {
        {"PCA50%,SQ8", 768, "PCA384,SQ8"}, {"PCA25%,Flat", 768, "PCA192,Flat"},
        {"PCA75%,SQfp8", 768, "PCA576,SQfp8"}, {"PCA50%,SQ8", 3, "PCA2,SQ8"}, // 1.5 rounds up
        {"PCA1%,SQ8", 10, "PCA1,SQ8"},                                      // 0.1: at least 1
        {"PCA12.5%,SQ8", 64, "PCA8,SQ8"},  {"PCA100%,SQ8", 64, "PCA64,SQ8"},
        {"PCA33%W,SQ8", 64, "PCA21W,SQ8"}, // 21.12
        {"PCA50%R,ROT,BIN", 100, "PCA50R,ROT,BIN"},
    };
    for (auto &tc : cases) {
        INFO(tc.spec << " at d = " << tc.d);
        auto c = make(tc.spec, tc.d);
        REQUIRE(std::string(vqs_codec_spec(c.get())) == tc.canonical);
    }
    // the percentage and the number are the same codec: same codes, and the
    // blob (which stores the canonical spec) loads as the number
    const size_t d = 64, n = 2000;
    auto x = synth(n, d, 5);
    auto a = make("PCA50%,SQ8", d), b = make("PCA32,SQ8", d);
    REQUIRE_OK(vqs_codec_train(a.get(), n, x.data()));
    REQUIRE_OK(vqs_codec_train(b.get(), n, x.data()));
    std::vector<uint8_t> ca(32 * n), cb(32 * n);
    REQUIRE(vqs_codec_code_size(a.get()) == 32);
    REQUIRE_OK(vqs_codec_encode(a.get(), n, x.data(), ca.data()));
    REQUIRE_OK(vqs_codec_encode(b.get(), n, x.data(), cb.data()));
    REQUIRE(ca == cb);
    void *blob = nullptr;
    size_t len = 0;
    REQUIRE_OK(vqs_codec_save(a.get(), &blob, &len));
    vqs_codec *l = nullptr;
    int rc = vqs_codec_load(blob, len, &l);
    std::free(blob);
    REQUIRE_OK(rc);
    codec_ptr loaded(l, vqs_codec_free);
    REQUIRE(std::string(vqs_codec_spec(loaded.get())) == "PCA32,SQ8");
}

namespace {
std::vector<uint8_t> codes_of(const vqs_codec *c, const std::vector<float> &x, size_t d)
{
    size_t n = x.size() / d;
    std::vector<uint8_t> codes(vqs_codec_code_size(c) * n);
    REQUIRE_OK(vqs_codec_encode(c, n, x.data(), codes.data()));
    return codes;
}

std::vector<uint8_t> blob_of(const vqs_codec *c)
{
    void *blob = nullptr;
    size_t len = 0;
    REQUIRE_OK(vqs_codec_save(c, &blob, &len));
    std::vector<uint8_t> v((uint8_t *)blob, (uint8_t *)blob + len);
    std::free(blob);
    return v;
}
} // namespace

TEST_CASE("vqs_codec_train_from copies the matching leading stages, exactly", "[codec]")
{
    const size_t d = 32, n = 3000;
    auto xa = synth(n, d, 11), xb = synth(n, d, 12);
    vqs_codec_opts o = {};
    o.seed = 3;
    o.kmeans_iters = 6;
    auto donor = make("PCA16,SQ8", d, &o);
    REQUIRE_OK(vqs_codec_train(donor.get(), n, xa.data()));
    const float *ev_donor = nullptr;
    size_t nev = 0;
    double ret = 0;
    REQUIRE_OK(vqs_codec_pca_info(donor.get(), &ev_donor, &nev, &ret));
    std::vector<float> ev0(ev_donor, ev_donor + nev);

    SECTION("on the donor's rows the result is plain training's, bit for bit")
    {
        for (const char *spec : {"PCA16,SQ4", "PCA16,Flat", "PCA16,PQ4x4", "PCA16,SQ8"}) {
            INFO(spec);
            auto plain = make(spec, d, &o), from = make(spec, d, &o);
            REQUIRE_OK(vqs_codec_train(plain.get(), n, xa.data()));
            int reused = -1;
            REQUIRE_OK(vqs_codec_train_from(from.get(), donor.get(), n, xa.data(), &reused));
            REQUIRE(reused == (std::string(spec) == "PCA16,SQ8" ? 2 : 1));
            REQUIRE(codes_of(from.get(), xb, d) == codes_of(plain.get(), xb, d));
            REQUIRE(blob_of(from.get()) == blob_of(plain.get()));
        }
    }
    SECTION("copied, not trained: other rows keep the donor's PCA")
    {
        auto c = make("PCA16,Flat", d, &o);
        int reused = -1;
        REQUIRE_OK(vqs_codec_train_from(c.get(), donor.get(), n, xb.data(), &reused));
        REQUIRE(reused == 1);
        const float *ev = nullptr;
        REQUIRE_OK(vqs_codec_pca_info(c.get(), &ev, &nev, &ret));
        REQUIRE(std::vector<float>(ev, ev + nev) == ev0);
        // the whole spec matches: nothing is trained, the codes are the donor's
        auto w = make("PCA16,SQ8", d, &o);
        REQUIRE_OK(vqs_codec_train_from(w.get(), donor.get(), n, xb.data(), &reused));
        REQUIRE(reused == 2);
        REQUIRE(codes_of(w.get(), xb, d) == codes_of(donor.get(), xb, d));
        // a codec trained before is retrained from the donor as well
        REQUIRE_OK(vqs_codec_train_from(c.get(), donor.get(), n, xa.data(), &reused));
        REQUIRE(reused == 1);
    }
    SECTION("nothing is copied when a stage or an option differs")
    {
        struct {
            const char *spec;
            uint64_t seed;
            float clip;
        } cases[] = {
            {"PCA16R,SQ8", 3, 0},  // another token
            {"PCA8,SQ8", 3, 0},    // another dimension
            {"ROT,PCA16,SQ8", 3, 0},
            {"PCA16,SQ8", 4, 0},   // another seed
            {"PCA16,SQ8", 3, 0.99f},
        };
        for (auto &tc : cases) {
            INFO(tc.spec << " seed " << tc.seed << " clip " << tc.clip);
            vqs_codec_opts o2 = o;
            o2.seed = tc.seed;
            o2.sq_clip = tc.clip;
            auto c = make(tc.spec, d, &o2);
            int reused = -1;
            REQUIRE_OK(vqs_codec_train_from(c.get(), donor.get(), n, xa.data(), &reused));
            REQUIRE(reused == 0);
        }
        // the same clip and seed but a different quantizer: the PCA only
        vqs_codec_opts o3 = o;
        auto c = make("PCA16,SQ8", 24, &o3); // another input dimension
        int reused = -1;
        std::vector<float> x24(n * 24, 0.5f);
        for (size_t i = 0; i < x24.size(); i++)
            x24[i] = xa[i % xa.size()];
        REQUIRE_OK(vqs_codec_train_from(c.get(), donor.get(), n, x24.data(), &reused));
        REQUIRE(reused == 0);
        REQUIRE_OK(vqs_codec_train_from(c.get(), nullptr, n, x24.data(), &reused));
        REQUIRE(reused == 0);
    }
    SECTION("OPQ is reused only before the same quantizer token (its training depends on it)")
    {
        auto od = make("OPQ4,PQ4x8", d, &o);
        REQUIRE_OK(vqs_codec_train(od.get(), n, xa.data()));
        int reused = -1;
        auto c4 = make("OPQ4,PQ4x4", d, &o);
        REQUIRE_OK(vqs_codec_train_from(c4.get(), od.get(), n, xa.data(), &reused));
        REQUIRE(reused == 0);
        auto c8 = make("OPQ4,PQ4x8", d, &o);
        REQUIRE_OK(vqs_codec_train_from(c8.get(), od.get(), n, xa.data(), &reused));
        REQUIRE(reused == 2);
        REQUIRE(codes_of(c8.get(), xb, d) == codes_of(od.get(), xb, d));
    }
}
