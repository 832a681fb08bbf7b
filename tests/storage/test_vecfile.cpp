// Tests for storage/vecfile.c: readers, writers, and one test per kind of
// bad input, each checking its error code and that the message names the
// file and the fault.
#include "vqs_test.hpp"

#include <cmath>
#include <csignal>
#include <cstring>
#include <sys/resource.h>
#include <sys/wait.h>

using namespace vqs_test;

namespace {

std::vector<unsigned char> texmex(const std::vector<std::vector<float>> &rows)
{
    std::vector<unsigned char> b;
    for (auto &r : rows) {
        int32_t d = (int32_t)r.size();
        b.insert(b.end(), (unsigned char *)&d, (unsigned char *)&d + 4);
        b.insert(b.end(), (const unsigned char *)r.data(), (const unsigned char *)(r.data() + r.size()));
    }
    return b;
}

// An npy file by hand: version major.0, header dict text as given.
std::vector<unsigned char> npy(int major, const std::string &dict, const void *data, size_t len,
                               size_t align = 64)
{
    std::string h = dict;
    size_t pre = major == 1 ? 10 : 12;
    size_t tot = pre + h.size() + 1;
    h += std::string((align - tot % align) % align, ' ') + "\n";
    std::vector<unsigned char> b = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0};
    uint32_t hl = (uint32_t)h.size();
    if (major == 1) {
        b.push_back(hl & 0xff);
        b.push_back(hl >> 8);
    } else {
        for (int i = 0; i < 4; i++)
            b.push_back((hl >> (8 * i)) & 0xff);
    }
    b.insert(b.end(), h.begin(), h.end());
    b.insert(b.end(), (const unsigned char *)data, (const unsigned char *)data + len);
    return b;
}

std::string dict(const std::string &descr, const std::string &shape, bool fortran = false)
{
    return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
           ", 'shape': " + shape + ", }";
}

// Opens bytes written to a file named name; expects error code; returns detail.
std::string expect_fail(const tmpdir &t, const std::string &name,
                        const std::vector<unsigned char> &bytes, int code,
                        const vqs_vecfile_opts *o = nullptr)
{
    std::string p = t.file(name);
    write_bytes(p, bytes.data(), bytes.size());
    vqs_vecfile *vf = nullptr;
    int rc = vqs_vecfile_open(p.c_str(), o, &vf);
    std::string det = vqs_errdetail();
    INFO(name << " -> " << vqs_err_name(rc) << ": " << det);
    REQUIRE(rc == code);
    REQUIRE(vf == nullptr);
    REQUIRE(det.find(p) != std::string::npos); // names the file
    return det;
}

} // namespace

