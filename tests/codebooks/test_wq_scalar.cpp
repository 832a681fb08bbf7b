// Element-wise weight formats (codebooks/wq_scalar.c): f16, bf16, fp8 E4M3 / E5M2 with a
// per-tensor or per-row scale, int8 per row, LLM.int8(). Hand-worked codes (ties to even,
// subnormals, saturation, -0), decode's part checks, random round trips within half a step.
#include "vqs_test.hpp"

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "vqs_wq.h"
#include "wq_test.hpp"

namespace {

using wq_test::decode;
using wq_test::encode;
using wq_test::part;
using wq_test::tensor;

const float P9 = 0x1p-9f, P10 = 0x1p-10f;

} // namespace

TEST_CASE("f16 / bf16: round to nearest even, subnormals, overflow refused", "[wq][scalar]")
{
    // f16: 1 -> 3C00, -2 -> C000, 65504 (max) -> 7BFF, 2^-14 (min normal) -> 0400,
    // 2^-24 (min subnormal) -> 0001, 2^-25 (a tie with 0) -> 0000, 3 * 2^-25 -> 0002 (tie, even),
    // 1 + 2^-11 (a tie between 3C00 and 3C01) -> 3C00, -0 -> 8000
    std::vector<float> x = {1, -2, 65504, 0x1p-14f, 0x1p-24f, 0x1p-25f, 3 * 0x1p-25f,
                            1 + 0x1p-11f, -0.0f};
    tensor t;
    encode(VQS_WQ_F16, x, 1, x.size(), t);
    CHECK(part<uint16_t>(t.t, "values") ==
          std::vector<uint16_t>({0x3C00, 0xC000, 0x7BFF, 0x0400, 0x0001, 0x0000, 0x0002, 0x3C00,
                                 0x8000}));
    std::vector<float> y = decode(t.t);
    CHECK(y[2] == 65504.0f);
    CHECK(y[4] == 0x1p-24f);
    // bf16: 1 + 2^-8 (tie) -> 3F80, 1 + 3 * 2^-8 (tie) -> 3F82, -0.5 -> BF00, 1e-40 -> 0001
    // (1e-40 = 71362 * 2^-149 -> 71362 / 65536 = 1.09 -> 1)
    std::vector<float> b = {1 + 0x1p-8f, 1 + 3 * 0x1p-8f, -0.5f, 1e-40f};
    tensor tb;
    encode(VQS_WQ_BF16, b, 2, 2, tb);
    CHECK(part<uint16_t>(tb.t, "values") == std::vector<uint16_t>({0x3F80, 0x3F82, 0xBF00, 0x0001}));
    // 65520 rounds to Inf in fp16: refused, naming the element
    std::vector<float> big = {1, 2, 3, 65520};
    vqs_wq_spec s{};
    s.kind = VQS_WQ_F16;
    tensor tf;
    REQUIRE_ERR(vqs_wq_encode(&s, big.data(), 2, 2, nullptr, &tf.t), VQS_ERANGE);
    CHECK(std::string(vqs_errdetail()).find("row 1, column 1") != std::string::npos);
    // bf16 holds it, but not the largest floats (they round up to 2^128)
    s.kind = VQS_WQ_BF16;
    tensor tb2;
    REQUIRE_OK(vqs_wq_encode(&s, big.data(), 2, 2, nullptr, &tb2.t));
    std::vector<float> huge = {3.4028234e38f};
    tensor tb3;
    REQUIRE_ERR(vqs_wq_encode(&s, huge.data(), 1, 1, nullptr, &tb3.t), VQS_ERANGE);
}

