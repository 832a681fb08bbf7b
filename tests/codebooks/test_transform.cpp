// Transform stages (codebooks/transform.c, pca.c, rotation.c, opq.c) through
// the stage API of codebook_internal.h: PCA against FAISS's PCAMatrix (eigenvalues, outputs up
// to sign, retained energy), the orthonormality and invertibility of ROT, HAD
// and OPQ checked by exact algebra, save/load and corrupted payloads, bad
// specs, and OPQ's PQ error against plain PQ and FAISS's OPQ. Most tests use
// the stage API directly (create with vqs_stage_transform_new, train, apply,
// reverse, save, load); the last one runs the transforms in the codec
// pipeline in front of the PQ stage. FAISS's OPQ costs minutes here, so the
// FAISS OPQ oracle runs on a small problem and the full-size comparison is
// hidden: vqs_tests "[opq-faiss-slow]".
#include "vqs_test_faiss.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/VectorTransform_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>

#include "codebook_internal.h"
#include "faiss_c_extra.h"

using namespace vqs_test;

namespace {

// A transform stage built from one token, freed at scope exit.
struct stage {
    vqs_stage s;
    int rc;
    stage(const char *tok, size_t d, const char *next = "SQfp16")
    {
        std::memset(&s, 0, sizeof s);
        std::snprintf(s.token, sizeof s.token, "%s", tok);
        s.d_in = d;
        rc = vqs_stage_transform_new(tok, next, &s);
    }
    ~stage()
    {
        if (s.ops && s.ops->destroy)
            s.ops->destroy(&s);
    }
    stage(const stage &) = delete;
    stage &operator=(const stage &) = delete;

