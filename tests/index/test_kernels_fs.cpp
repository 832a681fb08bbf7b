// Tests for the PQ 4-bit and 8-bit fast-scan and binary kernels (index/kernels):
// - every SIMD level against ref.c on awkward sizes (integers exactly,
//   floats within a stated tolerance), on buffers of exactly the sizes the
//   header states (std::vector, so ASan catches over-reads);
// - ref.c against computations written here: a plain loop over the original
//   codes for the packed scan, a bit-by-bit count for hamming, the float
//   look-up sum for the quantisation bound, and the codecs' own scorers
//   (vqs_codec_query_score) for PQ16x4 / PQ16x8 end to end and for BIN.
#include "vqs_test.hpp"

#include "kernels_internal.h"
#include "vqs_kernels.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <numeric>
#include <utility>

using namespace vqs_test;

namespace
{

const vqs_simd kLevels[] = {VQS_SIMD_SCALAR, VQS_SIMD_AVX2, VQS_SIMD_AVX512};

std::vector<uint8_t> random_bytes(vqs_rng &r, size_t n)
{
    std::vector<uint8_t> v(n);
    for (auto &b : v)
        b = (uint8_t)vqs_rng_next(&r);
    return v;
}

unsigned nibble(const uint8_t *row, size_t j)
{
    return (row[j / 2] >> (4 * (j & 1))) & 15;
}

// lut8 with entries <= R, R * M <= 65535 (the quantiser's promise)
std::vector<uint8_t> random_lut8(vqs_rng &r, size_t M, bool max_out)
{
    size_t M2 = (M + 1) / 2 * 2;
    unsigned R = M > 257 ? (unsigned)(65535 / M) : 255;
    std::vector<uint8_t> t(M2 * 16, 0);
    for (size_t i = 0; i < M * 16; i++)
        t[i] = max_out ? (uint8_t)R : (uint8_t)(vqs_rng_next(&r) % (R + 1));
    return t;
}

// plain loop: sum over sub-quantizers of lut8 for code i (original U4 codes)
std::vector<uint32_t> scan_plain(const std::vector<uint8_t> &lut8, size_t M,
                                 const std::vector<uint8_t> &codes, size_t stride, size_t n)
{
    std::vector<uint32_t> s(n, 0);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < M; j++)
            s[i] += lut8[j * 16 + nibble(&codes[i * stride], j)];
    return s;
}

// index of the first difference, or SIZE_MAX
template <class T> size_t first_diff(const T *a, const T *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return i;
    return SIZE_MAX;
}

std::vector<size_t> top_k(const std::vector<float> &s, size_t k)
{
    std::vector<size_t> id(s.size());
    std::iota(id.begin(), id.end(), 0);
    k = std::min(k, s.size());
    std::partial_sort(id.begin(), id.begin() + (long)k, id.end(),
                      [&](size_t a, size_t b) { return s[a] < s[b] || (s[a] == s[b] && a < b); });
    id.resize(k);
    std::sort(id.begin(), id.end());
    return id;
}

} // namespace

// ---- PQ 4-bit fast scan --------------------------------------------------------------------

TEST_CASE("pq4fs: pack then get gives the codes back, padding is zero", "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 1);
    for (size_t M : {1, 2, 3, 7, 8, 15, 16, 31, 32, 33, 64}) {
        for (size_t n : {0, 1, 31, 32, 33, 100, 1000}) {
            size_t cs = (M + 1) / 2;
            for (size_t stride : {cs, cs + 3}) {
                INFO("M " << M << " n " << n << " stride " << stride);
                auto codes = random_bytes(r, n * stride);
                size_t psz = vqs_pq4fs_packed_size(n, M);
                REQUIRE(psz == (n + 31) / 32 * 32 * ((M + 1) / 2));
                std::vector<uint8_t> packed(psz, 0xAA);
                vqs_pq4fs_pack(codes.data(), stride, n, M, packed.data());
                std::vector<uint8_t> got(cs), want(cs);
                size_t bad = SIZE_MAX;
                for (size_t i = 0; i < (n + 31) / 32 * 32 && bad == SIZE_MAX; i++) {
                    std::fill(want.begin(), want.end(), 0);
                    if (i < n) // the unused high nibble of an odd M is not a code
                        for (size_t j = 0; j < M; j++)
                            want[j / 2] |=
                                (uint8_t)(nibble(&codes[i * stride], j) << (4 * (j & 1)));
                    vqs_pq4fs_get(packed.data(), M, i, got.data());
                    if (got != want)
                        bad = i;
                }
                INFO("first wrong vector " << bad);
                REQUIRE(bad == SIZE_MAX);
            }
        }
    }
}

TEST_CASE("pq4fs: reference scan equals a plain loop over the unpacked codes", "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 2);
    for (size_t M : {1, 2, 3, 7, 8, 15, 16, 31, 32, 33, 64, 257, 258, 301}) {
        for (size_t n : {1, 31, 32, 33, 100, 1000}) {
            for (bool max_out : {false, true}) {
                INFO("M " << M << " n " << n << " max " << max_out);
                size_t stride = (M + 1) / 2;
                auto codes = random_bytes(r, n * stride);
                auto lut8 = random_lut8(r, M, max_out);
                std::vector<uint8_t> packed(vqs_pq4fs_packed_size(n, M));
                vqs_pq4fs_pack(codes.data(), stride, n, M, packed.data());
                size_t nblocks = (n + 31) / 32;
                std::vector<uint16_t> out(nblocks * 32);
                vqs_ref_pq4fs_scan(lut8.data(), M, packed.data(), nblocks, out.data());
                auto want = scan_plain(lut8, M, codes, stride, n);
                size_t bad = SIZE_MAX;
                for (size_t i = 0; i < n && bad == SIZE_MAX; i++)
                    if (out[i] != want[i])
                        bad = i;
                INFO("first wrong vector " << bad);
                REQUIRE(bad == SIZE_MAX);
            }
        }
    }
}

