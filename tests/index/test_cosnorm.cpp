// Tests for cosine scoring against normalised reconstructions (index/ivf.c, issue 14 item 3):
// with the correction a stored vector scores <q, x^> / |x^|, x^ its full reconstruction
// (centroid + decoded residual for residual IVF codes), not <q, x^>.
// - the scores the index returns equal that value computed from vqs_codec_decode, the results
//   are the true top k by it (the fast-scan pruning included), for flat and IVF indexes, and
//   again, bit for bit, after the trained state is reloaded and the codes re-added in other
//   batches; a persistent collection after a reopen likewise;
// - the correction raises recall@10 against exact ground truth where reconstructions have
//   uneven norms (PCA keeping a quarter of the dimensions of anisotropic data), and turning it
//   off (cos_norm = -1) gives the plain inner product back.
#include "vqs_test.hpp"

#include <cmath>
#include <map>

using namespace vqs_test;
using index_ptr = std::unique_ptr<vqs_index, decltype(&vqs_index_free)>;

namespace
{

// n / 2 unit rows of a seeded anisotropic mixture, each followed by its negative: the data's
// mean is exactly zero (each pair sums to 0 in any precision), so a PCA stage has no mean and
// its inner-product scores are <q, x^> whatever the PCA query handling does with the mean.
std::vector<float> symmetric(size_t n, size_t d, uint64_t seed, const vqs_synth_opts *so = nullptr)
{
    std::vector<float> h(n / 2 * d);
    vqs_synth_opts o = so ? *so : vqs_synth_opts{};
    o.seed = seed;
    o.unit_norm = 1;
    REQUIRE_OK(vqs_synth_gmm(&o, n / 2, d, h.data()));
    std::vector<float> x(n / 2 * 2 * d);
    for (size_t i = 0; i < n / 2; i++)
        for (size_t j = 0; j < d; j++) {
            x[2 * i * d + j] = h[i * d + j];
            x[(2 * i + 1) * d + j] = -h[i * d + j];
        }
    return x;
}

index_ptr make(const char *spec, size_t d, int cos_norm, int by_residual = 0)
{
    vqs_index *raw = nullptr;
    vqs_index_opts o = {};
    o.seed = 5;
    o.cos_norm = cos_norm;
    o.by_residual = by_residual;
    REQUIRE_OK(vqs_index_create(spec, d, VQS_METRIC_COS, &o, &raw));
    return index_ptr(raw, vqs_index_free);
}

std::vector<double> unit(const float *q, size_t d)
{
    double s = 0;
    for (size_t j = 0; j < d; j++)
        s += (double)q[j] * q[j];
    std::vector<double> u(d);
    for (size_t j = 0; j < d; j++)
        u[j] = q[j] / std::sqrt(s);
    return u;
}

// Reconstructions x^ of codes (rows of stride bytes) in lists: centroid + decode(code) for
// residual codes (centroids not NULL), else decode(code).
std::vector<float> reconstruct(const vqs_codec *c, size_t d, size_t n, const uint8_t *codes,
                               size_t stride, const uint32_t *lists, const float *centroids)
{
    size_t cs = vqs_codec_code_size(c);
    std::vector<uint8_t> packed(n * cs);
    for (size_t i = 0; i < n; i++)
        std::memcpy(&packed[i * cs], codes + i * stride, cs);
    std::vector<float> xr(n * d);
    REQUIRE_OK(vqs_codec_decode(c, n, packed.data(), xr.data()));
    if (centroids)
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++)
                xr[i * d + j] += centroids[(size_t)lists[i] * d + j];
    return xr;
}

// <q, x^> / |x^| (corrected) or <q, x^> for a unit query.
double score(const std::vector<double> &q, const float *xr, size_t d, bool corrected)
{
    double s = 0, nn = 0;
    for (size_t j = 0; j < d; j++) {
        s += q[j] * xr[j];
        nn += (double)xr[j] * xr[j];
    }
    return corrected ? s / std::sqrt(nn) : s;
}

} // namespace

