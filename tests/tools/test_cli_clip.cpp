// The SQ8/SQ4 clip option of the vqs tool, run as a separate process (VQS_CLI_PATH): `vqs codec`,
// `vqs eval` and `vqs import` take --clip Q, refuse a bad Q with a message naming --clip, and pass a
// good one to the codec's training: import stores it with the collection, whose trained SQ4 grid is
// then that of a codec trained in-process with that clip. Also the codec report's SQNR line against
// its relative MSE line (vqs_codec_error_of: SQNR = -10 log10 relative MSE).
#include "tools_test.hpp"

#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <jansson.h>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

using namespace vqs_test;

namespace
{

using vqs_tools_test::run_vqs;

// The number after `key` on its line of the codec report ("SQNR   19.35 dB ...").
double report_value(const std::string &out, const std::string &key)
{
    size_t p = out.find("\n" + key);
    if (p == std::string::npos && out.rfind(key, 0) == 0)
        p = 0;
    else if (p != std::string::npos)
        p++;
    REQUIRE(p != std::string::npos);
    return std::strtod(out.c_str() + p + key.size(), nullptr);
}

// N(0, 1) rows: SQ4's default range differs from min/max there
std::vector<float> gauss(size_t n, size_t d, uint64_t seed)
{
    std::vector<float> x(n * d);
    vqs_rng r;
    vqs_rng_seed(&r, seed);
    for (auto &v : x)
        v = (float)vqs_rng_normal(&r);
    return x;
}

// A bad --clip: usage error (exit 2) naming --clip, nothing written.
void bad_clip(const tmpdir &t, std::vector<std::string> args)
{
    for (const char *q : {"0.5", "0.3", "1.5", "0", "-1", "abc", "0.99x", ""}) {
        auto a = args;
        a.push_back("--clip");
        a.push_back(q);
        auto r = run_vqs(t, a);
        INFO(a[0] << " --clip '" << q << "': exit " << r.code << ", " << r.err);
        REQUIRE(r.code == 2);
        REQUIRE(r.err.find("--clip") != std::string::npos);
        REQUIRE(r.err.find("(0.5, 1]") != std::string::npos);
    }
}

} // namespace

TEST_CASE("vqs codec --clip: SQ4 ranges from the option, bad values refused, SQNR line = -10 log10 relative MSE",
          "[cli]")
{
    tmpdir t;
    const size_t n = 20000, d = 8;
    auto x = gauss(n, d, 3);
    std::string f = t.file("g.fvecs");
    REQUIRE_OK(vqs_write_fvecs(f.c_str(), n, d, x.data()));
    bad_clip(t, {"codec", "--spec", "SQ4", "--train", f});
    double sq[3];
    const char *clips[] = {nullptr, "1", "0.99"};
    for (int i = 0; i < 3; i++) {
        std::vector<std::string> a = {"codec", "--spec", "SQ4", "--train", f, "--threads", "2"};
        if (clips[i]) {
            a.push_back("--clip");
            a.push_back(clips[i]);
        }
        auto r = run_vqs(t, a);
        INFO(r.out << r.err);
        REQUIRE(r.code == 0);
        sq[i] = report_value(r.out, "SQNR");
        double rel = report_value(r.out, "relative MSE");
        REQUIRE(sq[i] == Approx(-10 * std::log10(rel)).margin(0.006)); // printed to 2 decimals
    }
    WARN("SQ4 on N(0,1): default " << sq[0] << " dB, --clip 1 (min/max) " << sq[1] << " dB, --clip 0.99 "
                                   << sq[2] << " dB");
    // the default reaches the best uniform 4-bit grid (19.38 dB), min/max does not
    REQUIRE(sq[0] >= 19.2);
    REQUIRE(sq[1] <= sq[0] - 2.0);
    // 0.99 (ranges +-2.33 sigma) sits between: a different range from both
    REQUIRE(sq[2] != sq[0]);
    REQUIRE(sq[2] != sq[1]);
}