TEST_CASE("pq4fs: every level's scan equals the reference exactly", "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 3);
    for (vqs_simd L : kLevels) {
        const vqs_kernels *K = vqs_kernels_for(L);
        if (!K) {
            WARN("level " << vqs_simd_name(L) << " not available");
            continue;
        }
        for (size_t M : {1, 2, 3, 4, 5, 6, 7, 8, 15, 16, 31, 32, 33, 64, 257, 258, 301}) {
            for (size_t nblocks : {0, 1, 2, 3, 33}) {
                for (int variant = 0; variant < 3; variant++) {
                    INFO(K->name << " M " << M << " nblocks " << nblocks << " variant " << variant);
                    // 0: random tables, packed from codes; 1: every entry at its maximum (the
                    // u16 sums reach 65535 for M = 257); 2: arbitrary packed bytes (padding
                    // nibbles non-zero) and tables of exactly M * 16 bytes: nothing past table
                    // M - 1 may be read or counted
                    auto lut8 = random_lut8(r, M, variant == 1);
                    if (variant == 2)
                        lut8.resize(M * 16);
                    size_t psz = nblocks * 32 * ((M + 1) / 2);
                    std::vector<uint8_t> packed;
                    if (variant == 2) {
                        packed = random_bytes(r, psz);
                    } else {
                        size_t stride = (M + 1) / 2;
                        auto codes = random_bytes(r, nblocks * 32 * stride);
                        packed.resize(vqs_pq4fs_packed_size(nblocks * 32, M));
                        vqs_pq4fs_pack(codes.data(), stride, nblocks * 32, M, packed.data());
                    }
                    REQUIRE(packed.size() == psz);
                    std::vector<uint16_t> want(nblocks * 32), got(nblocks * 32, 0xBEEF);
                    vqs_ref_pq4fs_scan(lut8.data(), M, packed.data(), nblocks, want.data());
                    K->pq4fs_scan(lut8.data(), M, packed.data(), nblocks, got.data());
                    size_t bad = first_diff(got.data(), want.data(), want.size());
                    INFO("first difference at " << bad);
                    REQUIRE(bad == SIZE_MAX);
                }
            }
        }
    }
}

TEST_CASE("pq4fs: quantised tables are within the stated error of the float sums", "[kernels]")
{
    // every level's quantisation, on the same tables
    for (vqs_simd L : kLevels) {
        const vqs_kernels *K = vqs_kernels_for(L);
        if (!K)
            continue;
        INFO("level " << vqs_simd_name(L));
        vqs_rng r;
        vqs_rng_seed(&r, 4);
        struct shape {
            size_t M;
            double offset, range; // table values: offset_j + range * U(0,1)^2 (skewed)
        };
        const shape shapes[] = {{1, 0, 1},    {2, -5, 3},    {3, 100, 0.01}, {7, 0, 1e-3},
                                {8, 1e3, 50}, {15, -1, 2},   {16, 0, 1},     {31, 3, 7},
                                {32, 0, 1e4}, {33, -1e3, 1}, {64, 0.5, 0.5}, {258, 0, 1},
                                {300, 10, 20}};
        for (const shape &s : shapes) {
            size_t M = s.M, M2 = (M + 1) / 2 * 2, n = 2000, stride = (M + 1) / 2;
            INFO("M " << M << " offset " << s.offset << " range " << s.range);
            std::vector<float> lut(M * 16);
            for (size_t j = 0; j < M; j++) {
                double off = s.offset * (1 + vqs_rng_uniform(&r)); // per-table offsets differ
                double rng = s.range * (0.2 + vqs_rng_uniform(&r));
                for (size_t k = 0; k < 16; k++) {
                    double u = vqs_rng_uniform(&r);
                    lut[j * 16 + k] = (float)(off + rng * u * u);
                }
            }
            if (M == 3) // one constant table
                std::fill(lut.begin() + 16, lut.begin() + 32, 42.0f);
            std::vector<uint8_t> lut8(M2 * 16, 0xCC);
            float bias, scale, err;
            K->pq4fs_quantize(lut.data(), M, INFINITY, lut8.data(), &bias, &scale, &err);
            REQUIRE(std::isfinite(bias));
            REQUIRE(scale > 0);
            REQUIRE(std::isfinite(err));
            // the bound is the rounding bound (plus float slack), not something vacuous
            REQUIRE(err <=
                    M * (double)scale / 2 * 1.001 + 1e-4 * (std::fabs(bias) + M * 255.0 * scale));
            // padding tables are zero, and the largest possible u16 sum fits
            for (size_t i = M * 16; i < M2 * 16; i++)
                REQUIRE(lut8[i] == 0);
            unsigned long maxsum = 0;
            for (size_t j = 0; j < M; j++)
                maxsum += *std::max_element(lut8.begin() + (long)(j * 16),
                                            lut8.begin() + (long)(j * 16 + 16));
            REQUIRE(maxsum <= 65535);

            // random codes, plus the codes of every table's extremes
            auto codes = random_bytes(r, n * stride);
            for (size_t j = 0; j < M; j++) {
                auto mn =
                    std::min_element(lut.begin() + (long)(j * 16), lut.begin() + (long)(j * 16 + 16));
                auto mx =
                    std::max_element(lut.begin() + (long)(j * 16), lut.begin() + (long)(j * 16 + 16));
                uint8_t kmn = (uint8_t)(mn - lut.begin() - (long)(j * 16));
                uint8_t kmx = (uint8_t)(mx - lut.begin() - (long)(j * 16));
                for (size_t i : {0, 1}) {
                    uint8_t k = i == 0 ? kmn : kmx;
                    uint8_t &b = codes[i * stride + j / 2];
                    b = (uint8_t)((b & ~(15 << (4 * (j & 1)))) | (k << (4 * (j & 1))));
                }
            }
            std::vector<float> fsum(n);
            vqs_ref_lut4(lut.data(), M, 0.0f, codes.data(), stride, n, fsum.data());
            size_t nblocks = (n + 31) / 32;
            std::vector<uint8_t> packed(vqs_pq4fs_packed_size(n, M));
            vqs_pq4fs_pack(codes.data(), stride, n, M, packed.data());
            std::vector<uint16_t> u16(nblocks * 32);
            vqs_ref_pq4fs_scan(lut8.data(), M, packed.data(), nblocks, u16.data());
            double worst = 0;
            size_t bad = SIZE_MAX;
            for (size_t i = 0; i < n; i++) {
                float approx = bias + scale * (float)u16[i];
                double e = std::fabs((double)fsum[i] - approx);
                worst = std::max(worst, e);
                if (!(e <= err) && bad == SIZE_MAX)
                    bad = i;
            }
            INFO("worst " << worst << " err " << err << " scale " << scale << " first bad " << bad);
            REQUIRE(bad == SIZE_MAX);
        }

        SECTION("a non-finite table value gives an infinite bound")
        {
            std::vector<float> lut(4 * 16, 1.0f);
            lut[37] = NAN;
            std::vector<uint8_t> lut8(4 * 16);
            float bias, scale, err;
            K->pq4fs_quantize(lut.data(), 4, INFINITY, lut8.data(), &bias, &scale, &err);
            REQUIRE(std::isinf(err));
            lut[37] = INFINITY;
            K->pq4fs_quantize(lut.data(), 4, INFINITY, lut8.data(), &bias, &scale, &err);
            REQUIRE(std::isinf(err));
        }
    }
}

