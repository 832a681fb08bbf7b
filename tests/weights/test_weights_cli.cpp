// `vqs weights` (tools/weights_cmd.c), the quantized checkpoint format
// (tools/weights/wfile.c) and the plan's knapsack (tools/weights/plan.c).
// The command is run as a separate process (VQS_CLI_PATH) on the shared
// stories260K checkpoint; what it writes is read back through the library
// and checked against vqs_wq_encode / vqs_wq_decode called here, and the
// report's figures against sums computed here from the dequantized file.
#include "vqs_test.hpp"

#include "vqs_float.h"
#include "vqs_store_st.h"
#include "vqs_wfile.h"
#include "vqs_wplan.h"
#include "vqs_wq.h"

#include <cmath>
#include <jansson.h>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace vqs_test;

namespace
{

std::string model() { return data_path("llm_stories260K/stories260K.safetensors"); }

struct st_ptr {
    vqs_st_file *f = nullptr;
    explicit st_ptr(const std::string &p) { REQUIRE_OK(vqs_st_open(p.c_str(), &f)); }
    ~st_ptr() { vqs_st_close(f); }
    st_ptr(const st_ptr &) = delete;
    st_ptr &operator=(const st_ptr &) = delete;
};

struct wf_ptr {
    vqs_wfile *f = nullptr;
    explicit wf_ptr(const std::string &p) { REQUIRE_OK(vqs_wfile_open(p.c_str(), &f)); }
    ~wf_ptr() { vqs_wfile_close(f); }
    wf_ptr(const wf_ptr &) = delete;
    wf_ptr &operator=(const wf_ptr &) = delete;
};

struct wq_owned {
    vqs_wq_tensor t;
    wq_owned() { std::memset(&t, 0, sizeof t); }
    ~wq_owned() { vqs_wq_tensor_free(&t); }
};

std::vector<float> read_f32(const vqs_st_file *f, const vqs_st_tensor *t)
{
    std::vector<float> x(t->numel);
    REQUIRE_OK(vqs_st_read_f32(f, t, x.data(), 0));
    return x;
}

// decode(encode(w)) with format name, computed in the test
std::vector<float> roundtrip(const char *fmt, const std::vector<float> &w, size_t rows, size_t cols,
                             size_t *nbytes = nullptr)
{
    vqs_wq_spec s;
    REQUIRE_OK(vqs_wq_spec_parse(fmt, &s));
    wq_owned q;
    REQUIRE_OK(vqs_wq_encode(&s, w.data(), rows, cols, nullptr, &q.t));
    std::vector<float> y(rows * cols);
    REQUIRE_OK(vqs_wq_decode(&q.t, y.data(), nullptr));
    if (nbytes)
        *nbytes = vqs_wq_nbytes(&q.t);
    return y;
}

bool same_bits(const std::vector<float> &a, const float *b, size_t n)
{
    return a.size() == n && std::memcmp(a.data(), b, n * sizeof(float)) == 0;
}

bool exists(const std::string &p)
{
    struct stat st;
    return stat(p.c_str(), &st) == 0;
}

std::vector<std::string> split(const std::string &s, char c)
{
    std::vector<std::string> v;
    std::stringstream ss(s);
    for (std::string x; std::getline(ss, x, c);)
        v.push_back(x);
    return v;
}

json_t *load_json(const std::string &p)
{
    json_error_t e;
    json_t *j = json_load_file(p.c_str(), 0, &e);
    INFO(p << ": " << e.text);
    REQUIRE(j != nullptr);
    return j;
}

double jreal(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    INFO(k);
    REQUIRE(json_is_number(v));
    return json_number_value(v);
}

// The variant row of an eval/plan JSON document by name.
const json_t *row_named(const json_t *doc, const char *key, const std::string &name)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(doc, key), i, r)
    {
        if (name == json_string_value(json_object_get(r, "variant")))
            return r;
    }
    FAIL("no row " << name);
    return nullptr;
}

} // namespace