    int train(size_t n, const float *x, uint64_t seed = 1)
    {
        vqs_codec_opts o = {};
        o.seed = seed;
        o.nthreads = 2;
        int r = s.ops->train(&s, n, x, &o);
        s.trained = r == 0;
        return r;
    }
    std::vector<float> apply(size_t n, const float *x) const
    {
        std::vector<float> y(n * s.d_out);
        s.ops->apply(&s, n, x, y.data());
        return y;
    }
    std::vector<float> reverse(size_t n, const float *y) const
    {
        std::vector<float> x(n * s.d_in);
        s.ops->reverse(&s, n, y, x.data());
        return x;
    }
    std::vector<uint8_t> save() const
    {
        vqs_wbuf w = {};
        int r = s.ops->save(&s, &w);
        REQUIRE(r == 0);
        REQUIRE(w.err == 0);
        std::vector<uint8_t> v(w.p, w.p + w.len);
        std::free(w.p);
        return v;
    }
    int load(const std::vector<uint8_t> &b)
    {
        vqs_rbuf r = {b.data(), b.size(), 0, nullptr};
        int rc2 = s.ops->load(&s, &r);
        if (rc2 == 0 && r.off != r.len)
            return -1; // unread bytes
        return rc2;
    }
};

struct dataset {
    float *x = nullptr;
    size_t n = 0, d = 0;
    explicit dataset(const std::string &path)
    {
        REQUIRE_OK(vqs_vecfile_load_f32(path.c_str(), nullptr, &x, &n, &d));
    }
    ~dataset() { std::free(x); }
    dataset(const dataset &) = delete;
    dataset &operator=(const dataset &) = delete;
};

// The d_out x d_in matrix of a linear map without bias, read off by applying
// it to the identity: row j of apply(I) is column j of the matrix.
std::vector<float> matrix_of(const stage &st)
{
    const size_t di = st.s.d_in, dd = st.s.d_out;
    std::vector<float> I(di * di, 0.0f);
    for (size_t i = 0; i < di; i++)
        I[i * di + i] = 1.0f;
    std::vector<float> cols = st.apply(di, I.data()); // di x dd
    std::vector<float> A(dd * di);
    for (size_t j = 0; j < di; j++)
        for (size_t i = 0; i < dd; i++)
            A[i * di + j] = cols[j * dd + i];
    return A;
}

// max |A A^T - I| for A with r rows of length c (orthonormal rows)
double orth_rows_err(const std::vector<float> &A, size_t r, size_t c)
{
    double worst = 0;
    for (size_t i = 0; i < r; i++)
        for (size_t j = 0; j <= i; j++) {
            double s = 0;
            for (size_t k = 0; k < c; k++)
                s += (double)A[i * c + k] * A[j * c + k];
            worst = std::max(worst, std::fabs(s - (i == j ? 1.0 : 0.0)));
        }
    return worst;
}

double max_abs_diff(const std::vector<float> &a, const float *b)
{
    double m = 0;
    for (size_t i = 0; i < a.size(); i++)
        m = std::max(m, (double)std::fabs(a[i] - b[i]));
    return m;
}

double row_norm2(const float *x, size_t d)
{
    double s = 0;
    for (size_t j = 0; j < d; j++)
        s += (double)x[j] * x[j];
    return s;
}

// Every 'step'-th row of x (n x d).
std::vector<float> subsample(const float *x, size_t n, size_t d, size_t step)
{
    std::vector<float> out;
    for (size_t i = 0; i < n; i += step)
        out.insert(out.end(), x + i * d, x + i * d + d);
    return out;
}

// vqs PCA against FAISS PCAMatrix on the same rows.
void pca_vs_faiss(const float *x, size_t n, size_t d, size_t d_out, const char *name)
{
    std::string tok = "PCA" + std::to_string(d_out);
    stage st(tok.c_str(), d);
    REQUIRE_OK(st.rc);
    double t0 = vqs_now();
    REQUIRE_OK(st.train(n, x));
    double t_vqs = vqs_now() - t0;

    FaissPCAMatrix *pm = nullptr;
    REQUIRE_FAISS(faiss_PCAMatrix_new_with(&pm, (int)d, (int)d_out, 0.0f, 0));
    std::unique_ptr<FaissPCAMatrix, decltype(&faiss_PCAMatrix_free)> pmh(pm, faiss_PCAMatrix_free);
    auto *vt = (FaissVectorTransform *)pm;
    t0 = vqs_now();
    REQUIRE_FAISS(faiss_VectorTransform_train(vt, (idx_t)n, x));
    double t_faiss = vqs_now() - t0;
    const float *fev = nullptr;
    size_t fn = 0;
    REQUIRE_FAISS(vqs_faiss_PCAMatrix_eigenvalues(vt, &fev, &fn));
    REQUIRE(fn == d);

    const float *ev = nullptr;
    size_t en = 0;
    double retained = 0;
    REQUIRE_OK(vqs_stage_pca_info(&st.s, &ev, &en, &retained));
    REQUIRE(en == d);

    // eigenvalues: FAISS's are of the scatter matrix; ours are variances
    double top = fev[0] / (double)n, worst = 0;
    size_t checked = 0;
    for (size_t i = 0; i < d; i++) {
        double f = fev[i] / (double)n;
        if (i >= 64 && f <= 1e-6 * top)
            break;
        double rel = std::fabs(ev[i] - f) / f;
        INFO(name << " eigenvalue " << i << ": vqs " << ev[i] << " faiss " << f);
        REQUIRE(rel <= 1e-3);
        worst = std::max(worst, rel);
        checked++;
    }
    REQUIRE(checked >= std::min<size_t>(64, d));
    double kept = 0, all = 0;
    for (size_t i = 0; i < d; i++) {
        double f = std::max(0.0, (double)fev[i]);
        all += f;
        if (i < d_out)
            kept += f;
    }
    REQUIRE(std::fabs(retained - kept / all) <= 1e-5);

    // outputs, per component up to sign, for the components whose eigenvalue
    // is separated from its neighbours (inside a near-degenerate eigenspace
    // any rotation is a valid answer)
    const size_t nt = std::min<size_t>(n, 1000);
    std::vector<float> y = st.apply(nt, x), fy(nt * d_out);
    faiss_VectorTransform_apply_noalloc(vt, (idx_t)nt, x, fy.data());
    double sdev0 = std::sqrt(ev[0]), worst_y = 0;
    size_t ncomp = 0;
    for (size_t k = 0; k < d_out; k++) {
        double gap = 1e30;
        if (k > 0)
            gap = std::min(gap, (double)(ev[k - 1] - ev[k]) / ev[k - 1]);
        if (k + 1 < d)
            gap = std::min(gap, (double)(ev[k] - ev[k + 1]) / ev[k]);
        if (gap < 0.01 || ev[k] < 1e-4 * ev[0])
            continue;
        double dot = 0;
        for (size_t i = 0; i < nt; i++)
            dot += (double)y[i * d_out + k] * fy[i * d_out + k];
        double sg = dot < 0 ? -1 : 1, m = 0;
        for (size_t i = 0; i < nt; i++)
            m = std::max(m, std::fabs(y[i * d_out + k] - sg * fy[i * d_out + k]));
        INFO(name << " component " << k << " (eigenvalue " << ev[k] << ", gap " << gap
                  << "): max |vqs - faiss| = " << m << ", sqrt(top eigenvalue) " << sdev0);
        REQUIRE(m <= 2e-3 * sdev0);
        worst_y = std::max(worst_y, m / sdev0);
        ncomp++;
    }
    REQUIRE(ncomp >= 8);
    WARN(name << ": n = " << n << ", d = " << d << ": " << checked
              << " eigenvalues agree with FAISS within " << worst << " relative (top "
              << top << "); " << ncomp << " well-separated components agree to " << worst_y
              << " of sqrt(top); " << tok << " keeps " << retained << "; train vqs " << t_vqs
              << " s, FAISS " << t_faiss << " s");
}

// ---- PQ used to score OPQ: k-means per sub-space via the public k-means ----

double pq_mse(const float *x, size_t n, size_t d, size_t M, size_t ksub, uint64_t seed)
{
    const size_t ds = d / M;
    std::vector<float> sub(n * ds), cent(ksub * ds);
    std::vector<int32_t> as(n);
    std::vector<float> dist(n);
    double err = 0;
    for (size_t m = 0; m < M; m++) {
        for (size_t i = 0; i < n; i++)
            std::copy(x + i * d + m * ds, x + i * d + (m + 1) * ds, &sub[i * ds]);
        vqs_kmeans_opts ko = {};
        ko.niter = 25;
        ko.nthreads = 2;
        ko.seed = seed + m;
        REQUIRE_OK(vqs_kmeans(&ko, n, ds, sub.data(), ksub, cent.data(), nullptr));
        REQUIRE_OK(vqs_kmeans_assign(2, n, ds, sub.data(), ksub, cent.data(), as.data(), dist.data()));
        for (size_t i = 0; i < n; i++)
            err += dist[i];
    }
    return err / (double)n;
}

} // namespace

