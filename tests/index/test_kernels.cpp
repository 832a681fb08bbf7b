// Tests for index/kernels (vqs_kernels.h): the look-up-table, scalar-code
// and selection kernels (lut8, lut4, sq_l2, sq_ip, select_lt,
// select_le_u16) of every SIMD level this CPU runs, against the scalar
// reference (ref.c), and the reference against a straightforward double
// computation written here (codes decoded with the conversion functions of
// vqs_codebook.h / vqs_common.h, sums in double).
//
// Buffers are std::vectors of exactly the size the header states (codes:
// n * stride bytes, tables: m * 256 or m * 16 floats, q and w: d floats,
// idx: n entries), so that the sanitizer build catches a read or write past
// them. Float results are compared with the tolerance
// 1e-5 * (sum of |terms| + 1), where for sq_l2 a term is (|q| + |w v|)^2 (the
// scale of the rounding of q - w v); the top 10 by score must agree up to
// swaps among scores within that tolerance.
#include "vqs_test.hpp"

#include <cmath>
#include <cstring>
#include <numeric>
#include <sstream>

#include "vqs_kernels.h"

namespace {

const size_t kDims[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129};
const size_t kNs[] = {0, 1, 15, 16, 17, 31, 32, 33, 1037};
const vqs_simd kLevels[] = {VQS_SIMD_SCALAR, VQS_SIMD_AVX2, VQS_SIMD_AVX512};
const vqs_elem kTypes[] = {VQS_ELEM_U8,   VQS_ELEM_S8,   VQS_ELEM_U4,  VQS_ELEM_F16,
                              VQS_ELEM_BF16, VQS_ELEM_E4M3, VQS_ELEM_E5M2, VQS_ELEM_F32};

const char *type_name(vqs_elem t)
{
    switch (t) {
    case VQS_ELEM_U8:
        return "U8";
    case VQS_ELEM_S8:
        return "S8";
    case VQS_ELEM_U4:
        return "U4";
    case VQS_ELEM_F16:
        return "F16";
    case VQS_ELEM_BF16:
        return "BF16";
    case VQS_ELEM_E4M3:
        return "E4M3";
    case VQS_ELEM_E5M2:
        return "E5M2";
    case VQS_ELEM_F32:
        return "F32";
    }
    return "?";
}

size_t code_bytes(vqs_elem t, size_t d)
{
    switch (t) {
    case VQS_ELEM_U4:
        return (d + 1) / 2;
    case VQS_ELEM_F16:
    case VQS_ELEM_BF16:
        return 2 * d;
    case VQS_ELEM_F32:
        return 4 * d;
    default:
        return d;
    }
}

// v(row, j) decoded here, independently of ref.c's vqs_ref_sq_value.
double decode(vqs_elem t, const uint8_t *row, size_t j)
{
    switch (t) {
    case VQS_ELEM_U8:
        return row[j];
    case VQS_ELEM_S8:
        return (double)(int8_t)row[j];
    case VQS_ELEM_U4:
        return (j % 2 == 0) ? (row[j / 2] & 15) : (row[j / 2] >> 4);
    case VQS_ELEM_F16: {
        uint16_t h;
        std::memcpy(&h, row + 2 * j, 2);
        return vqs_f16_to_f32(h);
    }
    case VQS_ELEM_BF16: {
        uint16_t h;
        std::memcpy(&h, row + 2 * j, 2);
        return vqs_bf16_to_f32(h);
    }
    case VQS_ELEM_E4M3:
        return vqs_e4m3_to_f32(row[j]);
    case VQS_ELEM_E5M2:
        return vqs_e5m2_to_f32(row[j]);
    case VQS_ELEM_F32: {
        float f;
        std::memcpy(&f, row + 4 * j, 4);
        return f;
    }
    }
    return 0;
}

// Random codes of n rows (stride bytes each, exactly n * stride in all).
// F16/BF16/E4M3/E5M2 elements are finite non-NaN patterns (the header allows
// any result for the others); BF16 magnitudes stay below 2^21 so that sums of
// squares stay finite. Bytes past the code in a row are random too.
std::vector<uint8_t> random_codes(vqs_rng &r, vqs_elem t, size_t d, size_t stride, size_t n)
{
    std::vector<uint8_t> c(n * stride);
    for (auto &b : c)
        b = (uint8_t)vqs_rng_next(&r);
    for (size_t i = 0; i < n; i++) {
        uint8_t *row = c.data() + i * stride;
        for (size_t j = 0; j < d; j++) {
            switch (t) {
            case VQS_ELEM_F16:
                for (;;) {
                    uint16_t h = (uint16_t)vqs_rng_next(&r);
                    if ((h & 0x7c00) != 0x7c00) {
                        std::memcpy(row + 2 * j, &h, 2);
                        break;
                    }
                }
                break;
            case VQS_ELEM_BF16:
                for (;;) {
                    uint16_t h = (uint16_t)vqs_rng_next(&r);
                    if (((h >> 7) & 0xff) < 127 + 21) {
                        std::memcpy(row + 2 * j, &h, 2);
                        break;
                    }
                }
                break;
            case VQS_ELEM_E4M3:
                while ((row[j] & 0x7f) == 0x7f)
                    row[j] = (uint8_t)vqs_rng_next(&r);
                break;
            case VQS_ELEM_E5M2:
                while ((row[j] & 0x7c) == 0x7c)
                    row[j] = (uint8_t)vqs_rng_next(&r);
                break;
            case VQS_ELEM_F32: {
                // N(0, 100^2) values: random bit patterns would overflow the sums
                float f = (float)(100.0 * vqs_rng_normal(&r));
                std::memcpy(row + 4 * j, &f, 4);
                break;
            }
            default:
                break;
            }
        }
    }
    return c;
}

std::vector<float> normals(vqs_rng &r, size_t n, double scale = 1.0)
{
    std::vector<float> v(n);
    for (auto &x : v)
        x = (float)(scale * vqs_rng_normal(&r));
    return v;
}

// Empty string if every |a[i] - b[i]| <= 1e-5 * (mag[i] + 1) and the top 10
// of a (smallest first) are, by b's scores, within tolerance of b's top 10.
std::string compare(const std::vector<float> &a, const std::vector<float> &b,
                    const std::vector<double> &mag)
{
    REQUIRE(a.size() == b.size());
    REQUIRE(mag.size() == b.size());
    auto tol = [&](size_t i) { return 1e-5 * (mag[i] + 1); };
    for (size_t i = 0; i < a.size(); i++) {
        if (!(std::fabs((double)a[i] - (double)b[i]) <= tol(i))) {
            std::ostringstream s;
            s.precision(9);
            s << "row " << i << ": " << a[i] << " vs " << b[i] << " (tolerance " << tol(i) << ")";
            return s.str();
        }
    }
    size_t k = std::min<size_t>(10, a.size());
    if (k == 0)
        return "";
    std::vector<size_t> ia(a.size()), ib(b.size());
    std::iota(ia.begin(), ia.end(), 0);
    std::iota(ib.begin(), ib.end(), 0);
    std::partial_sort(ia.begin(), ia.begin() + k, ia.end(),
                      [&](size_t x, size_t y) { return a[x] < a[y] || (a[x] == a[y] && x < y); });
    std::partial_sort(ib.begin(), ib.begin() + k, ib.end(),
                      [&](size_t x, size_t y) { return b[x] < b[y] || (b[x] == b[y] && x < y); });
    size_t kth = ib[k - 1];
    for (size_t p = 0; p < k; p++) {
        size_t id = ia[p];
        if ((double)b[id] > (double)b[kth] + tol(id) + tol(kth)) {
            std::ostringstream s;
            s << "top-" << k << ": id " << id << " (score " << b[id] << ") is not within tolerance"
              << " of the reference's " << k << "th score " << b[kth];
            return s.str();
        }
    }
    return "";
}

struct Level {
    vqs_simd level;
    const vqs_kernels *k;
};

// The levels this CPU runs (the scalar one always), with a warning for others.
std::vector<Level> levels()
{
    std::vector<Level> v;
    for (vqs_simd L : kLevels) {
        const vqs_kernels *K = vqs_kernels_for(L);
        if (!K) {
            WARN("level " << vqs_simd_name(L) << " not available on this CPU: not tested");
            continue;
        }
        REQUIRE(K->level == L);
        v.push_back({L, K});
    }
    return v;
}

const vqs_kernels *ref() { return vqs_kernels_for(VQS_SIMD_SCALAR); }

// ---- independent computations in double ------------------------------------

void lut8_double(const std::vector<float> &lut, size_t m, float bias,
                 const std::vector<uint8_t> &codes, size_t stride, size_t n,
                 std::vector<double> &val, std::vector<double> &mag)
{
    val.assign(n, 0);
    mag.assign(n, 0);
    for (size_t i = 0; i < n; i++) {
        double s = bias, a = std::fabs(bias);
        for (size_t j = 0; j < m; j++) {
            double t = lut[256 * j + codes[i * stride + j]];
            s += t;
            a += std::fabs(t);
        }
        val[i] = s;
        mag[i] = a;
    }
}

void lut4_double(const std::vector<float> &lut, size_t m, float bias,
                 const std::vector<uint8_t> &codes, size_t stride, size_t n,
                 std::vector<double> &val, std::vector<double> &mag)
{
    val.assign(n, 0);
    mag.assign(n, 0);
    for (size_t i = 0; i < n; i++) {
        double s = bias, a = std::fabs(bias);
        for (size_t j = 0; j < m; j++) {
            unsigned byte = codes[i * stride + j / 2];
            unsigned nib = (j % 2 == 0) ? (byte & 15) : (byte >> 4);
            double t = lut[16 * j + nib];
            s += t;
            a += std::fabs(t);
        }
        val[i] = s;
        mag[i] = a;
    }
}

void sq_double(vqs_elem t, bool l2, const std::vector<float> &q, const std::vector<float> &w,
               float bias, size_t d, const std::vector<uint8_t> &codes, size_t stride, size_t n,
               std::vector<double> &val, std::vector<double> &mag)
{
    val.assign(n, 0);
    mag.assign(n, 0);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *row = codes.data() + i * stride;
        double s = l2 ? 0.0 : bias, a = l2 ? 0.0 : std::fabs(bias);
        for (size_t j = 0; j < d; j++) {
            double v = decode(t, row, j);
            if (l2) {
                double e = q[j] - (double)w[j] * v;
                s += e * e;
                double u = std::fabs(q[j]) + std::fabs((double)w[j] * v);
                a += u * u;
            } else {
                s += q[j] * v;
                a += std::fabs(q[j] * v);
            }
        }
        val[i] = s;
        mag[i] = a;
    }
}