TEST_CASE("cosine: a stored vector scores <q, x^> / |x^| of its decoded code, flat and IVF, "
          "fresh and reloaded",
          "[index][cosnorm]")
{
    const size_t d = 48, n = 2000, nq = 8, k = 20;
    auto x = symmetric(n, d, 71);
    auto q = synth(nq, d, 72, true);
    const double tol = 2e-5;
    struct {
        const char *spec;
        int by_residual;
    } cases[] = {
        {"SQfp8", 0}, {"SQ8", 0}, {"SQ4", 0}, {"PQ16x8", 0}, {"PQ16x4", 0}, {"RVQ4x8", 0},
        {"ROT,SQ8", 0}, {"PCA16,SQ8", 0}, {"PCA12,PQ6x4", 0},
        {"HAD,SQfp8", 0}, // 48 -> 64 with zero padding, not an isometry: rows reversed one by one
        {"IVF8,SQ8", 0}, {"IVF8,PQ16x4", 0}, {"IVF8,PQ16x8", 0}, {"IVF8,ROT,SQfp8", 0},
        {"IVF8,HAD,SQ8", 0}, {"IVF8,SQ4", -1}, // the last without residuals
    };
    for (auto &cs : cases) {
        INFO(cs.spec << (cs.by_residual < 0 ? " (no residuals)" : ""));
        auto a = make(cs.spec, d, 1, cs.by_residual);
        REQUIRE_OK(vqs_index_train(a.get(), n, x.data()));
        size_t es = vqs_index_entry_size(a.get()), nlist = 0;
        std::vector<uint8_t> ent(n * es);
        std::vector<uint32_t> lists(n);
        REQUIRE_OK(vqs_index_encode(a.get(), n, x.data(), ent.data(), lists.data()));
        std::vector<int64_t> ids(n);
        for (size_t i = 0; i < n; i++)
            ids[i] = (int64_t)(i * 3 + 1);
        REQUIRE_OK(vqs_index_add_encoded(a.get(), n, ent.data(), lists.data(), ids.data()));
        const float *cent = vqs_index_centroids(a.get(), &nlist);
        bool ivf = std::string(cs.spec).rfind("IVF", 0) == 0;
        REQUIRE((cent != nullptr) == ivf);
        auto xr = reconstruct(vqs_index_codec(a.get()), d, n, ent.data(), es, lists.data(),
                              ivf && cs.by_residual >= 0 ? cent : nullptr);

        vqs_search_params p = {};
        p.nprobe = nlist; // every list: the answers are the top k over all codes
        std::vector<int64_t> ia(nq * k);
        std::vector<float> da(nq * k);
        REQUIRE_OK(vqs_index_search(a.get(), &p, nq, q.data(), k, ia.data(), da.data()));
        double off_by = 0; // how far the uncorrected scores are: the test must tell them apart
        for (size_t qi = 0; qi < nq; qi++) {
            auto u = unit(&q[qi * d], d);
            std::vector<double> all(n);
            for (size_t i = 0; i < n; i++)
                all[i] = score(u, &xr[i * d], d, true);
            std::vector<double> sorted = all;
            std::sort(sorted.begin(), sorted.end(), std::greater<double>());
            for (size_t r = 0; r < k; r++) {
                INFO("query " << qi << " rank " << r);
                int64_t id = ia[qi * k + r];
                REQUIRE(id >= 1);
                REQUIRE((id - 1) % 3 == 0);
                size_t i = (size_t)(id - 1) / 3;
                REQUIRE(i < n);
                REQUIRE(std::fabs(da[qi * k + r] - all[i]) <= tol);
                // the true r-th best, up to near-ties
                REQUIRE(all[i] >= sorted[r] - 2 * tol);
                off_by = std::max(off_by, std::fabs(score(u, &xr[i * d], d, false) - all[i]));
            }
        }
        INFO("largest difference between <q, x^> and <q, x^> / |x^| among the results: " << off_by);
        REQUIRE(off_by > 10 * tol);

        // the trained state reloaded, the codes re-added in two batches, the second reversed:
        // the factors are derived from the codes again, bit for bit
        void *blob = nullptr;
        size_t len = 0;
        REQUIRE_OK(vqs_index_save_trained(a.get(), &blob, &len));
        std::unique_ptr<void, decltype(&free)> bp(blob, free);
        vqs_index *raw = nullptr;
        vqs_index_opts o = {};
        o.cos_norm = 1;
        REQUIRE_OK(vqs_index_load_trained(blob, len, &o, &raw));
        index_ptr b(raw, vqs_index_free);
        REQUIRE_OK(vqs_index_add_encoded(b.get(), n / 3, ent.data(), lists.data(), ids.data()));
        std::vector<uint8_t> rent;
        std::vector<uint32_t> rl;
        std::vector<int64_t> rid;
        for (size_t i = n; i-- > n / 3;) {
            rent.insert(rent.end(), ent.begin() + (long)(i * es), ent.begin() + (long)((i + 1) * es));
            rl.push_back(lists[i]);
            rid.push_back(ids[i]);
        }
        REQUIRE_OK(vqs_index_add_encoded(b.get(), rid.size(), rent.data(), rl.data(), rid.data()));
        std::vector<int64_t> ib(nq * k);
        std::vector<float> db(nq * k);
        REQUIRE_OK(vqs_index_search(b.get(), &p, nq, q.data(), k, ib.data(), db.data()));
        for (size_t i = 0; i < nq * k; i++) {
            INFO("result " << i);
            REQUIRE(ia[i] == ib[i]);
            REQUIRE(da[i] == db[i]);
        }
        // 4 bytes per vector more than without the correction (the same ids
        // held: the id map's share depends on them)
        auto plain = make(cs.spec, d, -1, cs.by_residual);
        REQUIRE_OK(vqs_index_train(plain.get(), n, x.data()));
        REQUIRE_OK(vqs_index_add(plain.get(), n, x.data(), ids.data()));
        REQUIRE(vqs_index_bytes_per_vector(a.get(), nullptr) ==
                vqs_index_bytes_per_vector(plain.get(), nullptr) + 4);
    }
}