// ---- specs ------------------------------------------------------------------

TEST_CASE("transform tokens: dimensions and families", "[transform]")
{
    struct ok_case {
        const char *tok;
        size_t d, d_out;
    } ok[] = {{"PCA64", 128, 64},   {"PCA128", 128, 128}, {"PCA384R", 768, 384},
              {"PCA256WR", 768, 256}, {"PCA16RW", 32, 16}, {"PCA8W", 32, 8},
              {"ROT", 100, 100},    {"HAD", 100, 128},    {"HAD1", 128, 128},
              {"HAD3", 129, 256},   {"RR", 1, 1},         {"OPQ16", 128, 128},
              {"OPQ16_64", 128, 64}, {"OPQ8_96", 128, 96}};
    for (auto &c : ok) {
        stage st(c.tok, c.d);
        INFO(c.tok << " d " << c.d << ": " << vqs_errdetail());
        REQUIRE(st.rc == 0);
        REQUIRE(st.s.d_out == c.d_out);
        REQUIRE(st.s.ops->is_quantizer == 0);
    }
    for (const char *t : {"SQ8", "PQ16x8", "RVQ8x8", "BIN", "XYZ", "P", "R"}) {
        stage st(t, 128);
        INFO(t);
        REQUIRE(st.rc == VQS_ENOTFOUND);
    }
}

TEST_CASE("transform tokens: bad specs name the token", "[transform]")
{
    struct bad_case {
        const char *tok;
        size_t d;
        const char *want; // substring of the detail
    } bad[] = {{"PCA0", 128, "PCA0"},
               {"PCA900", 768, "PCA900: output 900 is larger than d = 768"},
               {"OPQ7", 128, "OPQ7"},
               {"ROTX", 128, "ROTX"},
               {"PCA64Q", 128, "PCA64Q"},
               {"PCA", 128, "PCA"},
               {"PCA64WW", 128, "PCA64WW"},
               {"HAD4", 128, "HAD4"},
               {"RRR", 128, "RRR"},
               {"OPQ", 128, "OPQ"},
               {"OPQ16_256", 128, "OPQ16_256"},
               {"OPQ16_", 128, "OPQ16_"},
               {"OPQ0", 128, "OPQ0"},
               {"PCA99999999999999999999", 128, "PCA99999999999999999999"}};
    for (auto &c : bad) {
        stage st(c.tok, c.d);
        INFO(c.tok << " -> " << vqs_err_name(st.rc) << ": " << vqs_errdetail());
        REQUIRE(st.rc == VQS_ESPEC);
        REQUIRE(std::string(vqs_errdetail()).find(c.want) != std::string::npos);
        REQUIRE(st.s.impl == nullptr);
    }
    // and through the codec (the spec is rejected at the transform, whatever follows)
    vqs_codec *c = nullptr;
    REQUIRE_ERR(vqs_codec_create("PCA900,SQfp16", 768, nullptr, &c), VQS_ESPEC);
    REQUIRE(std::string(vqs_errdetail()).find("PCA900") != std::string::npos);
    REQUIRE_ERR(vqs_codec_create("OPQ7,PQ7x8", 128, nullptr, &c), VQS_ESPEC);
    REQUIRE(std::string(vqs_errdetail()).find("OPQ7") != std::string::npos);
    REQUIRE(c == nullptr);
}

// ---- PCA ----------------------------------------------------------------------

TEST_CASE("PCA matches FAISS PCAMatrix on siftsmall", "[transform][faiss][data]")
{
    dataset ds(data_path("siftsmall/siftsmall_base.fvecs"));
    REQUIRE(ds.d == 128);
    vqs_faiss_set_num_threads(2);
    pca_vs_faiss(ds.x, ds.n, ds.d, 64, "siftsmall");
}

TEST_CASE("PCA matches FAISS PCAMatrix on sts15k bert768", "[transform][faiss][data]")
{
    dataset ds(data_path("sts15k_bert768/base.fvecs"));
    REQUIRE(ds.d == 768);
    vqs_faiss_set_num_threads(2);
    // every other row (7002 x 768): the same sample for both
    std::vector<float> x = subsample(ds.x, ds.n, ds.d, 2);
    pca_vs_faiss(x.data(), x.size() / ds.d, ds.d, 256, "sts15k_bert768");
}