TEST_CASE("vqs weights quantize q8_0: each matrix's parts decode to vqs_wq_decode(vqs_wq_encode(w)), the rest "
          "is copied",
          "[weights]")
{
    std::string m = model();
    tmpdir t;
    std::string out = t.file("q8.safetensors");
    auto r = run_vqs(t, {"weights", "quantize", "--in", m, "--format", "q8_0", "--out", out});
    INFO(r.err);
    REQUIRE(r.code == 0);
    REQUIRE(r.out.find("bits/weight") != std::string::npos);

    st_ptr in(m);
    wf_ptr q(out);
    REQUIRE(vqs_wfile_is_quantized(q.f));
    const vqs_st_file *qs = vqs_wfile_st(q.f);
    REQUIRE(std::string(vqs_st_meta_get(qs, VQS_WFILE_KEY)) == VQS_WFILE_VERSION);
    // the model's config and the other metadata travel along
    REQUIRE(std::string(vqs_st_meta_get(qs, "config")) == vqs_st_meta_get(in.f, "config"));
    REQUIRE(vqs_wfile_count(q.f) == vqs_st_count(in.f));
    size_t nmat = 0;
    for (size_t i = 0; i < vqs_st_count(in.f); i++) {
        const vqs_st_tensor *s = vqs_st_tensor_at(in.f, i);
        INFO(s->name);
        // same order as the input
        const vqs_wfile_tensor *w = vqs_wfile_at(q.f, i);
        REQUIRE(std::string(w->name) == s->name);
        REQUIRE(w->dtype == s->dtype);
        REQUIRE(w->ndim == s->ndim);
        for (int d = 0; d < s->ndim; d++)
            REQUIRE(w->shape[d] == s->shape[d]);
        if (s->ndim != 2) { // norms: the same bytes under the same name
            REQUIRE(!w->quantized);
            REQUIRE(w->raw->dtype == s->dtype);
            REQUIRE(w->raw->nbytes == s->nbytes);
            REQUIRE(std::memcmp(w->raw->data, s->data, s->nbytes) == 0);
            continue;
        }
        nmat++;
        REQUIRE(w->quantized);
        REQUIRE(w->q.spec.kind == VQS_WQ_Q8_0);
        size_t rows = s->shape[0], cols = s->shape[1];
        auto x = read_f32(in.f, s);
        // the stored parts are byte for byte those of vqs_wq_encode
        vqs_wq_spec spec;
        REQUIRE_OK(vqs_wq_spec_parse("q8_0", &spec));
        wq_owned e;
        REQUIRE_OK(vqs_wq_encode(&spec, x.data(), rows, cols, nullptr, &e.t));
        REQUIRE(w->q.nparts == e.t.nparts);
        for (int p = 0; p < e.t.nparts; p++) {
            const vqs_wq_part *a = vqs_wq_part_get(&w->q, e.t.part[p].name);
            REQUIRE(a != nullptr);
            REQUIRE(a->type == e.t.part[p].type);
            REQUIRE(a->nbytes == e.t.part[p].nbytes);
            REQUIRE(std::memcmp(a->data, e.t.part[p].data, a->nbytes) == 0);
            // stored as NAME.<part> with the dtype of its type
            std::string pn = std::string(s->name) + "." + a->name;
            const vqs_st_tensor *pt = vqs_st_find(qs, pn.c_str());
            REQUIRE(pt != nullptr);
            REQUIRE(pt->dtype == vqs_wfile_part_dtype(a->type));
        }
        // and decode, through the reader, to exactly the test's decode
        std::vector<float> y(rows * cols);
        REQUIRE_OK(vqs_wfile_read_f32(q.f, w, 1, y.data()));
        REQUIRE(same_bits(roundtrip("q8_0", x, rows, cols), y.data(), y.size()));
    }
    REQUIRE(nmat == 36); // stories260K: the embedding and 5 x 7 layer matrices
}

TEST_CASE("vqs weights quantize --dequantize: the input's names, shapes and dtype, every value the decode",
          "[weights]")
{
    std::string m = model();
    tmpdir t;
    std::string out = t.file("dq.safetensors");
    auto r = run_vqs(t, {"weights", "quantize", "--in", m, "--format", "q4_0", "--dequantize", "--out", out});
    INFO(r.err);
    REQUIRE(r.code == 0);
    st_ptr in(m), dq(out);
    REQUIRE(vqs_st_meta_get(dq.f, VQS_WFILE_KEY) == nullptr); // a plain checkpoint
    REQUIRE(std::string(vqs_st_meta_get(dq.f, "config")) == vqs_st_meta_get(in.f, "config"));
    REQUIRE(vqs_st_count(dq.f) == vqs_st_count(in.f));
    for (size_t i = 0; i < vqs_st_count(in.f); i++) {
        const vqs_st_tensor *s = vqs_st_tensor_at(in.f, i);
        INFO(s->name);
        const vqs_st_tensor *d = vqs_st_find(dq.f, s->name);
        REQUIRE(d != nullptr);
        REQUIRE(d->dtype == s->dtype);
        REQUIRE(d->ndim == s->ndim);
        for (int k = 0; k < s->ndim; k++)
            REQUIRE(d->shape[k] == s->shape[k]);
        if (s->ndim != 2) {
            REQUIRE(std::memcmp(d->data, s->data, s->nbytes) == 0);
            continue;
        }
        auto x = read_f32(in.f, s), y = read_f32(dq.f, d);
        auto want = roundtrip("q4_0", x, s->shape[0], s->shape[1]);
        REQUIRE(same_bits(want, y.data(), y.size()));
        REQUIRE(want != x); // it did quantize
    }
}