std::string compare_double(const std::vector<float> &out, const std::vector<double> &val,
                           const std::vector<double> &mag)
{
    for (size_t i = 0; i < out.size(); i++) {
        double tol = 1e-5 * (mag[i] + 1);
        if (!(std::fabs(out[i] - val[i]) <= tol)) {
            std::ostringstream s;
            s.precision(12);
            s << "row " << i << ": " << out[i] << " vs exact " << val[i] << " (tolerance " << tol
              << ")";
            return s.str();
        }
    }
    return "";
}

} // namespace

// ---- look-up tables --------------------------------------------------------------

TEST_CASE("kernels lut8: reference against a double computation", "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 801);
    for (size_t m : kDims)
        for (size_t n : kNs) {
            size_t stride = m + (n % 2);
            auto lut = normals(r, m * 256, 10.0);
            auto codes = random_codes(r, VQS_ELEM_U8, m, stride, n);
            float bias = (float)vqs_rng_normal(&r);
            std::vector<float> out(n);
            ref()->lut8(lut.data(), m, bias, codes.data(), stride, n, out.data());
            std::vector<double> val, mag;
            lut8_double(lut, m, bias, codes, stride, n, val, mag);
            INFO("m " << m << " n " << n << " stride " << stride);
            REQUIRE(compare_double(out, val, mag) == "");
        }
}