TEST_CASE("PCA algebra: inverse, projection, whitening, rotation", "[transform]")
{
    const size_t n = 3000, d = 48;
    std::vector<float> x = synth(n, d, 11);

    SECTION("PCA<d> is orthonormal and apply then reverse recovers x")
    {
        stage st("PCA48", d);
        REQUIRE_OK(st.rc);
        REQUIRE_OK(st.train(n, x.data()));
        auto y = st.apply(n, x.data());
        auto xr = st.reverse(n, y.data());
        double scale = 0;
        for (float v : x)
            scale = std::max(scale, (double)std::fabs(v));
        REQUIRE(max_abs_diff(xr, x.data()) <= 1e-5 * scale);
        // outputs are uncorrelated with variances = the eigenvalues
        const float *ev;
        size_t en;
        double ret;
        REQUIRE_OK(vqs_stage_pca_info(&st.s, &ev, &en, &ret));
        REQUIRE(ret == Approx(1.0).epsilon(1e-9));
        for (size_t a = 0; a < d; a += 7)
            for (size_t b = 0; b < d; b += 5) {
                double s = 0;
                for (size_t i = 0; i < n; i++)
                    s += (double)y[i * d + a] * y[i * d + b];
                s /= n;
                double want = a == b ? ev[a] : 0.0;
                REQUIRE(std::fabs(s - want) <= 1e-4 * ev[0]);
            }
        for (size_t i = 1; i < d; i++)
            REQUIRE(ev[i] <= ev[i - 1]);
    }
    SECTION("PCA16 reverse is the least-squares inverse (a projection)")
    {
        stage st("PCA16", d);
        REQUIRE_OK(st.train(n, x.data()));
        auto y = st.apply(n, x.data());
        auto xr = st.reverse(n, y.data());
        auto y2 = st.apply(n, xr.data());
        double ys = 0;
        for (float v : y)
            ys = std::max(ys, (double)std::fabs(v));
        REQUIRE(max_abs_diff(y2, y.data()) <= 1e-5 * ys);
        // the residual x - xr is orthogonal to the kept subspace: its energy
        // equals the dropped eigenvalues' sum
        const float *ev;
        size_t en;
        double ret;
        REQUIRE_OK(vqs_stage_pca_info(&st.s, &ev, &en, &ret));
        double res = 0, dropped = 0, all = 0;
        for (size_t i = 0; i < n * d; i++)
            res += (double)(x[i] - xr[i]) * (x[i] - xr[i]);
        for (size_t i = 0; i < d; i++) {
            all += ev[i];
            if (i >= 16)
                dropped += ev[i];
        }
        REQUIRE(res / n == Approx(dropped).epsilon(1e-3));
        REQUIRE(ret == Approx(1 - dropped / all).epsilon(1e-6));
    }
    SECTION("PCA16W outputs have unit variance; reverse undoes the whitening")
    {
        stage st("PCA16W", d);
        REQUIRE_OK(st.train(n, x.data()));
        stage plain("PCA16", d);
        REQUIRE_OK(plain.train(n, x.data()));
        auto y = st.apply(n, x.data());
        for (size_t k = 0; k < 16; k++) {
            double s = 0, m = 0;
            for (size_t i = 0; i < n; i++)
                m += y[i * 16 + k];
            for (size_t i = 0; i < n; i++)
                s += (double)y[i * 16 + k] * y[i * 16 + k];
            REQUIRE(std::fabs(m / n) <= 1e-3);
            REQUIRE(s / n == Approx(1.0).epsilon(1e-3));
        }
        auto xr = st.reverse(n, y.data());
        auto xp = plain.reverse(n, plain.apply(n, x.data()).data());
        double scale = 0;
        for (float v : x)
            scale = std::max(scale, (double)std::fabs(v));
        REQUIRE(max_abs_diff(xr, xp.data()) <= 1e-4 * scale);
    }
    SECTION("PCA16R = a rotation of PCA16; PCA16WR = a rotation of PCA16W")
    {
        for (auto pr : {std::make_pair("PCA16R", "PCA16"), std::make_pair("PCA16WR", "PCA16W")}) {
            stage r(pr.first, d), p(pr.second, d);
            REQUIRE_OK(r.train(n, x.data()));
            REQUIRE_OK(p.train(n, x.data()));
            auto yr = r.apply(n, x.data()), yp = p.apply(n, x.data());
            bool differs = false;
            for (size_t i = 0; i < n; i++) {
                double a = row_norm2(&yr[i * 16], 16), b = row_norm2(&yp[i * 16], 16);
                REQUIRE(std::fabs(a - b) <= 1e-4 * std::max(1.0, b));
                differs |= std::fabs(yr[i * 16] - yp[i * 16]) > 1e-3;
            }
            REQUIRE(differs);
            auto xr = r.reverse(n, yr.data()), xp = p.reverse(n, yp.data());
            REQUIRE(max_abs_diff(xr, xp.data()) <= 1e-3);
        }
    }
    SECTION("needs two vectors")
    {
        stage st("PCA8", d);
        REQUIRE_ERR(st.train(1, x.data()), VQS_EINVAL);
        REQUIRE(std::string(vqs_errdetail()).find("2") != std::string::npos);
        const float *ev;
        size_t en;
        double ret;
        REQUIRE(vqs_stage_pca_info(&st.s, &ev, &en, &ret) == VQS_ENOTFOUND);
        stage rot("ROT", d);
        REQUIRE_OK(rot.train(0, nullptr));
        REQUIRE(vqs_stage_pca_info(&rot.s, &ev, &en, &ret) == VQS_ENOTFOUND);
    }
}