TEST_CASE("fvecs, ivecs, npy write and read back exactly", "[storage][vecfile]")
{
    tmpdir t;
    const size_t n = 37, d = 17;
    auto x = synth(n, d, 11);
    std::vector<int32_t> ids(n * d);
    for (size_t i = 0; i < ids.size(); i++)
        ids[i] = (int32_t)(i * 7919 % 100003) - 5000;

    REQUIRE_OK(vqs_write_fvecs(t.file("a.fvecs").c_str(), n, d, x.data()));
    REQUIRE_OK(vqs_write_ivecs(t.file("a.ivecs").c_str(), n, d, ids.data()));
    REQUIRE_OK(vqs_write_npy(t.file("a.npy").c_str(), n, d, VQS_DT_F32, x.data()));
    std::vector<uint16_t> h(n * d);
    for (size_t i = 0; i < h.size(); i++)
        h[i] = vqs_f32_to_f16(x[i]);
    REQUIRE_OK(vqs_write_npy(t.file("h.npy").c_str(), n, d, VQS_DT_F16, h.data()));

    for (const char *name : {"a.fvecs", "a.npy"}) {
        auto vf = open_vecfile(t.file(name));
        REQUIRE(vqs_vecfile_n(vf.get()) == n);
        REQUIRE(vqs_vecfile_d(vf.get()) == d);
        REQUIRE(vqs_vecfile_dtype(vf.get()) == VQS_DT_F32);
        const float *v;
        size_t ld;
        REQUIRE_OK(vqs_vecfile_f32_view(vf.get(), &v, &ld));
        // fvecs: the row header sits between rows; the view is strided
        REQUIRE(ld == (std::string(name) == "a.fvecs" ? d + 1 : d));
        for (size_t i = 0; i < n; i++)
            REQUIRE(std::memcmp(v + i * ld, &x[i * d], d * 4) == 0);
        std::vector<float> y(n * d);
        REQUIRE_OK(vqs_vecfile_read_f32(vf.get(), 0, n, y.data()));
        REQUIRE(y == x);
        REQUIRE_ERR(vqs_vecfile_read_f32(vf.get(), n - 1, 2, y.data()), VQS_ERANGE);
    }
    {
        auto vf = open_vecfile(t.file("h.npy"));
        REQUIRE(vqs_vecfile_dtype(vf.get()) == VQS_DT_F16);
        std::vector<float> y(n * d);
        REQUIRE_OK(vqs_vecfile_read_f32(vf.get(), 0, n, y.data()));
        for (size_t i = 0; i < n * d; i++)
            REQUIRE(y[i] == vqs_f16_to_f32(h[i]));
        const float *v;
        size_t ld;
        REQUIRE_ERR(vqs_vecfile_f32_view(vf.get(), &v, &ld), VQS_EDTYPE);
    }
    {
        auto vf = open_vecfile(t.file("a.ivecs"));
        REQUIRE(vqs_vecfile_dtype(vf.get()) == VQS_DT_I32);
        std::vector<int64_t> y(n * d);
        REQUIRE_OK(vqs_vecfile_read_i64(vf.get(), 0, n, y.data()));
        for (size_t i = 0; i < n * d; i++)
            REQUIRE(y[i] == ids[i]);
        const int32_t *v;
        size_t ld;
        REQUIRE_OK(vqs_vecfile_i32_view(vf.get(), &v, &ld));
        REQUIRE(v[3 * ld + 2] == ids[3 * d + 2]);
    }
    // the npy writer's header is 64-byte aligned, as numpy's
    auto bytes = read_bytes(t.file("a.npy"));
    REQUIRE((bytes.size() - n * d * 4) % 64 == 0);
    // no temporary files left behind
    REQUIRE(std::system(("test $(ls " + t.path + " | wc -l) -eq 4").c_str()) == 0);
}