TEST_CASE("pq4fs: every level's table quantisation matches the reference", "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 11);
    for (size_t M : {1, 2, 3, 8, 16, 31, 32, 64, 258, 301}) {
        for (float limit : {INFINITY, 0.0f, 3.0f, -1e30f}) {
            std::vector<float> lut(M * 16);
            for (size_t j = 0; j < M; j++) {
                double off = 10 * vqs_rng_uniform(&r) - 5, rng = 4 * vqs_rng_uniform(&r);
                for (size_t k = 0; k < 16; k++)
                    lut[j * 16 + k] = (float)(off + rng * vqs_rng_uniform(&r));
            }
            if (M == 3) // a constant table
                std::fill(lut.begin() + 16, lut.begin() + 32, -7.0f);
            size_t M2 = (M + 1) / 2 * 2;
            std::vector<uint8_t> ref8(M2 * 16), got8(M2 * 16);
            float rb, rs, re;
            vqs_ref_pq4fs_quantize(lut.data(), M, limit, ref8.data(), &rb, &rs, &re);
            for (vqs_simd L : kLevels) {
                const vqs_kernels *K = vqs_kernels_for(L);
                if (!K)
                    continue;
                INFO("level " << vqs_simd_name(L) << " M " << M << " limit " << limit);
                float b, sc, e;
                std::fill(got8.begin(), got8.end(), 0xCC);
                K->pq4fs_quantize(lut.data(), M, limit, got8.data(), &b, &sc, &e);
                REQUIRE(b == rb); // the driver's double arithmetic is shared
                REQUIRE(sc == rs);
                size_t off1 = 0;
                for (size_t i = 0; i < M2 * 16; i++) {
                    int dlt = (int)got8[i] - (int)ref8[i];
                    REQUIRE(std::abs(dlt) <= 1); // a fused multiply-add may round a tie the other way
                    off1 += dlt != 0;
                }
                REQUIRE(off1 <= M2 * 16 / 100 + 1);
                REQUIRE(std::fabs((double)e - re) <= 1e-5 * std::fabs((double)re) + 1e-30);
            }
        }
    }
}



TEST_CASE("pq4fs: PQ16x4 end to end, the quantised filter keeps the true top 10", "[kernels]")
{
    const size_t d = 64, M = 16, ntrain = 4096, n = 5000, nq = 8, k = 10;
    // no outliers: vqs_synth_gmm's default 20x outliers get centroids of their own, whose
    // table entries then set the one common scale (kept ~ n; see the quantiser's comment)
    auto gen = [&](size_t cnt, uint64_t seed) {
        std::vector<float> x(cnt * d);
        vqs_synth_opts o = {};
        o.seed = seed;
        o.outlier_frac = -1;
        REQUIRE_OK(vqs_synth_gmm(&o, cnt, d, x.data()));
        return x;
    };
    auto xt = gen(ntrain, 11), xb = gen(n, 12), xq = gen(nq, 13);
    vqs_codec *cp = nullptr;
    REQUIRE_OK(vqs_codec_create("PQ16x4", d, nullptr, &cp));
    codec_ptr c(cp, vqs_codec_free);
    REQUIRE_OK(vqs_codec_train(c.get(), ntrain, xt.data()));
    size_t cs = vqs_codec_code_size(c.get());
    REQUIRE(cs == M / 2);
    std::vector<uint8_t> codes(n * cs);
    REQUIRE_OK(vqs_codec_encode(c.get(), n, xb.data(), codes.data()));

    // the centroids, from decoding the 16 codes whose nibbles are all k
    std::vector<uint8_t> ck(16 * cs);
    for (size_t kk = 0; kk < 16; kk++)
        std::fill(ck.begin() + (long)(kk * cs), ck.begin() + (long)((kk + 1) * cs),
                  (uint8_t)(kk | kk << 4));
    std::vector<float> cent(16 * d);
    REQUIRE_OK(vqs_codec_decode(c.get(), 16, ck.data(), cent.data()));

    size_t nblocks = (n + 31) / 32;
    std::vector<uint8_t> packed(vqs_pq4fs_packed_size(n, M));
    vqs_pq4fs_pack(codes.data(), cs, n, M, packed.data());

    for (size_t qi = 0; qi < nq; qi++) {
        INFO("query " << qi);
        const float *q = &xq[qi * d];
        // the float L2 table |q_m - c_{m,k}|^2 (summed in the order of the PQ stage)
        std::vector<float> lut(M * 16);
        const size_t dsub = d / M;
        for (size_t m = 0; m < M; m++)
            for (size_t kk = 0; kk < 16; kk++) {
                float v = 0;
                for (size_t t = 0; t < dsub; t++) {
                    float e = q[m * dsub + t] - cent[kk * d + m * dsub + t];
                    v += e * e;
                }
                lut[m * 16 + kk] = v;
            }
        vqs_codec_query *qq = nullptr;
        REQUIRE_OK(vqs_codec_query_create(c.get(), VQS_METRIC_L2, q, &qq));
        std::vector<float> score(n), fsum(n);
        int rc = vqs_codec_query_score(qq, n, codes.data(), score.data());
        vqs_codec_query_free(qq);
        REQUIRE_OK(rc);
        // this table is the codec's: the float sums agree with its scorer
        vqs_ref_lut4(lut.data(), M, 0.0f, codes.data(), cs, n, fsum.data());
        for (size_t i = 0; i < n; i++)
            REQUIRE(fsum[i] == Approx(score[i]).epsilon(1e-5));

        std::vector<uint8_t> lut8((M + 1) / 2 * 2 * 16);
        float bias, scale, err;
        vqs_pq4fs_quantize(lut.data(), M, INFINITY, lut8.data(), &bias, &scale, &err);
        std::vector<uint16_t> u16(nblocks * 32);
        vqs_ref_pq4fs_scan(lut8.data(), M, packed.data(), nblocks, u16.data());
        for (vqs_simd L : kLevels) {
            const vqs_kernels *K = vqs_kernels_for(L);
            if (!K)
                continue;
            std::vector<uint16_t> got(nblocks * 32);
            K->pq4fs_scan(lut8.data(), M, packed.data(), nblocks, got.data());
            INFO(K->name);
            REQUIRE(first_diff(got.data(), u16.data(), got.size()) == SIZE_MAX);
        }

        auto top = top_k(score, k);
        float T = 0;
        for (size_t i : top)
            T = std::max(T, score[i]);
        size_t kept = 0;
        std::vector<bool> keep(n);
        for (size_t i = 0; i < n; i++) {
            keep[i] = bias + scale * (float)u16[i] <= T + err;
            kept += keep[i];
        }
        INFO("T " << T << " err " << err << " scale " << scale << " kept " << kept << " of " << n);
        for (size_t i : top)
            REQUIRE(keep[i]);
        // and the filter does filter (the u8 tables are fine enough to matter)
        REQUIRE(kept < n / 4);
    }
}