TEST_CASE("fp8_e4m3 per tensor: scale amax / 448, ties to even, subnormals, -0", "[wq][scalar]")
{
    // amax 448 -> scale 1; codes E4M3FN: 448 -> 0 1111 110 (7E), -224 = -1.75 * 2^7 -> F6,
    // 1 -> 38, 0.5 -> 30; subnormals m * 2^-9: 2^-9 -> 01, 1.5 * 2^-9 -> 02 (tie, even),
    // 0.5 * 2^-9 -> 00 (tie, even), 2.5 * 2^-9 -> 02, 7.5 * 2^-9 -> 08 (tie with 2^-6, even),
    // -0 -> 80
    std::vector<float> x = {448, -224, 1, 0.5f, P9, 3 * P10, P10, 5 * P10, 7.5f * P9, -0.0f};
    tensor t;
    encode(VQS_WQ_FP8_E4M3, x, 2, 5, t);
    CHECK(part<uint8_t>(t.t, "codes") ==
          std::vector<uint8_t>({0x7E, 0xF6, 0x38, 0x30, 0x01, 0x02, 0x00, 0x02, 0x08, 0x80}));
    CHECK(part<float>(t.t, "scale") == std::vector<float>({1.0f}));
    std::vector<float> y = decode(t.t);
    CHECK(y[5] == 2 * P9);
    CHECK(y[8] == 0x1p-6f);
    // amax 1000: scale = 1000 / 448; +-1000 / scale = +-448.0000x saturates to +-448 (7E, FE)
    std::vector<float> s = {1000, -1000, 1, 0};
    tensor ts;
    encode(VQS_WQ_FP8_E4M3, s, 1, 4, ts);
    std::vector<uint8_t> c = part<uint8_t>(ts.t, "codes");
    CHECK(c[0] == 0x7E);
    CHECK(c[1] == 0xFE);
    CHECK(part<float>(ts.t, "scale")[0] == 1000.0f / 448.0f);
    // an all-zero tensor: scale 0, codes 0, decodes to zeros
    tensor tz;
    encode(VQS_WQ_FP8_E4M3, std::vector<float>(6, 0.0f), 2, 3, tz);
    CHECK(part<float>(tz.t, "scale")[0] == 0.0f);
    CHECK(part<uint8_t>(tz.t, "codes") == std::vector<uint8_t>(6, 0));
    CHECK(decode(tz.t) == std::vector<float>(6, 0.0f));
}

TEST_CASE("fp8_e4m3_ch: one scale per row, a zero row has scale 0", "[wq][scalar]")
{
    // row 0: amax 896 -> scale 2: 896 / 2 = 448 -> 7E, 1 / 2 = 0.5 -> 30, -3 / 2 = -1.5 -> BC
    // row 1: zeros -> scale 0, codes 0
    // row 2: amax 1000 -> scale 1000 / 448: -1000 -> FE (saturated), 1 / scale = 0.448 =
    //        1.792 * 2^-2 -> mantissa 6.336 -> 6: 0 0101 110 = 2E
    std::vector<float> x = {896, 1, -3, 0, 0, 0, -1000, 1, 0};
    tensor t;
    encode(VQS_WQ_FP8_E4M3_CH, x, 3, 3, t);
    CHECK(part<uint8_t>(t.t, "codes") ==
          std::vector<uint8_t>({0x7E, 0x30, 0xBC, 0, 0, 0, 0xFE, 0x2E, 0}));
    CHECK(part<float>(t.t, "scale") == std::vector<float>({2.0f, 0.0f, 1000.0f / 448.0f}));
    std::vector<float> y = decode(t.t);
    CHECK(y[0] == 896.0f);
    CHECK(y[2] == -3.0f);
    CHECK(y[7] == 0.4375f * (1000.0f / 448.0f));
}

TEST_CASE("fp8_e5m2 per tensor and per row: amax / 57344, ties, subnormals", "[wq][scalar]")
{
    // amax 57344 -> scale 1; E5M2: 57344 -> 0 11110 11 (7B), 1 -> 3C, -0.5 -> B8,
    // 2^-16 (min subnormal) -> 01, 1.5 * 2^-16 -> 02 (tie, even), 2^-17 -> 00 (tie, even),
    // 1.125 -> 3C (tie between 1 and 1.25, even), 1.375 -> 3E (tie, even: 1.5)
    std::vector<float> x = {57344, 1, -0.5f, 0x1p-16f, 3 * 0x1p-17f, 0x1p-17f, 1.125f, 1.375f};
    tensor t;
    encode(VQS_WQ_FP8_E5M2, x, 1, 8, t);
    CHECK(part<uint8_t>(t.t, "codes") ==
          std::vector<uint8_t>({0x7B, 0x3C, 0xB8, 0x01, 0x02, 0x00, 0x3C, 0x3E}));
    CHECK(part<float>(t.t, "scale") == std::vector<float>({1.0f}));
    // per row: row 1 = 2 x row 0 -> scale 2 there, same codes
    std::vector<float> x2 = x;
    for (float v : x)
        x2.push_back(2 * v);
    tensor tc;
    encode(VQS_WQ_FP8_E5M2_CH, x2, 2, 8, tc);
    std::vector<uint8_t> c = part<uint8_t>(tc.t, "codes");
    CHECK(std::vector<uint8_t>(c.begin(), c.begin() + 8) == std::vector<uint8_t>(c.begin() + 8, c.end()));
    CHECK(part<float>(tc.t, "scale") == std::vector<float>({1.0f, 2.0f}));
    CHECK(decode(tc.t)[8] == 114688.0f);
}