// ---- ROT and HAD -------------------------------------------------------------------

TEST_CASE("ROT and HAD are orthonormal, invertible, norm-preserving, seeded", "[transform]")
{
    const char *toks[] = {"ROT", "HAD", "HAD1", "HAD2", "RR"};
    for (size_t d : {1, 7, 64, 100, 128, 129}) {
        for (const char *tok : toks) {
            INFO(tok << " d = " << d);
            stage st(tok, d);
            REQUIRE_OK(st.rc);
            REQUIRE_OK(st.train(0, nullptr, 42)); // no data needed
            const size_t dd = st.s.d_out;
            auto A = matrix_of(st); // dd x d
            // columns orthonormal (A^T A = I_d); for square A also rows
            std::vector<float> At(d * dd);
            for (size_t i = 0; i < dd; i++)
                for (size_t j = 0; j < d; j++)
                    At[j * dd + i] = A[i * d + j];
            REQUIRE(orth_rows_err(At, d, dd) <= 1e-5);
            if (dd == d)
                REQUIRE(orth_rows_err(A, d, d) <= 1e-5);

            const size_t n = 200;
            auto x = synth(n, d, 5);
            auto y = st.apply(n, x.data());
            for (size_t i = 0; i < n; i++) {
                double a = row_norm2(&x[i * d], d), b = row_norm2(&y[i * dd], dd);
                REQUIRE(std::fabs(a - b) <= 1e-5 * std::max(1.0, a));
            }
            auto xr = st.reverse(n, y.data());
            double scale = 0;
            for (float v : x)
                scale = std::max(scale, (double)std::fabs(v));
            REQUIRE(max_abs_diff(xr, x.data()) <= 1e-5 * std::max(1.0, scale));

            // determinism per seed, different seeds differ
            stage same(tok, d), other(tok, d);
            REQUIRE_OK(same.train(0, nullptr, 42));
            REQUIRE_OK(other.train(0, nullptr, 43));
            auto y1 = same.apply(n, x.data()), y2 = other.apply(n, x.data());
            REQUIRE(std::memcmp(y1.data(), y.data(), y.size() * sizeof(float)) == 0);
            if (d > 1)
                REQUIRE(max_abs_diff(y2, y.data()) > 1e-3);
        }
    }
}

TEST_CASE("HAD1 is H D / sqrt(d) with the Sylvester Hadamard matrix", "[transform]")
{
    // Column j of the map is s_j H[:, j] / sqrt(d); H[0][j] = 1, so every
    // entry divided by the first is (-1)^popcount(i & j), and |entries| are
    // 1/sqrt(d).
    const size_t d = 64;
    stage st("HAD1", d);
    REQUIRE_OK(st.train(0, nullptr, 9));
    auto A = matrix_of(st);
    for (size_t j = 0; j < d; j++)
        for (size_t i = 0; i < d; i++) {
            float a = A[i * d + j], a0 = A[j];
            REQUIRE(std::fabs(std::fabs(a) - 0.125f) <= 1e-6f);
            int want = __builtin_popcountll(i & j) & 1 ? -1 : 1;
            REQUIRE((a / a0 > 0 ? 1 : -1) == want);
        }
}

// ---- save / load -------------------------------------------------------------------

