// Tests for storage/vecfile_jsonl.c, the JSON Lines vector reader, and for
// the vqs commands that read it (eval, import, search). Each bad input is
// checked for its error code and for the file, the line and the field in
// the message.
#include "vqs_test.hpp"

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

using namespace vqs_test;

namespace {

// One JSONL line: {"id": ..., "vector": [...], extra} (id and extra may be "").
std::string jrow(const float *x, size_t d, const std::string &id = "", const std::string &extra = "",
                 const char *key = "vector")
{
    std::string s = "{";
    if (!id.empty())
        s += "\"id\": " + id + ", ";
    s += std::string("\"") + key + "\": [";
    char b[32];
    for (size_t j = 0; j < d; j++) {
        // %.9g round-trips float32; integral values come out as JSON integers
        std::snprintf(b, sizeof b, "%s%.9g", j ? ", " : "", (double)x[j]);
        s += b;
    }
    s += "]";
    if (!extra.empty())
        s += ", " + extra;
    return s + "}";
}

void write_text(const std::string &path, const std::string &s) { write_bytes(path, s.data(), s.size()); }

// Opens text written to t/name; expects code; returns the detail, which must
// name the file.
std::string jfail(const tmpdir &t, const std::string &text, int code, const vqs_vecfile_opts *o = nullptr,
                  const std::string &name = "bad.jsonl")
{
    std::string p = t.file(name);
    write_text(p, text);
    vqs_vecfile *vf = nullptr;
    int rc = vqs_vecfile_open(p.c_str(), o, &vf);
    std::string det = vqs_errdetail();
    INFO(text.substr(0, 200) << " -> " << vqs_err_name(rc) << ": " << det);
    REQUIRE(rc == code);
    REQUIRE(vf == nullptr);
    REQUIRE(det.find(p) != std::string::npos);
    return det;
}

#define REQUIRE_HAS(hay, needle)                                                                   \
    do {                                                                                           \
        INFO("message: " << (hay));                                                                \
        REQUIRE((hay).find(needle) != std::string::npos);                                          \
    } while (0)

// Runs a shell command; returns its exit status and stderr in *err.
int run(const tmpdir &t, const std::string &cmd, std::string *err = nullptr)
{
    std::string ef = t.file("stderr.txt");
    int st = std::system((cmd + " >" + t.file("stdout.txt") + " 2>" + ef).c_str());
    auto e = read_bytes(ef);
    if (err)
        *err = std::string(e.begin(), e.end());
    INFO(cmd << "\nstderr: " << std::string(e.begin(), e.end()));
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string cli() { return std::string(VQS_CLI_PATH); }

} // namespace

TEST_CASE("jsonl: rows read back exactly as the fvecs of the same numbers", "[storage][vecfile][jsonl]")
{
    tmpdir t;
    const size_t n = 53, d = 19;
    auto x = synth(n, d, 21);
    for (size_t i = 0; i < n; i++)
        x[i * d] = (float)(int)(x[i * d] * 10); // integers, written without a fraction
    x[5 * d + 1] = 3.4028235e38f;               // FLT_MAX (written as 3.40282347e+38, above
                                                // it: rounds down) and the smallest subnormal
    x[6 * d + 1] = -1.40129846e-45f;
    REQUIRE_OK(vqs_write_fvecs(t.file("x.fvecs").c_str(), n, d, x.data()));
    // "embedding" on some lines, a payload field on others, blank lines,
    // CRLF line ends, a byte-order mark and no final newline
    std::string s = "\xEF\xBB\xBF";
    for (size_t i = 0; i < n; i++) {
        s += jrow(&x[i * d], d, "", i % 3 == 0 ? "\"title\": \"row " + std::to_string(i) + "\"" : "",
                  i % 4 == 1 ? "embedding" : "vector");
        s += i % 5 == 2 ? "\r\n" : i % 7 == 3 ? "\n  \n" : "\n";
    }
    s.pop_back();
    for (const char *name : {"x.jsonl", "x.NDJSON"}) {
        write_text(t.file(name), s);
        auto vf = open_vecfile(t.file(name));
        auto ref = open_vecfile(t.file("x.fvecs"));
        REQUIRE(vqs_vecfile_format(vf.get()) == VQS_FMT_JSONL);
        REQUIRE(vqs_vecfile_n(vf.get()) == n);
        REQUIRE(vqs_vecfile_d(vf.get()) == d);
        REQUIRE(vqs_vecfile_dtype(vf.get()) == VQS_DT_F32);
        std::vector<float> a(n * d), b(n * d);
        REQUIRE_OK(vqs_vecfile_read_f32(vf.get(), 0, n, a.data()));
        REQUIRE_OK(vqs_vecfile_read_f32(ref.get(), 0, n, b.data()));
        REQUIRE(std::memcmp(a.data(), b.data(), n * d * sizeof(float)) == 0);
        const float *v;
        size_t ld;
        REQUIRE_OK(vqs_vecfile_f32_view(vf.get(), &v, &ld));
        REQUIRE(ld == d);
        REQUIRE(std::memcmp(v, b.data(), n * d * sizeof(float)) == 0);
        // no ids, and payloads only when asked for
        const int64_t *ids = (const int64_t *)1;
        REQUIRE_OK(vqs_vecfile_ids(vf.get(), &ids));
        REQUIRE(ids == nullptr);
        REQUIRE(vqs_vecfile_pids(vf.get()) == nullptr);
        REQUIRE(vqs_vecfile_payload(vf.get(), 0) == nullptr);
    }
    // the binary formats have no ids either
    auto ref = open_vecfile(t.file("x.fvecs"));
    const int64_t *ids = (const int64_t *)1;
    REQUIRE_OK(vqs_vecfile_ids(ref.get(), &ids));
    REQUIRE(ids == nullptr);
    // the same through the memory entry point and the load helper
    vqs_vecfile *vm = nullptr;
    std::vector<uint32_t> mem((s.size() + 3) / 4);
    std::memcpy(mem.data(), s.data(), s.size());
    REQUIRE_OK(vqs_vecfile_open_mem(mem.data(), s.size(), "m.jsonl", nullptr, &vm));
    vecfile_ptr vmp(vm, vqs_vecfile_close);
    REQUIRE(vqs_vecfile_n(vm) == n);
    float *lx = nullptr;
    size_t ln = 0, ldim = 0;
    REQUIRE_OK(vqs_vecfile_load_f32(t.file("x.jsonl").c_str(), nullptr, &lx, &ln, &ldim));
    REQUIRE(ln == n);
    REQUIRE(ldim == d);
    REQUIRE(std::memcmp(lx, x.data(), n * d * sizeof(float)) == 0);
    std::free(lx);
}

TEST_CASE("jsonl: ids (integers and UUIDs) and payloads", "[storage][vecfile][jsonl]")
{
    tmpdir t;
    const size_t n = 40, d = 5;
    auto x = synth(n, d, 22);
    std::string s;
    for (size_t i = 0; i < n; i++)
        s += jrow(&x[i * d], d, std::to_string(i == 7 ? 9223372036854775807ull : 1000 + 3 * i),
                  i % 2 ? "\"title\": \"t" + std::to_string(i) + "\", \"tags\": [1, {\"a\": null}]" : "") +
             "\n";
    write_text(t.file("ids.jsonl"), s);
    {
        auto vf = open_vecfile(t.file("ids.jsonl"));
        const int64_t *ids = nullptr;
        REQUIRE_OK(vqs_vecfile_ids(vf.get(), &ids));
        REQUIRE(ids != nullptr);
        const vqs_pid *p = vqs_vecfile_pids(vf.get());
        REQUIRE(p != nullptr);
        for (size_t i = 0; i < n; i++) {
            int64_t want = i == 7 ? INT64_MAX : (int64_t)(1000 + 3 * i);
            REQUIRE(ids[i] == want);
            REQUIRE(p[i].kind == VQS_PID_U64);
            REQUIRE(p[i].u64 == (uint64_t)want);
            REQUIRE(vqs_vecfile_payload(vf.get(), i) == nullptr); // not asked for
        }
    }
    vqs_vecfile_opts o = {};
    o.keep_payload = 1;
    auto vf = open_vecfile(t.file("ids.jsonl"), &o);
    for (size_t i = 0; i < n; i++) {
        const char *pl = vqs_vecfile_payload(vf.get(), i);
        if (i % 2 == 0) {
            REQUIRE(pl == nullptr);
        } else {
            REQUIRE(pl != nullptr);
            REQUIRE(std::string(pl) == "{\"title\":\"t" + std::to_string(i) + "\",\"tags\":[1,{\"a\":null}]}");
        }
    }
    REQUIRE(vqs_vecfile_payload(vf.get(), n) == nullptr);
    // payloads past the first 4 KB buffer, which then grows
    s.clear();
    for (size_t i = 0; i < 30; i++)
        s += jrow(&x[i * d], d, "", "\"p\": \"" + std::string(500 + i, 'a' + i % 26) + "\"") + "\n";
    write_text(t.file("big.jsonl"), s);
    auto vb = open_vecfile(t.file("big.jsonl"), &o);
    for (size_t i = 0; i < 30; i++)
        REQUIRE(std::string(vqs_vecfile_payload(vb.get(), i)) == "{\"p\":\"" + std::string(500 + i, 'a' + i % 26) + "\"}");

    // UUID ids beside integers: the point ids carry both, the int64 view refuses
    s = jrow(&x[0], d, "\"8C5B0A4E-2F1A-4D7E-9B1E-3F2A1C0D9E8F\"") + "\n" + jrow(&x[d], d, "12") + "\n" +
        jrow(&x[2 * d], d, "\"00112233445566778899aabbccddeeff\"") + "\n";
    write_text(t.file("uuid.jsonl"), s);
    auto vu = open_vecfile(t.file("uuid.jsonl"));
    const int64_t *ids = (const int64_t *)1;
    REQUIRE_ERR(vqs_vecfile_ids(vu.get(), &ids), VQS_EDTYPE);
    REQUIRE(ids == nullptr);
    const vqs_pid *p = vqs_vecfile_pids(vu.get());
    REQUIRE(p != nullptr);
    char b[40];
    REQUIRE(p[0].kind == VQS_PID_UUID);
    REQUIRE(std::string(vqs_pid_format(&p[0], b)) == "8c5b0a4e-2f1a-4d7e-9b1e-3f2a1c0d9e8f");
    REQUIRE(p[1].kind == VQS_PID_U64);
    REQUIRE(p[1].u64 == 12);
    REQUIRE(std::string(vqs_pid_format(&p[2], b)) == "00112233-4455-6677-8899-aabbccddeeff");
}

TEST_CASE("bad input: jsonl, each error names the file, the line and the field", "[storage][vecfile][jsonl][errors]")
{
    tmpdir t;
    const std::string ok = "{\"vector\": [1, 2, 3]}\n";
    std::string det;

    // malformed JSON, with Jansson's column
    det = jfail(t, ok + "{\"vector\": [1, 2, 3],}\n", VQS_EFORMAT);
    REQUIRE_HAS(det, "line 2, column 22: malformed JSON");
    det = jfail(t, ok + ok + "{\"vector\": [1, 2, 3]} {}\n", VQS_EFORMAT);
    REQUIRE_HAS(det, "line 3, column");
    det = jfail(t, "{\"a\": 1, \"a\": 2, \"vector\": [1]}\n", VQS_EFORMAT);
    REQUIRE_HAS(det, "line 1, column");
    REQUIRE_HAS(det, "duplicate object key");
    det = jfail(t, ok + std::string("{\"vector\": [1, 2, \0]}\n", 22), VQS_EFORMAT);
    REQUIRE_HAS(det, "line 2, column");
    // not an object; no vector; both names; not an array; not a number
    det = jfail(t, ok + "\n[1, 2, 3]\n", VQS_EFORMAT);
    REQUIRE_HAS(det, "line 3: an array, expected an object");
    det = jfail(t, "17\n", VQS_EFORMAT);
    REQUIRE_HAS(det, "line 1: an integer, expected an object");
    det = jfail(t, ok + "{\"vec\": [1, 2, 3]}\n", VQS_EFORMAT);
    REQUIRE_HAS(det, "line 2: no \"vector\" (or \"embedding\") field");
    det = jfail(t, "{\"vector\": [1], \"embedding\": [1]}\n", VQS_EFORMAT);
    REQUIRE_HAS(det, "line 1: both \"vector\" and \"embedding\"");
    det = jfail(t, "{\"vector\": \"1, 2\"}\n", VQS_EFORMAT);
    REQUIRE_HAS(det, "line 1: \"vector\" is a string, expected an array of numbers");
    det = jfail(t, ok + "{\"vector\": [1, \"2\", 3]}\n", VQS_EFORMAT);
    REQUIRE_HAS(det, "line 2: \"vector\"[1] is a string, expected a number");
    det = jfail(t, "{\"embedding\": [1, 2, null]}\n", VQS_EFORMAT);
    REQUIRE_HAS(det, "line 1: \"embedding\"[2] is null, expected a number");
    det = jfail(t, "{\"vector\": [true]}\n", VQS_EFORMAT);
    REQUIRE_HAS(det, "\"vector\"[0] is a boolean");

    // values beyond float32: a double out of float32's range, one beyond a
    // double (Jansson's overflow: the field is found by scanning the line),
    // an integer beyond 64 bits, an overflow inside a payload field
    det = jfail(t, ok + "{\"vector\": [1, 3.5e38, 3]}\n", VQS_ERANGE);
    REQUIRE_HAS(det, "line 2: \"vector\"[1]: 3.5e+38 is outside float32's range");
    det = jfail(t, "{\"vector\": [1, 2, -3.4028236e38]}\n", VQS_ERANGE); // rounds to -Inf
    REQUIRE_HAS(det, "\"vector\"[2]: -3.4028236e+38 is outside");
    det = jfail(t, ok + ok + "{\"id_\": \"x\\\",[\", \"vector\": [1, 1e999, 3]}\n", VQS_ERANGE);
    REQUIRE_HAS(det, "line 3, column 36: \"vector\"[1]: 1e999 is outside float32's range");
    det = jfail(t, "{\"embedding\": [1, 2, -1E+400]}\n", VQS_ERANGE);
    REQUIRE_HAS(det, "\"embedding\"[2]: -1E+400 is outside float32's range");
    det = jfail(t, "{\"vector\": [100000000000000000000, 2, 3]}\n", VQS_ERANGE);
    REQUIRE_HAS(det, "\"vector\"[0]: the integer 100000000000000000000 has more than 64 bits");
    det = jfail(t, "{\"vector\": [1, 2, 3], \"meta\": {\"x\": [1e999]}}\n", VQS_ERANGE);
    REQUIRE_HAS(det, "line 1, column");
    REQUIRE_HAS(det, "field \"meta\": the number 1e999 is out of range");

    // dimensions: differing from the first line's, empty, above max_dim
    std::string s;
    std::vector<float> row(384, 0.25f);
    for (int i = 0; i < 16; i++)
        s += jrow(row.data(), 384) + "\n";
    s += jrow(row.data(), 383) + "\n";
    det = jfail(t, s, VQS_EDIMMISMATCH);
    REQUIRE_HAS(det, "line 17: \"vector\" has 383 numbers, expected 384 (from line 1)");
    det = jfail(t, "\n\n" + ok + "{\"vector\": [1, 2, 3, 4]}\n", VQS_EDIMMISMATCH);
    REQUIRE_HAS(det, "line 4: \"vector\" has 4 numbers, expected 3 (from line 3)");
    det = jfail(t, "{\"vector\": []}\n", VQS_EBADDIM);
    REQUIRE_HAS(det, "line 1: \"vector\" has 0 numbers");
    vqs_vecfile_opts small = {};
    small.max_dim = 2;
    det = jfail(t, ok, VQS_EBADDIM, &small);
    REQUIRE_HAS(det, "line 1: \"vector\" has 3 numbers (must be 1..2)");

    // empty files
    det = jfail(t, "", VQS_EEMPTY);
    REQUIRE_HAS(det, "file is empty");
    det = jfail(t, "\xEF\xBB\xBF", VQS_EEMPTY);
    det = jfail(t, "\n  \r\n\t\n", VQS_EEMPTY);
    REQUIRE_HAS(det, "all 3 lines are blank");

    // ids: negative, fractional, too large, of the wrong type, not a UUID,
    // on some lines only, repeated
    det = jfail(t, "{\"id\": -1, \"vector\": [1]}\n", VQS_ERANGE);
    REQUIRE_HAS(det, "line 1: \"id\" -1 is negative");
    det = jfail(t, "{\"id\": 1, \"vector\": [1]}\n{\"id\": 2.5, \"vector\": [1]}\n", VQS_EFORMAT);
    REQUIRE_HAS(det, "line 2: \"id\" 2.5 is not an integer");
    det = jfail(t, "{\"id\": 3.0, \"vector\": [1]}\n", VQS_EFORMAT);
    REQUIRE_HAS(det, "\"id\" 3.0 is not an integer");
    det = jfail(t, "{\"vector\": [1], \"id\": 9223372036854775808}\n", VQS_ERANGE);
    REQUIRE_HAS(det, "line 1, column 41: \"id\" 9223372036854775808 is out of range");
    det = jfail(t, "{\"id\": true, \"vector\": [1]}\n", VQS_EFORMAT);
    REQUIRE_HAS(det, "line 1: \"id\" is a boolean");
    det = jfail(t, "{\"id\": \"42\", \"vector\": [1]}\n", VQS_EFORMAT);
    REQUIRE_HAS(det, "line 1: \"id\" \"42\" is a string but not a UUID");
    det = jfail(t, "{\"id\": \"8c5b0a4e-2f1a-4d7e-9b1e-3f2a1c0d9e8\", \"vector\": [1]}\n", VQS_EFORMAT);
    REQUIRE_HAS(det, "not a UUID");
    det = jfail(t, "{\"id\": 1, \"vector\": [1]}\n\n{\"vector\": [2]}\n", VQS_EFORMAT);
    REQUIRE_HAS(det, "line 3: no \"id\", but line 1 has one");
    det = jfail(t, "{\"vector\": [1]}\n{\"id\": 1, \"vector\": [2]}\n", VQS_EFORMAT);
    REQUIRE_HAS(det, "line 2: \"id\" given, but line 1 has none");
    s.clear();
    for (int id : {10, 11, 12, 13, 12, 11, 12})
        s += "{\"id\": " + std::to_string(id) + ", \"vector\": [1, 2]}\n";
    det = jfail(t, s, VQS_EINVAL);
    REQUIRE_HAS(det, "line 5: \"id\" 12 already on line 3");
    det = jfail(t, "{\"id\": \"8c5b0a4e-2f1a-4d7e-9b1e-3f2a1c0d9e8f\", \"vector\": [1]}\n"
                   "{\"id\": 5, \"vector\": [1]}\n"
                   "{\"id\": \"8C5B0A4E2F1A4D7E9B1E3F2A1C0D9E8F\", \"vector\": [1]}\n",
                VQS_EINVAL);
    REQUIRE_HAS(det, "line 3: \"id\" 8c5b0a4e-2f1a-4d7e-9b1e-3f2a1c0d9e8f already on line 1");

    // the memory bound: refused before allocating, naming the need and the limit
    s.clear();
    for (int i = 0; i < 100; i++)
        s += jrow(row.data(), 8) + "\n";
    vqs_vecfile_opts lim = {};
    lim.max_bytes = 100 * 8 * 4 - 1;
    det = jfail(t, s, VQS_ENOMEM, &lim);
    REQUIRE_HAS(det, "100 rows of 8 numbers");
    REQUIRE_HAS(det, "above the limit");
    lim.max_bytes = 100 * 8 * 4;
    REQUIRE(vqs_vecfile_n(open_vecfile(t.file("bad.jsonl"), &lim).get()) == 100);
    // payload texts count against it too
    s = "{\"vector\": [1], \"text\": \"" + std::string(5000, 'a') + "\"}\n";
    lim.keep_payload = 1;
    lim.max_bytes = 4096;
    det = jfail(t, s, VQS_ENOMEM, &lim);
    REQUIRE_HAS(det, "line 1: the payloads need");
    // the payload buffer grows up to the limit, not past it: rows (4 bytes),
    // payload offsets (8) and the text (5012 bytes with its NUL) fit in 5100
    lim.max_bytes = 5100;
    auto big = open_vecfile(t.file("bad.jsonl"), &lim);
    REQUIRE(std::string(vqs_vecfile_payload(big.get(), 0)) == "{\"text\":\"" + std::string(5000, 'a') + "\"}");

    // the name decides: no content sniffing
    det = jfail(t, ok, VQS_EFORMAT, nullptr, "vectors.json");
    REQUIRE_HAS(det, ".jsonl");
}

TEST_CASE("jsonl: vqs eval reads JSONL as it reads fvecs of the same numbers", "[storage][jsonl][cli]")
{
    tmpdir t;
    const size_t nb = 2000, nq = 40, d = 32;
    auto xb = synth(nb, d, 23), xq = synth(nq, d, 24);
    std::string sb, sq;
    for (size_t i = 0; i < nb; i++)
        sb += jrow(&xb[i * d], d, std::to_string(5000 + i), "\"n\": " + std::to_string(i)) + "\n";
    for (size_t i = 0; i < nq; i++)
        sq += jrow(&xq[i * d], d) + "\n";
    write_text(t.file("b.jsonl"), sb);
    write_text(t.file("q.jsonl"), sq);
    REQUIRE_OK(vqs_write_fvecs(t.file("b.fvecs").c_str(), nb, d, xb.data()));
    REQUIRE_OK(vqs_write_fvecs(t.file("q.fvecs").c_str(), nq, d, xq.data()));
    auto eval = [&](const std::string &ext, const std::string &out) {
        std::string cmd = cli() + " eval --base " + t.file("b." + ext) + " --queries " + t.file("q." + ext) +
                          " --metric l2 --spec exact --spec SQ8 --threads 1 --out " + t.file(out);
        REQUIRE(run(t, cmd) == 0);
        std::ifstream f(t.file(out + ".csv"));
        std::vector<std::vector<std::string>> rows;
        std::string line;
        while (std::getline(f, line)) {
            std::vector<std::string> cols;
            std::stringstream ss(line);
            std::string c;
            while (std::getline(ss, c, ','))
                cols.push_back(c);
            rows.push_back(cols);
        }
        return rows;
    };
    auto a = eval("jsonl", "ej"), b = eval("fvecs", "ef");
    REQUIRE(a.size() == 3); // header, exact, SQ8
    REQUIRE(a.size() == b.size());
    auto col = [&](const char *name) { // columns by the header's names
        for (size_t c = 0; c < a[0].size(); c++)
            if (a[0][c] == name)
                return c;
        FAIL("no column " << name << " in eval's CSV");
        return (size_t)0;
    };
    const size_t spec = col("spec"), bytes = col("code_bytes"), r1 = col("recall_at_1"),
                 r10 = col("recall_at_10"), r100 = col("recall_at_100");
    REQUIRE(a[1][spec].find("exact") != std::string::npos);
    REQUIRE(std::stod(a[1][r1]) == 1.0); // recall@1 of exact search
    for (size_t r = 1; r < a.size(); r++)
        for (size_t c : {spec, bytes, r1, r10, r100}) // equal inputs, equal results
            REQUIRE(a[r][c] == b[r][c]);
}

TEST_CASE("jsonl: vqs import takes a JSONL file's ids and payloads, search returns the ids", "[storage][jsonl][cli]")
{
    tmpdir t;
    const size_t nb = 1500, d = 24;
    auto xb = synth(nb, d, 25);
    auto id_of = [](size_t i) { return 70000 + 13 * (nb - i); };
    std::string sb;
    for (size_t i = 0; i < nb; i++)
        sb += jrow(&xb[i * d], d, std::to_string(id_of(i)), "\"row\": " + std::to_string(i)) + "\n";
    write_text(t.file("b.jsonl"), sb);
    // queries: every 50th base row, so each one's nearest point is itself
    std::vector<float> xq;
    for (size_t i = 0; i < nb; i += 50)
        xq.insert(xq.end(), &xb[i * d], &xb[(i + 1) * d]);
    const size_t nq = xq.size() / d;
    std::string sq;
    for (size_t i = 0; i < nq; i++)
        sq += jrow(&xq[i * d], d) + "\n";
    write_text(t.file("q.jsonl"), sq);

    std::string dir = t.file("data"), err;
    std::string imp = cli() + " import --data " + dir + " --collection c --spec SQ8 --metric l2 --batch 400 --vectors ";
    // a bad file changes nothing: refused before the data directory is touched
    write_text(t.file("bad.jsonl"), sb + "{\"id\": 1, \"vector\": [1, 2]}\n");
    REQUIRE(run(t, imp + t.file("bad.jsonl"), &err) == 1);
    REQUIRE_HAS(err, "bad.jsonl: line 1501: \"vector\" has 2 numbers, expected 24 (from line 1)");
    struct stat st;
    REQUIRE(stat(dir.c_str(), &st) != 0);
    // payloads from the file and from --payloads: refused, nothing created
    write_text(t.file("p.jsonl"), std::string(nb, '\n'));
    REQUIRE(run(t, imp + t.file("b.jsonl") + " --payloads " + t.file("p.jsonl"), &err) == 2);
    REQUIRE_HAS(err, "--payloads");
    REQUIRE(stat(dir.c_str(), &st) != 0);

    REQUIRE(run(t, imp + t.file("b.jsonl")) == 0);
    REQUIRE(run(t, cli() + " search --data " + dir + " --collection c --queries " + t.file("q.jsonl") +
                       " --k 3 -o " + t.file("r.ivecs")) == 0);
    auto r = open_vecfile(t.file("r.ivecs"));
    REQUIRE(vqs_vecfile_n(r.get()) == nq);
    std::vector<int64_t> got(nq * 3);
    REQUIRE_OK(vqs_vecfile_read_i64(r.get(), 0, nq, got.data()));
    for (size_t q = 0; q < nq; q++) {
        INFO("query " << q);
        REQUIRE(got[q * 3] == (int64_t)id_of(q * 50));
    }
    // ids and payloads as stored
    db_ptr db(dir);
    for (size_t i : {(size_t)0, (size_t)777, nb - 1}) {
        vqs_pid p = u64id(id_of(i));
        uint64_t iid = 0;
        char *pl = nullptr;
        REQUIRE_OK(vqs_db_get(db.db, "c", &p, &iid, &pl));
        REQUIRE(iid == i);
        REQUIRE(pl != nullptr);
        REQUIRE(std::string(pl) == "{\"row\":" + std::to_string(i) + "}");
        std::free(pl);
    }
}

TEST_CASE("jsonl: vqs import of UUID ids", "[storage][jsonl][cli]")
{
    tmpdir t;
    const size_t d = 4;
    auto x = synth(3, d, 26);
    std::string s = jrow(&x[0], d, "\"8c5b0a4e-2f1a-4d7e-9b1e-3f2a1c0d9e8f\"") + "\n" + jrow(&x[d], d, "5") + "\n" +
                    jrow(&x[2 * d], d, "\"00112233-4455-6677-8899-aabbccddeeff\"", "\"k\": \"v\"") + "\n";
    write_text(t.file("u.jsonl"), s);
    std::string dir = t.file("data");
    REQUIRE(run(t, cli() + " import --data " + dir + " --collection u --spec SQ8 --metric ip --vectors " +
                       t.file("u.jsonl")) == 0);
    db_ptr db(dir);
    vqs_pid p;
    uint64_t iid = 9;
    char *pl = nullptr;
    REQUIRE_OK(vqs_pid_parse("00112233-4455-6677-8899-aabbccddeeff", &p));
    REQUIRE_OK(vqs_db_get(db.db, "u", &p, &iid, &pl));
    REQUIRE(iid == 2);
    REQUIRE(std::string(pl ? pl : "") == "{\"k\":\"v\"}");
    std::free(pl);
    p = u64id(5);
    REQUIRE_OK(vqs_db_get(db.db, "u", &p, &iid, &pl));
    REQUIRE(iid == 1);
    REQUIRE(pl == nullptr);
}