TEST_CASE("cosine: off (cos_norm -1), an index scores <q, x^>, and removal keeps each factor "
          "with its vector",
          "[index][cosnorm]")
{
    const size_t d = 32, n = 1200, nq = 5, k = 10;
    auto x = symmetric(n, d, 73);
    auto q = synth(nq, d, 74, true);
    for (const char *spec : {"PQ8x4", "IVF4,SQ4"}) {
        INFO(spec);
        for (int on : {-1, 1}) {
            auto ix = make(spec, d, on);
            REQUIRE_OK(vqs_index_train(ix.get(), n, x.data()));
            size_t es = vqs_index_entry_size(ix.get()), nlist = 0;
            std::vector<uint8_t> ent(n * es);
            std::vector<uint32_t> lists(n);
            REQUIRE_OK(vqs_index_encode(ix.get(), n, x.data(), ent.data(), lists.data()));
            REQUIRE_OK(vqs_index_add_encoded(ix.get(), n, ent.data(), lists.data(), nullptr));
            // remove every third vector: the last vectors of the lists move into the holes
            std::vector<int64_t> del;
            for (size_t i = 0; i < n; i += 3)
                del.push_back((int64_t)i);
            size_t removed = 0;
            REQUIRE_OK(vqs_index_remove(ix.get(), del.size(), del.data(), &removed));
            REQUIRE(removed == del.size());
            const float *cent = vqs_index_centroids(ix.get(), &nlist);
            auto xr = reconstruct(vqs_index_codec(ix.get()), d, n, ent.data(), es, lists.data(), cent);
            vqs_search_params p = {};
            p.nprobe = nlist;
            std::vector<int64_t> ids(nq * k);
            std::vector<float> dist(nq * k);
            REQUIRE_OK(vqs_index_search(ix.get(), &p, nq, q.data(), k, ids.data(), dist.data()));
            for (size_t qi = 0; qi < nq; qi++) {
                auto u = unit(&q[qi * d], d);
                std::vector<double> all;
                for (size_t i = 0; i < n; i++)
                    if (i % 3 != 0)
                        all.push_back(score(u, &xr[i * d], d, on > 0));
                std::sort(all.begin(), all.end(), std::greater<double>());
                for (size_t r = 0; r < k; r++) {
                    INFO("query " << qi << " rank " << r << " on " << on);
                    size_t i = (size_t)ids[qi * k + r];
                    REQUIRE(i % 3 != 0);
                    REQUIRE(std::fabs(dist[qi * k + r] - score(u, &xr[i * d], d, on > 0)) <= 2e-5);
                    REQUIRE(dist[qi * k + r] >= all[r] - 4e-5);
                }
            }
        }
    }
}