TEST_CASE("int8_ch: absmax / 127, round half to even, never -128", "[wq][scalar]")
{
    // row 0: amax 127 -> scale 1: 127 -> 7F, -63.5 -> -64 (C0, even), 0.5 -> 0 (even),
    //        1.5 -> 2, -2.5 -> -2 (FE), 2.5 -> 2
    // row 1: {-3, 1}: scale 3 / 127; -3 / scale = -127.0000x -> -127 (81), never -128;
    //        1 / (3 / 127) = 42.333 -> 42 (2A)
    std::vector<float> x = {127, -63.5f, 0.5f, 1.5f, -2.5f, 2.5f, -3, 1, 0, 0, 0, 0};
    tensor t;
    encode(VQS_WQ_INT8_CH, x, 2, 6, t);
    CHECK(part<int8_t>(t.t, "codes") ==
          std::vector<int8_t>({127, -64, 0, 2, -2, 2, -127, 42, 0, 0, 0, 0}));
    CHECK(part<float>(t.t, "scale") == std::vector<float>({1.0f, 3.0f / 127.0f}));
    std::vector<float> y = decode(t.t);
    CHECK(y[1] == -64.0f);
    CHECK(y[6] == -127.0f * (3.0f / 127.0f));
    // a zero row: scale 0, codes 0
    tensor z;
    encode(VQS_WQ_INT8_CH, std::vector<float>(5, 0.0f), 1, 5, z);
    CHECK(part<float>(z.t, "scale")[0] == 0.0f);
    CHECK(part<int8_t>(z.t, "codes") == std::vector<int8_t>(5, 0));
}