// ---- PQ 8-bit fast scan --------------------------------------------------------------------

namespace
{

const size_t kM8[] = {1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 64, 96};
const size_t kN8[] = {0, 1, 63, 64, 65, 200, 1000};

// lut8 of exactly M * 256 bytes with entries <= R, R * M <= 65535 (the quantiser's promise)
std::vector<uint8_t> random_lut8_256(vqs_rng &r, size_t M, bool max_out)
{
    unsigned R = M > 257 ? (unsigned)(65535 / M) : 255;
    std::vector<uint8_t> t(M * 256);
    for (auto &b : t)
        b = max_out ? (uint8_t)R : (uint8_t)(vqs_rng_next(&r) % (R + 1));
    return t;
}

// plain loop over row-major 8-bit codes
std::vector<uint32_t> scan8_plain(const std::vector<uint8_t> &lut8, size_t M,
                                  const std::vector<uint8_t> &codes, size_t stride, size_t n)
{
    std::vector<uint32_t> s(n, 0);
    for (size_t i = 0; i < n; i++)
        for (size_t m = 0; m < M; m++)
            s[i] += lut8[m * 256 + codes[i * stride + m]];
    return s;
}

// the kernels to check at a level: its table entry, and on AVX-512 also the VBMI kernel
// itself (when the CPU has it) and the scalar kernel the entry uses without VBMI
std::vector<std::pair<std::string, decltype(vqs_kernels::pq8fs_scan)>> pq8fs_kernels()
{
    std::vector<std::pair<std::string, decltype(vqs_kernels::pq8fs_scan)>> v;
    for (vqs_simd L : kLevels) {
        const vqs_kernels *K = vqs_kernels_for(L);
        if (!K) {
            WARN("level " << vqs_simd_name(L) << " not available");
            continue;
        }
        v.emplace_back(K->name, K->pq8fs_scan);
#if defined(__x86_64__)
        if (L == VQS_SIMD_AVX512) {
            v.emplace_back("avx512 scalar (no VBMI)", vqs_avx2_pq8fs_scan);
            if (vqs_simd_has_vbmi())
                v.emplace_back("avx512 vbmi", vqs_avx512_pq8fs_scan_vbmi);
            else
                WARN("no AVX-512 VBMI: the VBMI kernel is not tested");
        }
#endif
    }
    return v;
}

} // namespace

TEST_CASE("pq8fs: pack then get gives the codes back, padding is zero", "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 31);
    for (size_t M : kM8) {
        for (size_t n : kN8) {
            for (size_t stride : {M, M + 3}) {
                INFO("M " << M << " n " << n << " stride " << stride);
                auto codes = random_bytes(r, n * stride);
                size_t psz = vqs_pq8fs_packed_size(n, M);
                REQUIRE(psz == (n + 63) / 64 * 64 * M);
                std::vector<uint8_t> packed(psz, 0xAA);
                vqs_pq8fs_pack(codes.data(), stride, n, M, packed.data());
                // the layout as documented: vector t of block b, byte m at b*64*M + m*64 + t
                size_t bad = SIZE_MAX;
                for (size_t i = 0; i < (n + 63) / 64 * 64 && bad == SIZE_MAX; i++)
                    for (size_t m = 0; m < M; m++) {
                        uint8_t want = i < n ? codes[i * stride + m] : 0;
                        if (packed[i / 64 * 64 * M + m * 64 + i % 64] != want)
                            bad = i;
                    }
                INFO("first misplaced vector " << bad);
                REQUIRE(bad == SIZE_MAX);
                std::vector<uint8_t> got(M), want(M);
                for (size_t i = 0; i < (n + 63) / 64 * 64 && bad == SIZE_MAX; i++) {
                    for (size_t m = 0; m < M; m++)
                        want[m] = i < n ? codes[i * stride + m] : 0;
                    vqs_pq8fs_get(packed.data(), M, i, got.data());
                    if (got != want)
                        bad = i;
                }
                INFO("first wrong vector from get " << bad);
                REQUIRE(bad == SIZE_MAX);
            }
        }
    }
}

TEST_CASE("pq8fs: reference scan equals a plain loop over the unpacked codes", "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 32);
    std::vector<size_t> Ms(std::begin(kM8), std::end(kM8));
    Ms.insert(Ms.end(), {257, 258, 301});
    for (size_t M : Ms) {
        for (size_t n : kN8) {
            for (bool max_out : {false, true}) {
                INFO("M " << M << " n " << n << " max " << max_out);
                auto codes = random_bytes(r, n * M);
                auto lut8 = random_lut8_256(r, M, max_out);
                std::vector<uint8_t> packed(vqs_pq8fs_packed_size(n, M));
                vqs_pq8fs_pack(codes.data(), M, n, M, packed.data());
                size_t nblocks = (n + 63) / 64;
                std::vector<uint16_t> out(nblocks * 64);
                vqs_ref_pq8fs_scan(lut8.data(), M, packed.data(), nblocks, out.data());
                auto want = scan8_plain(lut8, M, codes, M, n);
                size_t bad = SIZE_MAX;
                for (size_t i = 0; i < n && bad == SIZE_MAX; i++)
                    if (out[i] != want[i])
                        bad = i;
                // padding vectors are code 0 in every sub-quantizer
                unsigned pad = 0;
                for (size_t m = 0; m < M; m++)
                    pad += lut8[m * 256];
                for (size_t i = n; i < nblocks * 64 && bad == SIZE_MAX; i++)
                    if (out[i] != (uint16_t)pad)
                        bad = i;
                INFO("first wrong vector " << bad);
                REQUIRE(bad == SIZE_MAX);
            }
        }
    }
}