TEST_CASE("transform save/load round-trips and rejects damaged payloads", "[transform]")
{
    const size_t n = 2000, d = 40;
    auto x = synth(n, d, 21);
    for (const char *tok : {"PCA20", "PCA40WR", "PCA12R", "ROT", "HAD", "HAD1", "OPQ4_20"}) {
        INFO(tok);
        stage st(tok, d, "PQ4x4");
        REQUIRE_OK(st.rc);
        REQUIRE_OK(st.train(n, x.data(), 3));
        auto blob = st.save();
        auto y = st.apply(100, x.data());

        stage ld(tok, d, "PQ4x4");
        REQUIRE_OK(ld.load(blob));
        auto y2 = ld.apply(100, x.data());
        REQUIRE(std::memcmp(y.data(), y2.data(), y.size() * sizeof(float)) == 0);
        auto x1 = st.reverse(100, y.data()), x2 = ld.reverse(100, y.data());
        REQUIRE(std::memcmp(x1.data(), x2.data(), x1.size() * sizeof(float)) == 0);
        if (tok[0] == 'P') {
            const float *e1, *e2;
            size_t n1, n2;
            double r1, r2;
            REQUIRE_OK(vqs_stage_pca_info(&st.s, &e1, &n1, &r1));
            REQUIRE_OK(vqs_stage_pca_info(&ld.s, &e2, &n2, &r2));
            REQUIRE(n1 == n2);
            REQUIRE(std::memcmp(e1, e2, n1 * sizeof(float)) == 0);
            REQUIRE(r1 == r2);
        }

        // truncated at every length
        for (size_t len = 0; len < blob.size(); len += 1 + len / 3) {
            std::vector<uint8_t> b(blob.begin(), blob.begin() + len);
            stage bad(tok, d, "PQ4x4");
            REQUIRE_ERR(bad.load(b), VQS_ECORRUPT);
        }
        // wrong kind, wrong d_in, wrong d_out
        for (size_t off : {0, 4, 12}) {
            auto b = blob;
            b[off] ^= 1;
            stage bad(tok, d, "PQ4x4");
            REQUIRE_ERR(bad.load(b), VQS_ECORRUPT);
        }
        // a NaN in the last float
        {
            auto b = blob;
            float nan = NAN;
            if (std::strncmp(tok, "HAD", 3) == 0)
                b.back() = 0; // a sign that is not +-1
            else
                std::memcpy(&b[b.size() - 4], &nan, 4);
            stage bad(tok, d, "PQ4x4");
            REQUIRE_ERR(bad.load(b), VQS_ECORRUPT);
        }
        // a payload of another transform
        {
            stage other(tok[0] == 'R' ? "HAD" : "ROT", d);
            REQUIRE_OK(other.train(0, nullptr));
            stage bad(tok, d, "PQ4x4");
            REQUIRE_ERR(bad.load(other.save()), VQS_ECORRUPT);
        }
    }
}

// ---- OPQ ------------------------------------------------------------------------

namespace {

// MSE of FAISS's index_factory codec 'spec' (train, sa_encode, sa_decode) on x.
double faiss_codec_mse(const char *spec, const float *x, size_t n, size_t d, double *seconds)
{
    FaissIndex *raw = nullptr;
    REQUIRE_FAISS(faiss_index_factory(&raw, (int)d, spec, METRIC_L2));
    std::unique_ptr<FaissIndex, decltype(&faiss_Index_free)> idx(raw, faiss_Index_free);
    double t0 = vqs_now();
    REQUIRE_FAISS(faiss_Index_train(idx.get(), (idx_t)n, x));
    *seconds = vqs_now() - t0;
    size_t cs = 0;
    REQUIRE_FAISS(faiss_Index_sa_code_size(idx.get(), &cs));
    std::vector<uint8_t> codes(n * cs);
    std::vector<float> dec(n * d);
    REQUIRE_FAISS(faiss_Index_sa_encode(idx.get(), (idx_t)n, x, codes.data()));
    REQUIRE_FAISS(faiss_Index_sa_decode(idx.get(), (idx_t)n, codes.data(), dec.data()));
    double mse = 0;
    for (size_t i = 0; i < n * d; i++)
        mse += (double)(x[i] - dec[i]) * (x[i] - dec[i]);
    return mse / (double)n;
}

// Trains OPQ<M> (for PQ<M>x<nbits>) on x; checks the rotation is orthonormal
// and invertible; returns the PQ MSE in the rotated space and plain PQ's.
void opq_vs_pq(const float *x, size_t n, size_t d, size_t M, int nbits, double *mse_opq,
               double *mse_pq, double *seconds)
{
    const size_t ksub = (size_t)1 << nbits;
    std::string tok = "OPQ" + std::to_string(M);
    std::string next = "PQ" + std::to_string(M) + "x" + std::to_string(nbits);
    stage st(tok.c_str(), d, next.c_str());
    REQUIRE_OK(st.rc);
    double t0 = vqs_now();
    REQUIRE_OK(st.train(n, x, 7));
    *seconds = vqs_now() - t0;
    auto A = matrix_of(st);
    REQUIRE(orth_rows_err(A, d, d) <= 1e-4);
    auto y = st.apply(n, x);
    auto xr = st.reverse(n, y.data());
    double scale = 0;
    for (size_t i = 0; i < n * d; i++)
        scale = std::max(scale, (double)std::fabs(x[i]));
    REQUIRE(max_abs_diff(xr, x) <= 1e-5 * scale);
    *mse_opq = pq_mse(y.data(), n, d, M, ksub, 100);
    *mse_pq = pq_mse(x, n, d, M, ksub, 100);
}

} // namespace