TEST_CASE("cosine: on by default except for SQfp16 and SQbf16 without PCA, VQS_COS_NORM overrides",
          "[index][cosnorm]")
{
    // the correction costs 4 bytes per vector: bytes_per_vector tells whether it is on
    auto extra = [](const char *spec, vqs_metric m, int opt) {
        vqs_index *raw = nullptr;
        vqs_index_opts o = {};
        o.cos_norm = opt;
        REQUIRE_OK(vqs_index_create(spec, 64, m, &o, &raw));
        index_ptr ix(raw, vqs_index_free);
        o.cos_norm = -1;
        REQUIRE_OK(vqs_index_create(spec, 64, m, &o, &raw));
        index_ptr off(raw, vqs_index_free);
        return vqs_index_bytes_per_vector(ix.get(), nullptr) - vqs_index_bytes_per_vector(off.get(), nullptr);
    };
    const char *saved = std::getenv("VQS_COS_NORM");
    std::string keep = saved ? saved : "";
    unsetenv("VQS_COS_NORM");
    for (const char *spec : {"SQ8", "SQfp8", "SQ4", "PQ16x4", "RVQ4x8", "ROT,BIN", "PCA32,SQfp16", "IVF16,SQ8",
                             "PQ16x4,Refine(SQfp16)"})
        CHECK(extra(spec, VQS_METRIC_COS, 0) == 4);
    for (const char *spec : {"SQfp16", "SQbf16", "ROT,SQfp16", "IVF16,SQbf16", "SQfp16,RFlat"})
        CHECK(extra(spec, VQS_METRIC_COS, 0) == 0);
    CHECK(extra("SQfp16", VQS_METRIC_COS, 1) == 4);
    CHECK(extra("PQ16x4", VQS_METRIC_L2, 1) == 0); // cosine only
    CHECK(extra("PQ16x4", VQS_METRIC_IP, 1) == 0);
    setenv("VQS_COS_NORM", "off", 1);
    CHECK(extra("SQ8", VQS_METRIC_COS, 0) == 0);
    CHECK(extra("SQ8", VQS_METRIC_COS, 1) == 4); // the option wins
    setenv("VQS_COS_NORM", "1", 1);
    CHECK(extra("SQfp16", VQS_METRIC_COS, 0) == 4);
    CHECK(extra("SQfp16", VQS_METRIC_COS, -1) == 0);
    if (saved)
        setenv("VQS_COS_NORM", keep.c_str(), 1);
    else
        unsetenv("VQS_COS_NORM");
}