TEST_CASE("kernels lut8: every level equals the reference", "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 802);
    auto L = levels();
    for (size_t m : kDims)
        for (size_t n : kNs)
            for (size_t extra : {0, 1, 3}) {
                size_t stride = m + extra;
                auto lut = normals(r, m * 256, 10.0);
                auto codes = random_codes(r, VQS_ELEM_U8, m, stride, n);
                float bias = (float)vqs_rng_normal(&r);
                std::vector<float> want(n);
                ref()->lut8(lut.data(), m, bias, codes.data(), stride, n, want.data());
                std::vector<double> val, mag;
                lut8_double(lut, m, bias, codes, stride, n, val, mag);
                for (const Level &l : L) {
                    std::vector<float> out(n);
                    l.k->lut8(lut.data(), m, bias, codes.data(), stride, n, out.data());
                    INFO(l.k->name << " m " << m << " n " << n << " stride " << stride);
                    REQUIRE(compare(out, want, mag) == "");
                }
            }
}

TEST_CASE("kernels lut4: reference against a double computation", "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 803);
    for (size_t m : kDims)
        for (size_t n : kNs) {
            size_t stride = (m + 1) / 2 + (n % 2);
            auto lut = normals(r, m * 16, 10.0);
            auto codes = random_codes(r, VQS_ELEM_U8, stride, stride, n);
            float bias = (float)vqs_rng_normal(&r);
            std::vector<float> out(n);
            ref()->lut4(lut.data(), m, bias, codes.data(), stride, n, out.data());
            std::vector<double> val, mag;
            lut4_double(lut, m, bias, codes, stride, n, val, mag);
            INFO("m " << m << " n " << n << " stride " << stride);
            REQUIRE(compare_double(out, val, mag) == "");
        }
}