TEST_CASE("OPQ16 on siftsmall: orthonormal, and PQ error no worse than plain PQ",
          "[transform][data]")
{
    dataset ds(data_path("siftsmall/siftsmall_base.fvecs"));
    // 5000 rows (every other one) keep the OPQ iterations affordable
    std::vector<float> x = subsample(ds.x, ds.n, ds.d, 2);
    const size_t n = x.size() / ds.d;
    for (int nbits : {8, 4}) {
        double opq, pq, sec;
        opq_vs_pq(x.data(), n, ds.d, 16, nbits, &opq, &pq, &sec);
        INFO("PQ16x" << nbits << " MSE after OPQ16 " << opq << ", plain " << pq);
        REQUIRE(opq <= pq);
        WARN("siftsmall " << n << " x " << ds.d << ", PQ16x" << nbits << ": MSE after OPQ16 "
                          << opq << ", plain PQ " << pq << " (" << opq / pq
                          << "); OPQ16 trained in " << sec << " s");
    }
}

// FAISS's OPQ is slow here (~150 s single-threaded for the case above), so
// the oracle runs on a small problem: the first 64 dimensions of 2000
// siftsmall rows, OPQ8 + PQ8x4.
TEST_CASE("OPQ8 + PQ8x4 on 2000 x 64: PQ error within 1% of FAISS", "[transform][faiss][data]")
{
    dataset ds(data_path("siftsmall/siftsmall_base.fvecs"));
    // one OpenMP thread: FAISS's PQ training opens thousands of tiny parallel
    // regions, and on a loaded 2-core machine libgomp's spinning barriers made
    // it ~40x slower than single-threaded
    vqs_faiss_set_num_threads(1);
    const size_t n = 2000, d = 64;
    std::vector<float> x(n * d);
    for (size_t i = 0; i < n; i++)
        std::copy(ds.x + i * 5 * ds.d, ds.x + i * 5 * ds.d + d, &x[i * d]);
    double opq, pq, sec, fsec;
    opq_vs_pq(x.data(), n, d, 8, 4, &opq, &pq, &sec);
    double fmse = faiss_codec_mse("OPQ8,PQ8x4", x.data(), n, d, &fsec);
    WARN("siftsmall " << n << " x " << d << ", OPQ8,PQ8x4: MSE vqs " << opq << ", plain PQ "
                      << pq << ", FAISS " << fmse << " (vqs / FAISS = " << opq / fmse
                      << "); train vqs OPQ " << sec << " s, FAISS OPQ + PQ " << fsec << " s");
    REQUIRE(opq <= pq);
    REQUIRE(opq <= 1.01 * fmse);
}

// The full-size comparison with FAISS (hidden: minutes of FAISS training; run
// it with vqs_tests "[opq-faiss-slow]").
TEST_CASE("OPQ16 + PQ16x8 and x4 on siftsmall against FAISS (slow)", "[.][opq-faiss-slow]")
{
    dataset ds(data_path("siftsmall/siftsmall_base.fvecs"));
    vqs_faiss_set_num_threads(1);
    std::vector<float> x = subsample(ds.x, ds.n, ds.d, 2);
    const size_t n = x.size() / ds.d;
    for (int nbits : {8, 4}) {
        double opq, pq, sec, fsec;
        opq_vs_pq(x.data(), n, ds.d, 16, nbits, &opq, &pq, &sec);
        std::string fs = "OPQ16,PQ16x" + std::to_string(nbits);
        double fmse = faiss_codec_mse(fs.c_str(), x.data(), n, ds.d, &fsec);
        WARN("siftsmall " << n << " x " << ds.d << ", " << fs << ": MSE vqs " << opq
                          << ", plain PQ " << pq << ", FAISS " << fmse << " (vqs / FAISS = "
                          << opq / fmse << "); train vqs OPQ " << sec << " s, FAISS OPQ + PQ "
                          << fsec << " s");
        REQUIRE(opq <= 1.01 * fmse);
    }
}

TEST_CASE("OPQ: determinism, reduced output, too few points", "[transform]")
{
    const size_t n = 1500, d = 32;
    auto x = synth(n, d, 8);
    stage few("OPQ4", d, "PQ4x8");
    REQUIRE_ERR(few.train(255, x.data()), VQS_EINVAL);
    REQUIRE(std::string(vqs_errdetail()).find("256") != std::string::npos);
    stage few4("OPQ4", d, "PQ4x4");
    REQUIRE_ERR(few4.train(15, x.data()), VQS_EINVAL);
    REQUIRE(std::string(vqs_errdetail()).find("16") != std::string::npos);

    stage a("OPQ4_16", d, "PQ4x4"), b("OPQ4_16", d, "PQ4x4");
    REQUIRE_OK(a.rc);
    REQUIRE_OK(a.train(n, x.data(), 5));
    REQUIRE_OK(b.train(n, x.data(), 5));
    auto ya = a.apply(n, x.data()), yb = b.apply(n, x.data());
    REQUIRE(std::memcmp(ya.data(), yb.data(), ya.size() * sizeof(float)) == 0);
    auto A = matrix_of(a); // 16 x 32, orthonormal rows
    REQUIRE(orth_rows_err(A, 16, d) <= 1e-4);
    // reverse is the least-squares inverse: apply(reverse(y)) = y
    auto y2 = a.apply(n, a.reverse(n, ya.data()).data());
    REQUIRE(max_abs_diff(y2, ya.data()) <= 1e-4);
}