TEST_CASE("vqs weights quantize --skip keeps matching tensors, --all takes the norms too", "[weights]")
{
    std::string m = model();
    tmpdir t;
    std::string out = t.file("s.safetensors");
    auto r = run_vqs(t, {"weights", "quantize", "--in", m, "--format", "q8_0", "--skip",
                         "tok_embeddings|feed_forward\\.w2", "--out", out});
    INFO(r.err);
    REQUIRE(r.code == 0);
    st_ptr in(m);
    {
        wf_ptr q(out);
        size_t kept = 0;
        for (size_t i = 0; i < vqs_wfile_count(q.f); i++) {
            const vqs_wfile_tensor *w = vqs_wfile_at(q.f, i);
            std::string n = w->name;
            INFO(n);
            bool skip = n == "tok_embeddings.weight" || n.find("feed_forward.w2") != std::string::npos;
            bool mat = w->ndim == 2;
            REQUIRE(w->quantized == (mat && !skip));
            if (!w->quantized) {
                const vqs_st_tensor *s = vqs_st_find(in.f, w->name);
                REQUIRE(std::memcmp(w->raw->data, s->data, s->nbytes) == 0);
                kept += mat;
            }
        }
        REQUIRE(kept == 6);
    }
    std::string all = t.file("all.safetensors");
    r = run_vqs(t, {"weights", "quantize", "--in", m, "--format", "q8_0", "--all", "--out", all});
    REQUIRE(r.code == 0);
    wf_ptr q(all);
    for (size_t i = 0; i < vqs_wfile_count(q.f); i++) {
        const vqs_wfile_tensor *w = vqs_wfile_at(q.f, i);
        INFO(w->name);
        REQUIRE(w->quantized);
        if (w->ndim == 1) { // a norm: one row of 64
            REQUIRE(w->rows == 1);
            const vqs_st_tensor *s = vqs_st_find(in.f, w->name);
            std::vector<float> y(w->cols);
            REQUIRE_OK(vqs_wfile_read_f32(q.f, w, 1, y.data()));
            REQUIRE(same_bits(roundtrip("q8_0", read_f32(in.f, s), 1, w->cols), y.data(), y.size()));
        }
    }
}

TEST_CASE("vqs weights report: one CSV row per tensor and format, SQNR and the rest as recomputed from the "
          "dequantized file",
          "[weights]")
{
    std::string m = model();
    tmpdir t;
    std::string csv = t.file("r.csv"), js = t.file("r.json");
    auto r = run_vqs(t, {"weights", "report", "--in", m, "--format", "q8_0,q4_0", "--csv", csv, "--json", js});
    INFO(r.err);
    REQUIRE(r.code == 0);
    REQUIRE(r.out.find("totals") != std::string::npos);
    auto lines = split(slurp(csv), '\n');
    REQUIRE(lines.at(0) == "tensor,format,rows,cols,bits_per_weight,sqnr_db,rel_frobenius,max_abs_error,"
                           "kurtosis,outlier_share");
    REQUIRE(lines.size() == 1 + 36 * 2);

    st_ptr in(m);
    std::map<std::string, std::string> dqfile;
    for (const char *f : {"q8_0", "q4_0"}) {
        dqfile[f] = t.file(std::string(f) + ".safetensors");
        auto d = run_vqs(t, {"weights", "quantize", "--in", m, "--format", f, "--dequantize", "--out", dqfile[f]});
        REQUIRE(d.code == 0);
    }
    st_ptr dq8(dqfile["q8_0"]), dq4(dqfile["q4_0"]);
    std::set<std::pair<std::string, std::string>> seen;
    for (size_t i = 1; i < lines.size(); i++) {
        auto c = split(lines[i], ',');
        REQUIRE(c.size() == 10);
        INFO(lines[i]);
        REQUIRE(seen.insert({c[0], c[1]}).second);
        const vqs_st_tensor *s = vqs_st_find(in.f, c[0].c_str());
        REQUIRE(s != nullptr);
        REQUIRE(s->ndim == 2);
        size_t rows = s->shape[0], cols = s->shape[1];
        REQUIRE(std::stoul(c[2]) == rows);
        REQUIRE(std::stoul(c[3]) == cols);
        const vqs_st_file *df = c[1] == "q8_0" ? dq8.f : dq4.f;
        auto x = read_f32(in.f, s), y = read_f32(df, vqs_st_find(df, s->name));
        double sw2 = 0, se2 = 0, maxe = 0, mean = 0, m2 = 0, m4 = 0;
        for (size_t j = 0; j < x.size(); j++) {
            double e = (double)x[j] - y[j];
            sw2 += (double)x[j] * x[j];
            se2 += e * e;
            maxe = std::max(maxe, std::fabs(e));
            mean += x[j];
        }
        mean /= (double)x.size();
        for (float v : x) {
            double d = v - mean;
            m2 += d * d;
            m4 += d * d * d * d;
        }
        m2 /= (double)x.size();
        m4 /= (double)x.size();
        size_t outl = 0;
        for (float v : x)
            outl += std::fabs(v) > 6 * std::sqrt(m2);
        // llama.cpp's block sizes: 34 (q8_0) and 18 (q4_0) bytes per 32 weights, a short block padded
        size_t blocks = (cols + 31) / 32, bb = c[1] == "q8_0" ? 34 : 18;
        REQUIRE(std::stod(c[4]) == Approx(8.0 * (double)(rows * blocks * bb) / (double)(rows * cols)).epsilon(1e-8));
        REQUIRE(std::stod(c[5]) == Approx(10 * std::log10(sw2 / se2)).epsilon(1e-7));
        REQUIRE(std::stod(c[6]) == Approx(std::sqrt(se2 / sw2)).epsilon(1e-7));
        REQUIRE(std::stod(c[7]) == Approx(maxe).epsilon(1e-7));
        REQUIRE(std::stod(c[8]) == Approx(m4 / (m2 * m2)).epsilon(1e-7));
        REQUIRE(std::stod(c[9]) == Approx((double)outl / (double)x.size()).margin(1e-12));
        // q8_0 keeps about 8 bits, q4_0 about 4: SQNR far apart on any weights
        if (c[1] == "q8_0")
            REQUIRE(std::stod(c[5]) > 35);
        else
            REQUIRE(std::stod(c[5]) < 30);
    }
    // the JSON has the same rows and a total per format
    json_t *doc = load_json(js);
    REQUIRE(json_array_size(json_object_get(doc, "rows")) == 72);
    REQUIRE(json_array_size(json_object_get(doc, "totals")) == 2);
    json_decref(doc);
}