TEST_CASE("kernels lut4: every level equals the reference", "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 804);
    auto L = levels();
    for (size_t m : kDims)
        for (size_t n : kNs)
            for (size_t extra : {0, 1, 5}) {
                size_t stride = (m + 1) / 2 + extra;
                auto lut = normals(r, m * 16, 10.0);
                // every byte random, also the unused high nibble of an odd m
                auto codes = random_codes(r, VQS_ELEM_U8, stride, stride, n);
                float bias = (float)vqs_rng_normal(&r);
                std::vector<float> want(n);
                ref()->lut4(lut.data(), m, bias, codes.data(), stride, n, want.data());
                std::vector<double> val, mag;
                lut4_double(lut, m, bias, codes, stride, n, val, mag);
                for (const Level &l : L) {
                    std::vector<float> out(n);
                    l.k->lut4(lut.data(), m, bias, codes.data(), stride, n, out.data());
                    INFO(l.k->name << " m " << m << " n " << n << " stride " << stride);
                    REQUIRE(compare(out, want, mag) == "");
                }
            }
}

// ---- scalar codes ----------------------------------------------------------------

TEST_CASE("kernels sq_l2, sq_ip: reference against a double computation", "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 805);
    for (vqs_elem t : kTypes)
        for (size_t d : kDims)
            for (size_t n : {0, 1, 17, 100}) {
                size_t stride = code_bytes(t, d) + (d % 3);
                auto codes = random_codes(r, t, d, stride, n);
                auto q = normals(r, d, 3.0);
                std::vector<float> w(d);
                for (auto &x : w)
                    x = (float)(0.5 + vqs_rng_uniform(&r));
                float bias = (float)vqs_rng_normal(&r);
                std::vector<float> out(n);
                std::vector<double> val, mag;
                INFO(type_name(t) << " d " << d << " n " << n << " stride " << stride);
                ref()->sq_l2(t, q.data(), w.data(), d, codes.data(), stride, n, out.data());
                sq_double(t, true, q, w, 0, d, codes, stride, n, val, mag);
                REQUIRE(compare_double(out, val, mag) == "");
                ref()->sq_ip(t, q.data(), bias, d, codes.data(), stride, n, out.data());
                sq_double(t, false, q, w, bias, d, codes, stride, n, val, mag);
                REQUIRE(compare_double(out, val, mag) == "");
            }
}

