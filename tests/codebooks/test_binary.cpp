// BIN: 1-bit sign codes with the RaBitQ-style estimator. The bits, the
// stored norms, decode and the scores are checked against formulas computed
// here; on real data (sts15k_bert768, cosine as IP on normalised rows, with a
// random rotation applied here as a ROT stage would) the estimator must rank
// better than plain Hamming distance and be unbiased.
#include "vqs_test.hpp"

#include <algorithm>
#include <cblas.h>
#include <cmath>
#include <cstring>
#include <numeric>

#include "codebook_internal.h" // vqs_crc32c, to forge blobs with valid checksums
#include "vqs_codebook.h"

using namespace vqs_test;

namespace {

using query_ptr = std::unique_ptr<vqs_codec_query, decltype(&vqs_codec_query_free)>;

codec_ptr make_bin(size_t d, const char *spec = "BIN")
{
    vqs_codec_opts o = {};
    o.nthreads = 2;
    vqs_codec *c = nullptr;
    REQUIRE_OK(vqs_codec_create(spec, d, &o, &c));
    return codec_ptr(c, vqs_codec_free);
}

std::vector<double> mean_of(const std::vector<float> &x, size_t d)
{
    size_t n = x.size() / d;
    std::vector<double> m(d, 0.0);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            m[j] += x[i * d + j];
    for (auto &v : m)
        v /= (double)n;
    return m;
}

std::vector<float> scores(const vqs_codec *c, vqs_metric m, const float *q, size_t n, const uint8_t *codes)
{
    vqs_codec_query *qq = nullptr;
    REQUIRE_OK(vqs_codec_query_create(c, m, q, &qq));
    query_ptr qp(qq, vqs_codec_query_free);
    std::vector<float> s(n);
    REQUIRE_OK(vqs_codec_query_score(qq, n, codes, s.data()));
    return s;
}

} // namespace

namespace {

void check_bin(size_t n, size_t d)
{
    INFO("n = " << n << ", d = " << d);
    const size_t nb = (d + 7) / 8, cs = nb + 8;
    vqs_codec *bad = nullptr;
    REQUIRE_ERR(vqs_codec_create("BIN2", d, nullptr, &bad), VQS_ESPEC);
    REQUIRE(std::string(vqs_errdetail()).find("'BIN2'") != std::string::npos);
    auto c = make_bin(d);
    REQUIRE(vqs_codec_code_size(c.get()) == cs);
    REQUIRE_ERR(vqs_codec_train(c.get(), 0, nullptr), VQS_EINVAL);

    auto x = synth(n, d, 11);
    REQUIRE_OK(vqs_codec_train(c.get(), n, x.data()));
    auto mu = mean_of(x, d);
    std::vector<uint8_t> codes(n * cs);
    REQUIRE_OK(vqs_codec_encode(c.get(), n, x.data(), codes.data()));
    std::vector<float> y(n * d);
    REQUIRE_OK(vqs_codec_decode(c.get(), n, codes.data(), y.data()));
    std::vector<float> q(d);
    vqs_rng r;
    vqs_rng_seed(&r, 4);
    for (size_t j = 0; j < d; j++)
        q[j] = (float)(mu[j] + 3 * vqs_rng_normal(&r));
    auto sl2 = scores(c.get(), VQS_METRIC_L2, q.data(), n, codes.data());
    auto sip = scores(c.get(), VQS_METRIC_IP, q.data(), n, codes.data());
    double qc2 = 0, qc = 0;
    for (size_t j = 0; j < d; j++) {
        qc2 += (q[j] - mu[j]) * (q[j] - mu[j]);
        qc += q[j] * mu[j];
    }
    size_t ambiguous = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *ci = &codes[i * cs];
        double r2 = 0, l1 = 0, sdot_l2 = 0, sdot_ip = 0, mag = 0;
        std::vector<int> s(d);
        for (size_t j = 0; j < d; j++) {
            double t = x[i * d + j] - mu[j];
            int bit = (ci[j / 8] >> (j % 8)) & 1;
            INFO("row " << i << " dim " << j << " x - mean = " << t);
            if (std::fabs(t) > 1e-5 * (1 + std::fabs(mu[j])))
                REQUIRE(bit == (t > 0 ? 1 : 0));
            else
                ambiguous++;
            s[j] = bit ? 1 : -1;
            r2 += t * t;
            l1 += std::fabs(t);
        }
        for (size_t j = nb * 8 - 1; j >= d; j--) // padding bits are zero
            REQUIRE(((ci[j / 8] >> (j % 8)) & 1) == 0);
        float fr, fa;
        std::memcpy(&fr, ci + nb, 4);
        std::memcpy(&fa, ci + nb + 4, 4);
        REQUIRE(std::fabs(fr - std::sqrt(r2)) <= 1e-5 * std::sqrt(r2));
        REQUIRE(std::fabs(fa - l1 / std::sqrt((double)d * r2)) <= 1e-5);
        // decode: mean + (|x - c|_1 / d) * s
        for (size_t j = 0; j < d; j++)
            REQUIRE(std::fabs(y[i * d + j] - (mu[j] + l1 / d * s[j])) <= 1e-4 * (1 + std::fabs(mu[j])));
        // estimator: <x - c, v> ~ |x - c|^2 / |x - c|_1 * sum_j s_j v_j
        for (size_t j = 0; j < d; j++) {
            sdot_l2 += s[j] * (q[j] - mu[j]);
            sdot_ip += s[j] * q[j];
            mag += std::fabs(q[j]) + std::fabs(q[j] - mu[j]);
        }
        double el2 = qc2 + r2 - 2 * r2 / l1 * sdot_l2, eip = qc + r2 / l1 * sdot_ip;
        double tol = 1e-4 * (qc2 + r2 + std::fabs(qc) + r2 / l1 * mag);
        INFO("row " << i);
        REQUIRE(std::fabs(sl2[i] - el2) <= tol);
        REQUIRE(std::fabs(sip[i] - eip) <= tol);
    }
    REQUIRE(ambiguous <= n * d / 1000);