TEST_CASE("pq8fs: every level's scan equals the reference exactly", "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 33);
    std::vector<size_t> Ms(std::begin(kM8), std::end(kM8));
    Ms.insert(Ms.end(), {4, 5, 6, 257, 258, 301});
    for (const auto &kf : pq8fs_kernels()) {
        for (size_t M : Ms) {
            for (size_t nblocks : {0, 1, 2, 3, 4, 5, 33}) {
                for (int variant = 0; variant < 3; variant++) {
                    INFO(kf.first << " M " << M << " nblocks " << nblocks << " variant "
                                  << variant);
                    // 0: random tables, packed from codes; 1: every entry at its maximum (the
                    // u16 sums reach 65535 for M = 257); 2: arbitrary packed bytes with
                    // arbitrary tables (any u8 values: the sums wrap mod 2^16)
                    std::vector<uint8_t> lut8 =
                        variant == 2 ? random_bytes(r, M * 256) : random_lut8_256(r, M, variant == 1);
                    size_t psz = nblocks * 64 * M;
                    std::vector<uint8_t> packed;
                    if (variant == 2) {
                        packed = random_bytes(r, psz);
                    } else {
                        auto codes = random_bytes(r, nblocks * 64 * M);
                        packed.resize(vqs_pq8fs_packed_size(nblocks * 64, M));
                        vqs_pq8fs_pack(codes.data(), M, nblocks * 64, M, packed.data());
                    }
                    REQUIRE(packed.size() == psz);
                    std::vector<uint16_t> want(nblocks * 64), got(nblocks * 64, 0xBEEF);
                    vqs_ref_pq8fs_scan(lut8.data(), M, packed.data(), nblocks, want.data());
                    kf.second(lut8.data(), M, packed.data(), nblocks, got.data());
                    size_t bad = first_diff(got.data(), want.data(), want.size());
                    INFO("first difference at " << bad);
                    REQUIRE(bad == SIZE_MAX);
                }
            }
        }
    }
}

TEST_CASE("pq8fs: quantised tables are within the stated error of the float sums", "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 34);
    struct shape {
        size_t M;
        double offset, range; // table values: offset_j + range * U(0,1)^2 (skewed)
    };
    const shape shapes[] = {{1, 0, 1},    {2, -5, 3},    {3, 100, 0.01}, {7, 0, 1e-3},
                            {8, 1e3, 50}, {15, -1, 2},   {16, 0, 1},     {17, 2, 2},
                            {31, 3, 7},   {32, 0, 1e4},  {33, -1e3, 1},  {64, 0.5, 0.5},
                            {96, 0, 10},  {258, 0, 1},   {300, 10, 20}};
    for (const shape &s : shapes) {
        size_t M = s.M, n = 1000;
        INFO("M " << M << " offset " << s.offset << " range " << s.range);
        std::vector<float> lut(M * 256);
        for (size_t j = 0; j < M; j++) {
            double off = s.offset * (1 + vqs_rng_uniform(&r)); // per-table offsets differ
            double rng = s.range * (0.2 + vqs_rng_uniform(&r));
            for (size_t k = 0; k < 256; k++) {
                double u = vqs_rng_uniform(&r);
                lut[j * 256 + k] = (float)(off + rng * u * u);
            }
        }
        if (M == 3) // one constant table
            std::fill(lut.begin() + 256, lut.begin() + 512, 42.0f);
        std::vector<uint8_t> lut8(M * 256);
        float bias, scale, err;
        vqs_pq8fs_quantize(lut.data(), M, INFINITY, lut8.data(), &bias, &scale, &err);
        REQUIRE(std::isfinite(bias));
        REQUIRE(scale > 0);
        REQUIRE(std::isfinite(err));
        unsigned R = M > 257 ? (unsigned)(65535 / M) : 255;
        // the bound is the rounding bound (plus float slack), not something vacuous
        REQUIRE(err <= M * (double)scale / 2 * 1.001 + 1e-4 * (std::fabs(bias) + M * R * scale));
        // entries within 0..R, and the largest possible u16 sum fits
        unsigned long maxsum = 0;
        for (size_t j = 0; j < M; j++) {
            uint8_t mx = *std::max_element(lut8.begin() + (long)(j * 256),
                                           lut8.begin() + (long)(j * 256 + 256));
            REQUIRE(mx <= R);
            maxsum += mx;
        }
        REQUIRE(maxsum <= 65535);

        // random codes, plus per table: its extremes (codes 0, 1), and the codes whose rounding
        // error lut - min - scale * lut8 is the largest (code 2) and the most negative (code 3):
        // those two make the error sum reach about M * scale / 2, so a bound half as large fails
        auto codes = random_bytes(r, n * M);
        for (size_t j = 0; j < M; j++) {
            const float *T = &lut[j * 256];
            size_t kmn = 0, kmx = 0, kep = 0, ken = 0;
            double mn = *std::min_element(T, T + 256), ep = -1e300, en = 1e300;
            for (size_t k = 0; k < 256; k++) {
                kmn = T[k] < T[kmn] ? k : kmn;
                kmx = T[k] > T[kmx] ? k : kmx;
                double e = (double)T[k] - mn - (double)scale * lut8[j * 256 + k];
                if (e > ep)
                    ep = e, kep = k;
                if (e < en)
                    en = e, ken = k;
            }
            codes[0 * M + j] = (uint8_t)kmn;
            codes[1 * M + j] = (uint8_t)kmx;
            codes[2 * M + j] = (uint8_t)kep;
            codes[3 * M + j] = (uint8_t)ken;
        }
        std::vector<float> fsum(n);
        vqs_ref_lut8(lut.data(), M, 0.0f, codes.data(), M, n, fsum.data());
        size_t nblocks = (n + 63) / 64;
        std::vector<uint8_t> packed(vqs_pq8fs_packed_size(n, M));
        vqs_pq8fs_pack(codes.data(), M, n, M, packed.data());
        std::vector<uint16_t> u16(nblocks * 64);
        vqs_ref_pq8fs_scan(lut8.data(), M, packed.data(), nblocks, u16.data());
        double worst = 0;
        size_t bad = SIZE_MAX;
        for (size_t i = 0; i < n; i++) {
            float approx = bias + scale * (float)u16[i];
            double e = std::fabs((double)fsum[i] - approx);
            worst = std::max(worst, e);
            if (!(e <= err) && bad == SIZE_MAX)
                bad = i;
        }
        INFO("worst " << worst << " err " << err << " scale " << scale << " first bad " << bad);
        REQUIRE(bad == SIZE_MAX);
    }

    SECTION("a non-finite table value gives an infinite bound")
    {
        for (float badv : {NAN, INFINITY, -INFINITY}) {
            std::vector<float> lut(4 * 256, 1.0f);
            lut[700] = badv;
            std::vector<uint8_t> lut8(4 * 256, 0xCC);
            float bias, scale, err;
            vqs_pq8fs_quantize(lut.data(), 4, INFINITY, lut8.data(), &bias, &scale, &err);
            REQUIRE(std::isinf(err));
            REQUIRE(bias == 0);
            REQUIRE(scale == 1);
            REQUIRE(std::count(lut8.begin(), lut8.end(), 0) == (long)lut8.size());
        }
    }
}