TEST_CASE("llm_int8: a planted outlier column is kept in fp16 and leaves the row scales alone",
          "[wq][scalar]")
{
    // 3 x 5; column 2 has a 6.0 (|w| >= 6: outlier), column 4 a -7.5; 5.99 in column 0 is not
    // row 0: {127/64, -63.5/64, 0.1, 1/64, -7.5}: amax over columns 0, 1, 3 = 127/64 ->
    //        scale 1/64: codes 127, -64 (-63.5 ties to even), 0 (outlier), 1, 0 (outlier)
    // row 1: {5.99, 0, 6, 0, 1}: amax over 0, 1, 3 = 5.99 -> codes 127, 0, 0, 0, 0
    // row 2: zeros except the outliers' columns: scale 0, codes 0
    std::vector<float> x = {127.0f / 64, -63.5f / 64, 0.1f,  1.0f / 64, -7.5f,
                            5.99f,       0,           6.0f,  0,         1.0f,
                            0,           0,           -2.0f, 0,         0.25f};
    tensor t;
    encode(VQS_WQ_LLM_INT8, x, 3, 5, t);
    CHECK(part<int32_t>(t.t, "outlier_cols") == std::vector<int32_t>({2, 4}));
    CHECK(part<int8_t>(t.t, "codes") ==
          std::vector<int8_t>({127, -64, 0, 1, 0, 127, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
    CHECK(part<float>(t.t, "scale") == std::vector<float>({1.0f / 64, 5.99f / 127, 0.0f}));
    // fp16 of 0.1 (2E66), -7.5 (C780), 6 (4600), 1 (3C00), -2 (C000), 0.25 (3400)
    CHECK(part<uint16_t>(t.t, "outliers") ==
          std::vector<uint16_t>({0x2E66, 0xC780, 0x4600, 0x3C00, 0xC000, 0x3400}));
    const vqs_wq_part *o = vqs_wq_part_get(&t.t, "outliers");
    CHECK(o->shape[0] == 3);
    CHECK(o->shape[1] == 2);
    std::vector<float> y = decode(t.t);
    CHECK(y[4] == -7.5f);
    CHECK(y[7] == 6.0f);
    CHECK(y[2] == vqs_f16_to_f32(0x2E66));
    CHECK(y[1] == -1.0f);
    CHECK(y[5] == 5.99f / 127 * 127);

    // no outlier: the parts are still there, [0] and [3, 0]
    std::vector<float> small(15, 0.5f);
    tensor n;
    encode(VQS_WQ_LLM_INT8, small, 3, 5, n);
    const vqs_wq_part *oc = vqs_wq_part_get(&n.t, "outlier_cols");
    const vqs_wq_part *ov = vqs_wq_part_get(&n.t, "outliers");
    REQUIRE(oc != nullptr);
    REQUIRE(ov != nullptr);
    CHECK(oc->ndim == 1);
    CHECK(oc->shape[0] == 0);
    CHECK(ov->shape[0] == 3);
    CHECK(ov->shape[1] == 0);
    CHECK(decode(n.t) == small);
}

TEST_CASE("llm_int8 decode: outlier columns must be ascending and in range", "[wq][scalar]")
{
    std::vector<float> x = {7, 1, -8, 2, 0.5f, 9};
    tensor t;
    encode(VQS_WQ_LLM_INT8, x, 2, 3, t);
    int32_t *oc = static_cast<int32_t *>(
        const_cast<vqs_wq_part *>(vqs_wq_part_get(&t.t, "outlier_cols"))->data);
    REQUIRE(oc[0] == 0);
    REQUIRE(oc[1] == 2);
    std::vector<float> y(6);
    oc[1] = 0;
    REQUIRE_ERR(vqs_wq_decode(&t.t, y.data(), nullptr), VQS_ECORRUPT);
    oc[1] = 3;
    REQUIRE_ERR(vqs_wq_decode(&t.t, y.data(), nullptr), VQS_ECORRUPT);
    oc[1] = 2;
    REQUIRE_OK(vqs_wq_decode(&t.t, y.data(), nullptr));
    CHECK(y[5] == 9.0f);
    // an fp16 outlier that overflows is refused at encode
    std::vector<float> big = {70000, 1};
    vqs_wq_spec s{};
    s.kind = VQS_WQ_LLM_INT8;
    tensor b;
    REQUIRE_ERR(vqs_wq_encode(&s, big.data(), 1, 2, nullptr, &b.t), VQS_ERANGE);
}

TEST_CASE("scalar formats' decode: a missing, mistyped or mis-shaped part is VQS_ESHAPE",
          "[wq][scalar]")
{
    std::vector<float> w(4 * 9);
    for (size_t i = 0; i < w.size(); i++)
        w[i] = (float)i - 17.0f;
    std::vector<float> y(w.size());
    for (vqs_wq_kind k : {VQS_WQ_F16, VQS_WQ_BF16, VQS_WQ_FP8_E4M3, VQS_WQ_FP8_E4M3_CH,
                          VQS_WQ_FP8_E5M2, VQS_WQ_FP8_E5M2_CH, VQS_WQ_INT8_CH, VQS_WQ_LLM_INT8}) {
        tensor t;
        encode(k, w, 4, 9, t);
        for (int i = 0; i < t.t.nparts; i++) {
            INFO("kind " << k << " part " << t.t.part[i].name);
            for (int mode = 0; mode < 3; mode++) {
                vqs_wq_tensor bad{};
                bad.spec = t.t.spec, bad.rows = 4, bad.cols = 9;
                for (int j = 0; j < t.t.nparts; j++) {
                    const vqs_wq_part &p = t.t.part[j];
                    if (mode == 0 && i == j)
                        continue; // missing
                    uint64_t sh[2] = {p.shape[0], p.shape[1]};
                    vqs_wq_type ty = p.type;
                    int nd = p.ndim;
                    if (i == j && mode == 1) { // one row fewer / one column more
                        if (sh[0] > 1)
                            sh[0]--;
                        else
                            nd = 2, sh[1] = 2;
                    }
                    if (i == j && mode == 2) // a type of the same size
                        ty = p.type == VQS_WQT_U8   ? VQS_WQT_I8
                             : p.type == VQS_WQT_I8 ? VQS_WQT_U8
                             : p.type == VQS_WQT_F32 ? VQS_WQT_I32
                             : p.type == VQS_WQT_I32 ? VQS_WQT_F32
                             : p.type == VQS_WQT_F16 ? VQS_WQT_BF16
                                                     : VQS_WQT_F16;
                    size_t nb = (size_t)(sh[0] * (nd == 2 ? sh[1] : 1)) * vqs_wq_type_size(ty);
                    vqs_wq_part *np = nullptr;
                    REQUIRE_OK(vqs_wq_part_add(&bad, p.name, ty, nd, sh, &np));
                    std::memcpy(np->data, p.data, std::min(nb, p.nbytes));
                }
                REQUIRE_ERR(vqs_wq_decode(&bad, y.data(), nullptr), VQS_ESHAPE);
                vqs_wq_tensor_free(&bad);
            }
        }
    }
}

TEST_CASE("scalar formats: random round trips within half a step, any thread count",
          "[wq][scalar]")
{
    std::mt19937 rng(5);
    std::normal_distribution<float> g(0.0f, 1.0f);
    for (size_t cols : {1, 31, 33, 100, 172, 4096}) {
        size_t rows = 6;
        std::vector<float> w(rows * cols);
        for (float &v : w)
            v = g(rng) * 0.03f;
        w[cols / 2] = 9.0f; // an outlier column for llm_int8
        for (vqs_wq_kind k : {VQS_WQ_F16, VQS_WQ_BF16, VQS_WQ_FP8_E4M3, VQS_WQ_FP8_E4M3_CH,
                              VQS_WQ_FP8_E5M2, VQS_WQ_FP8_E5M2_CH, VQS_WQ_INT8_CH,
                              VQS_WQ_LLM_INT8}) {
            tensor t, t4;
            encode(k, w, rows, cols, t, 1);
            encode(k, w, rows, cols, t4, 4);
            for (int i = 0; i < t.t.nparts; i++)
                CHECK(part<uint8_t>(t.t, t.t.part[i].name) == part<uint8_t>(t4.t, t.t.part[i].name));
            std::vector<float> y = decode(t.t);
            std::vector<float> sc;
            if (vqs_wq_part_get(&t.t, "scale"))
                sc = part<float>(t.t, "scale");
            std::vector<int32_t> oc;
            if (k == VQS_WQ_LLM_INT8)
                oc = part<int32_t>(t.t, "outlier_cols");
            for (size_t r = 0; r < rows; r++)
                for (size_t j = 0; j < cols; j++) {
                    float x = w[r * cols + j], e = std::fabs(y[r * cols + j] - x);
                    float s = sc.empty() ? 1 : sc.size() == 1 ? sc[0] : sc[r];
                    float bound;
                    // relative half-ulp (3, 2, 10, 7 mantissa bits) or the subnormal half step
                    switch (k) {
                    case VQS_WQ_F16: bound = std::max(std::fabs(x) * 0x1p-11f, 0x1p-25f); break;
                    case VQS_WQ_BF16: bound = std::fabs(x) * 0x1p-8f; break;
                    case VQS_WQ_FP8_E4M3:
                    case VQS_WQ_FP8_E4M3_CH:
                        bound = std::max(std::fabs(x) * 0x1p-4f, 0x1p-10f * s) * 1.0001f;
                        break;
                    case VQS_WQ_FP8_E5M2:
                    case VQS_WQ_FP8_E5M2_CH:
                        bound = std::max(std::fabs(x) * 0x1p-3f, 0x1p-17f * s) * 1.0001f;
                        break;
                    default: {
                        bool out = std::find(oc.begin(), oc.end(), (int32_t)j) != oc.end();
                        bound = out ? std::fabs(x) * 0x1p-11f : 0.5f * s * 1.0001f;
                    }
                    }
                    INFO("kind " << k << " cols " << cols << " r " << r << " j " << j);
                    CHECK(e <= bound);
                }
        }
    }
}