    // save -> load: identical codes; damaged blobs are refused
    void *blob = nullptr;
    size_t len = 0;
    REQUIRE_OK(vqs_codec_save(c.get(), &blob, &len));
    std::vector<uint8_t> bl((uint8_t *)blob, (uint8_t *)blob + len);
    free(blob);
    vqs_codec *l = nullptr;
    REQUIRE_OK(vqs_codec_load(bl.data(), bl.size(), &l));
    codec_ptr lp(l, vqs_codec_free);
    std::vector<uint8_t> codes2(n * cs);
    REQUIRE_OK(vqs_codec_encode(l, n, x.data(), codes2.data()));
    REQUIRE(codes2 == codes);
    auto forge = [](std::vector<uint8_t> b) {
        uint32_t crc = vqs_crc32c(0, b.data(), b.size() - 4);
        for (int k = 0; k < 4; k++)
            b[b.size() - 4 + k] = (uint8_t)(crc >> (8 * k));
        return b;
    };
    auto b1 = bl;
    b1[b1.size() - 10] ^= 0x40;
    REQUIRE_ERR(vqs_codec_load(b1.data(), b1.size(), &l), VQS_ECORRUPT); // checksum
    size_t p0 = bl.size() - 4 - (8 + 4 * d);
    auto b2 = bl;
    b2[p0] ^= 1; // dimension
    b2 = forge(b2);
    REQUIRE_ERR(vqs_codec_load(b2.data(), b2.size(), &l), VQS_ECORRUPT);
    auto b3 = bl;
    float inf = INFINITY;
    std::memcpy(&b3[p0 + 8], &inf, 4); // mean[0]
    b3 = forge(b3);
    REQUIRE_ERR(vqs_codec_load(b3.data(), b3.size(), &l), VQS_ECORRUPT);