TEST_CASE("cosine: a Refine(...) codec re-scores by <q, x^> / |x^| of its own reconstruction",
          "[index][cosnorm]")
{
    const size_t d = 32, n = 1500, nq = 6, k = 10;
    auto x = symmetric(n, d, 76);
    auto q = synth(nq, d, 77, true);
    // the refine codec as the index trains it: SQ8 (min/max per dimension, no randomness) on
    // the normalised training rows
    std::vector<float> xn = x;
    vqs_normalize_rows(n, d, xn.data());
    vqs_codec *rraw = nullptr;
    REQUIRE_OK(vqs_codec_create("SQ8", d, nullptr, &rraw));
    codec_ptr rc(rraw, vqs_codec_free);
    REQUIRE_OK(vqs_codec_train(rc.get(), n, xn.data()));
    for (int on : {-1, 1}) {
        INFO("cos_norm " << on);
        auto ix = make("IVF4,PQ8x4,Refine(SQ8)", d, on);
        REQUIRE_OK(vqs_index_train(ix.get(), n, x.data()));
        size_t es = vqs_index_entry_size(ix.get()), cs = vqs_index_code_size(ix.get());
        REQUIRE(es == cs + vqs_codec_code_size(rc.get()));
        std::vector<uint8_t> ent(n * es);
        std::vector<uint32_t> lists(n);
        REQUIRE_OK(vqs_index_encode(ix.get(), n, x.data(), ent.data(), lists.data()));
        REQUIRE_OK(vqs_index_add_encoded(ix.get(), n, ent.data(), lists.data(), nullptr));
        // the refine codes are the tails of the entries
        auto xr = reconstruct(rc.get(), d, n, ent.data() + cs, es, lists.data(), nullptr);
        vqs_search_params p = {};
        p.nprobe = 4;
        p.oversampling = (float)n / k; // every vector re-scored
        std::vector<int64_t> ids(nq * k);
        std::vector<float> dist(nq * k);
        REQUIRE_OK(vqs_index_search(ix.get(), &p, nq, q.data(), k, ids.data(), dist.data()));
        for (size_t qi = 0; qi < nq; qi++) {
            auto u = unit(&q[qi * d], d);
            std::vector<double> all(n);
            for (size_t i = 0; i < n; i++)
                all[i] = score(u, &xr[i * d], d, on > 0);
            std::vector<double> sorted = all;
            std::sort(sorted.begin(), sorted.end(), std::greater<double>());
            for (size_t r = 0; r < k; r++) {
                INFO("query " << qi << " rank " << r);
                size_t i = (size_t)ids[qi * k + r];
                REQUIRE(i < n);
                REQUIRE(std::fabs(dist[qi * k + r] - all[i]) <= 2e-5);
                REQUIRE(all[i] >= sorted[r] - 4e-5);
            }
        }
    }
}

TEST_CASE("cosine: dividing by |x^| raises recall@10 where reconstructions have uneven norms",
          "[index][cosnorm]")
{
    // PCA keeping a quarter of the dimensions of anisotropic unit vectors (64 clusters, noise
    // standard deviations from 1 down to 1/30 per cluster): the energy a vector keeps varies
    // from vector to vector, so <q, x^> favours vectors that lie in the kept subspace. Exact
    // ground truth over the original vectors. Not every distribution gains: with 16 clusters
    // and anisotropy 10 (the generator's default), where the dropped dimensions are closer to
    // noise that is uncorrelated with the query, PCA16,SQ8 lost 1.7 points; real embeddings
    // gained 1-7 points (bench/README.md), and so does this set (about 20 points measured).
    const size_t d = 64, n = 8000, nq = 200, k = 10;
    vqs_synth_opts so = {};
    so.ncenters = 64;
    so.spread = 1.0f;
    so.anisotropy = 30.0f;
    auto all = symmetric(n + 2 * nq, d, 75, &so);
    std::vector<float> x(all.begin(), all.begin() + (long)(n * d));
    std::vector<float> q;
    for (size_t i = 0; i < nq; i++) // one row of each remaining pair
        q.insert(q.end(), all.begin() + (long)((n + 2 * i) * d), all.begin() + (long)((n + 2 * i + 1) * d));
    std::vector<int64_t> gt(nq * k);
    std::vector<float> gd(nq * k);
    vqs_matrix B = {x.data(), n, d, d}, Q = {q.data(), nq, d, d};
    REQUIRE_OK(vqs_exact_knn(nullptr, VQS_METRIC_COS, &B, &Q, k, gt.data(), gd.data()));
    std::map<std::string, double> rec;
    for (const char *spec : {"PCA16,SQ8", "IVF16,PCA16,SQ8"}) {
        for (int on : {-1, 1}) {
            auto ix = make(spec, d, on);
            REQUIRE_OK(vqs_index_train(ix.get(), n, x.data()));
            REQUIRE_OK(vqs_index_add(ix.get(), n, x.data(), nullptr));
            vqs_search_params p = {};
            p.nprobe = 16;
            std::vector<int64_t> ids(nq * k);
            REQUIRE_OK(vqs_index_search(ix.get(), &p, nq, q.data(), k, ids.data(), nullptr));
            std::vector<float> rd(nq * k);
            REQUIRE_OK(vqs_exact_distances(VQS_METRIC_COS, &B, &Q, k, ids.data(), rd.data()));
            vqs_knn G = {nq, k, gt.data(), gd.data()}, R = {nq, k, ids.data(), rd.data()};
            rec[std::string(spec) + (on > 0 ? " on" : " off")] = vqs_recall(VQS_METRIC_COS, &G, &R, k, k);
        }
    }
    for (auto &kv : rec)
        std::printf("cosine correction: %-20s recall@10 %.4f\n", kv.first.c_str(), kv.second);
    REQUIRE(rec["PCA16,SQ8 on"] >= rec["PCA16,SQ8 off"] + 0.05);
    REQUIRE(rec["IVF16,PCA16,SQ8 on"] >= rec["IVF16,PCA16,SQ8 off"] + 0.05);
}