TEST_CASE("vqs weights eval: f16 keeps the model, q4_0 loses more than q8_0, a quantized file counts as its "
          "format",
          "[weights]")
{
    std::string m = model();
    tmpdir t;
    std::string q4 = t.file("q4.safetensors");
    REQUIRE(run_vqs(t, {"weights", "quantize", "--in", m, "--format", "q4_0", "--out", q4}).code == 0);
    std::string js = t.file("e.json"), csv = t.file("e.csv");
    auto r = run_vqs(t, {"weights", "eval", "--in", m, "--format", "f16,q8_0,q4_0", "--quantized", q4,
                         "--sequences", "4", "--len", "64", "--seed", "7", "--json", js, "--csv", csv});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    json_t *doc = load_json(js);
    const json_t *f16 = row_named(doc, "rows", "f16"), *q8 = row_named(doc, "rows", "q8_0"),
                 *q4r = row_named(doc, "rows", "q4_0"), *file = row_named(doc, "rows", q4);
    // f16 moves a weight by at most 2^-11 of itself: the distributions barely move (the top-1 token
    // still flips where the model's two best are within a hair of each other)
    REQUIRE(jreal(f16, "kl_mean") < 1e-3);
    REQUIRE(jreal(f16, "top1") > 0.9);
    REQUIRE(jreal(f16, "kl_mean") < jreal(q8, "kl_mean"));
    REQUIRE(jreal(f16, "bits_per_weight") == 16);
    REQUIRE(jreal(q8, "kl_mean") < jreal(q4r, "kl_mean"));
    REQUIRE(jreal(q8, "top1") >= jreal(q4r, "top1"));
    REQUIRE(jreal(q4r, "ce") > jreal(q4r, "ce_ref") - 0.05);
    // the file holds the same codes, so the same model
    for (const char *k : {"kl_mean", "kl_p99", "top1", "ce", "ce_ref", "bits_per_weight"})
        REQUIRE(jreal(file, k) == jreal(q4r, k));
    REQUIRE(jreal(q4r, "positions") == 4 * 63);
    json_decref(doc);
    REQUIRE(split(slurp(csv), '\n').size() == 5);
}

TEST_CASE("vqs weights plan and quantize --budget-bits: the plan keeps the budget and is checked end to end",
          "[weights]")
{
    std::string m = model();
    tmpdir t;
    std::string js = t.file("p.json");
    // q8_0 costs 8.5 bits, q4_0 4.5 (a little more on the 172-wide rows), mxfp4 4.25
    const std::vector<std::string> common = {"--in", m, "--format", "q8_0,q4_0,mxfp4", "--sequences", "2",
                                             "--len", "32", "--plan-sequences", "1"};
    std::vector<std::string> args = {"weights", "plan", "--budget-bits", "5.5", "--json", js};
    args.insert(args.end(), common.begin(), common.end());
    auto r = run_vqs(t, args);
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    json_t *doc = load_json(js);
    double pb = jreal(doc, "plan_bits_per_weight");
    REQUIRE(pb <= 5.5);
    REQUIRE(pb > 4.25); // it spends the budget on some q8_0
    // one row per tensor and candidate, one chosen per tensor
    json_t *rows = json_object_get(doc, "tensors");
    REQUIRE(json_array_size(rows) == 36 * 3);
    std::map<std::string, int> chosen;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) chosen[json_string_value(json_object_get(row, "tensor"))] +=
        json_is_true(json_object_get(row, "chosen"));
    REQUIRE(chosen.size() == 36);
    for (auto &c : chosen)
        REQUIRE(c.second == 1);
    REQUIRE(json_object_get(doc, "plan") != nullptr);
    REQUIRE(jreal(json_object_get(doc, "plan"), "bits_per_weight") == Approx(pb));
    json_decref(doc);
    REQUIRE(r.out.find("best single format") != std::string::npos);

    // quantize with the same budget writes the plan: mixed formats within 5.5 bits per weight
    std::string out = t.file("b.safetensors");
    args = {"weights", "quantize", "--budget-bits", "5.5", "--out", out};
    args.insert(args.end(), common.begin(), common.end());
    r = run_vqs(t, args);
    INFO(r.err);
    REQUIRE(r.code == 0);
    wf_ptr q(out);
    size_t bytes = 0, n = 0;
    std::set<int> kinds;
    for (size_t k = 0; k < vqs_wfile_count(q.f); k++) {
        const vqs_wfile_tensor *w = vqs_wfile_at(q.f, k);
        if (!w->quantized)
            continue;
        bytes += w->nbytes;
        n += w->rows * w->cols;
        kinds.insert(w->q.spec.kind);
    }
    REQUIRE(n == 259328);
    REQUIRE(8.0 * (double)bytes / (double)n <= 5.5);
    REQUIRE(kinds.size() >= 2);

    // a budget below every candidate: an error, nothing written
    std::string none = t.file("none.safetensors");
    args = {"weights", "quantize", "--budget-bits", "3", "--out", none};
    args.insert(args.end(), common.begin(), common.end());
    r = run_vqs(t, args);
    REQUIRE(r.code != 0);
    REQUIRE(r.err.find("budget") != std::string::npos);
    REQUIRE(!exists(none));
}