    // non-finite inputs give finite codes, decodes and scores
    std::vector<float> nasty(d, 1.0f);
    nasty[0] = -1e38f;
    if (d > 2) {
        nasty[1] = INFINITY;
        nasty[2] = NAN;
    }
    std::vector<uint8_t> nc(cs);
    REQUIRE_OK(vqs_codec_encode(c.get(), 1, nasty.data(), nc.data()));
    std::vector<float> ny(d);
    REQUIRE_OK(vqs_codec_decode(c.get(), 1, nc.data(), ny.data()));
    for (float v : ny)
        REQUIRE(std::isfinite(v));
    for (float v : scores(c.get(), VQS_METRIC_L2, q.data(), 1, nc.data()))
        REQUIRE(std::isfinite(v));
    // a vector equal to the mean
    std::vector<float> mf(mu.begin(), mu.end());
    REQUIRE_OK(vqs_codec_encode(c.get(), 1, mf.data(), nc.data()));
    REQUIRE_OK(vqs_codec_decode(c.get(), 1, nc.data(), ny.data()));
    for (size_t j = 0; j < d; j++)
        REQUIRE(std::fabs(ny[j] - mf[j]) <= 1e-5 * (1 + std::fabs(mf[j])));
}

} // namespace

TEST_CASE("BIN: spec, layout, bits = sign(x - mean), stored norms, decode and scores by formula", "[binary]")
{
    check_bin(3000, 77);
    check_bin(500, 8);
    check_bin(300, 1);
    check_bin(30, 8200); // beyond the byte-table limit: the bit-walking scorer
}

namespace {

// a random orthogonal matrix (modified Gram-Schmidt on Gaussian rows), row-major
std::vector<float> random_rotation(size_t d, uint64_t seed)
{
    vqs_rng r;
    vqs_rng_seed(&r, seed);
    std::vector<double> g(d * d);
    for (auto &v : g)
        v = vqs_rng_normal(&r);
    for (size_t i = 0; i < d; i++) {
        double *gi = &g[i * d];
        for (size_t k = 0; k < i; k++) {
            const double *gk = &g[k * d];
            double p = 0;
            for (size_t j = 0; j < d; j++)
                p += gi[j] * gk[j];
            for (size_t j = 0; j < d; j++)
                gi[j] -= p * gk[j];
        }
        double nn = 0;
        for (size_t j = 0; j < d; j++)
            nn += gi[j] * gi[j];
        nn = std::sqrt(nn);
        for (size_t j = 0; j < d; j++)
            gi[j] /= nn;
    }
    return std::vector<float>(g.begin(), g.end());
}

// fraction of the true top-k found among the first K of a ranking by score
double recall_at(const std::vector<int64_t> &gt, size_t k, const std::vector<std::vector<double>> &rank_scores,
                 size_t K)
{
    double tot = 0;
    for (size_t qi = 0; qi < rank_scores.size(); qi++) {
        const auto &s = rank_scores[qi];
        std::vector<int64_t> idx(s.size());
        std::iota(idx.begin(), idx.end(), 0);
        std::partial_sort(idx.begin(), idx.begin() + K, idx.end(), [&](int64_t a, int64_t b) {
            return s[a] > s[b] || (s[a] == s[b] && a < b);
        });
        size_t hit = 0;
        for (size_t t = 0; t < k; t++)
            hit += std::find(idx.begin(), idx.begin() + K, gt[qi * k + t]) != idx.begin() + K;
        tot += (double)hit / k;
    }
    return tot / rank_scores.size();
}

} // namespace

