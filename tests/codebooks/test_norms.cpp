// Tests for vqs_codec_norms (codec_norms.c): |offset + decode(code)| computed row by row.
// - the norms equal those of vqs_codec_decode's reconstructions (plus the offset) within float
//   rounding, for codecs whose transforms are isometries (folded into per-offset constants) and
//   for those that are not (PCA W, HAD with zero padding: reversed row by row);
// - a code gets the same bits whatever the batch it comes in and its place in it (what an index
//   needs to re-derive per-vector data after a reopen);
// - bad arguments are refused with their code.
#include "vqs_test.hpp"

#include <cmath>

using namespace vqs_test;

namespace
{

codec_ptr trained(const char *spec, size_t d, const std::vector<float> &x)
{
    vqs_codec *raw = nullptr;
    vqs_codec_opts o = {};
    o.seed = 11;
    REQUIRE_OK(vqs_codec_create(spec, d, &o, &raw));
    codec_ptr c(raw, vqs_codec_free);
    REQUIRE_OK(vqs_codec_train(c.get(), x.size() / d, x.data()));
    return c;
}

} // namespace

TEST_CASE("codec norms: |offset + decode(code)| in any batch, bit for bit", "[codebooks][norms]")
{
    const size_t d = 48, n = 1500, noff = 5;
    auto x = synth(n, d, 61);
    auto off = synth(noff, d, 62);
    // PCA16W and HAD (48 -> 64, padded) are not isometries: the row-by-row path
    for (const char *spec : {"SQ8", "PQ12x4", "RVQ3x8", "ROT,SQ8", "PCA16,SQfp8", "PCA24R,PQ8x8",
                             "OPQ8,PQ8x8", "PCA16W,SQ8", "HAD,SQ8", "ROT,BIN"}) {
        INFO(spec);
        auto c = trained(spec, d, x);
        size_t cs = vqs_codec_code_size(c.get());
        // codes in rows of cs + 3 bytes (a stride above the code size)
        size_t stride = cs + 3;
        std::vector<uint8_t> codes(n * cs), rows(n * stride, 0xab);
        REQUIRE_OK(vqs_codec_encode(c.get(), n, x.data(), codes.data()));
        for (size_t i = 0; i < n; i++)
            std::memcpy(&rows[i * stride], &codes[i * cs], cs);
        std::vector<float> xr(n * d);
        REQUIRE_OK(vqs_codec_decode(c.get(), n, codes.data(), xr.data()));
        std::vector<uint32_t> which(n);
        for (size_t i = 0; i < n; i++)
            which[i] = (uint32_t)((i * 7) % noff);

        vqs_codec_norms *raw = nullptr;
        REQUIRE_OK(vqs_codec_norms_create(c.get(), noff, off.data(), &raw));
        std::unique_ptr<vqs_codec_norms, decltype(&vqs_codec_norms_free)> h(raw, vqs_codec_norms_free);
        REQUIRE(vqs_codec_norms_bytes(h.get()) > 0);
        std::vector<float> all(n);
        REQUIRE_OK(vqs_codec_norms_compute(h.get(), n, rows.data(), stride, which.data(), all.data()));
        double worst = 0;
        for (size_t i = 0; i < n; i++) {
            double s = 0;
            for (size_t j = 0; j < d; j++) {
                double v = (double)off[which[i] * d + j] + xr[i * d + j];
                s += v * v;
            }
            double want = std::sqrt(s);
            worst = std::max(worst, std::fabs(all[i] - want) / want);
        }
        INFO("largest relative difference to the decoded vectors' norms " << worst);
        REQUIRE(worst < 2e-6);

        // one row at a time (one task, so one thread), in reverse order: the same bits
        for (size_t i = n; i-- > 0;) {
            float one;
            REQUIRE_OK(vqs_codec_norms_compute(h.get(), 1, &codes[i * cs], cs, &which[i], &one));
            INFO("row " << i);
            REQUIRE(one == all[i]);
        }
        // and in odd batches
        for (size_t b0 = 0; b0 < n; b0 += 37) {
            size_t m = std::min<size_t>(37, n - b0);
            std::vector<float> part(m);
            REQUIRE_OK(vqs_codec_norms_compute(h.get(), m, &rows[b0 * stride], stride, &which[b0], part.data()));
            for (size_t i = 0; i < m; i++)
                REQUIRE(part[i] == all[b0 + i]);
        }
        // no offsets: the reconstructions' own norms
        raw = nullptr;
        REQUIRE_OK(vqs_codec_norms_create(c.get(), 0, nullptr, &raw));
        std::unique_ptr<vqs_codec_norms, decltype(&vqs_codec_norms_free)> h0(raw, vqs_codec_norms_free);
        std::vector<float> own(n);
        REQUIRE_OK(vqs_codec_norms_compute(h0.get(), n, codes.data(), cs, nullptr, own.data()));
        for (size_t i = 0; i < n; i++) {
            double s = 0;
            for (size_t j = 0; j < d; j++)
                s += (double)xr[i * d + j] * xr[i * d + j];
            REQUIRE(std::fabs(own[i] - std::sqrt(s)) <= 2e-6 * std::sqrt(s));
        }
    }
}

TEST_CASE("codec norms: bad arguments", "[codebooks][norms]")
{
    const size_t d = 16, n = 300;
    auto x = synth(n, d, 63);
    vqs_codec *raw = nullptr;
    REQUIRE_OK(vqs_codec_create("PCA8,SQ8", d, nullptr, &raw));
    codec_ptr c(raw, vqs_codec_free);
    vqs_codec_norms *h = nullptr;
    REQUIRE_ERR(vqs_codec_norms_create(c.get(), 0, nullptr, &h), VQS_EINVAL); // not trained
    REQUIRE(h == nullptr);
    REQUIRE_OK(vqs_codec_train(c.get(), n, x.data()));
    REQUIRE_ERR(vqs_codec_norms_create(nullptr, 0, nullptr, &h), VQS_EINVAL);
    REQUIRE_ERR(vqs_codec_norms_create(c.get(), 2, nullptr, &h), VQS_EINVAL);
    REQUIRE_ERR(vqs_codec_norms_create(c.get(), 0, nullptr, nullptr), VQS_EINVAL);
    REQUIRE_OK(vqs_codec_norms_create(c.get(), 2, x.data(), &h));
    std::unique_ptr<vqs_codec_norms, decltype(&vqs_codec_norms_free)> hp(h, vqs_codec_norms_free);
    size_t cs = vqs_codec_code_size(c.get());
    std::vector<uint8_t> codes(3 * cs);
    REQUIRE_OK(vqs_codec_encode(c.get(), 3, x.data(), codes.data()));
    std::vector<float> out(3, -1.0f);
    uint32_t which[3] = {0, 2, 1};
    REQUIRE_ERR(vqs_codec_norms_compute(h, 3, codes.data(), cs, which, out.data()), VQS_ERANGE);
    REQUIRE(std::string(vqs_errdetail()).find("row 1") != std::string::npos);
    REQUIRE_ERR(vqs_codec_norms_compute(h, 3, codes.data(), cs - 1, nullptr, out.data()), VQS_EINVAL);
    REQUIRE_ERR(vqs_codec_norms_compute(h, 3, nullptr, cs, nullptr, out.data()), VQS_EINVAL);
    REQUIRE_OK(vqs_codec_norms_compute(h, 0, nullptr, cs, nullptr, nullptr));
    vqs_codec_norms_free(nullptr);
}