TEST_CASE("vqs weights: bad input gives a clear error and a non-zero exit, and writes nothing", "[weights]")
{
    std::string m = model();
    tmpdir t;
    std::string out = t.file("o.safetensors"), csv = t.file("o.csv");
    SECTION("a missing file")
    {
        auto r = run_vqs(t, {"weights", "quantize", "--in", t.file("nope.safetensors"), "--format", "q8_0",
                             "--out", out});
        REQUIRE(r.code == 1);
        REQUIRE(r.err.find("nope.safetensors") != std::string::npos);
        REQUIRE(!exists(out));
    }
    SECTION("an unknown format")
    {
        auto r = run_vqs(t, {"weights", "quantize", "--in", m, "--format", "q3_9", "--out", out});
        REQUIRE(r.code == 2);
        REQUIRE(r.err.find("q3_9") != std::string::npos);
        REQUIRE(!exists(out));
        r = run_vqs(t, {"weights", "report", "--in", m, "--format", "q8_0,bogus", "--csv", csv});
        REQUIRE(r.code == 2);
        REQUIRE(r.err.find("bogus") != std::string::npos);
        REQUIRE(!exists(csv));
    }
    SECTION("usage: no subcommand, an unknown one, a bad --skip")
    {
        REQUIRE(run_vqs(t, {"weights", "--in", m}).code == 2);
        REQUIRE(run_vqs(t, {"weights", "squash", "--in", m}).code == 2);
        auto r = run_vqs(t, {"weights", "quantize", "--in", m, "--format", "q8_0", "--skip", "(", "--out", out});
        REQUIRE(r.code == 2);
        REQUIRE(r.err.find("--skip") != std::string::npos);
        REQUIRE(!exists(out));
    }
    SECTION("corrupt quantized files")
    {
        std::string q = t.file("q.safetensors");
        REQUIRE(run_vqs(t, {"weights", "quantize", "--in", m, "--format", "q8_0", "--out", q}).code == 0);
        // quantizing it again is refused
        auto r = run_vqs(t, {"weights", "quantize", "--in", q, "--format", "q4_0", "--out", out});
        REQUIRE(r.code != 0);
        REQUIRE(r.err.find("already") != std::string::npos);
        REQUIRE(!exists(out));

        // rebuild it with one part missing, a record that lies about a dtype, or a bad record
        st_ptr src(q);
        auto rewrite = [&](const std::string &path, const std::string &drop, const std::string &meta_key,
                           const std::string &meta_val) {
            vqs_st_writer *w = nullptr;
            REQUIRE_OK(vqs_st_writer_new(&w));
            for (size_t i = 0; i < vqs_st_meta_count(src.f); i++) {
                const char *k, *v;
                vqs_st_meta_at(src.f, i, &k, &v);
                REQUIRE_OK(vqs_st_writer_meta(w, k, meta_key == k ? meta_val.c_str() : v));
            }
            for (size_t i = 0; i < vqs_st_count(src.f); i++) {
                const vqs_st_tensor *s = vqs_st_tensor_at(src.f, i);
                if (drop != s->name)
                    REQUIRE_OK(vqs_st_writer_add(w, s->name, s->dtype, s->ndim, s->shape, s->data, s->nbytes));
            }
            REQUIRE_OK(vqs_st_writer_save(w, path.c_str()));
            vqs_st_writer_free(w);
        };
        const std::string name = "layers.2.feed_forward.w1.weight";
        const vqs_wfile_tensor *wt;
        std::string rec;
        {
            wf_ptr good(q);
            wt = vqs_wfile_find(good.f, name.c_str());
            REQUIRE(wt != nullptr);
            REQUIRE(wt->quantized);
            rec = vqs_st_meta_get(src.f, (VQS_WFILE_RECORD + name).c_str());
        }
        struct bad_case {
            std::string what, drop, key, val, expect;
            int code;
        };
        std::string part0 = rec.substr(rec.find("\"parts\":[{\"name\":\"") + 18);
        part0 = part0.substr(0, part0.find('"'));
        std::string lied = rec, tlabel = "\"type\":\"";
        size_t tp = lied.find(tlabel);
        REQUIRE(tp != std::string::npos);
        lied.replace(tp + tlabel.size(), lied.find('"', tp + tlabel.size()) - tp - tlabel.size(), "f32");
        std::vector<bad_case> cases = {
            {"a part missing", name + "." + part0, "", "", part0, VQS_ECORRUPT},
            {"a part's dtype", "", VQS_WFILE_RECORD + name, lied, part0, VQS_ESHAPE},
            {"a record that is not JSON", "", VQS_WFILE_RECORD + name, "{\"format\": ", name, VQS_ECORRUPT},
            {"an unknown format", "", VQS_WFILE_RECORD + name,
             std::string(rec).replace(rec.find("q8_0"), 4, "q9_9"), "q9_9", VQS_ECORRUPT},
            {"another version", "", VQS_WFILE_KEY, "weights-9", "weights-9", VQS_EVERSION},
        };
        for (const auto &c : cases) {
            INFO(c.what);
            std::string bad = t.file("bad.safetensors");
            rewrite(bad, c.drop, c.key, c.val);
            vqs_wfile *f = nullptr;
            REQUIRE_ERR(vqs_wfile_open(bad.c_str(), &f), c.code);
            REQUIRE(f == nullptr);
            std::string d = vqs_errdetail();
            INFO(d);
            REQUIRE(d.find(c.expect) != std::string::npos);
            if (c.code != VQS_EVERSION)
                REQUIRE(d.find(name) != std::string::npos);
            // the command says the same and writes nothing
            r = run_vqs(t, {"weights", "eval", "--in", m, "--quantized", bad, "--sequences", "1", "--len", "8",
                            "--csv", csv});
            REQUIRE(r.code == 1);
            REQUIRE(r.err.find(c.expect) != std::string::npos);
            REQUIRE(!exists(csv));
        }
        // a truncated file
        auto bytes = read_bytes(q);
        std::string cut = t.file("cut.safetensors");
        write_bytes(cut, bytes.data(), bytes.size() / 2);
        r = run_vqs(t, {"weights", "eval", "--in", m, "--quantized", cut, "--sequences", "1", "--len", "8"});
        REQUIRE(r.code == 1);
        REQUIRE(r.err.find("cut.safetensors") != std::string::npos);
    }
}