TEST_CASE("npy format versions 1, 2 and 3, any header padding, bvecs, raw float32",
          "[storage][vecfile]")
{
    tmpdir t;
    float v[6] = {1, 2, 3, 4, 5, 6.5f};
    for (int major : {1, 2, 3}) {
        for (size_t align : {64, 16, 1}) {
            auto b = npy(major, dict("<f4", "(2, 3)"), v, sizeof v, align);
            std::string p = t.file("v" + std::to_string(major) + "_" + std::to_string(align) + ".npy");
            write_bytes(p, b.data(), b.size());
            auto vf = open_vecfile(p);
            REQUIRE(vqs_vecfile_n(vf.get()) == 2);
            REQUIRE(vqs_vecfile_d(vf.get()) == 3);
            std::vector<float> y(6);
            REQUIRE_OK(vqs_vecfile_read_f32(vf.get(), 0, 2, y.data()));
            REQUIRE(std::memcmp(y.data(), v, sizeof v) == 0);
            const float *view;
            size_t ld;
            REQUIRE_OK(vqs_vecfile_f32_view(vf.get(), &view, &ld));
            REQUIRE((uintptr_t)view % 4 == 0); // misaligned payloads are copied
            REQUIRE(view[5] == 6.5f);
        }
    }
    // numpy's own spelling variants: no trailing comma, other key order, double quotes
    {
        auto b = npy(1, "{\"shape\": (2, 3), \"fortran_order\": False, \"descr\": \"<f4\"}", v, sizeof v);
        write_bytes(t.file("q.npy"), b.data(), b.size());
        auto vf = open_vecfile(t.file("q.npy"));
        REQUIRE(vqs_vecfile_d(vf.get()) == 3);
    }
    // npy magic wins over the extension
    {
        auto b = npy(1, dict("<f4", "(3, 2)"), v, sizeof v);
        write_bytes(t.file("noext.dat"), b.data(), b.size());
        auto vf = open_vecfile(t.file("noext.dat"));
        REQUIRE(vqs_vecfile_format(vf.get()) == VQS_FMT_NPY);
        REQUIRE(vqs_vecfile_d(vf.get()) == 2);
    }
    // bvecs: uint8 values after an int32 dimension
    {
        std::vector<unsigned char> b;
        for (int r = 0; r < 3; r++) {
            int32_t d = 5;
            b.insert(b.end(), (unsigned char *)&d, (unsigned char *)&d + 4);
            for (int j = 0; j < 5; j++)
                b.push_back((unsigned char)(r * 50 + j * 30));
        }
        write_bytes(t.file("a.bvecs"), b.data(), b.size());
        auto vf = open_vecfile(t.file("a.bvecs"));
        REQUIRE(vqs_vecfile_n(vf.get()) == 3);
        REQUIRE(vqs_vecfile_dtype(vf.get()) == VQS_DT_U8);
        std::vector<float> y(15);
        REQUIRE_OK(vqs_vecfile_read_f32(vf.get(), 0, 3, y.data()));
        REQUIRE(y[14] == 2 * 50 + 4 * 30);
    }
    // raw float32 with a given dimension
    {
        write_bytes(t.file("a.f32"), v, sizeof v);
        vqs_vecfile_opts o = {};
        o.raw_dim = 2;
        auto vf = open_vecfile(t.file("a.f32"), &o);
        REQUIRE(vqs_vecfile_n(vf.get()) == 3);
        REQUIRE(vqs_vecfile_d(vf.get()) == 2);
        o.raw_dim = 4;
        expect_fail(t, "b.f32", std::vector<unsigned char>((unsigned char *)v, (unsigned char *)v + sizeof v),
                    VQS_ETRUNC, &o);
        vqs_vecfile *vf2;
        REQUIRE_ERR(vqs_vecfile_open(t.file("a.f32").c_str(), nullptr, &vf2), VQS_EINVAL);
    }
}

TEST_CASE("bad input: truncated files", "[storage][vecfile][errors]")
{
    tmpdir t;
    auto f = texmex({{1, 2, 3}, {4, 5, 6}});
    auto cut = f;
    cut.resize(f.size() - 3); // last row loses most of a value
    auto det = expect_fail(t, "cut.fvecs", cut, VQS_ETRUNC);
    REQUIRE(det.find("row 1") != std::string::npos);
    cut.resize(16 + 2); // second row header cut in half
    det = expect_fail(t, "cut2.fvecs", cut, VQS_ETRUNC);
    REQUIRE(det.find("row 1") != std::string::npos);
    expect_fail(t, "tiny.fvecs", {1, 0}, VQS_ETRUNC);
    expect_fail(t, "cut.ivecs", std::vector<unsigned char>(f.begin(), f.end() - 4), VQS_ETRUNC);
    expect_fail(t, "cut.bvecs", {3, 0, 0, 0, 1, 2}, VQS_ETRUNC);

    float v[6] = {1, 2, 3, 4, 5, 6};
    auto b = npy(1, dict("<f4", "(2, 3)"), v, sizeof v);
    det = expect_fail(t, "data.npy", std::vector<unsigned char>(b.begin(), b.end() - 1), VQS_ETRUNC);
    REQUIRE(det.find("(2, 3)") != std::string::npos);
    expect_fail(t, "header.npy", std::vector<unsigned char>(b.begin(), b.begin() + 40), VQS_ETRUNC);
    expect_fail(t, "preamble.npy", std::vector<unsigned char>(b.begin(), b.begin() + 7), VQS_ETRUNC);
    auto b2 = npy(2, dict("<f4", "(2, 3)"), v, sizeof v);
    expect_fail(t, "preamble2.npy", std::vector<unsigned char>(b2.begin(), b2.begin() + 11), VQS_ETRUNC);
}