TEST_CASE("BIN on sts15k_bert768 (cosine): estimator beats Hamming ranking and is unbiased", "[binary][data]")
{
    auto bf = open_vecfile(data_path("sts15k_bert768/base.fvecs"));
    auto qf = open_vecfile(data_path("sts15k_bert768/queries.fvecs"));
    const size_t d = vqs_vecfile_d(bf.get()), nb = vqs_vecfile_n(bf.get());
    const size_t nq = std::min<size_t>(60, vqs_vecfile_n(qf.get())), k = 10, K = 100;
    std::vector<float> xb(nb * d), xq(nq * d);
    REQUIRE_OK(vqs_vecfile_read_f32(bf.get(), 0, nb, xb.data()));
    REQUIRE_OK(vqs_vecfile_read_f32(qf.get(), 0, nq, xq.data()));
    for (auto *v : {&xb, &xq}) // cosine = IP on normalised rows
        for (size_t i = 0; i < v->size() / d; i++) {
            double s = 0;
            for (size_t j = 0; j < d; j++)
                s += (double)(*v)[i * d + j] * (*v)[i * d + j];
            for (size_t j = 0; j < d; j++)
                (*v)[i * d + j] = (float)((*v)[i * d + j] / std::sqrt(s));
        }
    // exact ground truth in the original space
    std::vector<int64_t> gt(nq * k);
    std::vector<float> gd(nq * k);
    vqs_matrix B = {xb.data(), nb, d, 0}, Q = {xq.data(), nq, d, 0};
    REQUIRE_OK(vqs_exact_knn(nullptr, VQS_METRIC_IP, &B, &Q, k, gt.data(), gd.data()));
    // the rotation a ROT stage would apply (inner products are unchanged)
    const char *seed_env = std::getenv("VQS_TEST_ROT_SEED");
    auto R = random_rotation(d, seed_env ? std::strtoull(seed_env, nullptr, 10) : 99);
    std::vector<float> rb(nb * d), rq(nq * d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)d, (int)d, 1.0f, xb.data(), (int)d,
                R.data(), (int)d, 0.0f, rb.data(), (int)d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)d, (int)d, 1.0f, xq.data(), (int)d,
                R.data(), (int)d, 0.0f, rq.data(), (int)d);

    auto c = make_bin(d);
    REQUIRE_OK(vqs_codec_train(c.get(), nb, rb.data()));
    const size_t cs = vqs_codec_code_size(c.get()), nbytes = (d + 7) / 8;
    std::vector<uint8_t> codes(nb * cs);
    REQUIRE_OK(vqs_codec_encode(c.get(), nb, rb.data(), codes.data()));
    auto mu = mean_of(rb, d);

    // true inner products, queries x base
    std::vector<float> tru(nq * nb);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nb, (int)d, 1.0f, xq.data(), (int)d,
                xb.data(), (int)d, 0.0f, tru.data(), (int)nb);
    std::vector<std::vector<double>> est(nq), ham(nq);
    double se = 0, se2 = 0;
    size_t ne = 0;
    for (size_t qi = 0; qi < nq; qi++) {
        const float *q = &rq[qi * d];
        auto s = scores(c.get(), VQS_METRIC_IP, q, nb, codes.data());
        est[qi].assign(s.begin(), s.end());
        // Hamming distance between sign(q - mean) and the codes (as a score: -distance)
        std::vector<uint8_t> qb(nbytes, 0);
        for (size_t j = 0; j < d; j++)
            if (q[j] - mu[j] > 0)
                qb[j / 8] |= (uint8_t)(1u << (j % 8));
        ham[qi].resize(nb);
        for (size_t i = 0; i < nb; i++) {
            int h = 0;
            for (size_t t = 0; t < nbytes; t++)
                h += __builtin_popcount((unsigned)(qb[t] ^ codes[i * cs + t]));
            ham[qi][i] = -h;
            double e = (double)s[i] - tru[qi * nb + i];
            se += e;
            se2 += e * e;
            ne++;
        }
    }
    double re = recall_at(gt, k, est, K), rh = recall_at(gt, k, ham, K);
    double re10 = recall_at(gt, k, est, k), rh10 = recall_at(gt, k, ham, k);
    double mean = se / ne, sd = std::sqrt(se2 / ne - mean * mean);
    WARN("BIN on sts15k (rotated, " << nq << " queries): 10-recall@100 estimator " << re << ", Hamming " << rh
                                    << "; 10-recall@10 estimator " << re10 << ", Hamming " << rh10
                                    << "; IP estimate error mean " << mean << " std " << sd);
    REQUIRE(re >= rh);
    REQUIRE(re10 > rh10);
    REQUIRE(re > 0.5);
    // unbiased over random rotations; one rotation leaves a mean of a few % of
    // the std (measured over seeds 1-5 and 99: at most 4.2%)
    REQUIRE(std::fabs(mean) < 0.1 * sd);
}