TEST_CASE("kernels sq_l2, sq_ip: every level equals the reference", "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 806);
    auto L = levels();
    for (vqs_elem t : kTypes)
        for (size_t d : kDims)
            for (size_t n : kNs)
                for (size_t extra : {0, 3}) {
                    size_t stride = code_bytes(t, d) + extra;
                    auto codes = random_codes(r, t, d, stride, n);
                    auto q = normals(r, d, 3.0);
                    std::vector<float> w(d);
                    for (auto &x : w)
                        x = (float)(0.5 + vqs_rng_uniform(&r));
                    float bias = (float)vqs_rng_normal(&r);
                    std::vector<float> want2(n), wanti(n);
                    ref()->sq_l2(t, q.data(), w.data(), d, codes.data(), stride, n, want2.data());
                    ref()->sq_ip(t, q.data(), bias, d, codes.data(), stride, n, wanti.data());
                    std::vector<double> val, mag2, magi;
                    sq_double(t, true, q, w, 0, d, codes, stride, n, val, mag2);
                    sq_double(t, false, q, w, bias, d, codes, stride, n, val, magi);
                    for (const Level &l : L) {
                        INFO(l.k->name << " " << type_name(t) << " d " << d << " n " << n
                                       << " stride " << stride);
                        std::vector<float> out(n);
                        l.k->sq_l2(t, q.data(), w.data(), d, codes.data(), stride, n, out.data());
                        INFO("sq_l2");
                        REQUIRE(compare(out, want2, mag2) == "");
                        l.k->sq_ip(t, q.data(), bias, d, codes.data(), stride, n, out.data());
                        INFO("sq_ip");
                        REQUIRE(compare(out, wanti, magi) == "");
                    }
                }
}

// Every finite code of every type, in every lane position of a row: with
// q = 1 and one nonzero dimension, sq_ip returns v exactly, which must be
// the conversion function's value (bit for bit, signed zeros aside).
TEST_CASE("kernels sq_ip: every finite code decodes to the conversion function's value",
          "[kernels]")
{
    auto L = levels();
    for (vqs_elem t : kTypes) {
        if (t == VQS_ELEM_F32) // no conversion: the next test
            continue;
        std::vector<uint16_t> vals; // the code values to try
        bool two = t == VQS_ELEM_F16 || t == VQS_ELEM_BF16;
        for (uint32_t c = 0; c < (two ? 65536u : (t == VQS_ELEM_U4 ? 16u : 256u)); c++) {
            if (t == VQS_ELEM_F16 && (c & 0x7c00) == 0x7c00)
                continue;
            if (t == VQS_ELEM_BF16 && (c & 0x7f80) == 0x7f80)
                continue;
            if (t == VQS_ELEM_E4M3 && (c & 0x7f) == 0x7f)
                continue;
            if (t == VQS_ELEM_E5M2 && (c & 0x7c) == 0x7c)
                continue;
            vals.push_back((uint16_t)c);
        }
        for (size_t d : {1, 8, 16, 17, 33}) {
            // row p of n: value vals[p % nv] in dimension p % d, zero elsewhere
            // (the zero code is 0 in every type)
            size_t nv = vals.size(), n = two ? nv : nv * d, stride = code_bytes(t, d);
            std::vector<uint8_t> codes(n * stride, 0);
            for (size_t p = 0; p < n; p++) {
                uint8_t *row = codes.data() + p * stride;
                size_t j = p % d;
                uint16_t c = vals[p % nv];
                if (two)
                    std::memcpy(row + 2 * j, &c, 2);
                else if (t == VQS_ELEM_U4)
                    row[j / 2] = (uint8_t)(row[j / 2] | c << (4 * (j % 2)));
                else
                    row[j] = (uint8_t)c;
            }
            std::vector<float> q(d, 1.0f);
            for (const Level &l : L) {
                std::vector<float> out(n);
                l.k->sq_ip(t, q.data(), 0.0f, d, codes.data(), stride, n, out.data());
                size_t bad = n;
                for (size_t p = 0; p < n && bad == n; p++)
                    if (!(out[p] == (float)decode(t, codes.data() + p * stride, p % d)))
                        bad = p;
                INFO(l.k->name << " " << type_name(t) << " d " << d << " code 0x" << std::hex
                               << (bad < n ? vals[bad % nv] : 0) << std::dec << " lane "
                               << (bad < n ? bad % d : 0) << " gives "
                               << (bad < n ? out[bad] : 0.0f));
                REQUIRE(bad == n);
            }
        }
    }
}

