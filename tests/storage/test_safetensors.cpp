// Tests for storage/safetensors.c (vqs_store_st.h): the writer and reader
// round trip of every dtype, the conversions to float32 on hand-worked
// values, a file written by Python's struct + json (tests/fixtures), the
// shared stories260K checkpoint against its llama2.c .bin, and one test per
// refusal on a hand-built bad file, checking the code and that the message
// names the file, the tensor and the field.
#include "vqs_test.hpp"

#include "vqs_store_st.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

using namespace vqs_test;

namespace {

using st_ptr = std::unique_ptr<vqs_st_file, decltype(&vqs_st_close)>;
using writer_ptr = std::unique_ptr<vqs_st_writer, decltype(&vqs_st_writer_free)>;

const char *const BAD = "bad.safetensors";

// A safetensors file: 8-byte little-endian header length, the header as
// given (no padding), then data.
std::string st_bytes(const std::string &header, const std::string &data = "")
{
    std::string s(8, '\0');
    uint64_t n = header.size();
    for (int i = 0; i < 8; i++)
        s[i] = (char)(n >> (8 * i));
    return s + header + data;
}

// bytes must outlive the returned file (vqs_st_open_mem borrows them)
st_ptr open_ok(const std::string &bytes)
{
    vqs_st_file *f = nullptr;
    int rc = vqs_st_open_mem(bytes.data(), bytes.size(), "ok.safetensors", &f);
    INFO(vqs_err_name(rc) << ": " << vqs_errdetail());
    REQUIRE(rc == 0);
    return st_ptr(f, vqs_st_close);
}

// Opens bytes (named BAD), requires the code, and that the message names the
// file and contains every one of `names`.
void refuse(const std::string &bytes, int code, std::initializer_list<const char *> names)
{
    vqs_st_file *f = nullptr;
    int rc = vqs_st_open_mem(bytes.data(), bytes.size(), BAD, &f);
    std::string d = vqs_errdetail();
    INFO("-> " << vqs_err_name(rc) << ": " << d << " (expected " << vqs_err_name(code) << ")");
    REQUIRE(rc == code);
    REQUIRE(f == nullptr);
    CHECK_THAT(d, Catch::StartsWith(std::string(BAD) + ": "));
    for (const char *n : names)
        CHECK_THAT(d, Catch::Contains(n));
}

// One F32 tensor entry; the rest of the header is the caller's.
std::string f32_entry(const std::string &name, const std::string &shape, const std::string &offsets)
{
    return "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

std::string raw(size_t n) { return std::string(n, '\x01'); }

// A file of one tensor of dtype with the given raw little-endian bytes and
// shape, written by vqs's writer into t and opened.
st_ptr one_tensor(const tmpdir &t, vqs_st_dtype dt, std::vector<uint64_t> shape, const std::vector<uint8_t> &bytes)
{
    vqs_st_writer *w = nullptr;
    REQUIRE_OK(vqs_st_writer_new(&w));
    writer_ptr wp(w, vqs_st_writer_free);
    REQUIRE_OK(vqs_st_writer_add(w, "x", dt, (int)shape.size(), shape.data(), bytes.data(), bytes.size()));
    std::string p = t.file("one.safetensors");
    REQUIRE_OK(vqs_st_writer_save(w, p.c_str()));
    vqs_st_file *f = nullptr;
    REQUIRE_OK(vqs_st_open(p.c_str(), &f));
    return st_ptr(f, vqs_st_close);
}

std::vector<float> read_f32(const vqs_st_file *f, const char *name)
{
    const vqs_st_tensor *t = vqs_st_find(f, name);
    REQUIRE(t != nullptr);
    std::vector<float> v(t->numel);
    REQUIRE_OK(vqs_st_read_f32(f, t, v.data(), 0));
    return v;
}

uint32_t bits(float x)
{
    uint32_t u;
    std::memcpy(&u, &x, 4);
    return u;
}

} // namespace

TEST_CASE("safetensors dtype names sizes and parsing", "[st]")
{
    const char *names[] = {"BOOL", "U8",  "I8",   "I16", "U16", "I32",     "U32",    "I64",
                           "U64",  "F16", "BF16", "F32", "F64", "F8_E4M3", "F8_E5M2"};
    const size_t sizes[] = {1, 1, 1, 2, 2, 4, 4, 8, 8, 2, 2, 4, 8, 1, 1};
    for (int i = 0; i <= VQS_ST_F8_E5M2; i++) {
        CHECK(std::string(vqs_st_dtype_name((vqs_st_dtype)i)) == names[i]);
        CHECK(vqs_st_dtype_size((vqs_st_dtype)i) == sizes[i]);
        vqs_st_dtype d;
        REQUIRE_OK(vqs_st_dtype_parse(names[i], &d));
        CHECK(d == (vqs_st_dtype)i);
    }
    vqs_st_dtype d;
    for (const char *s : {"F4", "F8_E8M0", "f32", "C64", "F8_E4M3FNUZ", ""})
        REQUIRE_ERR(vqs_st_dtype_parse(s, &d), VQS_EDTYPE);
}

TEST_CASE("safetensors write-read round trip of every dtype", "[st]")
{
    tmpdir t;
    std::string p = t.file("all.safetensors");
    vqs_st_writer *w = nullptr;
    REQUIRE_OK(vqs_st_writer_new(&w));
    writer_ptr wp(w, vqs_st_writer_free);
    // a shape per dtype: 1-D of odd length, 2-D, 3-D, a scalar, an empty one
    std::vector<std::vector<uint64_t>> shapes = {{7}, {3, 5}, {2, 3, 2}, {}, {4, 0}, {1}, {1, 1, 1, 1, 1, 1, 1, 9}};
    std::vector<std::vector<uint8_t>> datas;
    std::vector<std::string> tnames;
    uint32_t seed = 12345;
    for (int dt = 0; dt <= VQS_ST_F8_E5M2; dt++) {
        const std::vector<uint64_t> &sh = shapes[dt % shapes.size()];
        uint64_t numel = 1;
        for (uint64_t d : sh)
            numel *= d;
        std::vector<uint8_t> b(numel * vqs_st_dtype_size((vqs_st_dtype)dt));
        for (auto &c : b)
            c = (uint8_t)((seed = seed * 1103515245u + 12345u) >> 16);
        std::string name = std::string("t.") + vqs_st_dtype_name((vqs_st_dtype)dt);
        REQUIRE_OK(vqs_st_writer_add(w, name.c_str(), (vqs_st_dtype)dt, (int)sh.size(), sh.data(), b.data(), b.size()));
        datas.push_back(b);
        tnames.push_back(name);
    }
    REQUIRE_OK(vqs_st_writer_meta(w, "format", "pt"));
    REQUIRE_OK(vqs_st_writer_meta(w, "quote\"and\\back", "line\nbreak \xc3\xa9"));
    REQUIRE_OK(vqs_st_writer_save(w, p.c_str()));

    // the layout the reference writes: header length a multiple of 8,
    // padded with spaces, compact JSON with __metadata__ first
    auto bytes = read_bytes(p);
    REQUIRE(bytes.size() > 8);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | bytes[i];
    CHECK(hl % 8 == 0);
    std::string header(bytes.begin() + 8, bytes.begin() + 8 + (long)hl);
    CHECK_THAT(header, Catch::StartsWith("{\"__metadata__\":{\"format\":\"pt\","));
    CHECK(header.find_last_not_of(' ') + 1 > hl - 8);

    vqs_st_file *f = nullptr;
    REQUIRE_OK(vqs_st_open(p.c_str(), &f));
    st_ptr fp(f, vqs_st_close);
    CHECK(std::string(vqs_st_path(f)) == p);
    REQUIRE(vqs_st_count(f) == tnames.size());
    // offset order: the order added (empty tensors take no bytes but keep
    // their place only up to ties, which sort by name)
    const uint8_t *prev_end = nullptr;
    for (size_t i = 0; i < vqs_st_count(f); i++) {
        const vqs_st_tensor *ti = vqs_st_tensor_at(f, i);
        if (prev_end)
            CHECK((const uint8_t *)ti->data == prev_end);
        prev_end = (const uint8_t *)ti->data + ti->nbytes;
    }
    CHECK(vqs_st_tensor_at(f, tnames.size()) == nullptr);
    CHECK(prev_end == (const uint8_t *)vqs_st_tensor_at(f, 0)->data + (bytes.size() - 8 - hl));
    for (size_t k = 0; k < tnames.size(); k++) {
        const vqs_st_tensor *ti = vqs_st_find(f, tnames[k].c_str());
        REQUIRE(ti != nullptr);
        INFO(tnames[k]);
        const std::vector<uint64_t> &sh = shapes[k % shapes.size()];
        CHECK(ti->dtype == (vqs_st_dtype)k);
        REQUIRE(ti->ndim == (int)sh.size());
        for (size_t j = 0; j < sh.size(); j++)
            CHECK(ti->shape[j] == sh[j]);
        CHECK(ti->numel * vqs_st_dtype_size(ti->dtype) == datas[k].size());
        REQUIRE(ti->nbytes == datas[k].size());
        if (!datas[k].empty()) // memcmp of a null vector data() is UB even for 0 bytes
            CHECK(std::memcmp(ti->data, datas[k].data(), datas[k].size()) == 0);
        // the data buffer starts 8-aligned in the file
        CHECK((uintptr_t)vqs_st_tensor_at(f, 0)->data % 8 == 0);
    }
    CHECK(vqs_st_find(f, "t.nope") == nullptr);
    CHECK(vqs_st_find(f, "") == nullptr);
    REQUIRE(vqs_st_meta_count(f) == 2);
    const char *k0, *v0;
    vqs_st_meta_at(f, 1, &k0, &v0);
    CHECK(std::string(k0) == "quote\"and\\back");
    CHECK(std::string(v0) == "line\nbreak \xc3\xa9");
    CHECK(std::string(vqs_st_meta_get(f, "format")) == "pt");
    CHECK(vqs_st_meta_get(f, "absent") == nullptr);
    vqs_st_meta_at(f, 2, &k0, &v0);
    CHECK(k0 == nullptr);
    CHECK(v0 == nullptr);

    // saving again replaces the file, and no temporary file is left
    REQUIRE_OK(vqs_st_writer_save(w, p.c_str()));
    std::string ls = "ls -A '" + t.path + "' | wc -l";
    FILE *pp = popen(ls.c_str(), "r");
    REQUIRE(pp != nullptr);
    int nfiles = -1;
    REQUIRE(std::fscanf(pp, "%d", &nfiles) == 1);
    pclose(pp);
    CHECK(nfiles == 1);
}

TEST_CASE("safetensors empty file of no tensors and empty tensors", "[st]")
{
    tmpdir t;
    std::string p = t.file("none.safetensors");
    vqs_st_writer *w = nullptr;
    REQUIRE_OK(vqs_st_writer_new(&w));
    writer_ptr wp(w, vqs_st_writer_free);
    REQUIRE_OK(vqs_st_writer_save(w, p.c_str()));
    auto b = read_bytes(p);
    // "{}" padded to 8 bytes
    CHECK(std::string(b.begin(), b.end()) == std::string("\x08\0\0\0\0\0\0\0{}      ", 16));
    vqs_st_file *f = nullptr;
    REQUIRE_OK(vqs_st_open(p.c_str(), &f));
    CHECK(vqs_st_count(f) == 0);
    CHECK(vqs_st_meta_count(f) == 0);
    vqs_st_close(f);

    // empty tensors anywhere in the tiling, a scalar, trailing spaces
    std::string h = "{" + f32_entry("a", "[0]", "[0, 0]") + "," + f32_entry("b", "[]", "[0, 4]") + "," +
                    f32_entry("c", "[3, 0, 2]", "[4, 4]") + "," + f32_entry("d", "[0]", "[4, 4]") + "}   ";
    std::string okb = st_bytes(h, std::string("\0\0\x80\x3f", 4)); // alive until the file is closed
    auto ok = open_ok(okb);
    REQUIRE(vqs_st_count(ok.get()) == 4);
    // ties at one offset sort by end, then name
    CHECK(std::string(vqs_st_tensor_at(ok.get(), 0)->name) == "a");
    CHECK(std::string(vqs_st_tensor_at(ok.get(), 1)->name) == "b");
    CHECK(std::string(vqs_st_tensor_at(ok.get(), 2)->name) == "c");
    CHECK(std::string(vqs_st_tensor_at(ok.get(), 3)->name) == "d");
    const vqs_st_tensor *c = vqs_st_find(ok.get(), "c");
    CHECK(c->numel == 0);
    CHECK(c->nbytes == 0);
    float x = -1;
    REQUIRE_OK(vqs_st_read_f32(ok.get(), c, &x, 0));
    CHECK(x == -1); // nothing written
    const vqs_st_tensor *s = vqs_st_find(ok.get(), "b");
    CHECK(s->ndim == 0);
    CHECK(s->numel == 1);
    REQUIRE_OK(vqs_st_read_f32(ok.get(), s, &x, 0));
    CHECK(x == 1.0f);
}

TEST_CASE("safetensors conversions to float32 on known values", "[st]")
{
    tmpdir t;
    SECTION("F16: IEEE binary16")
    {
        // 1, -2, 65504 (max), 2^-14 (min normal), 2^-24 (min subnormal), -0, 1/3 rounded
        auto f = one_tensor(t, VQS_ST_F16, {7}, {0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x00, 0x04, 0x01, 0x00, 0x00, 0x80,
                                                 0x55, 0x35});
        auto v = read_f32(f.get(), "x");
        CHECK(v[0] == 1.0f);
        CHECK(v[1] == -2.0f);
        CHECK(v[2] == 65504.0f);
        CHECK(v[3] == std::ldexp(1.0f, -14));
        CHECK(v[4] == std::ldexp(1.0f, -24));
        CHECK(bits(v[5]) == 0x80000000u);
        CHECK(v[6] == 0.333251953125f);
    }
    SECTION("BF16: the top half of a float32")
    {
        // 1, -3, largest finite 0x7f7f = (2 - 2^-7) 2^127, 2^-133 (min subnormal), 0x3eaa = 0.33203125
        auto f = one_tensor(t, VQS_ST_BF16, {5}, {0x80, 0x3f, 0x40, 0xc0, 0x7f, 0x7f, 0x01, 0x00, 0xaa, 0x3e});
        auto v = read_f32(f.get(), "x");
        CHECK(v[0] == 1.0f);
        CHECK(v[1] == -3.0f);
        CHECK(v[2] == std::ldexp(255.0f, 120));
        CHECK(v[3] == std::ldexp(1.0f, -133));
        CHECK(v[4] == 0.33203125f);
    }
    SECTION("F8_E4M3 (FN): bias 7, max 448, no Inf")
    {
        // 0x38 = 1, 0x7e = 448, 0xfe = -448, 0x08 = 2^-6 (min normal), 0x01 = 2^-9, 0x07 = 7 * 2^-9, 0x3c = 1.5
        auto f = one_tensor(t, VQS_ST_F8_E4M3, {7}, {0x38, 0x7e, 0xfe, 0x08, 0x01, 0x07, 0x3c});
        auto v = read_f32(f.get(), "x");
        std::vector<float> want = {1.0f, 448.0f, -448.0f, 0.015625f, 0.001953125f, 0.013671875f, 1.5f};
        CHECK(v == want);
    }
    SECTION("F8_E5M2: bias 15, max 57344, with Inf")
    {
        // 0x3c = 1, 0x7b = 57344, 0x04 = 2^-14, 0x01 = 2^-16, 0xbe = -1.5, 0x03 = 3 * 2^-16
        auto f = one_tensor(t, VQS_ST_F8_E5M2, {6}, {0x3c, 0x7b, 0x04, 0x01, 0xbe, 0x03});
        auto v = read_f32(f.get(), "x");
        std::vector<float> want = {1.0f, 57344.0f, std::ldexp(1.0f, -14), std::ldexp(1.0f, -16), -1.5f,
                                   std::ldexp(3.0f, -16)};
        CHECK(v == want);
    }
    SECTION("F32 unaligned and F64 rounding")
    {
        auto f = one_tensor(t, VQS_ST_F64, {3}, {0, 0, 0, 0, 0, 0, 0x04, 0xc0,                     // -2.5
                                                 0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xb9, 0x3f,   // 0.1
                                                 0, 0, 0, 0, 0, 0, 0xb0, 0x36});                   // 2^-148
        auto v = read_f32(f.get(), "x");
        CHECK(v[0] == -2.5f);
        CHECK(v[1] == 0.1f); // round to nearest: 0x3dcccccd
        CHECK(bits(v[1]) == 0x3dcccccdu);
        CHECK(v[2] == std::ldexp(1.0f, -148));
    }
    SECTION("integers")
    {
        auto i8 = one_tensor(t, VQS_ST_I8, {3}, {0x80, 0xff, 0x7f});
        CHECK(read_f32(i8.get(), "x") == std::vector<float>{-128, -1, 127});
        auto u16 = one_tensor(t, VQS_ST_U16, {2}, {0xff, 0xff, 0x01, 0x00});
        CHECK(read_f32(u16.get(), "x") == std::vector<float>{65535, 1});
        auto i16 = one_tensor(t, VQS_ST_I16, {2}, {0x00, 0x80, 0xfe, 0xff});
        CHECK(read_f32(i16.get(), "x") == std::vector<float>{-32768, -2});
        auto u32 = one_tensor(t, VQS_ST_U32, {1}, {0xff, 0xff, 0xff, 0xff});
        CHECK(read_f32(u32.get(), "x") == std::vector<float>{4294967296.0f});
        auto i64 = one_tensor(t, VQS_ST_I64, {2}, {0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 1});
        CHECK(read_f32(i64.get(), "x") == std::vector<float>{-5, 72057594037927937.0f});
        auto u64 = one_tensor(t, VQS_ST_U64, {1}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
        CHECK(read_f32(u64.get(), "x") == std::vector<float>{18446744073709551616.0f});
        auto u8 = one_tensor(t, VQS_ST_U8, {2}, {0, 255});
        CHECK(read_f32(u8.get(), "x") == std::vector<float>{0, 255});
    }
    SECTION("BOOL is not read as float32")
    {
        auto f = one_tensor(t, VQS_ST_BOOL, {2}, {0, 1});
        float v[2];
        REQUIRE_ERR(vqs_st_read_f32(f.get(), vqs_st_find(f.get(), "x"), v, 0), VQS_EDTYPE);
        CHECK_THAT(std::string(vqs_errdetail()), Catch::Contains("tensor 'x'") && Catch::Contains("BOOL"));
    }
}

TEST_CASE("safetensors NaN and Inf are refused naming the tensor and the element", "[st]")
{
    tmpdir t;
    float v[24];
    SECTION("F32 2-D: row and column")
    {
        std::vector<float> x(12, 1.0f);
        x[7] = std::nanf("");
        std::vector<uint8_t> b(48);
        std::memcpy(b.data(), x.data(), 48);
        auto f = one_tensor(t, VQS_ST_F32, {3, 4}, b);
        const vqs_st_tensor *ti = vqs_st_find(f.get(), "x");
        REQUIRE_ERR(vqs_st_read_f32(f.get(), ti, v, 0), VQS_ENONFINITE);
        std::string d = vqs_errdetail();
        CHECK_THAT(d, Catch::EndsWith("one.safetensors: tensor 'x': element 7 (row 1, column 3) is NaN"));
        REQUIRE_OK(vqs_st_read_f32(f.get(), ti, v, 1));
        CHECK(std::isnan(v[7]));
        CHECK(v[11] == 1.0f);
    }
    SECTION("F16 3-D: index, -Inf")
    {
        std::vector<uint8_t> b(2 * 24, 0);
        b[2 * 17 + 1] = 0xfc; // 0xfc00: -Inf
        auto f = one_tensor(t, VQS_ST_F16, {2, 3, 4}, b);
        REQUIRE_ERR(vqs_st_read_f32(f.get(), vqs_st_find(f.get(), "x"), v, 0), VQS_ENONFINITE);
        CHECK_THAT(std::string(vqs_errdetail()), Catch::EndsWith("tensor 'x': element 17 (index [1, 1, 1]) is -Inf"));
    }
    SECTION("BF16 1-D +Inf, E4M3 NaN, E5M2 Inf and NaN")
    {
        auto bf = one_tensor(t, VQS_ST_BF16, {3}, {0, 0, 0x80, 0x7f, 0, 0});
        REQUIRE_ERR(vqs_st_read_f32(bf.get(), vqs_st_find(bf.get(), "x"), v, 0), VQS_ENONFINITE);
        CHECK_THAT(std::string(vqs_errdetail()), Catch::EndsWith("tensor 'x': element 1 is +Inf"));
        auto e4 = one_tensor(t, VQS_ST_F8_E4M3, {2}, {0x7e, 0xff});
        REQUIRE_ERR(vqs_st_read_f32(e4.get(), vqs_st_find(e4.get(), "x"), v, 0), VQS_ENONFINITE);
        CHECK_THAT(std::string(vqs_errdetail()), Catch::EndsWith("element 1 is NaN"));
        auto e5 = one_tensor(t, VQS_ST_F8_E5M2, {2}, {0x7b, 0x7c});
        REQUIRE_ERR(vqs_st_read_f32(e5.get(), vqs_st_find(e5.get(), "x"), v, 0), VQS_ENONFINITE);
        CHECK_THAT(std::string(vqs_errdetail()), Catch::EndsWith("element 1 is +Inf"));
        auto e5n = one_tensor(t, VQS_ST_F8_E5M2, {1}, {0x7e});
        REQUIRE_ERR(vqs_st_read_f32(e5n.get(), vqs_st_find(e5n.get(), "x"), v, 0), VQS_ENONFINITE);
    }
    SECTION("F64 beyond float32's range")
    {
        // 1e39 (0x4807 8d87 0000 0000 rounded) is finite in F64, Inf in float32
        double d = 1e39;
        std::vector<uint8_t> b(8);
        std::memcpy(b.data(), &d, 8);
        auto f = one_tensor(t, VQS_ST_F64, {1}, b);
        REQUIRE_ERR(vqs_st_read_f32(f.get(), vqs_st_find(f.get(), "x"), v, 0), VQS_ERANGE);
        CHECK_THAT(std::string(vqs_errdetail()), Catch::Contains("tensor 'x': element 0 is 1e+39"));
        REQUIRE_OK(vqs_st_read_f32(f.get(), vqs_st_find(f.get(), "x"), v, 1));
        CHECK(std::isinf(v[0]));
    }
}

TEST_CASE("safetensors file written by Python struct and json reads back exactly", "[st]")
{
    // tests/fixtures/safetensors/make_py_fixture.py wrote it (keys not in
    // offset order, unpadded header, data at an odd offset)
    vqs_st_file *f = nullptr;
    std::string p = VQS_SOURCE_DIR "/tests/fixtures/safetensors/py_written.safetensors";
    REQUIRE_OK(vqs_st_open(p.c_str(), &f));
    st_ptr fp(f, vqs_st_close);
    REQUIRE(vqs_st_count(f) == 7);
    const char *order[] = {"w.f32", "w.f16", "w.bf16", "ids.i32", "mask.u8", "x.f64", "empty"};
    for (size_t i = 0; i < 7; i++)
        CHECK(std::string(vqs_st_tensor_at(f, i)->name) == order[i]);
    CHECK(std::string(vqs_st_meta_get(f, "format")) == "pt");
    CHECK(std::string(vqs_st_meta_get(f, "note")) == "written by struct+json, caf\xc3\xa9!");

    const vqs_st_tensor *w = vqs_st_find(f, "w.f32");
    REQUIRE(w->ndim == 2);
    CHECK(w->shape[0] == 2);
    CHECK(w->shape[1] == 3);
    CHECK(((uintptr_t)w->data & 1) == 1);
    std::vector<float> f32 = read_f32(f, "w.f32");
    CHECK(f32 == std::vector<float>{0.5f, -1.25f, 0.1f, 3.0e38f, -0.0f, 1.0e-45f});
    CHECK(bits(f32[4]) == 0x80000000u);
    CHECK(bits(f32[5]) == 1u);
    CHECK(read_f32(f, "w.f16") == std::vector<float>{1.0f, -65504.0f, std::ldexp(1.0f, -24), 0.333251953125f});
    CHECK(read_f32(f, "w.bf16") == std::vector<float>{1.0f, -3.0f, std::ldexp(1.0f, -133)});
    CHECK(read_f32(f, "ids.i32") == std::vector<float>{-7.0f, 0.0f, 2147483648.0f});
    CHECK(read_f32(f, "mask.u8") == std::vector<float>{0, 1, 2, 254, 255});
    const vqs_st_tensor *x = vqs_st_find(f, "x.f64");
    CHECK(x->ndim == 0);
    CHECK(read_f32(f, "x.f64") == std::vector<float>{-2.5f});
    const vqs_st_tensor *e = vqs_st_find(f, "empty");
    CHECK(e->numel == 0);
    CHECK(e->shape[1] == 4);
}

TEST_CASE("safetensors stories260K matches the llama2.c checkpoint", "[st][data]")
{
    std::string st = data_path("llm_stories260K/stories260K.safetensors");
    std::string bin = data_path("llm_stories260K/stories260K.bin");
    vqs_st_file *f = nullptr;
    REQUIRE_OK(vqs_st_open(st.c_str(), &f));
    st_ptr fp(f, vqs_st_close);
    CHECK(vqs_st_count(f) == 47);
    const char *cfg = vqs_st_meta_get(f, "config");
    REQUIRE(cfg != nullptr);
    CHECK_THAT(std::string(cfg), Catch::Contains("\"dim\": 64"));
    for (size_t i = 0; i < vqs_st_count(f); i++) {
        const vqs_st_tensor *t = vqs_st_tensor_at(f, i);
        CHECK(vqs_st_find(f, t->name) == t);
        CHECK(t->dtype == VQS_ST_F32);
        std::vector<float> v(t->numel);
        REQUIRE_OK(vqs_st_read_f32(f, t, v.data(), 0));
    }
    const vqs_st_tensor *emb = vqs_st_find(f, "tok_embeddings.weight");
    REQUIRE(emb != nullptr);
    REQUIRE(emb->ndim == 2);
    CHECK(emb->shape[0] == 512);
    CHECK(emb->shape[1] == 64);
    std::vector<float> got(emb->numel);
    REQUIRE_OK(vqs_st_read_f32(f, emb, got.data(), 0));
    // the .bin: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
    // vocab_size, seq_len), then the token embedding table
    auto b = read_bytes(bin);
    REQUIRE(b.size() >= 28 + got.size() * 4);
    int32_t hdr[7];
    std::memcpy(hdr, b.data(), 28);
    CHECK(hdr[0] == 64);
    CHECK(std::abs(hdr[5]) == 512);
    std::vector<float> want(got.size());
    std::memcpy(want.data(), b.data() + 28, want.size() * 4);
    CHECK(std::memcmp(got.data(), want.data(), want.size() * 4) == 0);
}

// ---- refusals: one hand-built bad file each -----------------------------

TEST_CASE("safetensors refuses a file shorter than the length field", "[st][refuse]")
{
    refuse(std::string("\x02\0\0", 3), VQS_ETRUNC, {"3 bytes", "8-byte header length"});
    refuse("", VQS_ETRUNC, {"0 bytes"});
}

TEST_CASE("safetensors refuses a header length past the end of the file", "[st][refuse]")
{
    std::string b = st_bytes("{}");
    b[0] = 3;
    refuse(b, VQS_ETRUNC, {"header length 3", "past the end"});
}

TEST_CASE("safetensors refuses a header length above 100 MB", "[st][refuse]")
{
    std::string b = st_bytes("{}");
    b[3] = 0x10; // 2^28 + 2
    refuse(b, VQS_EHEADER, {"header length 268435458", "above the limit"});
    b[3] = 0;
    b[7] = (char)0x80; // 2^63 + 2: no overflow in the checks
    refuse(b, VQS_EHEADER, {"above the limit"});
}

TEST_CASE("safetensors refuses a header length below 2", "[st][refuse]")
{
    refuse(st_bytes("{"), VQS_EHEADER, {"header length 1", "too short"});
    refuse(st_bytes(""), VQS_EHEADER, {"header length 0"});
}

TEST_CASE("safetensors refuses a header that does not start with a brace", "[st][refuse]")
{
    refuse(st_bytes(" {}"), VQS_EHEADER, {"does not start with '{'", "0x20"});
    refuse(st_bytes("[]"), VQS_EHEADER, {"does not start with '{'"});
}

TEST_CASE("safetensors refuses malformed header JSON with its line and column", "[st][refuse]")
{
    refuse(st_bytes("{\"a\":{\"dtype\":\"F32\",}"), VQS_EHEADER, {"header JSON", "line 1, column"});
    refuse(st_bytes("{\"a\":1}\n}"), VQS_EHEADER, {"header JSON", "line 2"});
    refuse(st_bytes("{\"a\":\"\xff\"}"), VQS_EHEADER, {"header JSON"}); // not UTF-8
    refuse(st_bytes(std::string("{\"a\":\"\0\"}", 9)), VQS_EHEADER, {"header JSON"});
    refuse(st_bytes("{\"__metadata__\":{\"x\":\"\\u0000\"}}"), VQS_EHEADER, {"header JSON"});
}

TEST_CASE("safetensors refuses a tensor entry that is not an object", "[st][refuse]")
{
    refuse(st_bytes("{\"w\":[1,2]}"), VQS_EHEADER, {"tensor 'w'", "not an object"});
}

TEST_CASE("safetensors refuses a tensor entry missing a field", "[st][refuse]")
{
    refuse(st_bytes("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", raw(4)), VQS_EHEADER,
           {"tensor 'w'", "field 'dtype' is missing"});
    refuse(st_bytes("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", raw(4)), VQS_EHEADER,
           {"tensor 'w'", "field 'shape' is missing"});
    refuse(st_bytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", raw(4)), VQS_EHEADER,
           {"tensor 'w'", "field 'data_offsets' is missing"});
}

TEST_CASE("safetensors refuses a tensor entry with an unknown field", "[st][refuse]")
{
    refuse(st_bytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"offset\":0}}", raw(4)),
           VQS_EHEADER, {"tensor 'w'", "unknown field 'offset'"});
}

TEST_CASE("safetensors refuses a dtype that is not a string", "[st][refuse]")
{
    refuse(st_bytes("{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", raw(4)), VQS_EHEADER,
           {"tensor 'w'", "field 'dtype' is not a string"});
}

TEST_CASE("safetensors refuses an unknown dtype", "[st][refuse]")
{
    refuse(st_bytes("{\"w\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[0,1]}}", raw(1)), VQS_EDTYPE,
           {"tensor 'w'", "field 'dtype'", "'F4'"});
    refuse(st_bytes("{\"w\":{\"dtype\":\"float32\",\"shape\":[1],\"data_offsets\":[0,4]}}", raw(4)), VQS_EDTYPE,
           {"tensor 'w'", "'float32'"});
}

TEST_CASE("safetensors refuses a shape that is not an array of integers", "[st][refuse]")
{
    refuse(st_bytes("{" + f32_entry("w", "4", "[0,16]") + "}", raw(16)), VQS_EHEADER,
           {"tensor 'w'", "field 'shape' is not an array"});
    refuse(st_bytes("{" + f32_entry("w", "[2,2.0]", "[0,16]") + "}", raw(16)), VQS_EHEADER,
           {"tensor 'w'", "field 'shape': dimension 1 is not an integer"});
}

TEST_CASE("safetensors refuses a negative dimension", "[st][refuse]")
{
    refuse(st_bytes("{" + f32_entry("w", "[-1,4]", "[0,16]") + "}", raw(16)), VQS_ESHAPE,
           {"tensor 'w'", "field 'shape': dimension 0 is -1"});
}

TEST_CASE("safetensors refuses more than VQS_ST_MAX_NDIM dimensions", "[st][refuse]")
{
    refuse(st_bytes("{" + f32_entry("w", "[1,1,1,1,1,1,1,1,1]", "[0,4]") + "}", raw(4)), VQS_ESHAPE,
           {"tensor 'w'", "field 'shape': 9 dimensions"});
}

TEST_CASE("safetensors refuses a shape whose byte size overflows", "[st][refuse]")
{
    refuse(st_bytes("{" + f32_entry("w", "[4294967296,4294967296]", "[0,4]") + "}", raw(4)), VQS_ESHAPE,
           {"tensor 'w'", "field 'shape'", "overflows"});
    // 2^62 elements fit 64 bits, their 2^64 bytes do not
    refuse(st_bytes("{" + f32_entry("w", "[4611686018427387904]", "[0,4]") + "}", raw(4)), VQS_ESHAPE,
           {"tensor 'w'", "overflows"});
}

TEST_CASE("safetensors refuses data_offsets that are not two non-negative integers", "[st][refuse]")
{
    for (const char *o : {"[0]", "[0,4,8]", "[-1,4]", "[0,-4]", "[\"0\",4]", "[0,4.0]", "{}", "4"})
        refuse(st_bytes("{" + f32_entry("w", "[1]", o) + "}", raw(4)), VQS_EHEADER,
               {"tensor 'w'", "field 'data_offsets' is not two non-negative integers"});
    // beyond JSON's 64-bit integers: Jansson's overflow error
    refuse(st_bytes("{" + f32_entry("w", "[1]", "[0,18446744073709551616]") + "}", raw(4)), VQS_EHEADER,
           {"header JSON"});
}

TEST_CASE("safetensors refuses data_offsets with begin after end", "[st][refuse]")
{
    refuse(st_bytes("{" + f32_entry("w", "[1]", "[4,0]") + "}", raw(4)), VQS_ECORRUPT,
           {"tensor 'w'", "data_offsets [4, 0]", "begin is after end"});
}

TEST_CASE("safetensors refuses data_offsets past the data buffer", "[st][refuse]")
{
    refuse(st_bytes("{" + f32_entry("w", "[2]", "[0,8]") + "}", raw(4)), VQS_ECORRUPT,
           {"tensor 'w'", "data_offsets [0, 8]", "past the end of the data buffer (4 bytes)"});
    refuse(st_bytes("{" + f32_entry("w", "[2]", "[9223372036854775800,9223372036854775807]") + "}", raw(4)),
           VQS_ECORRUPT, {"tensor 'w'", "past the end"});
}

TEST_CASE("safetensors refuses a shape whose byte size disagrees with its offsets", "[st][refuse]")
{
    refuse(st_bytes("{" + f32_entry("layers.0.wq.weight", "[4, 8]", "[0, 96]") + "}", raw(96)), VQS_ESHAPE,
           {"bad.safetensors: tensor 'layers.0.wq.weight': data_offsets [0, 96]: 96 bytes, shape [4, 8] of F32 "
            "needs 128"});
    refuse(st_bytes("{\"e\":{\"dtype\":\"BF16\",\"shape\":[0,3],\"data_offsets\":[0,2]}}", raw(2)), VQS_ESHAPE,
           {"tensor 'e'", "2 bytes, shape [0, 3] of BF16 needs 0"});
}

TEST_CASE("safetensors refuses overlapping tensors", "[st][refuse]")
{
    refuse(st_bytes("{" + f32_entry("a", "[4]", "[0,16]") + "," + f32_entry("b", "[2]", "[8,16]") + "}", raw(16)),
           VQS_ECORRUPT, {"tensor 'b'", "data_offsets [8, 16] overlap tensor 'a' [0, 16]"});
    // the same bytes named twice
    refuse(st_bytes("{" + f32_entry("a", "[1]", "[0,4]") + "," + f32_entry("b", "[1]", "[0,4]") + "}", raw(4)),
           VQS_ECORRUPT, {"tensor 'b'", "overlap tensor 'a'"});
}

TEST_CASE("safetensors refuses a hole between tensors", "[st][refuse]")
{
    refuse(st_bytes("{" + f32_entry("a", "[1]", "[0,4]") + "," + f32_entry("b", "[1]", "[8,12]") + "}", raw(12)),
           VQS_ECORRUPT, {"tensor 'b'", "data_offsets [8, 12]", "bytes [4, 8)", "after tensor 'a'", "no holes"});
    refuse(st_bytes("{" + f32_entry("a", "[1]", "[4,8]") + "}", raw(8)), VQS_ECORRUPT,
           {"tensor 'a'", "bytes [0, 4)"});
}

TEST_CASE("safetensors refuses trailing bytes after the last tensor", "[st][refuse]")
{
    refuse(st_bytes("{" + f32_entry("a", "[1]", "[0,4]") + "}", raw(6)), VQS_ECORRUPT,
           {"data buffer is 6 bytes", "tensor 'a'", "2 trailing bytes"});
    refuse(st_bytes("{}", raw(3)), VQS_ECORRUPT, {"no tensors", "3 bytes"});
}

TEST_CASE("safetensors refuses a duplicate tensor name", "[st][refuse]")
{
    refuse(st_bytes("{" + f32_entry("w", "[1]", "[0,4]") + "," + f32_entry("w", "[1]", "[4,8]") + "}", raw(8)),
           VQS_EHEADER, {"header JSON", "duplicate", "\"w\""});
}

TEST_CASE("safetensors refuses __metadata__ that is not an object of strings", "[st][refuse]")
{
    refuse(st_bytes("{\"__metadata__\":[\"a\"]}"), VQS_EHEADER, {"__metadata__ is not an object"});
    refuse(st_bytes("{\"__metadata__\":{\"a\":\"b\",\"n\":3}}"), VQS_EHEADER, {"__metadata__: key 'n'", "not a string"});
    refuse(st_bytes("{\"__metadata__\":{\"a\":{\"b\":\"c\"}}}"), VQS_EHEADER, {"key 'a'"});
}

TEST_CASE("safetensors open refuses a missing file and a directory", "[st][refuse]")
{
    tmpdir t;
    vqs_st_file *f = nullptr;
    std::string p = t.file("absent.safetensors");
    REQUIRE_ERR(vqs_st_open(p.c_str(), &f), -ENOENT);
    CHECK_THAT(std::string(vqs_errdetail()), Catch::Contains(p));
    REQUIRE_ERR(vqs_st_open(t.path.c_str(), &f), VQS_EINVAL);
    CHECK_THAT(std::string(vqs_errdetail()), Catch::Contains("not a regular file"));
    // an on-disk file is checked like a buffer (and names its path)
    std::string b = st_bytes("{" + f32_entry("a", "[2]", "[0,4]") + "}", raw(4));
    std::string q = t.file("short.safetensors");
    write_bytes(q, b.data(), b.size());
    REQUIRE_ERR(vqs_st_open(q.c_str(), &f), VQS_ESHAPE);
    CHECK_THAT(std::string(vqs_errdetail()), Catch::StartsWith(q + ": tensor 'a'"));
    write_bytes(q, "abc", 3);
    REQUIRE_ERR(vqs_st_open(q.c_str(), &f), VQS_ETRUNC);
    CHECK(f == nullptr);
}

TEST_CASE("safetensors writer refuses bad tensors and unwritable paths", "[st][refuse]")
{
    vqs_st_writer *w = nullptr;
    REQUIRE_OK(vqs_st_writer_new(&w));
    writer_ptr wp(w, vqs_st_writer_free);
    float x[4] = {1, 2, 3, 4};
    uint64_t s4[] = {4}, s22[] = {2, 2}, s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 4};
    REQUIRE_OK(vqs_st_writer_add(w, "a", VQS_ST_F32, 1, s4, x, 16));
    REQUIRE_ERR(vqs_st_writer_add(w, "a", VQS_ST_F32, 1, s4, x, 16), VQS_EINVAL);
    CHECK_THAT(std::string(vqs_errdetail()), Catch::Contains("tensor 'a' was added already"));
    REQUIRE_ERR(vqs_st_writer_add(w, "", VQS_ST_F32, 1, s4, x, 16), VQS_EINVAL);
    REQUIRE_ERR(vqs_st_writer_add(w, "__metadata__", VQS_ST_F32, 1, s4, x, 16), VQS_EINVAL);
    REQUIRE_ERR(vqs_st_writer_add(w, "bad\xff", VQS_ST_F32, 1, s4, x, 16), VQS_EINVAL);
    REQUIRE_ERR(vqs_st_writer_add(w, "b", VQS_ST_F32, 2, s22, x, 12), VQS_EINVAL);
    CHECK_THAT(std::string(vqs_errdetail()), Catch::Contains("tensor 'b'") && Catch::Contains("needs 16"));
    REQUIRE_ERR(vqs_st_writer_add(w, "b", VQS_ST_F32, 9, s9, x, 16), VQS_EINVAL);
    REQUIRE_ERR(vqs_st_writer_add(w, "b", VQS_ST_F32, -1, s4, x, 16), VQS_EINVAL);
    REQUIRE_ERR(vqs_st_writer_add(w, "b", (vqs_st_dtype)99, 1, s4, x, 16), VQS_EINVAL);
    uint64_t huge[] = {1ull << 40, 1ull << 40};
    REQUIRE_ERR(vqs_st_writer_add(w, "b", VQS_ST_F32, 2, huge, x, 16), VQS_EINVAL);
    REQUIRE_ERR(vqs_st_writer_add(w, "b", VQS_ST_F32, 1, s4, nullptr, 16), VQS_EINVAL);
    REQUIRE_ERR(vqs_st_writer_meta(w, "k", nullptr), VQS_EINVAL);
    REQUIRE_ERR(vqs_st_writer_meta(w, "k", "\xc3"), VQS_EINVAL);
    REQUIRE_ERR(vqs_st_writer_save(w, "/nonexistent-dir/x.safetensors"), -ENOENT);
    CHECK_THAT(std::string(vqs_errdetail()), Catch::Contains("/nonexistent-dir/x.safetensors"));
}