TEST_CASE("bad input: empty files", "[storage][vecfile][errors]")
{
    tmpdir t;
    expect_fail(t, "e.fvecs", {}, VQS_EEMPTY);
    expect_fail(t, "e.npy", {}, VQS_EEMPTY);
    vqs_vecfile_opts o = {};
    o.raw_dim = 4;
    expect_fail(t, "e.f32", {}, VQS_EEMPTY, &o);
}

TEST_CASE("bad input: rows with inconsistent dimensions", "[storage][vecfile][errors]")
{
    tmpdir t;
    auto det = expect_fail(t, "mix.fvecs", texmex({{1, 2, 3}, {4, 5, 6}, {7, 8}}), VQS_EDIMMISMATCH);
    REQUIRE(det.find("row 2: dimension 2, expected 3") != std::string::npos);
    expect_fail(t, "mix.ivecs", texmex({{1, 2}, {4, 5, 6}}), VQS_EDIMMISMATCH);
}

TEST_CASE("bad input: a header that lies about the shape", "[storage][vecfile][errors]")
{
    tmpdir t;
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    // claims fewer rows than the data holds
    auto det = expect_fail(t, "short.npy", npy(1, dict("<f4", "(1, 4)"), v, sizeof v), VQS_ESHAPE);
    REQUIRE(det.find("32") != std::string::npos);
    // claims more rows than the data holds
    expect_fail(t, "long.npy", npy(1, dict("<f4", "(3, 4)"), v, sizeof v), VQS_ETRUNC);
    // a shape whose byte size overflows
    expect_fail(t, "huge.npy", npy(1, dict("<f4", "(18446744073709551615, 4)"), v, sizeof v),
                VQS_ESHAPE);
    expect_fail(t, "over.npy", npy(1, dict("<f4", "(99999999999999999999999, 4)"), v, sizeof v),
                VQS_ESHAPE);
    // wrong number of dimensions
    det = expect_fail(t, "1d.npy", npy(1, dict("<f4", "(8,)"), v, sizeof v), VQS_ESHAPE);
    REQUIRE(det.find("expected 2") != std::string::npos);
    expect_fail(t, "3d.npy", npy(1, dict("<f4", "(2, 2, 2)"), v, sizeof v), VQS_ESHAPE);
}

TEST_CASE("bad input: dimension zero or absurdly large", "[storage][vecfile][errors]")
{
    tmpdir t;
    int32_t zero[1] = {0};
    expect_fail(t, "zero.fvecs", std::vector<unsigned char>((unsigned char *)zero, (unsigned char *)zero + 4),
                VQS_EBADDIM);
    int32_t big[2] = {1 << 30, 0};
    auto det = expect_fail(t, "big.fvecs",
                           std::vector<unsigned char>((unsigned char *)big, (unsigned char *)big + 8),
                           VQS_EBADDIM);
    REQUIRE(det.find("1073741824") != std::string::npos);
    int32_t neg[2] = {-5, 0};
    expect_fail(t, "neg.ivecs", std::vector<unsigned char>((unsigned char *)neg, (unsigned char *)neg + 8),
                VQS_EBADDIM);
    float v[4] = {};
    expect_fail(t, "d0.npy", npy(1, dict("<f4", "(4, 0)"), v, 0), VQS_EBADDIM);
    expect_fail(t, "dbig.npy", npy(1, dict("<f4", "(1, 100000)"), v, sizeof v), VQS_EBADDIM);
    // the limit is configurable
    vqs_vecfile_opts o = {};
    o.max_dim = 2;
    expect_fail(t, "lim.fvecs", texmex({{1, 2, 3}}), VQS_EBADDIM, &o);
}