TEST_CASE("vqs eval --clip reaches the index's codec, bad values refused", "[cli]")
{
    tmpdir t;
    const size_t n = 4000, nq = 40, d = 16;
    auto x = gauss(n + nq, d, 4);
    std::string b = t.file("b.fvecs"), q = t.file("q.fvecs");
    REQUIRE_OK(vqs_write_fvecs(b.c_str(), n, d, x.data()));
    REQUIRE_OK(vqs_write_fvecs(q.c_str(), nq, d, x.data() + n * d));
    std::vector<std::string> base = {"eval", "--base", b, "--queries", q, "--spec", "SQ4", "--threads", "2"};
    bad_clip(t, base);
    // recall@10 from the JSON file: --clip 0.6 keeps the middle 20% of every dimension (SQ4 then
    // cannot tell most vectors apart), --clip 1 min/max
    double rec[2];
    const char *clips[] = {"0.6", "1"};
    for (int i = 0; i < 2; i++) {
        auto a = base;
        a.insert(a.end(), {"--clip", clips[i], "--out", t.file(std::string("e") + clips[i])});
        auto r = run_vqs(t, a);
        INFO(r.out << r.err);
        REQUIRE(r.code == 0);
        json_error_t je;
        json_t *j = json_load_file((t.file(std::string("e") + clips[i]) + ".json").c_str(), 0, &je);
        INFO(je.text);
        REQUIRE(j);
        json_t *row = json_array_get(json_object_get(j, "rows"), 0);
        REQUIRE(std::string(json_string_value(json_object_get(row, "spec"))) == "SQ4");
        rec[i] = json_number_value(json_object_get(row, "recall_at_10"));
        json_decref(j);
    }
    WARN("vqs eval SQ4 recall@10: --clip 0.6 " << rec[0] << ", --clip 1 " << rec[1]);
    REQUIRE(rec[0] < rec[1] - 0.2);
}

TEST_CASE("vqs import --clip is stored with the collection and used to train it, bad values refused", "[cli]")
{
    tmpdir t;
    const size_t n = 3000, d = 16;
    auto x = gauss(n, d, 5);
    std::string f = t.file("v.fvecs"), dir = t.file("data");
    REQUIRE_OK(vqs_write_fvecs(f.c_str(), n, d, x.data()));
    std::vector<std::string> imp = {"import", "--data", dir, "--collection", "c", "--spec", "SQ4", "--metric",
                                    "l2", "--vectors", f, "--rerank", "none"};
    bad_clip(t, imp);
    auto a = imp;
    a.insert(a.end(), {"--clip", "0.95"});
    auto r = run_vqs(t, a);
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    auto in = run_vqs(t, {"info", "--data", dir});
    INFO(in.out << in.err);
    REQUIRE(in.out.find("spec SQ4, clip 0.95,") != std::string::npos);
    // the stored trained state: the SQ4 grid of a codec trained in-process on the same rows (import
    // trains on all of them when there are fewer than 100,000) with sq_clip 0.95, not the default's
    auto stored = stored_sq_grid(dir, "c", d);
    REQUIRE(stored == trained_sq4_grid(x.data(), n, d, 0.95f));
    REQUIRE(stored != trained_sq4_grid(x.data(), n, d, 0.0f));
    // more rows into the existing collection: the same --clip or none is fine, another is refused
    // (the clip is fixed when the collection is created) and adds nothing
    std::string more = t.file("more.fvecs");
    REQUIRE_OK(vqs_write_fvecs(more.c_str(), 10, d, x.data()));
    auto other = run_vqs(t, {"import", "--data", dir, "--collection", "c", "--vectors", more, "--metric", "l2",
                             "--clip", "0.99"});
    INFO(other.err);
    REQUIRE(other.code == 2);
    REQUIRE(other.err.find("--clip 0.99") != std::string::npos);
    REQUIRE(other.err.find("--clip 0.95") != std::string::npos);
    auto in2 = run_vqs(t, {"info", "--data", dir});
    REQUIRE(in2.out.find("c: 3000 points") != std::string::npos);
    auto same = run_vqs(t, {"import", "--data", dir, "--collection", "c", "--vectors", more, "--metric", "l2",
                            "--clip", "0.95"});
    INFO(same.err);
    REQUIRE(same.code == 0);
    auto in3 = run_vqs(t, {"info", "--data", dir});
    REQUIRE(in3.out.find("c: 3000 points") != std::string::npos); // ids 0..9 replaced
}