TEST_CASE("vqs help weights lists every weight format", "[weights]")
{
    tmpdir t;
    auto r = run_vqs(t, {"help", "weights"});
    REQUIRE(r.code == 0);
    for (size_t i = 0; i < vqs_wq_format_count(); i++) {
        INFO(vqs_wq_format_at(i)->name);
        REQUIRE(r.out.find("  " + std::string(vqs_wq_format_at(i)->name) + " ") != std::string::npos);
    }
}

TEST_CASE("vqs weights quantize on a synthetic checkpoint: F16/BF16 stay F16/BF16 when dequantized, N-D "
          "tensors with --all, part-name clashes refused",
          "[weights]")
{
    tmpdir t;
    // a: F16 4 x 40, b: BF16 3 x 33, c: F32 2 x 2 x 32 (3-D), n: a 1-D norm
    std::vector<uint16_t> a16(160), b16(99);
    for (size_t i = 0; i < a16.size(); i++)
        a16[i] = vqs_f32_to_f16((float)std::cos(0.11 * (double)i) * 0.05f);
    for (size_t i = 0; i < b16.size(); i++)
        b16[i] = vqs_f32_to_bf16((float)std::sin(0.23 * (double)i) * 0.5f);
    std::vector<float> c(128), n(8, 1.0f);
    for (size_t i = 0; i < c.size(); i++)
        c[i] = (float)((int)(i * 37 % 101) - 50) / 64.0f;
    uint64_t sa[2] = {4, 40}, sb[2] = {3, 33}, sc[3] = {2, 2, 32}, sn[1] = {8};
    std::string in = t.file("in.safetensors");
    {
        vqs_st_writer *w = nullptr;
        REQUIRE_OK(vqs_st_writer_new(&w));
        REQUIRE_OK(vqs_st_writer_meta(w, "note", "synthetic"));
        REQUIRE_OK(vqs_st_writer_add(w, "a", VQS_ST_F16, 2, sa, a16.data(), 2 * a16.size()));
        REQUIRE_OK(vqs_st_writer_add(w, "b", VQS_ST_BF16, 2, sb, b16.data(), 2 * b16.size()));
        REQUIRE_OK(vqs_st_writer_add(w, "c", VQS_ST_F32, 3, sc, c.data(), 4 * c.size()));
        REQUIRE_OK(vqs_st_writer_add(w, "n", VQS_ST_F32, 1, sn, n.data(), 4 * n.size()));
        REQUIRE_OK(vqs_st_writer_save(w, in.c_str()));
        vqs_st_writer_free(w);
    }
    std::string dq = t.file("dq.safetensors");
    auto r = run_vqs(t, {"weights", "quantize", "--in", in, "--format", "q4_1", "--dequantize", "--out", dq});
    INFO(r.err);
    REQUIRE(r.code == 0);
    {
        st_ptr src(in), out(dq);
        REQUIRE(std::string(vqs_st_meta_get(out.f, "note")) == "synthetic");
        for (const char *name : {"a", "b"}) {
            INFO(name);
            const vqs_st_tensor *s = vqs_st_find(src.f, name), *d = vqs_st_find(out.f, name);
            REQUIRE(d->dtype == s->dtype);
            auto want = roundtrip("q4_1", read_f32(src.f, s), s->shape[0], s->shape[1]);
            const uint16_t *h = (const uint16_t *)d->data;
            for (size_t i = 0; i < want.size(); i++) {
                uint16_t e = s->dtype == VQS_ST_F16 ? vqs_f32_to_f16(want[i]) : vqs_f32_to_bf16(want[i]);
                uint16_t g;
                std::memcpy(&g, h + i, 2);
                REQUIRE(g == e);
            }
        }
        // the 3-D tensor and the norm are kept without --all
        REQUIRE(std::memcmp(vqs_st_find(out.f, "c")->data, c.data(), 4 * c.size()) == 0);
        REQUIRE(std::memcmp(vqs_st_find(out.f, "n")->data, n.data(), 4 * n.size()) == 0);
    }
    std::string q = t.file("q.safetensors");
    r = run_vqs(t, {"weights", "quantize", "--in", in, "--format", "q8_0", "--all", "--out", q});
    REQUIRE(r.code == 0);
    {
        wf_ptr f(q);
        const vqs_wfile_tensor *ct = vqs_wfile_find(f.f, "c");
        REQUIRE(ct->quantized);
        REQUIRE(ct->ndim == 3);
        REQUIRE(ct->rows == 4); // 2 x 2 rows of 32
        REQUIRE(ct->cols == 32);
        std::vector<float> y(128);
        REQUIRE_OK(vqs_wfile_read_f32(f.f, ct, 1, y.data()));
        REQUIRE(same_bits(roundtrip("q8_0", c, 4, 32), y.data(), y.size()));
        REQUIRE(vqs_wfile_find(f.f, "n")->quantized);
    }

    // "w" quantized beside a kept "w.x" would read as a part of w: refused, nothing written
    std::string clash = t.file("clash.safetensors");
    {
        uint64_t sw[2] = {2, 32};
        vqs_st_writer *w = nullptr;
        REQUIRE_OK(vqs_st_writer_new(&w));
        REQUIRE_OK(vqs_st_writer_add(w, "w", VQS_ST_F32, 2, sw, c.data(), 4 * 64));
        REQUIRE_OK(vqs_st_writer_add(w, "w.x", VQS_ST_F32, 1, sn, n.data(), 4 * n.size()));
        REQUIRE_OK(vqs_st_writer_save(w, clash.c_str()));
        vqs_st_writer_free(w);
    }
    std::string out = t.file("clash.q.safetensors");
    r = run_vqs(t, {"weights", "quantize", "--in", clash, "--format", "q8_0", "--out", out});
    REQUIRE(r.code != 0);
    REQUIRE(r.err.find("'w.x'") != std::string::npos);
    REQUIRE(!exists(out));
    // dequantized, the names stay as they were: no clash
    r = run_vqs(t, {"weights", "quantize", "--in", clash, "--format", "q8_0", "--dequantize", "--out", out});
    REQUIRE(r.code == 0);
}