TEST_CASE("bad input: Fortran order", "[storage][vecfile][errors]")
{
    tmpdir t;
    float v[4] = {1, 2, 3, 4};
    auto det = expect_fail(t, "f.npy", npy(1, dict("<f4", "(2, 2)", true), v, sizeof v), VQS_EORDER);
    REQUIRE(det.find("Fortran") != std::string::npos);
}

TEST_CASE("bad input: unsupported dtypes, versions and headers", "[storage][vecfile][errors]")
{
    tmpdir t;
    double v[4] = {1, 2, 3, 4};
    for (const char *dt : {"<f8", ">f4", "<i4", "|u1", "<i8", "<c8", "=f4"}) {
        auto det = expect_fail(t, "dt.npy", npy(1, dict(dt, "(2, 2)"), v, sizeof v), VQS_EDTYPE);
        REQUIRE(det.find(dt) != std::string::npos);
    }
    auto b = npy(1, dict("<f4", "(2, 2)"), v, 16);
    auto bad = b;
    bad[6] = 4;
    expect_fail(t, "ver.npy", bad, VQS_EFORMAT);
    bad = b;
    bad[7] = 1;
    expect_fail(t, "minor.npy", bad, VQS_EFORMAT);
    bad = b;
    bad[1] = 'X';
    expect_fail(t, "magic.npy", bad, VQS_EFORMAT);
    for (const char *h : {"{'descr': '<f4', 'shape': (2, 2), }",          // missing key
                          "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': 1}",
                          "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)}",
                          "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 2)}",
                          "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -2)}",
                          "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}",
                          "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)} junk",
                          "['descr']", "{'descr': '<f4'"})
        expect_fail(t, "hdr.npy", npy(1, h, v, 16), VQS_EHEADER);
    expect_fail(t, "what.xyz", {1, 2, 3, 4}, VQS_EFORMAT);
}

TEST_CASE("bad input: NaN and Inf are reported with their row", "[storage][vecfile][errors]")
{
    tmpdir t;
    auto rows = std::vector<std::vector<float>>(10, std::vector<float>(5, 1.0f));
    rows[7][3] = NAN;
    auto det = expect_fail(t, "nan.fvecs", texmex(rows), VQS_ENONFINITE);
    REQUIRE(det.find("row 7") != std::string::npos);
    REQUIRE(det.find("NaN") != std::string::npos);
    rows[7][3] = 1;
    rows[4][0] = -INFINITY;
    det = expect_fail(t, "inf.fvecs", texmex(rows), VQS_ENONFINITE);
    REQUIRE(det.find("row 4") != std::string::npos);
    REQUIRE(det.find("Inf") != std::string::npos);

    float v[6] = {1, 2, 3, 4, INFINITY, 6};
    det = expect_fail(t, "inf.npy", npy(1, dict("<f4", "(3, 2)"), v, sizeof v), VQS_ENONFINITE);
    REQUIRE(det.find("row 2") != std::string::npos);
    uint16_t h[4] = {0x3c00, 0x3c00, 0x3c00, 0x7e00}; // half NaN
    det = expect_fail(t, "nan16.npy", npy(3, dict("<f2", "(2, 2)"), h, sizeof h), VQS_ENONFINITE);
    REQUIRE(det.find("row 1") != std::string::npos);
    // allowed on request
    vqs_vecfile_opts o = {};
    o.allow_nonfinite = 1;
    auto vf = open_vecfile(t.file("inf.fvecs"), &o);
    REQUIRE(vqs_vecfile_n(vf.get()) == 10);
}

