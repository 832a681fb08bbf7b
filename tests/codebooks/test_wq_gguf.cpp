// GGUF Q8_0 / Q4_0 / Q4_1 and NF4 weight formats (codebooks/wq_gguf.c):
// hand-worked blocks whose expected bytes follow llama.cpp's reference
// quantizers (quantize_row_q*_ref in ggml-quants.c) step by step in the
// comments; NF4 against bitsandbytes' table and pivots; every SIMD level
// against the scalar reference on awkward row lengths, ties and
// saturation; decode's part checks; random round trips within half a step.
#include "vqs_test.hpp"

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/wq_gguf_kernels.h"
#include "vqs_wq.h"
#include "wq_test.hpp"

namespace {

using wq_test::decode;
using wq_test::encode;
using wq_test::tensor;

std::vector<uint8_t> bytes(const vqs_wq_tensor &t, const char *name)
{
    return wq_test::part<uint8_t>(t, name);
}

uint32_t bits(float f)
{
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

float from_bits(uint32_t u)
{
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

std::vector<vqs_simd> levels()
{
    std::vector<vqs_simd> l{VQS_SIMD_SCALAR};
    if (vqs_simd_cpu() >= VQS_SIMD_AVX2)
        l.push_back(VQS_SIMD_AVX2);
    if (vqs_simd_cpu() >= VQS_SIMD_AVX512)
        l.push_back(VQS_SIMD_AVX512);
    return l;
}

} // namespace

TEST_CASE("q8_0 hand-worked block: roundf ties away from zero and d = amax / 127", "[wq][gguf]")
{
    // amax = 127 -> d = 127 / 127 = 1 (fp16 0x3C00), id = 1; qs[j] = roundf(x[j]):
    // 127 -> 127 (7F), -63.5 -> -64 (C0, away from zero), 0.5 -> 1, -0.5 -> -1 (FF),
    // 2.5 -> 3 (not 2: roundf, not round-half-even), 1.4999999 -> 1, -126.5 -> -127 (81)
    std::vector<float> x(32, 0.0f);
    x[0] = 127, x[1] = -63.5f, x[2] = 0.5f, x[3] = -0.5f, x[4] = 2.5f, x[5] = 1.4999999f,
    x[31] = -126.5f;
    tensor t;
    encode(VQS_WQ_Q8_0, x, 1, 32, t);
    std::vector<uint8_t> want(34, 0);
    want[0] = 0x00, want[1] = 0x3C;
    want[2] = 0x7F, want[3] = 0xC0, want[4] = 0x01, want[5] = 0xFF, want[6] = 0x03, want[7] = 0x01;
    want[33] = 0x81;
    CHECK(bytes(t.t, "blocks") == want);
    std::vector<float> y = decode(t.t);
    CHECK(y[1] == -64.0f);
    CHECK(y[4] == 3.0f);
    CHECK(y[31] == -127.0f);
}

TEST_CASE("q8_0: -amax gives -127 never -128, all-zero block, a short block", "[wq][gguf]")
{
    // row of 33: block 0 = {-1, 0 x 31}: d = 1/127 = 0.007874016f, fp16 0x2008
    // (0.007873535); id = 1/d; -1 * id = -127.00000x -> roundf -127 (0x81).
    // block 1 is short: {2} padded with 31 zeros: d = 2/127 (fp16 0x2408), 2 * id -> 127.
    std::vector<float> x(33 + 33, 0.0f);
    x[0] = -1.0f;
    x[32] = 2.0f;
    // row 1 is all zeros: d = 0 / 127 = +0 (0x0000), id = 0, codes 0
    tensor t;
    encode(VQS_WQ_Q8_0, x, 2, 33, t);
    std::vector<uint8_t> b = bytes(t.t, "blocks");
    REQUIRE(b.size() == 2 * 2 * 34);
    std::vector<uint8_t> row0(68, 0), row1(68, 0);
    row0[0] = 0x08, row0[1] = 0x20, row0[2] = 0x81;
    row0[34] = 0x08, row0[35] = 0x24, row0[36] = 0x7F;
    CHECK(std::vector<uint8_t>(b.begin(), b.begin() + 68) == row0);
    CHECK(std::vector<uint8_t>(b.begin() + 68, b.end()) == row1);
    std::vector<float> y = decode(t.t);
    CHECK(y[0] == -127.0f * vqs_f16_to_f32(0x2008));
    CHECK(y[32] == 127.0f * vqs_f16_to_f32(0x2408));
    for (size_t j = 33; j < 66; j++)
        CHECK(y[j] == 0.0f);
}

TEST_CASE("q4_0 hand-worked block: signed max, d = max / -8, saturation at 15", "[wq][gguf]")
{
    // the first element of largest |x| is +8 (x[0]; -8 at x[1] does not replace it: strict <)
    // -> max = 8, d = 8 / -8 = -1 (fp16 0xBC00), id = -1. xi = MIN(15, (int8_t)(x * id + 8.5)):
    //  x[0]  =  8    -> -8 + 8.5 = 0.5   -> 0
    //  x[1]  = -8    ->  8 + 8.5 = 16.5  -> 16 -> 15 (saturated)
    //  x[2]  =  0.5  -> -0.5 + 8.5 = 8   -> 8
    //  x[3]  = -0.5  ->  0.5 + 8.5 = 9   -> 9
    //  x[4]  =  3.25 -> -3.25 + 8.5 = 5.25 -> 5
    //  x[16] = -4    ->  4 + 8.5 = 12.5  -> 12
    //  x[17] =  7.9  -> -7.9 + 8.5 = 0.6 -> 0
    //  zeros         ->  8.5 -> 8
    // qs[j] = xi[j] | xi[j + 16] << 4
    std::vector<float> x(32, 0.0f);
    x[0] = 8, x[1] = -8, x[2] = 0.5f, x[3] = -0.5f, x[4] = 3.25f, x[16] = -4, x[17] = 7.9f;
    tensor t;
    encode(VQS_WQ_Q4_0, x, 1, 32, t);
    std::vector<uint8_t> want = {0x00, 0xBC, 0xC0, 0x0F, 0x88, 0x89, 0x85};
    want.resize(18, 0x88);
    CHECK(bytes(t.t, "blocks") == want);
    std::vector<float> y = decode(t.t);
    // dequantize_row_q4_0: (nibble - 8) * d
    CHECK(y[0] == 8.0f);
    CHECK(y[1] == -7.0f);
    CHECK(y[16] == -4.0f);
    CHECK(y[17] == 8.0f);
}

TEST_CASE("q4_0: all-zero block keeps llama.cpp's d = -0, short blocks padded with zeros",
          "[wq][gguf]")
{
    // all zero: amax stays 0 and max stays +0.0, d = 0.0 / -8 = -0.0 -> fp16 0x8000,
    // id = 0, every xi = (int8_t)(0 + 8.5) = 8 -> 0x88
    {
        tensor t;
        encode(VQS_WQ_Q4_0, std::vector<float>(32, 0.0f), 1, 32, t);
        std::vector<uint8_t> want = {0x00, 0x80};
        want.resize(18, 0x88);
        CHECK(bytes(t.t, "blocks") == want);
    }
    // a row of 5 (one short block): {1, -2, 0.5, 4, -1}: max = 4, d = -0.5 (0xB800), id = -2
    //  1 -> -2 + 8.5 = 6.5 -> 6;  -2 -> 4 + 8.5 -> 12;  0.5 -> 7.5 -> 7;  4 -> 0.5 -> 0;
    //  -1 -> 10.5 -> 10; the 27 padding zeros -> 8
    {
        std::vector<float> x = {1, -2, 0.5f, 4, -1};
        tensor t;
        encode(VQS_WQ_Q4_0, x, 1, 5, t);
        std::vector<uint8_t> want = {0x00, 0xB8, 0x86, 0x8C, 0x87, 0x80, 0x8A};
        want.resize(18, 0x88);
        CHECK(bytes(t.t, "blocks") == want);
        CHECK(decode(t.t) == x); // exact here, and the padding is dropped
    }
}

TEST_CASE("q4_1 hand-worked block: d = (max - min) / 15, m = min, ties round up", "[wq][gguf]")
{
    // min = -1, max = 14 -> d = 15 / 15 = 1 (0x3C00), m = -1 (0xBC00), id = 1;
    // xi = MIN(15, (int8_t)((x - min) * id + 0.5)):
    //  -1 -> 0.5 -> 0;  14 -> 15.5 -> 15;  0.5 -> 2.0 -> 2 (the tie 1.5 goes up);
    //  2.4 -> 3.4 + 0.5 = 3.9 -> 3;  6.5 (x[16]) -> 8;  zeros -> 1.5 -> 1
    std::vector<float> x(32, 0.0f);
    x[0] = -1, x[1] = 14, x[2] = 0.5f, x[3] = 2.4f, x[16] = 6.5f;
    tensor t;
    encode(VQS_WQ_Q4_1, x, 1, 32, t);
    std::vector<uint8_t> want = {0x00, 0x3C, 0x00, 0xBC, 0x80, 0x1F, 0x12, 0x13};
    want.resize(20, 0x11);
    CHECK(bytes(t.t, "blocks") == want);
    std::vector<float> y = decode(t.t);
    // dequantize_row_q4_1: nibble * d + m
    CHECK(y[2] == 1.0f);
    CHECK(y[3] == 2.0f);
    CHECK(y[16] == 7.0f);
}

TEST_CASE("q4_1: short block's min and max from its own elements, padding clamped", "[wq][gguf]")
{
    // {2, 5, 3.5}: min 2, max 5 (not 0: the padding does not count), d = 3 / 15 = 0.2f
    // (fp16 0x3266), m = 2 (0x4000), id = 1 / 0.2f = 5.0f;
    //  2 -> 0.5 -> 0;  5 -> 15.5 -> 15;  3.5 -> 7.5 + 0.5 = 8 -> 8;
    //  padding zeros: (0 - 2) * 5 + 0.5 = -9.5 -> clamped to 0
    std::vector<float> x = {2, 5, 3.5f};
    tensor t;
    encode(VQS_WQ_Q4_1, x, 1, 3, t);
    std::vector<uint8_t> want = {0x66, 0x32, 0x00, 0x40, 0x00, 0x0F, 0x08};
    want.resize(20, 0x00);
    CHECK(bytes(t.t, "blocks") == want);
    std::vector<float> y = decode(t.t);
    REQUIRE(y.size() == 3);
    CHECK(y[0] == 2.0f);
    CHECK(y[1] == 15 * vqs_f16_to_f32(0x3266) + 2.0f);
    // all-zero block: min = max = +0, d = 0, m = 0, codes (0 - 0) * 0 + 0.5 -> 0
    tensor z;
    encode(VQS_WQ_Q4_1, std::vector<float>(32, 0.0f), 1, 32, z);
    CHECK(bytes(z.t, "blocks") == std::vector<uint8_t>(20, 0));
}

TEST_CASE("q4_1: the sign of a zero min or max is the first one's, at every SIMD level",
          "[wq][gguf]")
{
    // llama.cpp updates min and max only on strict < / >, so with -0 and +0 present the first
    // one in the block wins: min = -0.0 -> fp16 0x8000; then max - min with max = -0 ...
    std::vector<float> x(32, 0.0f);
    x[0] = -0.0f;                  // min: -0.0 first, max: -0.0 first
    for (size_t j = 1; j < 32; j++) // everything else +0 or negative
        x[j] = j % 3 ? 0.0f : -1.0f * (float)j;
    // min = -30 (x[30]), max = -0.0 (x[0]) -> d = (-0 - -30) / 15 = 2
    tensor t;
    encode(VQS_WQ_Q4_1, x, 1, 32, t);
    std::vector<uint8_t> b = bytes(t.t, "blocks");
    CHECK(b[0] == 0x00);
    CHECK(b[1] == 0x40); // d = 2
    CHECK(b[3] == 0xCF); // m = -30: fp16 0xCF80
    // all zeros, the first -0: min = max = -0.0 -> d = (-0 - -0) / 15 = +0, m = -0 (0x8000)
    std::vector<float> z(32, 0.0f);
    z[0] = -0.0f;
    for (vqs_simd lv : levels()) {
        INFO("level " << vqs_simd_name(lv));
        std::vector<uint8_t> o(20);
        wq_gguf_kernels_for(lv)->q4_1(z.data(), 32, o.data());
        CHECK(o[0] == 0x00);
        CHECK(o[1] == 0x00);
        CHECK(o[2] == 0x00);
        CHECK(o[3] == 0x80);
        // Q4_0 all zero with a -0: amax stays 0, max +0 -> d = -0 (0x8000)
        std::vector<uint8_t> o4(18);
        wq_gguf_kernels_for(lv)->q4_0(z.data(), 32, o4.data());
        CHECK(o4[1] == 0x80);
    }
}

namespace {

// rows of awkward lengths: random, with exact ties for each format, with equal |max| of both
// signs, zeros and -0, tiny and huge-but-fitting magnitudes
std::vector<float> awkward_row(size_t n, int kind, std::mt19937 &rng)
{
    std::vector<float> x(n);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::uniform_int_distribution<int> u(-254, 254);
    for (size_t j = 0; j < n; j++) {
        switch (kind) {
        case 0: x[j] = g(rng); break;
        case 1: x[j] = 0.5f * (float)u(rng); break;               // q8_0 ties: amax 127 -> d = 1
        case 2: x[j] = 0.25f * (float)(u(rng) % 33); break;         // q4 grid: 8.5 / 0.5 exact
        case 3: x[j] = (j & 1 ? -1.0f : 1.0f) * (j % 7 == 0 ? 3.0f : 0.75f); break; // +-max ties
        case 4: x[j] = j % 5 ? 0.0f : -0.0f; break;
        case 5: x[j] = g(rng) * 1e-30f; break;
        case 6: x[j] = g(rng) * 1e4f; break;
        default: x[j] = (float)(j % 16) - 8.0f; break;
        }
    }
    if (kind == 1 && n)
        x[0] = 127.0f;
    return x;
}

} // namespace

TEST_CASE("gguf row encoders: every SIMD level writes the reference's bytes", "[wq][gguf][simd]")
{
    std::mt19937 rng(16);
    const wq_gguf_kernels *ref = wq_gguf_kernels_for(VQS_SIMD_SCALAR);
    for (vqs_simd lv : levels()) {
        const wq_gguf_kernels *k = wq_gguf_kernels_for(lv);
        REQUIRE(k->level == lv);
        for (size_t n : {1, 3, 16, 31, 32, 33, 63, 64, 65, 100, 172, 4096}) {
            for (int kind = 0; kind < 8; kind++) {
                INFO("level " << vqs_simd_name(lv) << " n " << n << " kind " << kind);
                std::vector<float> x = awkward_row(n, kind, rng);
                size_t nb = (n + 31) / 32;
                std::vector<uint8_t> a(nb * 34, 0xAA), b(nb * 34, 0x55);
                ref->q8_0(x.data(), n, a.data());
                k->q8_0(x.data(), n, b.data());
                CHECK(a == b);
                a.assign(nb * 18, 0xAA), b.assign(nb * 18, 0x55);
                ref->q4_0(x.data(), n, a.data());
                k->q4_0(x.data(), n, b.data());
                CHECK(a == b);
                a.assign(nb * 20, 0xAA), b.assign(nb * 20, 0x55);
                ref->q4_1(x.data(), n, a.data());
                k->q4_1(x.data(), n, b.data());
                CHECK(a == b);
                // int8: a scale that puts x / s on ties (kind 1: s = 1 -> k + 0.5) and past 127
                for (float s : {1.0f, 0.5f, 0.0037f, 3.0f}) {
                    std::vector<int8_t> qa(n, 99), qb(n, -99);
                    ref->int8_row(x.data(), n, s, qa.data());
                    k->int8_row(x.data(), n, s, qb.data());
                    CHECK(qa == qb);
                    for (int8_t q : qa)
                        CHECK(q != -128);
                }
                // nf4 codes: inv 1 / amax puts the levels and pivots of kind 7 on the spot
                for (float inv : {1.0f, 0.125f, 1.0f / 3.0f, 7.5f}) {
                    std::vector<uint8_t> ca(n, 99), cb(n, 77);
                    ref->nf4_codes(x.data(), n, inv, ca.data());
                    k->nf4_codes(x.data(), n, inv, cb.data());
                    CHECK(ca == cb);
                }
                // f16 / bf16 of the row, then of the row scaled into subnormal, tie and
                // overflow territory
                for (float sc : {1.0f, 0x1p-7f, 0x1p-20f, 0x1p-30f, 1e-36f, 4096.0f, 1e34f}) {
                    std::vector<float> xs(x);
                    for (float &v : xs)
                        v *= sc;
                    std::vector<uint16_t> ha(n, 1), hb(n, 2);
                    ref->to_f16(xs.data(), n, ha.data());
                    k->to_f16(xs.data(), n, hb.data());
                    CHECK(ha == hb);
                    ref->to_bf16(xs.data(), n, ha.data());
                    k->to_bf16(xs.data(), n, hb.data());
                    CHECK(ha == hb);
                    CHECK(ref->amax(xs.data(), n) == k->amax(xs.data(), n));
                    // fp8 with scales that land on subnormals, ties and saturation
                    for (float s : {1.0f, 0.25f, 1.0f / 448, 3.0f, 1e-3f, 0x1p-12f}) {
                        std::vector<uint8_t> fa(n, 1), fb(n, 2);
                        for (int e5 = 0; e5 < 2; e5++) {
                            ref->fp8_row(xs.data(), n, s * sc, e5, fa.data());
                            k->fp8_row(xs.data(), n, s * sc, e5, fb.data());
                            CHECK(fa == fb);
                        }
                    }
                }
            }
        }
    }
}

TEST_CASE("fp8 / f16 row kernels: every code, every midpoint and its neighbours, every level",
          "[wq][gguf][simd]")
{
    // all finite codes' values, the midpoints between neighbours (exact in float) and one float
    // either side, both signs: ties to even, subnormals, the saturation edge
    std::vector<float> x;
    auto around = [&x](float lo, float hi) {
        float mid = lo + (hi - lo) / 2;
        for (float v : {lo, mid, std::nextafter(mid, -1e30f), std::nextafter(mid, 1e30f)}) {
            x.push_back(v);
            x.push_back(-v);
        }
    };
    for (int c = 0; c < 0x7E; c++)
        around(vqs_e4m3_to_f32((uint8_t)c), vqs_e4m3_to_f32((uint8_t)(c + 1)));
    for (int c = 0; c < 0x7B; c++)
        around(vqs_e5m2_to_f32((uint8_t)c), vqs_e5m2_to_f32((uint8_t)(c + 1)));
    for (int c = 0; c < 0x7BFF; c += 7)
        around(vqs_f16_to_f32((uint16_t)c), vqs_f16_to_f32((uint16_t)(c + 1)));
    for (float v : {448.0f, 464.0f, 480.0f, 1e6f, 57344.0f, 61440.0f, 65504.0f, 65520.0f, 3e38f})
        x.push_back(v), x.push_back(-v);
    size_t n = x.size();
    const wq_gguf_kernels *ref = wq_gguf_kernels_for(VQS_SIMD_SCALAR);
    for (vqs_simd lv : levels()) {
        INFO("level " << vqs_simd_name(lv));
        const wq_gguf_kernels *k = wq_gguf_kernels_for(lv);
        for (int e5 = 0; e5 < 2; e5++) {
            std::vector<uint8_t> a(n), b(n);
            ref->fp8_row(x.data(), n, 1.0f, e5, a.data());
            k->fp8_row(x.data(), n, 1.0f, e5, b.data());
            for (size_t i = 0; i < n; i++) {
                INFO("e5m2 " << e5 << " x " << x[i]);
                REQUIRE(a[i] == b[i]);
            }
        }
        std::vector<uint16_t> ha(n), hb(n);
        ref->to_f16(x.data(), n, ha.data());
        k->to_f16(x.data(), n, hb.data());
        CHECK(ha == hb);
        ref->to_bf16(x.data(), n, ha.data());
        k->to_bf16(x.data(), n, hb.data());
        CHECK(ha == hb);
    }
}

TEST_CASE("gguf scalar helpers: roundf and round-half-even without libm", "[wq][gguf]")
{
    for (float v : {0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 0.49999997f, -0.49999997f, 126.5f, -126.5f,
                    8388607.5f, 1e9f, -1e9f, 3.4999998f}) {
        INFO("v " << v);
        CHECK(wq_round_away(v) == (int)std::roundf(v));
        CHECK(wq_round_even(v) == (int)std::nearbyintf(v));
    }
}

TEST_CASE("gguf encode is the same whatever the thread count, decode checks scales", "[wq][gguf]")
{
    std::mt19937 rng(7);
    std::normal_distribution<float> g(0.0f, 0.02f);
    size_t rows = 37, cols = 100;
    std::vector<float> w(rows * cols);
    for (float &v : w)
        v = g(rng);
    for (vqs_wq_kind k : {VQS_WQ_Q8_0, VQS_WQ_Q4_0, VQS_WQ_Q4_1, VQS_WQ_NF4}) {
        tensor a, b;
        encode(k, w, rows, cols, a, 1);
        encode(k, w, rows, cols, b, 4);
        REQUIRE(a.t.nparts == b.t.nparts);
        for (int i = 0; i < a.t.nparts; i++)
            CHECK(bytes(a.t, a.t.part[i].name) == bytes(b.t, b.t.part[i].name));
    }
    // an Inf fp16 scale in a file is corrupt data, not a weight
    tensor t;
    encode(VQS_WQ_Q8_0, w, rows, cols, t);
    uint8_t *blk = static_cast<uint8_t *>(t.t.part[0].data);
    blk[34 * 2 + 0] = 0x00, blk[34 * 2 + 1] = 0x7C; // row 0, block 2
    std::vector<float> y(rows * cols);
    REQUIRE_ERR(vqs_wq_decode(&t.t, y.data(), nullptr), VQS_ECORRUPT);
    CHECK(std::string(vqs_errdetail()).find("block 2") != std::string::npos);
}

TEST_CASE("gguf: a scale that fp16 cannot hold is refused with its row and block", "[wq][gguf]")
{
    std::vector<float> w(2 * 64, 1.0f);
    w[64 + 40] = 1e7f; // row 1, block 1: d = 1e7 / 127 = 78740 > 65504
    vqs_wq_spec s{};
    s.kind = VQS_WQ_Q8_0;
    tensor t;
    REQUIRE_ERR(vqs_wq_encode(&s, w.data(), 2, 64, nullptr, &t.t), VQS_ERANGE);
    std::string d = vqs_errdetail();
    CHECK(d.find("row 1, block 1") != std::string::npos);
    // Q4_0: d = max / -8 = -952500 does not fit fp16 either
    std::vector<float> w2(32, 0.0f);
    w2[0] = 60000.0f * 127.0f;
    s.kind = VQS_WQ_Q4_0;
    tensor t2;
    REQUIRE_ERR(vqs_wq_encode(&s, w2.data(), 1, 32, nullptr, &t2.t), VQS_ERANGE);
}

TEST_CASE("gguf / nf4 decode: a missing, mistyped or mis-shaped part is VQS_ESHAPE", "[wq][gguf]")
{
    std::vector<float> w(3 * 70, 0.25f);
    std::vector<float> y(3 * 70);
    for (vqs_wq_kind k : {VQS_WQ_Q8_0, VQS_WQ_Q4_0, VQS_WQ_Q4_1, VQS_WQ_NF4}) {
        tensor t;
        encode(k, w, 3, 70, t);
        INFO("kind " << k);
        // mis-shaped: one row fewer, same name and type
        for (int i = 0; i < t.t.nparts; i++) {
            vqs_wq_tensor bad{};
            bad.spec = t.t.spec, bad.rows = 3, bad.cols = 70;
            for (int j = 0; j < t.t.nparts; j++) {
                const vqs_wq_part &p = t.t.part[j];
                uint64_t sh[2] = {p.shape[0] - (i == j), p.shape[1]};
                size_t nb = (size_t)(sh[0] * sh[1]) * vqs_wq_type_size(p.type);
                REQUIRE_OK(vqs_wq_part_borrow(&bad, p.name, p.type, p.ndim, sh, p.data, nb));
            }
            REQUIRE_ERR(vqs_wq_decode(&bad, y.data(), nullptr), VQS_ESHAPE);
            vqs_wq_tensor_free(&bad);
            // missing
            vqs_wq_tensor miss{};
            miss.spec = t.t.spec, miss.rows = 3, miss.cols = 70;
            for (int j = 0; j < t.t.nparts; j++)
                if (j != i) {
                    const vqs_wq_part &p = t.t.part[j];
                    REQUIRE_OK(vqs_wq_part_borrow(&miss, p.name, p.type, p.ndim, p.shape, p.data,
                                                  p.nbytes));
                }
            REQUIRE_ERR(vqs_wq_decode(&miss, y.data(), nullptr), VQS_ESHAPE);
            CHECK(std::string(vqs_errdetail()).find(t.t.part[i].name) != std::string::npos);
            vqs_wq_tensor_free(&miss);
            // wrong type (u8 <-> i8, f32 -> i32 keep the byte size)
            vqs_wq_tensor typ{};
            typ.spec = t.t.spec, typ.rows = 3, typ.cols = 70;
            for (int j = 0; j < t.t.nparts; j++) {
                const vqs_wq_part &p = t.t.part[j];
                vqs_wq_type ty = p.type;
                if (i == j)
                    ty = p.type == VQS_WQT_U8 ? VQS_WQT_I8 : VQS_WQT_I32;
                REQUIRE_OK(vqs_wq_part_borrow(&typ, p.name, ty, p.ndim, p.shape, p.data, p.nbytes));
            }
            REQUIRE_ERR(vqs_wq_decode(&typ, y.data(), nullptr), VQS_ESHAPE);
            vqs_wq_tensor_free(&typ);
        }
    }
}

TEST_CASE("q8_0 / q4_0 / q4_1: random round trips within half a step", "[wq][gguf]")
{
    std::mt19937 rng(11);
    std::normal_distribution<float> g(0.0f, 1.0f);
    for (size_t cols : {1, 31, 33, 100, 172, 4096}) {
        size_t rows = 5;
        std::vector<float> w(rows * cols);
        for (float &v : w)
            v = g(rng) * 0.05f;
        for (vqs_wq_kind k : {VQS_WQ_Q8_0, VQS_WQ_Q4_0, VQS_WQ_Q4_1}) {
            tensor t;
            encode(k, w, rows, cols, t, 2);
            std::vector<float> y = decode(t.t);
            const uint8_t *blk = static_cast<const uint8_t *>(t.t.part[0].data);
            size_t bb = k == VQS_WQ_Q8_0 ? 34 : k == VQS_WQ_Q4_0 ? 18 : 20, nb = (cols + 31) / 32;
            for (size_t r = 0; r < rows; r++)
                for (size_t j = 0; j < cols; j++) {
                    const uint8_t *o = blk + (r * nb + j / 32) * bb;
                    float d = std::fabs(vqs_f16_to_f32((uint16_t)(o[0] | o[1] << 8)));
                    float x = w[r * cols + j], e = std::fabs(y[r * cols + j] - x);
                    // the fp16 d differs from the float d by <= 2^-11 relative, times the
                    // largest code (127, 8, 15); a Q4_0 element of the sign opposite to max
                    // may sit at +8 steps and clip to 7: a whole step
                    float slack = k == VQS_WQ_Q8_0 ? 127 : k == VQS_WQ_Q4_0 ? 8 : 16;
                    float step = k == VQS_WQ_Q4_0 ? 1.0f : 0.5f;
                    float mbound = 0; // Q4_1: and m's own fp16 rounding
                    if (k == VQS_WQ_Q4_1)
                        mbound = std::fabs(vqs_f16_to_f32((uint16_t)(o[2] | o[3] << 8))) * 0x1p-11f;
                    INFO("kind " << k << " cols " << cols << " r " << r << " j " << j);
                    CHECK(e <= d * (step + slack * 0x1p-11f) + mbound + 1e-7f);
                }
        }
    }
}

// ---- NF4 -----------------------------------------------------------------

TEST_CASE("nf4 levels are bitsandbytes' float constants, and its pivots their midpoints",
          "[wq][gguf][nf4]")
{
    // csrc/kernels.cu nf4_dequantization_lut, as float32 bit patterns
    const uint32_t want[16] = {0xbf800000, 0xbf3239b1, 0xbf066b30, 0xbeca32a0,
                               0xbe91a24d, 0xbe3d353f, 0xbdba7871, 0x00000000,
                               0x3da2faff, 0x3e24cae3, 0x3e7c04dd, 0x3ead033a,
                               0x3ee1a4b8, 0x3f1007ab, 0x3f3913b3, 0x3f800000};
    for (int i = 0; i < 16; i++)
        CHECK(bits(vqs_nf4_levels[i]) == want[i]);
    // dQuantizeNF4's pivots, the same float literals as in csrc/kernels.cu (nvcc and gcc both
    // round a decimal literal correctly). They are the levels' midpoints printed from double
    // arithmetic, so 4 of them (0, 8, 12, 14) sit one float above or below the float32 midpoint
    // (l[i] + l[i+1]) / 2 that bitsandbytes' torch backend computes: the two disagree there.
    const float pivots[15] = {
        -0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f,
        -0.23460740596055984f, -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f,
        0.1202552504837513f,  0.2035212516784668f,  0.2920137718319893f,  0.3893125355243683f,
        0.5016634166240692f,  0.6427869200706482f,  0.8614784181118011f};
    const int ulps[15] = {1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, -1, 0, -1}; // bits(p) - bits(mid)
    std::vector<float> x;
    for (int i = 0; i < 15; i++) {
        float p = pivots[i];
        float mid = (vqs_nf4_levels[i] + vqs_nf4_levels[i + 1]) / 2.0f;
        CHECK((int64_t)bits(p) - (int64_t)bits(mid) == ulps[i]);
        CHECK(bits(wq_nf4_pivots[i]) == bits(p));
        x.push_back(p);
        x.push_back(std::nextafter(p, 2.0f));
    }
    x.push_back(1.0f); // absmax 1: y = x * (1 / 1) = x
    x.push_back(-1.0f);
    tensor t;
    encode(VQS_WQ_NF4, x, 1, x.size(), t);
    std::vector<uint8_t> c = bytes(t.t, "codes");
    REQUIRE(c.size() == 16);
    // pair i: (i << 4) | (i + 1): pivot i -> level i, just above -> level i + 1
    for (int i = 0; i < 15; i++)
        CHECK(c[i] == (uint8_t)(i << 4 | (i + 1)));
    CHECK(c[15] == 0xF0);
}

TEST_CASE("nf4 hand-worked: each level re-encodes to itself, high nibble first", "[wq][gguf][nf4]")
{
    std::vector<float> x(vqs_nf4_levels, vqs_nf4_levels + 16);
    for (float &v : x)
        v *= 0.5f; // absmax 0.5: y = v * (1 / 0.5) = the level, exactly
    tensor t;
    encode(VQS_WQ_NF4, x, 1, 16, t);
    CHECK(bytes(t.t, "codes") ==
          std::vector<uint8_t>({0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF}));
    std::vector<uint8_t> am = bytes(t.t, "absmax");
    REQUIRE(am.size() == 4);
    float a;
    std::memcpy(&a, am.data(), 4);
    CHECK(a == 0.5f);
    CHECK(decode(t.t) == x);
}

TEST_CASE("nf4: all-zero block, short block, odd row padded with the zero code", "[wq][gguf][nf4]")
{
    // 2 rows of 67 = one block of 64 and a short one of 3; row 0's first block all zero:
    // absmax 0, codes 7 (0x77); its short block {0.3, -0.6, 0.1}: absmax 0.6, y = x * (1/0.6f)
    //  0.3 * 1.6666666 = 0.5 -> between pivots 0.3893 and 0.5017 -> 12
    // -0.6 -> -1 -> 0;  0.1 -> 0.16666667 -> between 0.1203 and 0.2035 -> 9
    // bytes of the row (34): 32 x 0x77, then (12 << 4 | 0) = 0xC0, (9 << 4 | pad 7) = 0x97
    std::vector<float> w(2 * 67, 0.0f);
    w[64] = 0.3f, w[65] = -0.6f, w[66] = 0.1f;
    for (size_t j = 0; j < 67; j++)
        w[67 + j] = (float)j / 66.0f; // row 1: a ramp
    tensor t;
    encode(VQS_WQ_NF4, w, 2, 67, t);
    std::vector<uint8_t> c = bytes(t.t, "codes");
    REQUIRE(c.size() == 2 * 34);
    for (size_t j = 0; j < 32; j++)
        CHECK(c[j] == 0x77);
    CHECK(c[32] == 0xC0);
    CHECK(c[33] == 0x97);
    CHECK((c[67] & 0x0f) == 7); // row 1's padding nibble
    const vqs_wq_part *am = vqs_wq_part_get(&t.t, "absmax");
    REQUIRE(am->shape[0] == 2);
    REQUIRE(am->shape[1] == 2);
    const float *a = static_cast<const float *>(am->data);
    CHECK(a[0] == 0.0f);
    CHECK(a[1] == 0.6f);
    CHECK(a[3] == 1.0f);
    std::vector<float> y = decode(t.t);
    for (size_t j = 0; j < 64; j++)
        CHECK(bits(y[j]) == 0u); // +0, not -0
    CHECK(y[64] == vqs_nf4_levels[12] * 0.6f);
    CHECK(y[65] == -0.6f);
}

TEST_CASE("nf4: random round trips land on the nearest level", "[wq][gguf][nf4]")
{
    std::mt19937 rng(3);
    std::normal_distribution<float> g(0.0f, 1.0f);
    size_t rows = 4, cols = 4096 + 33;
    std::vector<float> w(rows * cols);
    for (float &v : w)
        v = g(rng);
    tensor t;
    encode(VQS_WQ_NF4, w, rows, cols, t, 2);
    std::vector<float> y = decode(t.t);
    const float *am = static_cast<const float *>(vqs_wq_part_get(&t.t, "absmax")->data);
    size_t nb = (cols + 63) / 64;
    // a y within one float of a pivot may take either neighbour (the pivots are decimal
    // midpoints); 1e-6 covers that
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < cols; j++) {
            float a = am[r * nb + j / 64], x = w[r * cols + j] / a, v = y[r * cols + j] / a;
            float best = 2;
            for (float l : vqs_nf4_levels)
                best = std::min(best, std::fabs(l - x));
            INFO("r " << r << " j " << j);
            CHECK(std::fabs(v - x) <= best + 1e-6f);
        }
    // the NaN-free path for a subnormal absmax: codes of 0 stay the zero level
    std::vector<float> tiny(64, 0.0f);
    tiny[5] = 1e-40f;
    tensor s;
    encode(VQS_WQ_NF4, tiny, 1, 64, s);
    std::vector<uint8_t> c = bytes(s.t, "codes");
    CHECK(c[0] == 0x77);
    CHECK(c[2] == 0x7F);
    (void)from_bits;
}

TEST_CASE("nf4 decode: a negative or NaN absmax is corrupt", "[wq][gguf][nf4]")
{
    tensor t;
    encode(VQS_WQ_NF4, std::vector<float>(130, 1.0f), 1, 130, t);
    float *a = static_cast<float *>(const_cast<vqs_wq_part *>(vqs_wq_part_get(&t.t, "absmax"))->data);
    a[2] = -1.0f;
    std::vector<float> y(130);
    REQUIRE_ERR(vqs_wq_decode(&t.t, y.data(), nullptr), VQS_ECORRUPT);
    a[2] = std::nanf("");
    REQUIRE_ERR(vqs_wq_decode(&t.t, y.data(), nullptr), VQS_ECORRUPT);
}