TEST_CASE("pq8fs: PQ16x8 end to end, the quantised filter keeps the true top 10", "[kernels]")
{
    const size_t d = 64, M = 16, ntrain = 4096, n = 5000, nq = 8, k = 10;
    // no outliers (see the PQ16x4 test: they would set the one common scale)
    auto gen = [&](size_t cnt, uint64_t seed) {
        std::vector<float> x(cnt * d);
        vqs_synth_opts o = {};
        o.seed = seed;
        o.outlier_frac = -1;
        REQUIRE_OK(vqs_synth_gmm(&o, cnt, d, x.data()));
        return x;
    };
    auto xt = gen(ntrain, 41), xb = gen(n, 42), xq = gen(nq, 43);
    vqs_codec *cp = nullptr;
    REQUIRE_OK(vqs_codec_create("PQ16x8", d, nullptr, &cp));
    codec_ptr c(cp, vqs_codec_free);
    REQUIRE_OK(vqs_codec_train(c.get(), ntrain, xt.data()));
    size_t cs = vqs_codec_code_size(c.get());
    REQUIRE(cs == M);
    std::vector<uint8_t> codes(n * cs);
    REQUIRE_OK(vqs_codec_encode(c.get(), n, xb.data(), codes.data()));

    size_t nblocks = (n + 63) / 64;
    std::vector<uint8_t> packed(vqs_pq8fs_packed_size(n, M));
    vqs_pq8fs_pack(codes.data(), cs, n, M, packed.data());
    const auto kernels = pq8fs_kernels();

    for (size_t qi = 0; qi < nq; qi++) {
        INFO("query " << qi);
        vqs_codec_query *qq = nullptr;
        REQUIRE_OK(vqs_codec_query_create(c.get(), VQS_METRIC_L2, &xq[qi * d], &qq));
        std::unique_ptr<vqs_codec_query, void (*)(vqs_codec_query *)> qp(qq,
                                                                        vqs_codec_query_free);
        vqs_codec_view v;
        REQUIRE_OK(vqs_codec_query_view(qq, &v));
        REQUIRE(v.kind == VQS_VIEW_LUT8);
        REQUIRE(v.m == M);
        std::vector<float> lut(v.lut, v.lut + M * 256);
        std::vector<float> score(n), fsum(n);
        REQUIRE_OK(vqs_codec_query_score(qq, n, codes.data(), score.data()));
        // the query's table is the codec's L2 table: its float sums agree with the scorer
        vqs_ref_lut8(lut.data(), M, 0.0f, codes.data(), cs, n, fsum.data());
        for (size_t i = 0; i < n; i++)
            REQUIRE(v.bias + fsum[i] == Approx(score[i]).epsilon(1e-5));

        std::vector<uint8_t> lut8(M * 256);
        float bias, scale, err;
        vqs_pq8fs_quantize(lut.data(), M, INFINITY, lut8.data(), &bias, &scale, &err);
        std::vector<uint16_t> u16(nblocks * 64);
        vqs_ref_pq8fs_scan(lut8.data(), M, packed.data(), nblocks, u16.data());
        for (const auto &kf : kernels) {
            std::vector<uint16_t> got(nblocks * 64);
            kf.second(lut8.data(), M, packed.data(), nblocks, got.data());
            INFO(kf.first);
            REQUIRE(first_diff(got.data(), u16.data(), got.size()) == SIZE_MAX);
        }

        // T: the float 10th-best sum; every code whose quantised score is <= T + err is kept
        auto top = top_k(fsum, k);
        float T = 0;
        for (size_t i : top)
            T = std::max(T, fsum[i]);
        size_t kept = 0;
        std::vector<bool> keep(n);
        for (size_t i = 0; i < n; i++) {
            keep[i] = bias + scale * (float)u16[i] <= T + err;
            kept += keep[i];
        }
        INFO("T " << T << " err " << err << " scale " << scale << " kept " << kept << " of " << n);
        for (size_t i : top)
            REQUIRE(keep[i]);
        // and the filter does filter
        REQUIRE(kept < n / 4);
    }
}

// ---- binary --------------------------------------------------------------------------------

TEST_CASE("hamming: reference equals a bit count, every level equals the reference", "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 5);
    for (size_t nb : {0,  1,  3,  7,  8,  9,   15,  16,  17,  24,  31,  32,
                      33, 63, 64, 65, 96, 100, 127, 128, 129, 200, 1031}) {
        for (size_t n : {0, 1, 3, 4, 5, 7, 8, 9, 17, 100}) {
            for (size_t pad : {0, 5}) {
                size_t stride = nb + pad;
                INFO("nbytes " << nb << " n " << n << " stride " << stride);
                auto q = random_bytes(r, nb);
                auto codes = random_bytes(r, n * stride);
                if (n > 1 && nb > 0) { // all bits equal and all bits different
                    std::copy(q.begin(), q.end(), codes.begin());
                    for (size_t t = 0; t < nb; t++)
                        codes[stride + t] = (uint8_t)~q[t];
                }
                std::vector<uint32_t> plain(n, 0);
                for (size_t i = 0; i < n; i++)
                    for (size_t t = 0; t < nb; t++)
                        for (int b = 0; b < 8; b++)
                            plain[i] += ((q[t] ^ codes[i * stride + t]) >> b) & 1;
                std::vector<uint32_t> want(n);
                vqs_ref_hamming(q.data(), nb, codes.data(), stride, n, want.data());
                REQUIRE(first_diff(want.data(), plain.data(), n) == SIZE_MAX);
                for (vqs_simd L : kLevels) {
                    const vqs_kernels *K = vqs_kernels_for(L);
                    if (!K)
                        continue;
                    INFO(K->name);
                    std::vector<uint32_t> got(n, 12345);
                    K->hamming(q.data(), nb, codes.data(), stride, n, got.data());
                    REQUIRE(first_diff(got.data(), want.data(), n) == SIZE_MAX);
                    if (L == VQS_SIMD_AVX512) { // the kernel for CPUs without VPOPCNTDQ
                        std::fill(got.begin(), got.end(), 12345);
                        vqs_avx512_hamming_novpopcnt(q.data(), nb, codes.data(), stride, n,
                                                     got.data());
                        REQUIRE(first_diff(got.data(), want.data(), n) == SIZE_MAX);
                    }
                }
            }
        }
    }
    for (vqs_simd L : kLevels)
        if (!vqs_kernels_for(L))
            WARN("level " << vqs_simd_name(L) << " not available");
}

namespace
{

// BIN rows: nb bit bytes, float r, float a
std::vector<uint8_t> bin_rows(vqs_rng &r, size_t nb, size_t stride, size_t n)
{
    auto rows = random_bytes(r, n * stride);
    for (size_t i = 0; i < n; i++) {
        float rr = (float)(0.1 + 10 * vqs_rng_uniform(&r)),
              a = (float)(0.3 + 0.7 * vqs_rng_uniform(&r));
        switch (i % 17) { // the awkward ones
        case 3:
            a = 0;
            break; // est = 0
        case 5:
            a = -0.5f;
            break; // est = 0
        case 7:
            rr = 3e38f;
            break; // r^2 overflows float: clamped
        case 11:
            rr = 1e30f;
            a = 1e-30f;
            break; // est overflows: not finite -> 0
        default:
            break;
        }
        std::memcpy(&rows[i * stride + nb], &rr, 4);
        std::memcpy(&rows[i * stride + nb + 4], &a, 4);
    }
    return rows;
}

} // namespace