TEST_CASE("open errors: missing file, directory, NULL", "[storage][vecfile][errors]")
{
    tmpdir t;
    vqs_vecfile *vf = nullptr;
    REQUIRE_ERR(vqs_vecfile_open(t.file("nope.fvecs").c_str(), nullptr, &vf), -ENOENT);
    REQUIRE(std::string(vqs_errdetail()).find("nope.fvecs") != std::string::npos);
    REQUIRE_ERR(vqs_vecfile_open(t.path.c_str(), nullptr, &vf), VQS_EINVAL);
    REQUIRE_ERR(vqs_vecfile_open(nullptr, nullptr, &vf), VQS_EINVAL);
}

TEST_CASE("writers: a failed write leaves the existing file unchanged", "[storage][vecfile][errors]")
{
    tmpdir t;
    std::string p = t.file("keep.fvecs");
    auto x = synth(4, 8, 3);
    REQUIRE_OK(vqs_write_fvecs(p.c_str(), 4, 8, x.data()));
    auto before = read_bytes(p);
    // a child process with a 4 KiB file-size limit tries to overwrite it with
    // 64 KiB: the write fails with EFBIG and must not touch the old file
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {4096, 4096};
        setrlimit(RLIMIT_FSIZE, &rl);
        signal(SIGXFSZ, SIG_IGN);
        std::vector<float> big(16384, 1.0f);
        int rc = vqs_write_fvecs(p.c_str(), 128, 128, big.data());
        _exit(rc == -EFBIG ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    REQUIRE(WIFEXITED(st));
    REQUIRE(WEXITSTATUS(st) == 0);
    REQUIRE(read_bytes(p) == before);
    REQUIRE(std::system(("test $(ls " + t.path + " | wc -l) -eq 1").c_str()) == 0); // temp removed
    REQUIRE_ERR(vqs_write_fvecs(t.file("no/such/dir.fvecs").c_str(), 4, 8, x.data()), -ENOENT);
    REQUIRE_ERR(vqs_write_fvecs(p.c_str(), 4, 0, x.data()), VQS_EINVAL);
    REQUIRE_ERR(vqs_write_npy(p.c_str(), 4, 8, VQS_DT_I32, x.data()), VQS_EINVAL);
    REQUIRE(read_bytes(p) == before);
}

TEST_CASE("real data: siftsmall and sts15k shapes", "[storage][vecfile][data]")
{
    auto base = open_vecfile(data_path("siftsmall/siftsmall_base.fvecs"));
    REQUIRE(vqs_vecfile_n(base.get()) == 10000);
    REQUIRE(vqs_vecfile_d(base.get()) == 128);
    auto q = open_vecfile(data_path("siftsmall/sift_query1000.fvecs"));
    REQUIRE(vqs_vecfile_n(q.get()) == 1000);
    auto gt = open_vecfile(data_path("siftsmall/sift_query1000_groundtruth.ivecs"));
    REQUIRE(vqs_vecfile_n(gt.get()) == 1000);
    REQUIRE(vqs_vecfile_d(gt.get()) == 100);
    auto sts = open_vecfile(data_path("sts15k_bert768/base.fvecs"));
    REQUIRE(vqs_vecfile_n(sts.get()) == 14004);
    REQUIRE(vqs_vecfile_d(sts.get()) == 768);
    // the row-id arrays are integer npy files: refused with a clear dtype error
    vqs_vecfile *vf = nullptr;
    std::string rid = data_path("sts15k_bert768/base_rowids.npy");
    int rc = vqs_vecfile_open(rid.c_str(), nullptr, &vf);
    REQUIRE(rc == VQS_EDTYPE);
    REQUIRE(std::string(vqs_errdetail()).find("base_rowids.npy") != std::string::npos);
    // headerless float32: the fiori RAG embeddings, 384-d
    vqs_vecfile_opts o = {};
    o.raw_dim = 384;
    auto fi = open_vecfile(data_path("fiori_docs_minilm384/embeddings.bin"), &o);
    REQUIRE(vqs_vecfile_n(fi.get()) == 778);
}