// F32 codes hold the floats themselves: in every lane position, with q = 1
// and one nonzero dimension, sq_ip returns the value bit for bit (subnormals,
// huge and tiny magnitudes included), and sq_l2 with q = 0, w = 1 its square.
TEST_CASE("kernels sq: F32 codes are read as the floats they hold", "[kernels]")
{
    auto L = levels();
    const float vals[] = {1.0f, -3.5f, 1e-40f, -1e-45f, 1e-20f, 3e18f, -1.2345678e-3f, 65504.5f};
    const size_t nv = sizeof vals / sizeof vals[0];
    for (size_t d : {1, 7, 8, 9, 16, 17, 33}) {
        size_t n = nv * d, stride = code_bytes(VQS_ELEM_F32, d);
        std::vector<uint8_t> codes(n * stride, 0);
        for (size_t p = 0; p < n; p++)
            std::memcpy(codes.data() + p * stride + 4 * (p % d), &vals[p % nv], 4);
        std::vector<float> one(d, 1.0f), zero(d, 0.0f);
        for (const Level &l : L) {
            std::vector<float> ip(n), l2(n);
            l.k->sq_ip(VQS_ELEM_F32, one.data(), 0.0f, d, codes.data(), stride, n, ip.data());
            l.k->sq_l2(VQS_ELEM_F32, zero.data(), one.data(), d, codes.data(), stride, n, l2.data());
            for (size_t p = 0; p < n; p++) {
                float v = vals[p % nv];
                INFO(l.k->name << " d " << d << " lane " << p % d << " value " << v);
                REQUIRE(ip[p] == v);
                REQUIRE(l2[p] == v * v);
            }
        }
    }
}

// ---- selection -------------------------------------------------------------------

TEST_CASE("kernels select_lt, select_le_u16: reference against a direct loop", "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 807);
    for (size_t n : kNs) {
        auto x = normals(r, n);
        std::vector<uint16_t> u(n);
        for (auto &v : u)
            v = (uint16_t)vqs_rng_next(&r);
        std::vector<uint32_t> idx(n + 1, 0xdeadbeef);
        size_t k = ref()->select_lt(x.data(), n, 0.25f, idx.data());
        std::vector<uint32_t> want;
        for (size_t i = 0; i < n; i++)
            if (x[i] < 0.25f)
                want.push_back((uint32_t)i);
        REQUIRE(k == want.size());
        REQUIRE(std::equal(want.begin(), want.end(), idx.begin()));
        REQUIRE(idx[k] == 0xdeadbeef);
        std::fill(idx.begin(), idx.end(), 0xdeadbeef);
        k = ref()->select_le_u16(u.data(), n, 20000, idx.data());
        want.clear();
        for (size_t i = 0; i < n; i++)
            if (u[i] <= 20000)
                want.push_back((uint32_t)i);
        REQUIRE(k == want.size());
        REQUIRE(std::equal(want.begin(), want.end(), idx.begin()));
        REQUIRE(idx[k] == 0xdeadbeef);
    }
}

TEST_CASE("kernels select_lt, select_le_u16: every level equals the reference", "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 808);
    auto L = levels();
    std::vector<size_t> ns(std::begin(kNs), std::end(kNs));
    for (size_t n : {2, 5, 47, 48, 63, 64, 65, 95, 96, 97, 4099})
        ns.push_back(n);
    for (size_t n : ns) {
        auto x = normals(r, n);
        // a few NaNs, infinities and exact threshold values among the scores
        for (size_t i = 0; i < n; i += 7) {
            uint64_t c = vqs_rng_next(&r) % 5;
            x[i] = c == 0   ? NAN
                   : c == 1 ? INFINITY
                   : c == 2 ? -INFINITY
                   : c == 3 ? 0.5f
                            : -0.0f;
        }
        std::vector<uint16_t> u(n);
        for (auto &v : u)
            v = (uint16_t)vqs_rng_next(&r);
        for (size_t i = 0; i < n; i += 5)
            u[i] = (uint16_t)(vqs_rng_next(&r) % 3 == 0 ? 0 : 65535);
        for (float thr : {-INFINITY, -3.0f, 0.0f, 0.5f, 3.0f, INFINITY, NAN}) {
            std::vector<uint32_t> want(n), got;
            size_t kw = ref()->select_lt(x.data(), n, thr, want.data());
            for (const Level &l : L) {
                // exactly n entries, prefilled: nothing past the count is written
                got.assign(n, 0xdeadbeef);
                size_t k = l.k->select_lt(x.data(), n, thr, got.data());
                INFO(l.k->name << " select_lt n " << n << " thr " << thr);
                REQUIRE(k == kw);
                REQUIRE(std::equal(got.begin(), got.begin() + k, want.begin()));
                REQUIRE(std::all_of(got.begin() + k, got.end(),
                                    [](uint32_t v) { return v == 0xdeadbeef; }));
            }
        }
        for (unsigned thr : {0u, 1u, 100u, 32767u, 32768u, 50000u, 65534u, 65535u}) {
            std::vector<uint32_t> want(n), got;
            size_t kw = ref()->select_le_u16(u.data(), n, (uint16_t)thr, want.data());
            for (const Level &l : L) {
                got.assign(n, 0xdeadbeef);
                size_t k = l.k->select_le_u16(u.data(), n, (uint16_t)thr, got.data());
                INFO(l.k->name << " select_le_u16 n " << n << " thr " << thr);
                REQUIRE(k == kw);
                REQUIRE(std::equal(got.begin(), got.begin() + k, want.begin()));
                REQUIRE(std::all_of(got.begin() + k, got.end(),
                                    [](uint32_t v) { return v == 0xdeadbeef; }));
            }
        }
    }
}

