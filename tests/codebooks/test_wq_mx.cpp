// OCP Microscaling (MX v1.0) formats, NVFP4 and their element codecs
// (codebooks/wq_mx.c, codebooks/kernels/wq_mx_*.c).
//
// Element types are checked over every code against the spec's value tables
// written out here by hand; rounding at every midpoint (ties to even) and
// just beside it; saturation. Blocks are hand-worked from the spec's
// algorithm, with the arithmetic in comments and the expected bytes written
// literally. The SIMD encoders are compared byte for byte with the scalar
// reference on awkward row lengths and hostile data (ties, subnormals,
// zeros, huge values). The Gaussian SQNR-versus-theory check for every
// format lives with the other formats' (not here).
#include "vqs_test.hpp"

#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/wq_mx_kernels.h"
#include "vqs_float.h"
#include "vqs_wq.h"

using namespace vqs_test;

namespace {

// ---- element tables (OCP MX v1.0 §5.3), positive half, by code ----------

// E2M1: bias 1, 1 mantissa bit. E=0: m * 0.5; else 2^(E-1) * (1 + m/2).
const float kE2M1[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
// E2M3: bias 1. E=0: m * 2^-3.
const float kE2M3[32] = {0,    0.125f, 0.25f, 0.375f, 0.5f, 0.625f, 0.75f, 0.875f,
                         1,    1.125f, 1.25f, 1.375f, 1.5f, 1.625f, 1.75f, 1.875f,
                         2,    2.25f,  2.5f,  2.75f,  3,    3.25f,  3.5f,  3.75f,
                         4,    4.5f,   5,     5.5f,   6,    6.5f,   7,     7.5f};
// E3M2: bias 3. E=0: m * 2^-4.
const float kE3M2[32] = {0,    0.0625f, 0.125f, 0.1875f, 0.25f, 0.3125f, 0.375f, 0.4375f,
                         0.5f, 0.625f,  0.75f,  0.875f,  1,     1.25f,   1.5f,   1.75f,
                         2,    2.5f,    3,      3.5f,    4,     5,       6,      7,
                         8,    10,      12,     14,      16,    20,      24,     28};

struct ElemCase {
    const char *name;
    const float *table; // positive codes 0 .. n-1
    int n;              // positive codes
    int signbit;
    uint8_t (*enc)(float);
    float (*dec)(uint8_t);
};

const ElemCase kElems[] = {
    {"E2M1", kE2M1, 8, 3, vqs_f32_to_e2m1, vqs_e2m1_to_f32},
    {"E2M3", kE2M3, 32, 5, vqs_f32_to_e2m3, vqs_e2m3_to_f32},
    {"E3M2", kE3M2, 32, 5, vqs_f32_to_e3m2, vqs_e3m2_to_f32},
};

std::vector<uint8_t> part_bytes(const vqs_wq_tensor &t, const char *name)
{
    const vqs_wq_part *p = vqs_wq_part_get(&t, name);
    REQUIRE(p);
    const uint8_t *d = static_cast<const uint8_t *>(p->data);
    return std::vector<uint8_t>(d, d + p->nbytes);
}

struct Tensor {
    vqs_wq_tensor t;
    Tensor() { std::memset(&t, 0, sizeof t); }
    ~Tensor() { vqs_wq_tensor_free(&t); }
    Tensor(const Tensor &) = delete;
    Tensor &operator=(const Tensor &) = delete;
};

void encode(vqs_wq_kind kind, const std::vector<float> &w, size_t rows, size_t cols, Tensor &out,
            int nthreads = 1)
{
    vqs_wq_spec s = {};
    s.kind = kind;
    vqs_wq_opts o = {};
    o.nthreads = nthreads;
    REQUIRE(w.size() == rows * cols);
    REQUIRE_OK(vqs_wq_encode(&s, w.data(), rows, cols, &o, &out.t));
}

std::vector<float> decode(const Tensor &t)
{
    std::vector<float> w(t.t.rows * t.t.cols, -12345.0f);
    vqs_wq_opts o = {};
    o.nthreads = 2;
    REQUIRE_OK(vqs_wq_decode(&t.t, w.data(), &o));
    return w;
}

bool same_float(float a, float b)
{
    return std::isnan(a) ? std::isnan(b) : (a == b && std::signbit(a) == std::signbit(b));
}

const vqs_simd kLevels[] = {VQS_SIMD_SCALAR, VQS_SIMD_AVX2, VQS_SIMD_AVX512};

} // namespace

// ---- element codecs ---------------------------------------------------------

TEST_CASE("wq mx: every E2M1 E2M3 E3M2 code decodes to the spec table and re-encodes to itself",
          "[wq][mx]")
{
    for (const ElemCase &e : kElems) {
        INFO(e.name);
        for (int c = 0; c < 2 * e.n; c++) {
            INFO("code " << c);
            float want = c < e.n ? e.table[c] : -e.table[c - e.n];
            float got = e.dec((uint8_t)c);
            REQUIRE(same_float(got, want)); // includes -0 for the negative zero code
            REQUIRE(e.enc(got) == c);
            // bits above the code are ignored by decode
            REQUIRE(same_float(e.dec((uint8_t)(c | (0xff << (e.signbit + 1)))), want));
        }
    }
    // decode tables by hand for the two ends, -0 and the sign
    REQUIRE(vqs_e2m1_to_f32(0x7) == 6.0f);
    REQUIRE(vqs_e2m1_to_f32(0xf) == -6.0f);
    REQUIRE(vqs_e2m1_to_f32(0x1) == 0.5f);
    REQUIRE(vqs_e2m3_to_f32(0x1f) == 7.5f);
    REQUIRE(vqs_e2m3_to_f32(0x01) == 0.125f);
    REQUIRE(vqs_e3m2_to_f32(0x1f) == 28.0f);
    REQUIRE(vqs_e3m2_to_f32(0x01) == 0.0625f);
    REQUIRE(vqs_e3m2_to_f32(0x3f) == -28.0f);
    REQUIRE(vqs_f32_to_e2m1(-0.0f) == 0x8);
    REQUIRE(vqs_f32_to_e2m3(-0.0f) == 0x20);
    REQUIRE(vqs_f32_to_e3m2(-0.0f) == 0x20);
}

TEST_CASE("wq mx: element rounding is to nearest with ties to even and saturates", "[wq][mx]")
{
    for (const ElemCase &e : kElems) {
        INFO(e.name);
        const int neg = 1 << e.signbit;
        for (int c = 0; c + 1 < e.n; c++) {
            float lo = e.table[c], hi = e.table[c + 1];
            float mid = (lo + hi) / 2; // exact: the tables have few bits
            INFO("between " << lo << " and " << hi);
            int even = (c % 2 == 0) ? c : c + 1;
            REQUIRE(e.enc(mid) == even);
            REQUIRE(e.enc(-mid) == (even | neg));
            REQUIRE(e.enc(std::nextafter(mid, 0.0f)) == c);
            REQUIRE(e.enc(std::nextafter(mid, 100.0f)) == c + 1);
            REQUIRE(e.enc(-std::nextafter(mid, 100.0f)) == ((c + 1) | neg));
        }
        const float mx = e.table[e.n - 1], step = mx - e.table[e.n - 2];
        const int top = e.n - 1;
        for (float v : {mx + step / 2, mx + step, 2 * mx, 1e30f, FLT_MAX, INFINITY}) {
            INFO("saturating " << v);
            REQUIRE(e.enc(v) == top);
            REQUIRE(e.enc(-v) == (top | neg));
        }
        // below half the smallest subnormal: zero of the input's sign
        float tiny = e.table[1] / 2;
        REQUIRE(e.enc(tiny) == 0); // a tie between 0 and the first code: even is 0
        REQUIRE(e.enc(-tiny) == neg);
        REQUIRE(e.enc(std::nextafter(tiny, 1.0f)) == 1);
        REQUIRE(e.enc(FLT_MIN) == 0);
        REQUIRE(e.enc(std::numeric_limits<float>::denorm_min()) == 0);
        REQUIRE(e.enc(-std::numeric_limits<float>::denorm_min()) == neg);
    }
    // a few by hand (E2M1): 0.25 -> 0 (tie, even 0); 0.75 -> 1.0 (tie 0.5 / 1.0, even code 2);
    // 2.5 -> 2 (code 4); 5 -> 4 (code 6, even); 7 -> 6 (saturates: 8 does not exist)
    REQUIRE(vqs_f32_to_e2m1(0.25f) == 0);
    REQUIRE(vqs_f32_to_e2m1(0.75f) == 2);
    REQUIRE(vqs_f32_to_e2m1(2.5f) == 4);
    REQUIRE(vqs_f32_to_e2m1(5.0f) == 6);
    REQUIRE(vqs_f32_to_e2m1(7.0f) == 7);
    REQUIRE(vqs_f32_to_e2m1(-3.5f) == 0xe); // tie 3 / 4: code 6 even -> -4
}

TEST_CASE("wq mx: E8M0 decodes 2^(v - 127) and 0xFF is NaN", "[wq][mx]")
{
    for (int v = 0; v < 255; v++) {
        INFO("v " << v);
        REQUIRE(vqs_e8m0_to_f32((uint8_t)v) == std::ldexp(1.0f, v - 127));
    }
    REQUIRE(vqs_e8m0_to_f32(127) == 1.0f);
    REQUIRE(vqs_e8m0_to_f32(0) == 0x1p-127f);
    REQUIRE(vqs_e8m0_to_f32(254) == 0x1p127f);
    REQUIRE(std::isnan(vqs_e8m0_to_f32(255)));
}

TEST_CASE("wq mx: element quantizer equals the fp8 conversions of x / X for every scale",
          "[wq][mx]")
{
    // wq_mx_quant(x, s) must be vqs_f32_to_e4m3 / e5m2(x * 2^-s, saturating), and
    // the fp4/fp6 codecs of x * 2^-s, whenever x * 2^-s is exact in float.
    std::mt19937 rng(7);
    std::uniform_int_distribution<uint32_t> bits(0, 0xffffffffu);
    for (int it = 0; it < 200000; it++) {
        uint32_t u = bits(rng);
        if (it & 1)
            u &= 0xfff00000u; // 3 mantissa bits: many exact ties for the narrow types
        if ((u & 0x7f800000u) == 0x7f800000u || (u & 0x7f800000u) == 0)
            continue;
        float x = vqs_bits_f32(u);
        int s = (int)((u >> 23) & 0xff) - 127 - (int)(bits(rng) % 24) + 4;
        s = std::max(-127, std::min(127, s));
        float v = std::ldexp(x, -s);
        if (!std::isfinite(v) || std::fabs(v) < FLT_MIN)
            continue;
        // INT8: round(v * 64) to even, clamped to +-127, two's complement
        double r = std::nearbyint((double)v * 64); // default mode: ties to even
        r = std::max(-127.0, std::min(127.0, r));
        const uint32_t want[WQ_MX_NTYPES] = {vqs_f32_to_e4m3(v, 1), vqs_f32_to_e5m2(v, 1),
                                             vqs_f32_to_e2m3(v),    vqs_f32_to_e3m2(v),
                                             vqs_f32_to_e2m1(v),    (uint32_t)((int)r & 0xff)};
        for (int t = 0; t < WQ_MX_NTYPES; t++) {
            uint32_t got = wq_mx_quant(u, s, &wq_mx_elems[t]);
            if (got != want[t]) { // one assertion per failure, not per value: fast
                INFO("x " << x << " s " << s << " type " << t);
                REQUIRE(got == want[t]);
            }
        }
    }
}

// ---- hand-worked MX blocks ----------------------------------------------------

TEST_CASE("wq mx: MXFP4 block with amax 6", "[wq][mx]")
{
    // amax = 6: floor(log2 6) = 2, emax(E2M1) = 2 -> s = 0, X = 1, scale byte 127 = 0x7f.
    // 6 -> 6 (code 7); -3 -> code 8|5 = 0xd; 1.5 -> 3; 0.25 tie 0 / 0.5 -> 0;
    // 0.75 tie 0.5 / 1 -> 1 (code 2); 5 tie 4 / 6 -> 4 (code 6); 2.5 tie 2 / 3 -> 2 (code 4);
    // -0 -> 8. Bytes (even element low nibble): 0xd7, 0x03, 0x62, 0x84, then zeros.
    std::vector<float> w(32, 0.0f);
    const float head[] = {6, -3, 1.5f, 0.25f, 0.75f, 5, 2.5f, -0.0f};
    std::copy(head, head + 8, w.begin());
    Tensor t;
    encode(VQS_WQ_MXFP4, w, 1, 32, t);
    std::vector<uint8_t> codes(16, 0);
    codes[0] = 0xd7, codes[1] = 0x03, codes[2] = 0x62, codes[3] = 0x84;
    REQUIRE(part_bytes(t.t, "codes") == codes);
    REQUIRE(part_bytes(t.t, "scales") == std::vector<uint8_t>{0x7f});
    REQUIRE(vqs_wq_part_get(&t.t, "scales")->type == VQS_WQT_E8M0);
    REQUIRE(vqs_wq_bits_per_weight(&t.t) == 4.25);
    std::vector<float> d = decode(t);
    const float want[] = {6, -3, 1.5f, 0, 1, 4, 2, -0.0f};
    for (int i = 0; i < 8; i++)
        REQUIRE(same_float(d[i], want[i]));
}

TEST_CASE("wq mx: MXFP8 E4M3 block whose amax is a power of two, and saturation", "[wq][mx]")
{
    // amax = 1 = 2^0, emax(E4M3) = 8 -> s = -8, X = 2^-8, scale byte 119 = 0x77.
    // 1 * 256 = 2^8 -> E = 8 + 7 = 15, m = 0: 0x78; 0.5 -> 2^7: 0x70; -0.25 -> 2^6: 0x80|0x68;
    // 3/1024 * 256 = 0.75 = 1.5 * 2^-1 -> E = 6, m = 4: 0x34;
    // 2^-17 * 256 = 2^-9 = smallest subnormal: 0x01;
    // 3 * 2^-18 * 256 = 1.5 * 2^-9: tie 1 / 2 -> 0x02.
    std::vector<float> w(32, 0.0f);
    const float head[] = {1, 0.5f, -0.25f, 3.0f / 1024, 0x1p-17f, 0x3p-18f};
    std::copy(head, head + 6, w.begin());
    Tensor t;
    encode(VQS_WQ_MXFP8_E4M3, w, 1, 32, t);
    std::vector<uint8_t> codes(32, 0);
    const uint8_t want[] = {0x78, 0x70, 0xe8, 0x34, 0x01, 0x02};
    std::copy(want, want + 6, codes.begin());
    REQUIRE(part_bytes(t.t, "codes") == codes);
    REQUIRE(part_bytes(t.t, "scales") == std::vector<uint8_t>{0x77});

    // amax = 480 = 1.875 * 2^8 -> s = 0; 480 would be S.1111.111, E4M3's NaN: saturates to
    // 448 (0x7e); 464 (tie 448 / 480) -> even mantissa 6: 448 (0x7e); -480 -> 0xfe.
    std::vector<float> w2(32, 0.0f);
    w2[0] = 480, w2[1] = 464, w2[2] = -480;
    Tensor t2;
    encode(VQS_WQ_MXFP8_E4M3, w2, 1, 32, t2);
    std::vector<uint8_t> c2 = part_bytes(t2.t, "codes");
    REQUIRE(c2[0] == 0x7e);
    REQUIRE(c2[1] == 0x7e);
    REQUIRE(c2[2] == 0xfe);
    REQUIRE(part_bytes(t2.t, "scales") == std::vector<uint8_t>{0x7f});

    // E5M2: amax = 61440 = 1.875 * 2^15, emax 15 -> s = 0; 1.875 = 1 + 3.5/4: tie -> m = 4,
    // carrying to 2^16 = Inf's code 0x7c: saturates to 57344 (0x7b).
    Tensor t3;
    std::vector<float> w3(32, 0.0f);
    w3[0] = 61440, w3[1] = -1;
    encode(VQS_WQ_MXFP8_E5M2, w3, 1, 32, t3);
    std::vector<uint8_t> c3 = part_bytes(t3.t, "codes");
    REQUIRE(c3[0] == 0x7b);
    REQUIRE(c3[1] == 0xbc); // -1: E = 15, m = 0 -> 0x3c | 0x80
}

TEST_CASE("wq mx: MXINT8 block with ties and the symmetric clamp", "[wq][mx]")
{
    // amax = 255/128 = 1.9921875: floor(log2) = 0, emax(INT8) = 0 -> s = 0, byte 0x7f.
    // Elements round(x * 64): 127.5 -> tie -> 128 (even) -> clamped to 127 (0x7f);
    // -127.5 -> -127 (0x81, never -128); 1 -> 64 (0x40); 3/128 -> 1.5 -> 2; 5/128 -> 2.5 -> 2;
    // -1/128 -> -0.5 -> 0.
    std::vector<float> w(32, 0.0f);
    const float head[] = {255.0f / 128, -255.0f / 128, 1, 3.0f / 128, 5.0f / 128, -1.0f / 128};
    std::copy(head, head + 6, w.begin());
    Tensor t;
    encode(VQS_WQ_MXINT8, w, 1, 32, t);
    std::vector<uint8_t> codes(32, 0);
    const uint8_t want[] = {0x7f, 0x81, 0x40, 0x02, 0x02, 0x00};
    std::copy(want, want + 6, codes.begin());
    REQUIRE(part_bytes(t.t, "codes") == codes);
    REQUIRE(part_bytes(t.t, "scales") == std::vector<uint8_t>{0x7f});
    std::vector<float> d = decode(t);
    REQUIRE(d[0] == 127.0f / 64);
    REQUIRE(d[1] == -127.0f / 64);
    REQUIRE(d[3] == 2.0f / 64);
    // -128 is not written but decodes as -2 * X
    vqs_wq_part *p = const_cast<vqs_wq_part *>(vqs_wq_part_get(&t.t, "codes"));
    static_cast<uint8_t *>(p->data)[0] = 0x80;
    REQUIRE(decode(t)[0] == -2.0f);
}

TEST_CASE("wq mx: MXFP6 E3M2 block with subnormal elements", "[wq][mx]")
{
    // amax = 16: floor(log2 16) = 4, emax(E3M2) = 4 -> s = 0, byte 0x7f.
    // 16 -> E = 4 + 3 = 7, m = 0: 0b111000 = 28; subnormal step 2^-4:
    // 0.0625 -> 1; -0.0625 -> 32|1 = 33; 0.09375 (1.5 steps) tie -> 2;
    // 0.03125 (half step) tie -> 0; 0.21875 (3.5 steps) tie 3 / 4 -> 4 = 0.25, the smallest
    // normal; 0.1875 -> 3; 0.25 -> 4.
    // Groups (element j at bits 6j of a little-endian 24-bit word):
    //   28 | 1 << 6 | 33 << 12 | 2 << 18 = 0x0a105c -> 5c 10 0a
    //   0 | 4 << 6 | 3 << 12 | 4 << 18  = 0x103100 -> 00 31 10
    std::vector<float> w(32, 0.0f);
    const float head[] = {16, 0.0625f, -0.0625f, 0.09375f, 0.03125f, 0.21875f, 0.1875f, 0.25f};
    std::copy(head, head + 8, w.begin());
    Tensor t;
    encode(VQS_WQ_MXFP6_E3M2, w, 1, 32, t);
    std::vector<uint8_t> codes(24, 0);
    const uint8_t want[] = {0x5c, 0x10, 0x0a, 0x00, 0x31, 0x10};
    std::copy(want, want + 6, codes.begin());
    REQUIRE(part_bytes(t.t, "codes") == codes);
    REQUIRE(part_bytes(t.t, "scales") == std::vector<uint8_t>{0x7f});
    std::vector<float> d = decode(t);
    const float back[] = {16, 0.0625f, -0.0625f, 0.125f, 0, 0.25f, 0.1875f, 0.25f};
    for (int i = 0; i < 8; i++)
        REQUIRE(d[i] == back[i]);
}

TEST_CASE("wq mx: all-zero block keeps signed zeros and scale byte 0", "[wq][mx]")
{
    // log2(0) has no value: the block gets the smallest scale 2^-127 (byte 0x00); elements are
    // +0 (0x00) and -0 (0x80) and decode to the same zeros.
    std::vector<float> w(64, 0.0f);
    w[3] = -0.0f;
    w[32] = 1.0f; // a second block: amax 1, floor(log2) 0 - emax 15 -> s = -15, byte 0x70
    Tensor t;
    encode(VQS_WQ_MXFP8_E5M2, w, 1, 64, t);
    std::vector<uint8_t> codes = part_bytes(t.t, "codes");
    for (int i = 0; i < 32; i++)
        REQUIRE(codes[i] == (i == 3 ? 0x80 : 0x00));
    REQUIRE(codes[32] == 0x78); // 1 * 2^15: E = 15 + 15 = 30, m = 0
    REQUIRE(part_bytes(t.t, "scales") == (std::vector<uint8_t>{0x00, 0x70}));
    std::vector<float> d = decode(t);
    for (int i = 0; i < 32; i++)
        REQUIRE(same_float(d[i], w[i]));
    REQUIRE(d[32] == 1.0f);
}

TEST_CASE("wq mx: a short last block has its own scale and zero padding", "[wq][mx]")
{
    // MXFP4, 37 columns: block 0 all 1.0 -> floor(log2 1) = 0, s = 0 - 2 = -2 (byte 125 = 0x7d),
    // 1 * 4 = 4 -> code 6 -> bytes 0x66. Block 1 (5 elements) {0.5, -1, 0.75, 3, 2}: amax 3,
    // floor(log2 3) = 1, s = -1 (byte 0x7e); x * 2 = {1, -2, 1.5, 6, 4} -> codes {2, 0xc, 3, 7,
    // 6} -> bytes 0xc2, 0x73, 0x06 (the missing 38th element is a zero nibble).
    std::vector<float> w(37, 1.0f);
    const float tail[] = {0.5f, -1, 0.75f, 3, 2};
    std::copy(tail, tail + 5, w.begin() + 32);
    Tensor t;
    encode(VQS_WQ_MXFP4, w, 1, 37, t);
    std::vector<uint8_t> codes(16, 0x66);
    codes.push_back(0xc2), codes.push_back(0x73), codes.push_back(0x06);
    REQUIRE(part_bytes(t.t, "codes") == codes);
    REQUIRE(part_bytes(t.t, "scales") == (std::vector<uint8_t>{0x7d, 0x7e}));
    std::vector<float> d = decode(t);
    for (size_t i = 0; i < 37; i++)
        REQUIRE(d[i] == w[i]);

    // MXFP6 E2M3, one row of 5: amax 7.5 -> floor(log2) 2 - emax 2 -> s = 0.
    // 1 -> E=1: 0b001000 = 8; 2 -> 16; 3 -> E=2 m=4: 20; 4 -> 24; 7.5 -> 31.
    // Group 0: 8 | 16 << 6 | 20 << 12 | 24 << 18 = 0x614408 -> 08 44 61; group 1: 31 -> 1f 00 00.
    std::vector<float> w2 = {1, 2, 3, 4, 7.5f};
    Tensor t2;
    encode(VQS_WQ_MXFP6_E2M3, w2, 1, 5, t2);
    REQUIRE(part_bytes(t2.t, "codes") == (std::vector<uint8_t>{0x08, 0x44, 0x61, 0x1f, 0, 0}));
    REQUIRE(part_bytes(t2.t, "scales") == std::vector<uint8_t>{0x7f});
    REQUIRE(decode(t2) == w2);
}

TEST_CASE("wq mx: NVFP4 two-level scales, hand-worked", "[wq][mx]")
{
    // One row of 35: tensor amax 168 -> s_t = 168 / (6 * 448) = 2^-4 = 0.0625.
    // Block 0 {168, 84, -56, 14, 7, 0...}: s_b = e4m3(168 / (6 * 0.0625) = 448) = 0x7e,
    //   d = 448 * 0.0625 = 28; x / d = {6, 3, -2, 0.5, 0.25} -> codes {7, 5, 0xc, 1, 0 (tie)}
    //   -> bytes 0x57, 0x1c, 0x00, ...
    // Block 1 {0.75, 0.375, -0.125, 0.3125, 0...}: s_b = e4m3(0.75 / 0.375 = 2) = 0x40,
    //   d = 0.125; x / d = {6, 3, -1, 2.5} -> codes {7, 5, 0xa, 4 (tie 2 / 3 -> 2)}
    //   -> bytes 0x57, 0x4a.
    // Block 2 (3 elements) {0.1, 0, 0}: 0.1 / 0.375 = 0.2667 = 1.0667 * 2^-2 -> e4m3 E = 5,
    //   m = round(0.533) = 1 -> 0x29 = 0.28125; d = 0.017578125; 0.1 / d = 5.69 -> 6 (code 7)
    //   -> bytes 0x07, 0x00.
    std::vector<float> w(35, 0.0f);
    const float b0[] = {168, 84, -56, 14, 7};
    const float b1[] = {0.75f, 0.375f, -0.125f, 0.3125f};
    std::copy(b0, b0 + 5, w.begin());
    std::copy(b1, b1 + 4, w.begin() + 16);
    w[32] = 0.1f;
    Tensor t;
    encode(VQS_WQ_NVFP4, w, 1, 35, t);
    std::vector<uint8_t> codes(18, 0);
    codes[0] = 0x57, codes[1] = 0x1c, codes[8] = 0x57, codes[9] = 0x4a, codes[16] = 0x07;
    REQUIRE(part_bytes(t.t, "codes") == codes);
    REQUIRE(part_bytes(t.t, "scales") == (std::vector<uint8_t>{0x7e, 0x40, 0x29}));
    REQUIRE(vqs_wq_part_get(&t.t, "scales")->type == VQS_WQT_E4M3);
    const vqs_wq_part *ts = vqs_wq_part_get(&t.t, "tensor_scale");
    REQUIRE(ts);
    REQUIRE(ts->type == VQS_WQT_F32);
    REQUIRE(ts->ndim == 1);
    REQUIRE(ts->shape[0] == 1);
    float st;
    std::memcpy(&st, ts->data, 4);
    REQUIRE(st == 0.0625f);
    std::vector<float> d = decode(t);
    std::vector<float> want(35, 0.0f);
    const float d0[] = {168, 84, -56, 14, 0};
    const float d1[] = {0.75f, 0.375f, -0.125f, 0.25f};
    std::copy(d0, d0 + 5, want.begin());
    std::copy(d1, d1 + 4, want.begin() + 16);
    want[32] = 6 * 0.017578125f;
    REQUIRE(d == want);

    // an all-zero tensor: s_t = 0, every scale and code 0, decodes to zeros
    std::vector<float> z(40, 0.0f);
    Tensor tz;
    encode(VQS_WQ_NVFP4, z, 2, 20, tz);
    for (uint8_t b : part_bytes(tz.t, "codes"))
        REQUIRE(b == 0);
    for (uint8_t b : part_bytes(tz.t, "scales"))
        REQUIRE(b == 0);
    REQUIRE(decode(tz) == z);
}

// ---- decode of tensors from outside ------------------------------------------

TEST_CASE("wq mx: decode refuses missing or mis-shaped parts", "[wq][mx]")
{
    const size_t rows = 3, cols = 40; // MXFP4: 20 code bytes and 2 scales a row
    std::vector<uint8_t> codes(rows * 20, 0x11), scales(rows * 2, 127), small(rows * 19);
    std::vector<float> out(rows * cols);
    const uint64_t cshape[2] = {rows, 20}, sshape[2] = {rows, 2}, bad[2] = {rows, 19};

    auto fresh = [&](Tensor &t, vqs_wq_kind k) {
        t.t.spec.kind = k;
        t.t.rows = rows;
        t.t.cols = cols;
    };
    {
        Tensor t; // missing scales
        fresh(t, VQS_WQ_MXFP4);
        REQUIRE_OK(vqs_wq_part_borrow(&t.t, "codes", VQS_WQT_U8, 2, cshape, codes.data(),
                                      codes.size()));
        REQUIRE_ERR(vqs_wq_decode(&t.t, out.data(), nullptr), VQS_ESHAPE);
        REQUIRE(std::string(vqs_errdetail()).find("scales") != std::string::npos);
    }
    {
        Tensor t; // codes one byte short a row
        fresh(t, VQS_WQ_MXFP4);
        REQUIRE_OK(vqs_wq_part_borrow(&t.t, "codes", VQS_WQT_U8, 2, bad, small.data(),
                                      small.size()));
        REQUIRE_OK(vqs_wq_part_borrow(&t.t, "scales", VQS_WQT_E8M0, 2, sshape, scales.data(),
                                      scales.size()));
        REQUIRE_ERR(vqs_wq_decode(&t.t, out.data(), nullptr), VQS_ESHAPE);
        REQUIRE(std::string(vqs_errdetail()).find("codes") != std::string::npos);
    }
    {
        Tensor t; // scales of the wrong type
        fresh(t, VQS_WQ_MXFP4);
        REQUIRE_OK(vqs_wq_part_borrow(&t.t, "codes", VQS_WQT_U8, 2, cshape, codes.data(),
                                      codes.size()));
        REQUIRE_OK(vqs_wq_part_borrow(&t.t, "scales", VQS_WQT_U8, 2, sshape, scales.data(),
                                      scales.size()));
        REQUIRE_ERR(vqs_wq_decode(&t.t, out.data(), nullptr), VQS_ESHAPE);
    }
    {
        Tensor t; // the same parts read as MXFP8: codes need 40 bytes a row
        fresh(t, VQS_WQ_MXFP8_E4M3);
        REQUIRE_OK(vqs_wq_part_borrow(&t.t, "codes", VQS_WQT_U8, 2, cshape, codes.data(),
                                      codes.size()));
        REQUIRE_OK(vqs_wq_part_borrow(&t.t, "scales", VQS_WQT_E8M0, 2, sshape, scales.data(),
                                      scales.size()));
        REQUIRE_ERR(vqs_wq_decode(&t.t, out.data(), nullptr), VQS_ESHAPE);
    }
    {
        Tensor t; // NVFP4 without its tensor scale, then with one of the wrong shape
        fresh(t, VQS_WQ_NVFP4);
        std::vector<uint8_t> nsc(rows * 3, 0x38);
        const uint64_t nshape[2] = {rows, 3}, two[1] = {2};
        float ts[2] = {1, 1};
        REQUIRE_OK(vqs_wq_part_borrow(&t.t, "codes", VQS_WQT_U8, 2, cshape, codes.data(),
                                      codes.size()));
        REQUIRE_OK(vqs_wq_part_borrow(&t.t, "scales", VQS_WQT_E4M3, 2, nshape, nsc.data(),
                                      nsc.size()));
        REQUIRE_ERR(vqs_wq_decode(&t.t, out.data(), nullptr), VQS_ESHAPE);
        REQUIRE(std::string(vqs_errdetail()).find("tensor_scale") != std::string::npos);
        REQUIRE_OK(vqs_wq_part_borrow(&t.t, "tensor_scale", VQS_WQT_F32, 1, two, ts, sizeof ts));
        REQUIRE_ERR(vqs_wq_decode(&t.t, out.data(), nullptr), VQS_ESHAPE);
    }
    {
        Tensor t; // the right parts decode
        fresh(t, VQS_WQ_MXFP4);
        REQUIRE_OK(vqs_wq_part_borrow(&t.t, "codes", VQS_WQT_U8, 2, cshape, codes.data(),
                                      codes.size()));
        REQUIRE_OK(vqs_wq_part_borrow(&t.t, "scales", VQS_WQT_E8M0, 2, sshape, scales.data(),
                                      scales.size()));
        REQUIRE_OK(vqs_wq_decode(&t.t, out.data(), nullptr));
        for (float v : out)
            REQUIRE(v == 0.5f); // code 1 times 2^0
    }
}

TEST_CASE("wq mx: an E8M0 scale of 0xFF decodes its block as NaN", "[wq][mx]")
{
    for (vqs_wq_kind k : {VQS_WQ_MXFP8_E4M3, VQS_WQ_MXFP8_E5M2, VQS_WQ_MXFP6_E2M3,
                          VQS_WQ_MXFP6_E3M2, VQS_WQ_MXFP4, VQS_WQ_MXINT8}) {
        INFO("kind " << (int)k);
        std::vector<float> w(2 * 70);
        for (size_t i = 0; i < w.size(); i++)
            w[i] = (float)((int)(i % 13) - 6) * 0.25f;
        Tensor t;
        encode(k, w, 2, 70, t);
        vqs_wq_part *p = const_cast<vqs_wq_part *>(vqs_wq_part_get(&t.t, "scales"));
        static_cast<uint8_t *>(p->data)[1] = 0xff; // row 0, block 1: columns 32..63
        std::vector<float> d = decode(t);
        for (size_t j = 0; j < 70; j++) {
            INFO("column " << j);
            REQUIRE(std::isnan(d[j]) == (j >= 32 && j < 64));
            REQUIRE(!std::isnan(d[70 + j]));
        }
    }
}

// ---- round trips and the SIMD levels -------------------------------------------

namespace {

struct MxFormat {
    vqs_wq_kind kind;
    wq_mx_type type;
    int bias, mbits, emax;
    double maxval;
    bool isint;
};

const MxFormat kMx[] = {
    {VQS_WQ_MXFP8_E4M3, WQ_MX_E4M3, 7, 3, 8, 448, false},
    {VQS_WQ_MXFP8_E5M2, WQ_MX_E5M2, 15, 2, 15, 57344, false},
    {VQS_WQ_MXFP6_E2M3, WQ_MX_E2M3, 1, 3, 2, 7.5, false},
    {VQS_WQ_MXFP6_E3M2, WQ_MX_E3M2, 3, 2, 4, 28, false},
    {VQS_WQ_MXFP4, WQ_MX_E2M1, 1, 1, 2, 6, false},
    {VQS_WQ_MXINT8, WQ_MX_INT8, 0, 6, 0, 127.0 / 64, true},
};

// Half the spacing of the element grid at |v| (in element units).
double half_step(const MxFormat &f, double v)
{
    if (f.isint)
        return 0.5 / 64;
    int e = v > 0 ? std::ilogb(v) : -1000;
    e = std::max(e, 1 - f.bias);
    return std::ldexp(0.5, e - f.mbits);
}

std::vector<float> test_data(size_t rows, size_t cols, uint32_t seed)
{
    std::mt19937 rng(seed);
    std::normal_distribution<float> g(0, 1);
    std::vector<float> w(rows * cols);
    for (size_t r = 0; r < rows; r++) {
        float scale = std::ldexp(1.0f, (int)(r % 11) * 3 - 15); // rows of different magnitudes
        for (size_t j = 0; j < cols; j++)
            w[r * cols + j] = g(rng) * scale;
    }
    return w;
}

} // namespace

TEST_CASE("wq mx: decode(encode(x)) is within half a step of x", "[wq][mx]")
{
    for (const MxFormat &f : kMx)
        for (size_t cols : {1, 31, 33, 100, 172}) {
            INFO("kind " << (int)f.kind << " cols " << cols);
            const size_t rows = 23;
            std::vector<float> w = test_data(rows, cols, 11 + (uint32_t)cols);
            Tensor t;
            encode(f.kind, w, rows, cols, t, 2);
            std::vector<float> d = decode(t);
            std::vector<uint8_t> sc = part_bytes(t.t, "scales");
            for (size_t r = 0; r < rows; r++)
                for (size_t j0 = 0; j0 < cols; j0 += 32) {
                    size_t len = std::min<size_t>(32, cols - j0);
                    float amax = 0;
                    for (size_t i = 0; i < len; i++)
                        amax = std::max(amax, std::fabs(w[r * cols + j0 + i]));
                    int want_s = std::ilogb(amax) - f.emax; // floor(log2 amax) - emax
                    uint8_t byte = sc[r * ((cols + 31) / 32) + j0 / 32];
                    REQUIRE(byte == want_s + 127);
                    double X = std::ldexp(1.0, want_s);
                    for (size_t i = 0; i < len; i++) {
                        size_t k = r * cols + j0 + i;
                        double v = std::fabs((double)w[k]) / X;
                        double got = std::fabs((double)d[k]) / X;
                        INFO("row " << r << " col " << j0 + i << " x " << w[k] << " -> " << d[k]);
                        REQUIRE((d[k] == 0 || std::signbit(d[k]) == std::signbit(w[k])));
                        if (v > f.maxval)
                            REQUIRE(got == f.maxval); // saturated
                        else
                            REQUIRE(std::fabs(got - v) <= half_step(f, v));
                    }
                }
        }
}

TEST_CASE("wq mx: NVFP4 decode(encode(x)) is within half a step of x", "[wq][mx]")
{
    for (size_t cols : {1, 31, 33, 100, 172}) {
        INFO("cols " << cols);
        const size_t rows = 17;
        std::vector<float> w = test_data(rows, cols, 5 + (uint32_t)cols);
        Tensor t;
        encode(VQS_WQ_NVFP4, w, rows, cols, t, 2);
        std::vector<float> d = decode(t);
        std::vector<uint8_t> sc = part_bytes(t.t, "scales");
        float st;
        std::memcpy(&st, vqs_wq_part_get(&t.t, "tensor_scale")->data, 4);
        float amax = 0;
        for (float x : w)
            amax = std::max(amax, std::fabs(x));
        REQUIRE(st == amax / 2688.0f);
        const size_t nb = (cols + 15) / 16;
        for (size_t r = 0; r < rows; r++)
            for (size_t b = 0; b < nb; b++) {
                double dd = (double)(vqs_e4m3_to_f32(sc[r * nb + b]) * st);
                for (size_t j = b * 16; j < std::min(cols, b * 16 + 16); j++) {
                    size_t k = r * cols + j;
                    INFO("row " << r << " col " << j << " x " << w[k] << " -> " << d[k]);
                    if (dd == 0) {
                        REQUIRE(d[k] == 0);
                        continue;
                    }
                    double v = std::fabs((double)w[k]) / dd, got = std::fabs((double)d[k]) / dd;
                    double tol = 1e-6 * v + 1e-6;
                    if (v > 6 + tol)
                        REQUIRE(got == Approx(6).epsilon(1e-6));
                    else {
                        int e = std::max(v > 0 ? std::ilogb(v) : 0, 0);
                        REQUIRE(std::fabs(got - v) <= std::ldexp(0.25, e) + tol);
                    }
                }
            }
    }
}

TEST_CASE("wq mx: encode gives the same bytes with 1 and 2 threads", "[wq][mx]")
{
    std::vector<float> w = test_data(300, 100, 3);
    for (vqs_wq_kind k : {VQS_WQ_MXFP4, VQS_WQ_MXFP6_E3M2, VQS_WQ_NVFP4}) {
        Tensor a, b;
        encode(k, w, 300, 100, a, 1);
        encode(k, w, 300, 100, b, 2);
        REQUIRE(part_bytes(a.t, "codes") == part_bytes(b.t, "codes"));
        REQUIRE(part_bytes(a.t, "scales") == part_bytes(b.t, "scales"));
    }
}

TEST_CASE("wq mx: every SIMD level encodes MX and NVFP4 rows bit for bit as the reference",
          "[wq][mx]")
{
    // Hostile data: Gaussian rows at many magnitudes, exact ties of every element grid,
    // zeros and -0, fp32 subnormals, blocks whose scale clamps at 2^-127, values near
    // FLT_MAX and random bit patterns.
    std::mt19937 rng(99);
    std::uniform_int_distribution<uint32_t> bits(0, 0xffffffffu);
    std::normal_distribution<float> g(0, 1);
    auto row_of = [&](size_t n, int kind) {
        std::vector<float> x(n);
        for (size_t i = 0; i < n; i++) {
            float v;
            switch (kind) {
            case 0: v = g(rng); break;
            case 1: v = (float)((int)(bits(rng) % 129) - 64) / 16; break; // ties
            case 2: v = vqs_bits_f32(bits(rng) & 0x807fffffu); break;      // subnormals
            case 3: v = g(rng) * 0x1p-120f; break;                         // low scales
            case 4: v = g(rng) * 1e37f; break;
            case 5: v = i % 3 ? 0.0f : -0.0f; break;
            default: {
                uint32_t u = bits(rng);
                v = (u & 0x7f800000u) == 0x7f800000u ? 1.0f : vqs_bits_f32(u);
            }
            }
            x[i] = v;
        }
        return x;
    };
    const wq_mx_kernels *ref = wq_mx_kernels_for(VQS_SIMD_SCALAR);
    REQUIRE(ref->level == VQS_SIMD_SCALAR);
    for (vqs_simd L : kLevels) {
        if (L > vqs_simd_cpu())
            continue;
        const wq_mx_kernels *K = wq_mx_kernels_for(L);
        INFO("level " << vqs_simd_name(L) << " (table " << vqs_simd_name(K->level) << ")");
        for (int ti = 0; ti < WQ_MX_NTYPES; ti++) {
            const wq_mx_elem *e = &wq_mx_elems[ti];
            REQUIRE(e->type == ti);
            for (size_t n : {1, 5, 31, 32, 33, 63, 64, 65, 100, 172, 1000})
                for (int kind = 0; kind < 7; kind++) {
                    INFO("type " << ti << " n " << n << " data " << kind);
                    std::vector<float> x = row_of(n, kind);
                    if (kind == 6 && n > 40) // a block of tiny values amid others
                        for (size_t i = 32; i < 40; i++)
                            x[i] = vqs_bits_f32(bits(rng) & 0x80ffffffu);
                    size_t cb = wq_mx_row_bytes(e, n), nb = (n + 31) / 32;
                    std::vector<uint8_t> c0(cb, 0xaa), s0(nb, 0xaa), c1(cb, 0x55), s1(nb, 0x55);
                    ref->encode_row(e, x.data(), n, c0.data(), s0.data());
                    K->encode_row(e, x.data(), n, c1.data(), s1.data());
                    REQUIRE(c0 == c1);
                    REQUIRE(s0 == s1);
                }
        }
        // NVFP4 rows: the tensor scale of the row itself, one 2^20 times larger (blocks
        // whose E4M3 scale underflows to zero or is subnormal), and 0 (an all-zero tensor)
        for (size_t n : {1, 5, 15, 16, 17, 31, 33, 100, 172, 1000})
            for (int kind = 0; kind < 7; kind++) {
                std::vector<float> x = row_of(n, kind);
                float amax = 0;
                for (float v : x)
                    amax = std::max(amax, std::fabs(v));
                REQUIRE(K->amax_bits(x.data(), n) == vqs_f32_bits(amax));
                for (float st : {amax / 2688.0f, amax / 2688.0f * 0x1p20f, 0.0f}) {
                    if (!std::isfinite(st))
                        continue;
                    INFO("nvfp4 n " << n << " data " << kind << " st " << st);
                    size_t cb = (n + 1) / 2, nb = (n + 15) / 16;
                    std::vector<uint8_t> c0(cb, 0xaa), s0(nb, 0xaa), c1(cb, 0x55), s1(nb, 0x55);
                    ref->nv_encode_row(x.data(), n, st, c0.data(), s0.data());
                    K->nv_encode_row(x.data(), n, st, c1.data(), s1.data());
                    REQUIRE(c0 == c1);
                    REQUIRE(s0 == s1);
                }
            }
    }
}