// ---- the format without the command (no shared data needed) --------------------------------

TEST_CASE("weights-1 files: tensors in file order, parts borrowed or copied when misaligned, raw tensors as they "
          "are",
          "[weights][wfile]")
{
    tmpdir t;
    // a 3 x 40 matrix in f16 format (parts of 2-byte elements) written after a 3-byte tensor, so
    // its part may start at an odd offset, and a 2-D int tensor that stays raw
    std::vector<float> w(3 * 40);
    for (size_t i = 0; i < w.size(); i++)
        w[i] = (float)std::sin(0.37 * (double)i) * 0.1f;
    vqs_wq_spec s;
    REQUIRE_OK(vqs_wq_spec_parse("f16", &s));
    wq_owned q;
    REQUIRE_OK(vqs_wq_encode(&s, w.data(), 3, 40, nullptr, &q.t));
    vqs_st_writer *wr = nullptr;
    REQUIRE_OK(vqs_st_writer_new(&wr));
    REQUIRE_OK(vqs_wfile_begin(wr, nullptr, 1));
    uint8_t odd[3] = {1, 2, 3};
    uint64_t s3[1] = {3}, sm[3] = {3, 5, 8}, si[2] = {2, 2};
    int32_t ints[4] = {1, -2, 3, -4};
    REQUIRE_OK(vqs_st_writer_add(wr, "odd", VQS_ST_U8, 1, s3, odd, 3));
    // recorded with a shape that is not 3 x 40 (3 x 5 x 8 reads as 15 x 8): refused
    REQUIRE_ERR(vqs_wfile_add(wr, "m", VQS_ST_F32, 3, sm, &q.t), VQS_ESHAPE);
    uint64_t s2[2] = {3, 40};
    REQUIRE_OK(vqs_wfile_add(wr, "m", VQS_ST_BF16, 2, s2, &q.t));
    REQUIRE_OK(vqs_st_writer_add(wr, "ints", VQS_ST_I32, 2, si, ints, sizeof ints));
    std::string p = t.file("w.safetensors");
    REQUIRE_OK(vqs_st_writer_save(wr, p.c_str()));
    vqs_st_writer_free(wr);

    wf_ptr f(p);
    REQUIRE(vqs_wfile_count(f.f) == 3);
    REQUIRE(std::string(vqs_wfile_at(f.f, 0)->name) == "odd");
    REQUIRE(std::string(vqs_wfile_at(f.f, 1)->name) == "m");
    REQUIRE(std::string(vqs_wfile_at(f.f, 2)->name) == "ints");
    const vqs_wfile_tensor *m = vqs_wfile_find(f.f, "m");
    REQUIRE(m->quantized);
    REQUIRE(m->dtype == VQS_ST_BF16); // the original dtype, as recorded
    REQUIRE(m->rows == 3);
    REQUIRE(m->cols == 40);
    REQUIRE(m->nbytes == vqs_wq_nbytes(&q.t));
    for (int i = 0; i < m->q.nparts; i++)
        REQUIRE((uintptr_t)m->q.part[i].data % vqs_wq_type_size(m->q.part[i].type) == 0);
    std::vector<float> y(120), want(120);
    REQUIRE_OK(vqs_wfile_read_f32(f.f, m, 1, y.data()));
    REQUIRE_OK(vqs_wq_decode(&q.t, want.data(), nullptr));
    REQUIRE(same_bits(want, y.data(), y.size()));
    const vqs_wfile_tensor *in = vqs_wfile_find(f.f, "ints");
    REQUIRE(!in->quantized);
    REQUIRE(in->rows == 2);
    std::vector<float> iv(4);
    REQUIRE_OK(vqs_wfile_read_f32(f.f, in, 1, iv.data()));
    REQUIRE(iv == std::vector<float>{1, -2, 3, -4});

    // a tensor beside a quantized one that its record does not list is refused
    REQUIRE_OK(vqs_st_writer_new(&wr));
    REQUIRE_OK(vqs_wfile_begin(wr, nullptr, 1));
    REQUIRE_OK(vqs_wfile_add(wr, "m", VQS_ST_F32, 2, s2, &q.t));
    REQUIRE_OK(vqs_st_writer_add(wr, "m.extra", VQS_ST_U8, 1, s3, odd, 3));
    REQUIRE_OK(vqs_st_writer_save(wr, p.c_str()));
    vqs_st_writer_free(wr);
    vqs_wfile *bad = nullptr;
    REQUIRE_ERR(vqs_wfile_open(p.c_str(), &bad), VQS_ECORRUPT);
    REQUIRE(std::string(vqs_errdetail()).find("m.extra") != std::string::npos);

    // records without vqs.format
    REQUIRE_OK(vqs_st_writer_new(&wr));
    REQUIRE_OK(vqs_wfile_add(wr, "m", VQS_ST_F32, 2, s2, &q.t));
    REQUIRE_OK(vqs_st_writer_save(wr, p.c_str()));
    vqs_st_writer_free(wr);
    REQUIRE_ERR(vqs_wfile_open(p.c_str(), &bad), VQS_ECORRUPT);
    REQUIRE(std::string(vqs_errdetail()).find(VQS_WFILE_KEY) != std::string::npos);
}