TEST_CASE("sts15k: dividing by |x^| raises recall@10 of PQ and SQ4 codes", "[index][cosnorm][data]")
{
    // Real 768-d sentence embeddings (cosine), 500 queries, exact ground truth. Measured with
    // `vqs eval` (bench/README.md): PQ192x4 +8.3 points, SQ4 +2.2 points of recall@10.
    size_t d = 0, dq = 0;
    auto x = load_rows(data_path("sts15k_bert768/base.fvecs"), SIZE_MAX, &d);
    auto q = load_rows(data_path("sts15k_bert768/queries.fvecs"), SIZE_MAX, &dq);
    REQUIRE(d == dq);
    const size_t n = x.size() / d, nq = q.size() / d, k = 10;
    std::vector<int64_t> gt(nq * k);
    std::vector<float> gd(nq * k);
    vqs_matrix B = {x.data(), n, d, d}, Q = {q.data(), nq, d, d};
    REQUIRE_OK(vqs_exact_knn(nullptr, VQS_METRIC_COS, &B, &Q, k, gt.data(), gd.data()));
    std::map<std::string, double> rec;
    for (const char *spec : {"PQ192x4", "SQ4"}) {
        for (int on : {-1, 1}) {
            auto ix = make(spec, d, on);
            REQUIRE_OK(vqs_index_train(ix.get(), n, x.data()));
            REQUIRE_OK(vqs_index_add(ix.get(), n, x.data(), nullptr));
            std::vector<int64_t> ids(nq * k);
            REQUIRE_OK(vqs_index_search(ix.get(), nullptr, nq, q.data(), k, ids.data(), nullptr));
            std::vector<float> rd(nq * k);
            REQUIRE_OK(vqs_exact_distances(VQS_METRIC_COS, &B, &Q, k, ids.data(), rd.data()));
            vqs_knn G = {nq, k, gt.data(), gd.data()}, R = {nq, k, ids.data(), rd.data()};
            rec[std::string(spec) + (on > 0 ? " on" : " off")] = vqs_recall(VQS_METRIC_COS, &G, &R, k, k);
        }
    }
    for (auto &kv : rec)
        std::printf("sts15k cosine correction: %-12s recall@10 %.4f\n", kv.first.c_str(), kv.second);
    REQUIRE(rec["PQ192x4 on"] >= rec["PQ192x4 off"] + 0.03);
    REQUIRE(rec["SQ4 on"] >= rec["SQ4 off"] + 0.01);
}

namespace
{

struct coll_codes {
    std::map<uint64_t, std::pair<uint32_t, std::vector<uint8_t>>> by_iid; // iid -> (list, code)
};

int collect_codes(void *ctx, size_t n, const uint64_t *iids, const uint32_t *lists, const uint8_t *codes,
                  size_t code_size)
{
    auto *cc = static_cast<coll_codes *>(ctx);
    for (size_t i = 0; i < n; i++)
        cc->by_iid[iids[i]] = {lists[i], std::vector<uint8_t>(codes + i * code_size, codes + (i + 1) * code_size)};
    return 0;
}

struct coll_result {
    std::vector<vqs_pid> ids;
    std::vector<float> dist;
    std::vector<int64_t> iids;
};

coll_result coll_search(vqs_coll *c, const std::vector<float> &q, size_t d, size_t k)
{
    size_t nq = q.size() / d;
    coll_result r;
    r.ids.resize(nq * k);
    r.dist.resize(nq * k);
    r.iids.resize(nq * k);
    vqs_coll_search_params p = {};
    p.nprobe = 4;
    REQUIRE_OK(coll_search_arrays(c, &p, nq, q.data(), k, r.ids.data(), r.dist.data(), r.iids.data()));
    return r;
}

} // namespace