// ---- through the codec pipeline (with the PQ stage) ------------------------------

namespace {

struct codec_run {
    double mse = 0;
    double retained = -1;
    double dropped = 0; // sum of the eigenvalues a PCA stage drops
};

// Trains spec on x, encodes and decodes every row; checks that a saved and
// reloaded codec encodes and decodes identically. Returns the MSE.
codec_run run_codec(const char *spec, const float *x, size_t n, size_t d)
{
    INFO(spec);
    vqs_codec_opts o = {};
    o.seed = 3;
    o.nthreads = 2;
    vqs_codec *raw = nullptr;
    REQUIRE_OK(vqs_codec_create(spec, d, &o, &raw));
    std::unique_ptr<vqs_codec, decltype(&vqs_codec_free)> c(raw, vqs_codec_free);
    REQUIRE_OK(vqs_codec_train(c.get(), n, x));
    const size_t cs = vqs_codec_code_size(c.get());
    std::vector<uint8_t> codes(n * cs), codes2(n * cs);
    std::vector<float> dec(n * d), dec2(n * d);
    REQUIRE_OK(vqs_codec_encode(c.get(), n, x, codes.data()));
    REQUIRE_OK(vqs_codec_decode(c.get(), n, codes.data(), dec.data()));
    codec_run r;
    for (size_t i = 0; i < n * d; i++)
        r.mse += (double)(x[i] - dec[i]) * (x[i] - dec[i]);
    r.mse /= (double)n;
    const float *ev;
    size_t en;
    if (vqs_codec_pca_info(c.get(), &ev, &en, &r.retained) == 0) {
        double all = 0;
        for (size_t i = 0; i < en; i++)
            all += ev[i];
        r.dropped = all * (1 - r.retained);
    }

    void *blob = nullptr;
    size_t len = 0;
    REQUIRE_OK(vqs_codec_save(c.get(), &blob, &len));
    vqs_codec *raw2 = nullptr;
    int rc = vqs_codec_load(blob, len, &raw2);
    std::free(blob);
    REQUIRE_OK(rc);
    std::unique_ptr<vqs_codec, decltype(&vqs_codec_free)> c2(raw2, vqs_codec_free);
    REQUIRE_OK(vqs_codec_encode(c2.get(), n, x, codes2.data()));
    REQUIRE(codes == codes2);
    REQUIRE_OK(vqs_codec_decode(c2.get(), n, codes.data(), dec2.data()));
    REQUIRE(std::memcmp(dec.data(), dec2.data(), dec.size() * sizeof(float)) == 0);
    return r;
}

} // namespace

TEST_CASE("transforms in the codec pipeline with PQ16x4 on siftsmall", "[transform][data]")
{
    dataset ds(data_path("siftsmall/siftsmall_base.fvecs"));
    vqs_faiss_set_num_threads(1);
    std::vector<float> x = subsample(ds.x, ds.n, ds.d, 2);
    const size_t n = x.size() / ds.d, d = ds.d;

    double pq = run_codec("PQ16x4", x.data(), n, d).mse;
    double opq = run_codec("OPQ16,PQ16x4", x.data(), n, d).mse;
    double rot = run_codec("ROT,PQ16x4", x.data(), n, d).mse;
    double had = run_codec("HAD,PQ16x4", x.data(), n, d).mse;
    codec_run pca = run_codec("PCA64,PQ16x4", x.data(), n, d);
    double pcar = run_codec("PCA64R,PQ16x4", x.data(), n, d).mse;
    WARN("siftsmall " << n << " x " << d << " MSE: PQ16x4 " << pq << ", OPQ16,PQ16x4 " << opq
                      << ", ROT,PQ16x4 " << rot << ", HAD,PQ16x4 " << had << ", PCA64,PQ16x4 "
                      << pca.mse << " (PCA floor " << pca.dropped << "), PCA64R,PQ16x4 " << pcar
                      << "; PCA64 keeps " << pca.retained);
    REQUIRE(opq <= pq);
    // a PCA64 codec cannot beat the variance PCA drops (reverse adds the mean
    // back, so that is exactly the floor; FAISS's sa_decode does not, so its
    // PCA codecs are not a fair oracle here), and PQ16x4 on 64 dims adds error
    REQUIRE(pca.mse >= pca.dropped * (1 - 1e-4));
    REQUIRE(pcar >= pca.dropped * (1 - 1e-4));
    REQUIRE(pca.retained > 0.5);
    REQUIRE(pca.retained < 1.0);
}