TEST_CASE("weights plan: the knapsack finds the best plan within the budget (brute force on small cases)",
          "[weights][plan]")
{
    vqs_rng rng;
    vqs_rng_seed(&rng, 42);
    for (int trial = 0; trial < 300; trial++) {
        size_t nt = 1 + vqs_rng_next(&rng) % 5, nc = 1 + vqs_rng_next(&rng) % 4;
        // small sizes (unit 1: exact) in most trials, huge ones (rounded units) in the rest
        bool big = trial % 4 == 3;
        std::vector<uint64_t> bytes(nt * nc);
        std::vector<double> loss(nt * nc);
        for (size_t i = 0; i < nt * nc; i++) {
            bytes[i] = 1 + vqs_rng_next(&rng) % (big ? 10000000 : 60);
            loss[i] = vqs_rng_uniform(&rng);
            if (vqs_rng_next(&rng) % 10 == 0 && i % nc)
                loss[i] = INFINITY; // not allowed
        }
        uint64_t budget = vqs_rng_next(&rng) % (nt * (big ? 10000000 : 60) + 1);
        // brute force over every assignment
        double best = INFINITY;
        std::vector<size_t> c(nt, 0);
        for (;;) {
            uint64_t b = 0;
            double l = 0;
            for (size_t k = 0; k < nt; k++)
                b += bytes[k * nc + c[k]], l += loss[k * nc + c[k]];
            if (b <= budget && l < best)
                best = l;
            size_t k = 0;
            while (k < nt && ++c[k] == nc)
                c[k++] = 0;
            if (k == nt)
                break;
        }
        std::vector<int> ch(nt, -1);
        double tl = -1;
        uint64_t tb = 0;
        int rc = vqs_wplan_solve(nt, nc, bytes.data(), loss.data(), budget, ch.data(), &tl, &tb);
        INFO("trial " << trial << " nt " << nt << " nc " << nc << " budget " << budget << " best " << best);
        if (rc) {
            REQUIRE(rc == VQS_ERANGE);
            // only when nothing fits (or, with rounded units, nothing fits after rounding)
            if (!big)
                REQUIRE(std::isinf(best));
            continue;
        }
        uint64_t b = 0;
        double l = 0;
        for (size_t k = 0; k < nt; k++) {
            REQUIRE(ch[k] >= 0);
            REQUIRE((size_t)ch[k] < nc);
            REQUIRE(!std::isinf(loss[k * nc + ch[k]]));
            b += bytes[k * nc + ch[k]];
            l += loss[k * nc + ch[k]];
        }
        REQUIRE(b <= budget);
        REQUIRE(b == tb);
        REQUIRE(l == Approx(tl));
        if (!big)
            REQUIRE(l == Approx(best).margin(1e-12));
        else
            REQUIRE(l >= best - 1e-12);
    }
    // the detail of an impossible budget names the smallest size
    uint64_t bytes[2] = {10, 20};
    double loss[2] = {1, 0};
    int ch;
    REQUIRE_ERR(vqs_wplan_solve(1, 2, bytes, loss, 9, &ch, nullptr, nullptr), VQS_ERANGE);
    REQUIRE(std::string(vqs_errdetail()).find("10") != std::string::npos);
    REQUIRE_OK(vqs_wplan_solve(1, 2, bytes, loss, 19, &ch, nullptr, nullptr));
    REQUIRE(ch == 0);
    REQUIRE_OK(vqs_wplan_solve(1, 2, bytes, loss, 20, &ch, nullptr, nullptr));
    REQUIRE(ch == 1);
}