TEST_CASE("cosine collection: reopened, it scores its stored codes by <q, x^> / |x^|, bit for bit "
          "as before",
          "[collection][cosnorm]")
{
    unsetenv("VQS_COS_NORM"); // a collection takes the default, which this test is about
    tmpdir t;
    const size_t d = 24, n = 2000, nq = 6, k = 10;
    auto x = symmetric(n, d, 78);
    auto q = synth(nq, d, 79, true);
    std::string dir = t.file("data");
    coll_result before;
    {
        catalog_ptr h(dir);
        vqs_coll_config cfg = {};
        cfg.d = d;
        cfg.metric = VQS_METRIC_COS;
        std::strcpy(cfg.spec, "IVF4,PQ8x4");
        cfg.rerank = VQS_RERANK_NONE; // codes only: the scan's scores are the answers
        cfg.nprobe = 4;
        cfg.oversampling = 1;
        REQUIRE_OK(vqs_coll_create(h.cat, "c", &cfg));
        vqs_coll *raw = nullptr;
        vqs_coll_opts o = {};
        o.nthreads = 2;
        REQUIRE_OK(vqs_coll_open(h.cat, "c", &o, &raw));
        std::unique_ptr<vqs_coll, decltype(&vqs_coll_close)> c(raw, vqs_coll_close);
        REQUIRE_OK(vqs_coll_train(c.get(), n, x.data()));
        for (size_t b0 = 0; b0 < n; b0 += 300) {
            size_t m = std::min<size_t>(300, n - b0);
            std::vector<vqs_pid> ids;
            for (size_t i = b0; i < b0 + m; i++)
                ids.push_back(u64id(i));
            REQUIRE_OK(vqs_coll_upsert(c.get(), m, ids.data(), x.data() + b0 * d, nullptr));
        }
        before = coll_search(c.get(), q, d, k);
    }
    // the stored codes, read from storage directly (one LMDB handle per process: before the catalog)
    coll_codes cc;
    {
        db_ptr h(dir);
        REQUIRE_OK(vqs_db_load_codes(h.db, "c", collect_codes, &cc));
    }
    catalog_ptr h(dir);
    vqs_coll *raw = nullptr;
    vqs_coll_opts o = {};
    o.nthreads = 1;
    REQUIRE_OK(vqs_coll_open(h.cat, "c", &o, &raw));
    std::unique_ptr<vqs_coll, decltype(&vqs_coll_close)> c(raw, vqs_coll_close);
    auto after = coll_search(c.get(), q, d, k);
    for (size_t i = 0; i < nq * k; i++) {
        INFO("result " << i);
        REQUIRE(before.ids[i].u64 == after.ids[i].u64);
        REQUIRE(before.iids[i] == after.iids[i]);
        REQUIRE(before.dist[i] == after.dist[i]);
    }
    // the scores are those of the stored codes' reconstructions, normalised
    const vqs_index *ix = vqs_coll_index(c.get());
    REQUIRE(ix != nullptr);
    const float *cent = vqs_index_centroids(ix, nullptr);
    REQUIRE(cent != nullptr);
    double off_by = 0;
    for (size_t qi = 0; qi < nq; qi++) {
        auto u = unit(&q[qi * d], d);
        for (size_t r = 0; r < k; r++) {
            INFO("query " << qi << " rank " << r);
            auto it = cc.by_iid.find((uint64_t)after.iids[qi * k + r]);
            REQUIRE(it != cc.by_iid.end());
            uint32_t list = it->second.first;
            auto xr = reconstruct(vqs_index_codec(ix), d, 1, it->second.second.data(), it->second.second.size(),
                                  &list, cent);
            double want = score(u, xr.data(), d, true);
            REQUIRE(std::fabs(after.dist[qi * k + r] - want) <= 2e-5);
            off_by = std::max(off_by, std::fabs(score(u, xr.data(), d, false) - want));
        }
    }
    REQUIRE(off_by > 2e-4);
}
