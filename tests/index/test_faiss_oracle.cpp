// FAISS as the oracle for exact search: IndexFlat through the FAISS C API
// (faiss_c/) must return the same neighbours as vqs's exact search. FAISS
// computes in float, so ids may differ where distances tie within float
// rounding; "the same neighbours" is therefore checked by distance: every
// FAISS neighbour's true distance equals vqs's at that rank (to float
// rounding), and recall with ties is 1.
#include "vqs_test_faiss.hpp"

#include <cmath>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>

#include "faiss_c_extra.h"

using namespace vqs_test;

namespace {


void compare(vqs_metric m, const vqs_matrix &B, const vqs_matrix &Q, size_t k)
{
    const size_t nq = Q.n, d = B.d;
    // contiguous copies for FAISS (vqs takes the strided file view directly)
    std::vector<float> xb(B.n * d), xq(nq * d);
    const size_t bld = B.ld ? B.ld : d, qld = Q.ld ? Q.ld : d;
    for (size_t i = 0; i < B.n; i++)
        std::copy(B.x + i * bld, B.x + i * bld + d, &xb[i * d]);
    for (size_t i = 0; i < nq; i++)
        std::copy(Q.x + i * qld, Q.x + i * qld + d, &xq[i * d]);
    if (m == VQS_METRIC_COS) { // FAISS does cosine as IP on normalised rows
        for (auto *v : {&xb, &xq})
            for (size_t i = 0; i < v->size() / d; i++) {
                double s = 0;
                for (size_t j = 0; j < d; j++)
                    s += (double)(*v)[i * d + j] * (*v)[i * d + j];
                for (size_t j = 0; j < d; j++)
                    (*v)[i * d + j] = (float)((*v)[i * d + j] / std::sqrt(s));
            }
    }
    FaissIndex *raw = nullptr;
    REQUIRE_FAISS(faiss_index_factory(&raw, (int)d, "Flat",
                                      m == VQS_METRIC_L2 ? METRIC_L2 : METRIC_INNER_PRODUCT));
    faiss_ptr idx(raw, faiss_Index_free);
    REQUIRE_FAISS(faiss_Index_add(idx.get(), (idx_t)B.n, xb.data()));
    std::vector<idx_t> fl(nq * k);
    std::vector<float> fd(nq * k);
    REQUIRE_FAISS(faiss_Index_search(idx.get(), (idx_t)nq, xq.data(), (idx_t)k, fd.data(), fl.data()));

    std::vector<int64_t> ids(nq * k), fids(fl.begin(), fl.end());
    std::vector<float> dist(nq * k), ftrue(nq * k);
    REQUIRE_OK(vqs_exact_knn(nullptr, m, &B, &Q, k, ids.data(), dist.data()));
    REQUIRE_OK(vqs_exact_distances(m, &B, &Q, k, fids.data(), ftrue.data()));
    size_t same = 0;
    for (size_t i = 0; i < nq * k; i++) {
        INFO("query " << i / k << " rank " << i % k << " vqs " << ids[i] << " (" << dist[i]
                      << ") faiss " << fids[i] << " (" << ftrue[i] << ")");
        double tol = 1e-5 * std::max(1.0, std::fabs((double)dist[i]));
        REQUIRE(std::fabs((double)ftrue[i] - dist[i]) <= tol);
        same += ids[i] == fids[i];
    }
    vqs_knn G = {nq, k, ids.data(), dist.data()}, R = {nq, k, fids.data(), ftrue.data()};
    REQUIRE(vqs_recall(m, &G, &R, k, k) == 1.0);
    WARN(vqs_metric_name(m) << ": FAISS and vqs return identical ids at " << same << " of "
                            << nq * k << " ranks (the rest are distance ties)");
}

} // namespace

TEST_CASE("FAISS IndexFlatL2 and vqs exact search agree on siftsmall", "[index][faiss][data]")
{
    auto bf = open_vecfile(data_path("siftsmall/siftsmall_base.fvecs"));
    auto qf = open_vecfile(data_path("siftsmall/sift_query1000.fvecs"));
    vqs_matrix B = {nullptr, vqs_vecfile_n(bf.get()), vqs_vecfile_d(bf.get()), 0};
    vqs_matrix Q = {nullptr, vqs_vecfile_n(qf.get()), vqs_vecfile_d(qf.get()), 0};
    REQUIRE_OK(vqs_vecfile_f32_view(bf.get(), &B.x, &B.ld));
    REQUIRE_OK(vqs_vecfile_f32_view(qf.get(), &Q.x, &Q.ld));
    compare(VQS_METRIC_L2, B, Q, 100);
}

TEST_CASE("FAISS IndexFlatIP and vqs exact search agree on a synthetic cosine set",
          "[index][faiss]")
{
    const size_t nb = 20000, nq = 300, d = 96;
    // queries from the same mixture as the base (held-out rows)
    auto all = synth(nb + nq, d, 77, true);
    std::vector<float> xb(all.begin(), all.begin() + nb * d), xq(all.begin() + nb * d, all.end());
    // scale rows so that cosine differs from inner product
    vqs_rng r;
    vqs_rng_seed(&r, 5);
    for (size_t i = 0; i < nb; i++) {
        float s = (float)(0.5 + 2 * vqs_rng_uniform(&r));
        for (size_t j = 0; j < d; j++)
            xb[i * d + j] *= s;
    }
    vqs_matrix B = {xb.data(), nb, d, 0}, Q = {xq.data(), nq, d, 0};
    compare(VQS_METRIC_COS, B, Q, 50);
    compare(VQS_METRIC_IP, B, Q, 10);
    compare(VQS_METRIC_L2, B, Q, 10);
}

TEST_CASE("FAISS C API errors are reported, not thrown", "[faiss]")
{
    FaissIndex *raw = nullptr;
    int rc = faiss_index_factory(&raw, 16, "NoSuchIndex", METRIC_L2);
    REQUIRE(rc != 0);
    REQUIRE(raw == nullptr);
    REQUIRE(std::string(faiss_get_last_error()).size() > 0);
}