TEST_CASE("bin_est: every level matches the reference within float rounding", "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 6);
    for (size_t nb : {1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 96, 97}) {
        std::vector<float> tab(nb * 256);
        for (auto &v : tab)
            v = (float)(vqs_rng_normal(&r) * 3);
        double sumv = 0;
        for (size_t t = 0; t < nb; t++)
            sumv += tab[t * 256 + 255];
        const float isd = (float)(1.0 / std::sqrt(8.0 * nb)), cst = 12.5f;
        for (size_t n : {0, 1, 7, 8, 9, 15, 16, 17, 33, 1000}) {
            for (size_t pad : {0, 3}) {
                for (int l2 : {0, 1}) {
                    size_t stride = nb + 8 + pad;
                    INFO("nb " << nb << " n " << n << " stride " << stride << " l2 " << l2);
                    auto rows = bin_rows(r, nb, stride, n);
                    std::vector<float> want(n);
                    vqs_ref_bin_est(tab.data(), nb, cst, (float)sumv, isd, l2, rows.data(), stride,
                                    n, want.data());
                    for (vqs_simd L : kLevels) {
                        const vqs_kernels *K = vqs_kernels_for(L);
                        if (!K)
                            continue;
                        INFO(K->name);
                        std::vector<float> got(n, NAN);
                        K->bin_est(tab.data(), nb, cst, (float)sumv, isd, l2, rows.data(), stride,
                                   n, got.data());
                        size_t bad = SIZE_MAX;
                        for (size_t i = 0; i < n && bad == SIZE_MAX; i++) {
                            const uint8_t *row = &rows[i * stride];
                            float rr, a;
                            std::memcpy(&rr, row + nb, 4);
                            std::memcpy(&a, row + nb + 4, 4);
                            double S = 0; // sum of |terms| of the estimate
                            for (size_t t = 0; t < nb; t++)
                                S += std::fabs(tab[t * 256 + row[t]]);
                            double terms = std::fabs(cst) + (l2 ? (double)rr * rr : 0);
                            if (a > 0)
                                terms +=
                                    2 * std::fabs((double)rr * isd / a) * (2 * S + std::fabs(sumv));
                            double tol = 1e-5 * std::min(terms, (double)FLT_MAX);
                            if (!(std::fabs((double)got[i] - want[i]) <= tol))
                                bad = i;
                        }
                        INFO("first bad " << bad
                                          << (bad < n ? " got " + std::to_string(got[bad]) +
                                                            " want " + std::to_string(want[bad])
                                                      : ""));
                        REQUIRE(bad == SIZE_MAX);
                        if (n >= 100)
                            REQUIRE(top_k(got, 10) == top_k(want, 10));
                    }
                }
            }
        }
    }
}

TEST_CASE("bin_est: the reference equals the BIN codec's scorer", "[kernels]")
{
    for (size_t d : {64, 100, 768}) {
        const size_t ntrain = 2000, n = 500, nq = 3, nb = (d + 7) / 8;
        auto xt = synth(ntrain, d, 21 + d), xb = synth(n, d, 22 + d), xq = synth(nq, d, 23 + d);
        vqs_codec *cp = nullptr;
        REQUIRE_OK(vqs_codec_create("BIN", d, nullptr, &cp));
        codec_ptr c(cp, vqs_codec_free);
        REQUIRE_OK(vqs_codec_train(c.get(), ntrain, xt.data()));
        size_t cs = vqs_codec_code_size(c.get());
        REQUIRE(cs == nb + 8);
        std::vector<uint8_t> codes(n * cs);
        REQUIRE_OK(vqs_codec_encode(c.get(), n, xb.data(), codes.data()));
        // the training mean, in double
        std::vector<double> acc(d, 0.0);
        for (size_t i = 0; i < ntrain; i++)
            for (size_t j = 0; j < d; j++)
                acc[j] += xt[i * d + j];
        std::vector<float> mean(d);
        for (size_t j = 0; j < d; j++)
            mean[j] = (float)(acc[j] / (double)ntrain);
        const float isd = (float)(1.0 / std::sqrt((double)d));

        for (vqs_metric m : {VQS_METRIC_L2, VQS_METRIC_IP}) {
            for (size_t qi = 0; qi < nq; qi++) {
                INFO("d " << d << " metric " << vqs_metric_name(m) << " query " << qi);
                const float *q = &xq[qi * d];
                std::vector<float> v(d);
                double cst = 0, sumv = 0;
                for (size_t j = 0; j < d; j++) {
                    v[j] = m == VQS_METRIC_L2 ? q[j] - mean[j] : q[j];
                    sumv += v[j];
                    cst += m == VQS_METRIC_L2 ? (double)v[j] * v[j] : (double)q[j] * mean[j];
                }
                // tab[t * 256 + b] = sum of v_{8t+k} over the bits k set in b
                std::vector<float> tab(nb * 256);
                for (size_t t = 0; t < nb; t++)
                    for (unsigned b = 0; b < 256; b++) {
                        double s = 0;
                        for (unsigned kbit = 0; kbit < 8; kbit++)
                            if ((b >> kbit) & 1 && 8 * t + kbit < d)
                                s += v[8 * t + kbit];
                        tab[t * 256 + b] = (float)s;
                    }
                std::vector<float> want(n), got(n);
                vqs_codec_query *qq = nullptr;
                REQUIRE_OK(vqs_codec_query_create(c.get(), m, q, &qq));
                int rc = vqs_codec_query_score(qq, n, codes.data(), want.data());
                vqs_codec_query_free(qq);
                REQUIRE_OK(rc);
                vqs_ref_bin_est(tab.data(), nb, (float)cst, (float)sumv, isd, m == VQS_METRIC_L2,
                                codes.data(), cs, n, got.data());
                double scale = std::fabs(cst);
                for (size_t i = 0; i < n; i++)
                    scale = std::max(scale, (double)std::fabs(want[i]));
                size_t bad = SIZE_MAX;
                for (size_t i = 0; i < n && bad == SIZE_MAX; i++)
                    if (!(std::fabs((double)got[i] - want[i]) <=
                          1e-4 * std::max((double)std::fabs(want[i]), 1e-3 * scale)))
                        bad = i;
                INFO("first bad " << bad
                                  << (bad < n ? " got " + std::to_string(got[bad]) + " want " +
                                                    std::to_string(want[bad])
                                              : ""));
                REQUIRE(bad == SIZE_MAX);
            }
        }
    }
}