TEST_CASE("kernels add_f32: every level equals the reference bit for bit", "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 911);
    for (size_t n : {0, 1, 7, 8, 15, 16, 17, 33, 512, 4096 + 5}) {
        auto a = normals(r, n + 1), b = normals(r, n + 1);
        for (size_t i = 0; i < n; i += 5)
            a[i] *= 1e20f; // sums that round
        std::vector<float> want(n + 2, -7.0f);
        ref()->add_f32(a.data() + 1, b.data() + 1, n, want.data() + 1);
        for (size_t i = 0; i < n; i++)
            REQUIRE(want[i + 1] == a[i + 1] + b[i + 1]);
        REQUIRE(want[0] == -7.0f);
        REQUIRE(want[n + 1] == -7.0f);
        for (const Level &l : levels()) {
            INFO(l.k->name << " n " << n);
            std::vector<float> got(n + 2, -7.0f); // nothing written outside out[0..n)
            l.k->add_f32(a.data() + 1, b.data() + 1, n, got.data() + 1);
            REQUIRE(std::memcmp(got.data(), want.data(), sizeof(float) * (n + 2)) == 0);
        }
    }
}

TEST_CASE("kernels l2_f64, ip_f64: every level equals the double reference up to summation order",
          "[kernels]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 909);
    auto L = levels();
    std::vector<size_t> dims(std::begin(kDims), std::end(kDims));
    for (size_t d : {0, 2, 4, 5, 24, 100, 768, 1001})
        dims.push_back(d);
    for (size_t d : dims) {
        // values over several magnitudes, and one exactly equal pair of rows
        auto x = normals(r, d + 1), y = normals(r, d + 1);
        for (size_t j = 0; j < d; j += 3)
            x[j] *= 1e3f;
        for (int same = 0; same < 2; same++) {
            const float *py = same ? x.data() + 1 : y.data() + 1; // unaligned rows
            double wl = ref()->l2_f64(x.data() + 1, py, d), wi = ref()->ip_f64(x.data() + 1, py, d);
            // the reference is the plain double sum
            double pl = 0, pi = 0, mag = 0;
            for (size_t j = 0; j < d; j++) {
                double e = (double)x[j + 1] - py[j];
                pl += e * e;
                pi += (double)x[j + 1] * py[j];
                mag += std::fabs((double)x[j + 1] * py[j]);
            }
            REQUIRE(wl == pl);
            REQUIRE(wi == pi);
            if (same)
                REQUIRE(wl == 0.0);
            for (const Level &l : L) {
                INFO(l.k->name << " d " << d << " same " << same);
                double gl = l.k->l2_f64(x.data() + 1, py, d), gi = l.k->ip_f64(x.data() + 1, py, d);
                // every term is exact or rounded once in double: only the
                // order of the additions differs
                REQUIRE(std::fabs(gl - wl) <= 4.0 * (double)(d + 1) * 0x1p-53 * wl);
                REQUIRE(std::fabs(gi - wi) <= 4.0 * (double)(d + 1) * 0x1p-53 * mag);
            }
        }
    }
}