// The limit (vqs_pq{4,8}fs_quantize): tables whose widest entries (outlier
// centroids) are orders of magnitude beyond the sums that decide the top k.
// For every code bias + scale * u16 - err must stay a lower bound of the
// float sum; for codes whose float sum is <= limit the two-sided bound must
// hold; and the bound must be about the span below the limit, not the
// outliers (else the filter keeps everything, which is what it did).
TEST_CASE("fast scan: quantising below a limit keeps the bounds and the resolution", "[kernels]")
{
    for (vqs_simd lvl : kLevels) {
        if (!vqs_kernels_for(lvl))
            continue;
        INFO("level " << vqs_simd_name(lvl));
        vqs_rng r;
        vqs_rng_seed(&r, 77);
        for (int K : {16, 256}) {
            if (K == 256 && lvl != kLevels[0])
                continue; // the 8-bit quantisation has one level
            for (size_t M : {1, 4, 16, 31, 32, 64}) {
                INFO("K " << K << " M " << M);
                size_t n = 4000, M2 = (M + 1) / 2 * 2;
                std::vector<float> lut(M * K);
                for (size_t j = 0; j < M; j++)
                    for (int k = 0; k < K; k++) {
                        double u = vqs_rng_uniform(&r);
                        // most entries in 0..10 (and some negative), a few outliers up to 1e5
                        double v = vqs_rng_uniform(&r) < 0.1 ? 1e5 * u : 10 * u - 1;
                        lut[j * K + k] = (float)v;
                    }
                // codes: random, and codes built from each table's smallest entries (the top k)
                size_t stride = K == 16 ? (M + 1) / 2 : M;
                auto codes = random_bytes(r, n * stride);
                for (size_t i = 0; i < n / 4; i++)
                    for (size_t j = 0; j < M; j++) {
                        // pick among the 4 smallest entries of table j
                        std::vector<int> ord(K);
                        std::iota(ord.begin(), ord.end(), 0);
                        std::partial_sort(ord.begin(), ord.begin() + 4, ord.end(), [&](int a, int b) {
                            return lut[j * K + a] < lut[j * K + b];
                        });
                        int k = ord[vqs_rng_next(&r) % 4];
                        if (K == 16) {
                            uint8_t &b = codes[i * stride + j / 2];
                            b = (uint8_t)((b & ~(15 << (4 * (j & 1)))) | (k << (4 * (j & 1))));
                        } else {
                            codes[i * stride + j] = (uint8_t)k;
                        }
                    }
                std::vector<float> fsum(n);
                if (K == 16)
                    vqs_ref_lut4(lut.data(), M, 0.0f, codes.data(), stride, n, fsum.data());
                else
                    vqs_ref_lut8(lut.data(), M, 0.0f, codes.data(), stride, n, fsum.data());
                std::vector<float> sorted(fsum);
                std::sort(sorted.begin(), sorted.end());
                float limit = sorted[20]; // "the k-th key" of a search for k = 20

                std::vector<uint8_t> packed(K == 16 ? vqs_pq4fs_packed_size(n, M)
                                                    : vqs_pq8fs_packed_size(n, M));
                size_t nb = K == 16 ? (n + 31) / 32 : (n + 63) / 64, bs = K == 16 ? 32 : 64;
                if (K == 16)
                    vqs_pq4fs_pack(codes.data(), stride, n, M, packed.data());
                else
                    vqs_pq8fs_pack(codes.data(), stride, n, M, packed.data());
                std::vector<uint8_t> lut8(K == 16 ? M2 * 16 : M * 256);
                std::vector<uint16_t> u16(nb * bs);
                float bias, scale, err, bias0, scale0, err0;
                for (int pass = 0; pass < 2; pass++) {
                    float lim = pass == 0 ? INFINITY : limit;
                    float &b_ = pass == 0 ? bias0 : bias, &s_ = pass == 0 ? scale0 : scale,
                          &e_ = pass == 0 ? err0 : err;
                    if (K == 16) {
                        vqs_kernels_for(lvl)->pq4fs_quantize(lut.data(), M, lim, lut8.data(), &b_, &s_, &e_);
                        vqs_ref_pq4fs_scan(lut8.data(), M, packed.data(), nb, u16.data());
                    } else {
                        vqs_pq8fs_quantize(lut.data(), M, lim, lut8.data(), &b_, &s_, &e_);
                        vqs_ref_pq8fs_scan(lut8.data(), M, packed.data(), nb, u16.data());
                    }
                    REQUIRE(std::isfinite(e_));
                    size_t below = 0, bad_lower = SIZE_MAX, bad_two = SIZE_MAX;
                    for (size_t i = 0; i < n; i++) {
                        float approx = b_ + s_ * (float)u16[i];
                        if (!((double)fsum[i] >= (double)approx - e_) && bad_lower == SIZE_MAX)
                            bad_lower = i;
                        if (fsum[i] <= lim) {
                            below++;
                            if (!(std::fabs((double)fsum[i] - approx) <= e_) && bad_two == SIZE_MAX)
                                bad_two = i;
                        }
                    }
                    INFO("pass " << pass << " err " << e_ << " scale " << s_ << " below " << below);
                    REQUIRE(bad_lower == SIZE_MAX);
                    REQUIRE(bad_two == SIZE_MAX);
                    if (pass == 1) {
                        REQUIRE(below >= 21);
                        // the filter keeps little beyond the codes below the limit
                        size_t kept = 0;
                        for (size_t i = 0; i < n; i++)
                            kept += b_ + s_ * (float)u16[i] - e_ <= limit;
                        INFO("kept " << kept);
                        REQUIRE(kept < n / 4);
                    }
                }
                // the resolution follows the limit: far finer than without it
                REQUIRE(err < err0 / 100);

                // the survivors' exact re-score straight from the packed layout equals the
                // reference table sum bit for bit (whatever the order of idx)
                std::vector<uint32_t> idx(n);
                std::iota(idx.begin(), idx.end(), 0u);
                std::reverse(idx.begin(), idx.end());
                std::vector<float> re(n);
                if (K == 16)
                    vqs_pq4fs_rescore(lut.data(), M, 1.5f, packed.data(), idx.data(), n, re.data());
                else
                    vqs_pq8fs_rescore(lut.data(), M, 1.5f, packed.data(), idx.data(), n, re.data());
                size_t bad = SIZE_MAX;
                for (size_t i = 0; i < n && bad == SIZE_MAX; i++)
                    if (re[i] != 1.5f + fsum[idx[i]])
                        bad = i;
                REQUIRE(bad == SIZE_MAX);
            }
        }
    }
}
