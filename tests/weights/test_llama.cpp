// The reference Llama-2 forward pass and the quality measures (tools/weights/vqs_llama.h):
// against an independent numpy implementation on stories260K, a hand-worked
// one-layer model, .bin against safetensors, sampling, compare, and bad files.
#include "vqs_test.hpp"

#include "vqs_llama.h"

#include <cmath>
#include <map>

using namespace vqs_test;

namespace {

using llama_ptr = std::unique_ptr<vqs_llama, decltype(&vqs_llama_free)>;

llama_ptr load(const std::string &path)
{
    vqs_llama *m = nullptr;
    REQUIRE_OK(vqs_llama_load(path.c_str(), &m));
    return llama_ptr(m, vqs_llama_free);
}

std::vector<float> logits_of(const vqs_llama *m, const std::vector<int> &tok)
{
    std::vector<float> l(tok.size() * (size_t)vqs_llama_cfg(m)->vocab_size);
    REQUIRE_OK(vqs_llama_forward(m, tok.data(), (int)tok.size(), l.data()));
    return l;
}

// A model written by hand, in both file formats, so the loaders are tested
// without the shared data. Tensors by safetensors name, with shapes.
struct tiny_model {
    vqs_llama_config c{};
    std::vector<std::string> names;
    std::map<std::string, std::vector<uint64_t>> shape;
    std::map<std::string, std::vector<float>> w;

    int hs() const { return c.dim / c.n_heads; }
    void add(const std::string &n, std::vector<uint64_t> s, vqs_rng *r, float scale)
    {
        size_t k = 1;
        for (auto d : s)
            k *= d;
        std::vector<float> v(k);
        for (auto &x : v)
            x = r ? (float)(scale * vqs_rng_normal(r)) : 0.0f;
        names.push_back(n);
        shape[n] = s;
        w[n] = v;
    }
    // Random weights (norm weights near 1), or all zero when r is null.
    tiny_model(vqs_llama_config cfg, vqs_rng *r)
    {
        c = cfg;
        uint64_t d = (uint64_t)c.dim, h = (uint64_t)c.hidden_dim, v = (uint64_t)c.vocab_size,
                 kv = (uint64_t)(hs() * c.n_kv_heads);
        add("tok_embeddings.weight", {v, d}, r, 0.5f);
        for (int l = 0; l < c.n_layers; l++) {
            std::string p = "layers." + std::to_string(l) + ".";
            add(p + "attention_norm.weight", {d}, r, 0.2f);
            add(p + "attention.wq.weight", {d, d}, r, 0.4f);
            add(p + "attention.wk.weight", {kv, d}, r, 0.4f);
            add(p + "attention.wv.weight", {kv, d}, r, 0.4f);
            add(p + "attention.wo.weight", {d, d}, r, 0.4f);
            add(p + "ffn_norm.weight", {d}, r, 0.2f);
            add(p + "feed_forward.w1.weight", {h, d}, r, 0.4f);
            add(p + "feed_forward.w2.weight", {d, h}, r, 0.4f);
            add(p + "feed_forward.w3.weight", {h, d}, r, 0.4f);
        }
        add("norm.weight", {d}, r, 0.2f);
        if (!c.shared_classifier)
            add("output.weight", {v, d}, r, 0.5f);
        if (r)
            for (auto &n : names)
                if (n.find("norm") != std::string::npos)
                    for (auto &x : w[n])
                        x += 1.0f;
    }

    std::string config_json() const
    {
        return "{\"dim\": " + std::to_string(c.dim) + ", \"hidden_dim\": " + std::to_string(c.hidden_dim) +
               ", \"n_layers\": " + std::to_string(c.n_layers) + ", \"n_heads\": " + std::to_string(c.n_heads) +
               ", \"n_kv_heads\": " + std::to_string(c.n_kv_heads) + ", \"vocab_size\": " +
               std::to_string(c.vocab_size) + ", \"max_seq_len\": " + std::to_string(c.seq_len) +
               ", \"shared_classifier\": " + (c.shared_classifier ? "true" : "false") + "}";
    }

    // safetensors by hand (not through the writer under test elsewhere)
    void write_st(const std::string &path, const std::string &config, const std::string &skip = "") const
    {
        std::string esc;
        for (char ch : config) {
            if (ch == '"' || ch == '\\')
                esc += '\\';
            esc += ch;
        }
        std::string hdr = "{\"__metadata__\": {\"config\": \"" + esc + "\"}";
        std::vector<unsigned char> data;
        for (auto &n : names) {
            if (n == skip)
                continue;
            auto &v = w.at(n);
            size_t b = data.size();
            data.resize(b + v.size() * 4);
            std::memcpy(data.data() + b, v.data(), v.size() * 4);
            hdr += ", \"" + n + "\": {\"dtype\": \"F32\", \"shape\": [";
            auto &s = shape.at(n);
            for (size_t i = 0; i < s.size(); i++)
                hdr += (i ? ", " : "") + std::to_string(s[i]);
            hdr += "], \"data_offsets\": [" + std::to_string(b) + ", " + std::to_string(data.size()) + "]}";
        }
        hdr += "}";
        while ((8 + hdr.size()) % 8)
            hdr += ' ';
        std::vector<unsigned char> f(8);
        uint64_t n = hdr.size();
        std::memcpy(f.data(), &n, 8);
        f.insert(f.end(), hdr.begin(), hdr.end());
        f.insert(f.end(), data.begin(), data.end());
        write_bytes(path, f.data(), f.size());
    }

    // llama2.c's legacy .bin: header, tensors grouped across layers, the
    // RoPE tables, the classifier if unshared
    void write_bin(const std::string &path) const
    {
        std::vector<unsigned char> f;
        auto put = [&](const void *p, size_t n) {
            f.insert(f.end(), (const unsigned char *)p, (const unsigned char *)p + n);
        };
        int32_t h[7] = {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads,
                        c.shared_classifier ? c.vocab_size : -c.vocab_size, c.seq_len};
        put(h, sizeof h);
        auto tensor = [&](const std::string &n) { put(w.at(n).data(), w.at(n).size() * 4); };
        tensor("tok_embeddings.weight");
        for (const char *k : {"attention_norm", "attention.wq", "attention.wk", "attention.wv", "attention.wo",
                              "ffn_norm", "feed_forward.w1", "feed_forward.w2", "feed_forward.w3"})
            for (int l = 0; l < c.n_layers; l++)
                tensor("layers." + std::to_string(l) + "." + k + ".weight");
        tensor("norm.weight");
        std::vector<float> freq((size_t)c.seq_len * (size_t)hs(), 0.25f); // not read by the C code
        put(freq.data(), freq.size() * 4);
        if (!c.shared_classifier)
            tensor("output.weight");
        write_bytes(path, f.data(), f.size());
    }
};

vqs_llama_config small_cfg(bool shared = true)
{
    vqs_llama_config c{};
    c.dim = 8;
    c.hidden_dim = 12;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.vocab_size = 16;
    c.seq_len = 10;
    c.shared_classifier = shared;
    return c;
}

const char *ST = "llm_stories260K/stories260K.safetensors";
const char *BIN = "llm_stories260K/stories260K.bin";

// A fixed sequence over the whole context: BOS, then tokens spread over the vocabulary.
std::vector<int> fixed_tokens(int n, int vocab)
{
    std::vector<int> t(n);
    t[0] = 1;
    for (int i = 1; i < n; i++)
        t[i] = (37 * i + 11) % vocab;
    return t;
}

// A python3 that has numpy: /usr/bin/python3 first (the one on PATH may lack it).
std::string python_with_numpy(const tmpdir &t)
{
    for (std::string py : {"/usr/bin/python3", "python3"}) {
        auto r = run_program(t, py, {py, "-c", "import numpy"});
        if (r.code == 0)
            return py;
    }
    const char *req = std::getenv("VQS_REQUIRE_DATA");
    if (req && *req == '1')
        FAIL("python3 with numpy is required (VQS_REQUIRE_DATA=1): scripts/setup.sh --with-tests installs it");
    std::printf("SKIP: no python3 with numpy (scripts/setup.sh --with-tests installs python3-numpy)\n");
    std::fflush(stdout);
    std::_Exit(77);
}

} // namespace

TEST_CASE("llama: stories260K logits equal the independent numpy implementation within 1e-4", "[llama][data]")
{
    std::string st = data_path(ST), bin = data_path(BIN);
    tmpdir t;
    std::string py = python_with_numpy(t);
    auto m = load(st);
    const vqs_llama_config *c = vqs_llama_cfg(m.get());
    REQUIRE(c->dim == 64);
    REQUIRE(c->n_layers == 5);
    REQUIRE(c->n_kv_heads == 4);
    REQUIRE(c->shared_classifier == 1);
    // every position of the context, so every row of the file's RoPE tables is used
    auto tok = fixed_tokens(c->seq_len, c->vocab_size);
    std::vector<std::string> argv = {py, VQS_SOURCE_DIR "/tests/weights/llama_ref.py", bin};
    for (int x : tok)
        argv.push_back(std::to_string(x));
    auto r = run_program(t, py, argv);
    INFO(r.err);
    REQUIRE(r.code == 0);
    std::istringstream in(r.out);
    std::vector<double> ref;
    double v;
    while (in >> v)
        ref.push_back(v);
    REQUIRE(ref.size() == tok.size() * (size_t)c->vocab_size);

    auto l = logits_of(m.get(), tok);
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < l.size(); i++)
        if (std::fabs(l[i] - ref[i]) > worst) {
            worst = std::fabs(l[i] - ref[i]);
            at = i;
        }
    INFO("largest difference " << worst << " at position " << at / (size_t)c->vocab_size << ", token "
                               << at % (size_t)c->vocab_size);
    REQUIRE(worst <= 1e-4);
    // not a vacuous comparison: the logits spread over several units
    double lo = *std::min_element(ref.begin(), ref.end()), hi = *std::max_element(ref.begin(), ref.end());
    REQUIRE(hi - lo > 10);
}

TEST_CASE("llama: stories260K from .bin and from safetensors give identical weights and logits", "[llama][data]")
{
    auto a = load(data_path(ST));
    vqs_llama *bp = nullptr;
    REQUIRE_OK(vqs_llama_load_bin(data_path(BIN).c_str(), &bp));
    llama_ptr b(bp, vqs_llama_free);
    REQUIRE(std::memcmp(vqs_llama_cfg(a.get()), vqs_llama_cfg(b.get()), sizeof(vqs_llama_config)) == 0);
    REQUIRE(vqs_llama_ntensors(a.get()) == 47);
    REQUIRE(vqs_llama_ntensors(b.get()) == 47);
    for (size_t i = 0; i < 47; i++) {
        const float *wa, *wb;
        size_t ra, ca, rb, cb;
        std::string na = vqs_llama_tensor(a.get(), i, &wa, &ra, &ca);
        std::string nb = vqs_llama_tensor(b.get(), i, &wb, &rb, &cb);
        INFO(na);
        REQUIRE(na == nb);
        REQUIRE(ra == rb);
        REQUIRE(ca == cb);
        REQUIRE(std::memcmp(wa, wb, ra * ca * 4) == 0);
    }
    auto tok = fixed_tokens(200, 512);
    auto la = logits_of(a.get(), tok), lb = logits_of(b.get(), tok);
    REQUIRE(std::memcmp(la.data(), lb.data(), la.size() * 4) == 0);
}

TEST_CASE("llama: a hand-worked one-layer model (uniform attention, no feed-forward)", "[llama]")
{
    // dim 2, one head of size 2, vocab 2: wq = wk = 0 makes every score 0,
    // so attention averages the values; wv = wo = I; w1 = w2 = w3 = 0 makes
    // the feed-forward add 0; norm weights 1; embeddings e0 = (1, 0), e1 = (0, 1).
    vqs_llama_config c{};
    c.dim = 2;
    c.hidden_dim = 3;
    c.n_layers = 1;
    c.n_heads = 1;
    c.n_kv_heads = 1;
    c.vocab_size = 2;
    c.seq_len = 4;
    c.shared_classifier = 1;
    tiny_model tm(c, nullptr); // all zero
    tm.w["tok_embeddings.weight"] = {1, 0, 0, 1};
    tm.w["layers.0.attention.wv.weight"] = {1, 0, 0, 1};
    tm.w["layers.0.attention.wo.weight"] = {1, 0, 0, 1};
    for (const char *n : {"layers.0.attention_norm.weight", "layers.0.ffn_norm.weight", "norm.weight"})
        tm.w[n] = {1, 1};
    tmpdir t;
    tm.write_st(t.file("m.safetensors"), tm.config_json());
    auto m = load(t.file("m.safetensors"));
    auto l = logits_of(m.get(), {0, 1, 1});

    // by hand: rmsnorm(x) = x / sqrt(mean(x^2) + 1e-5)
    auto norm = [](double a, double b) {
        double s = std::sqrt((a * a + b * b) / 2 + 1e-5);
        return std::pair<double, double>(a / s, b / s);
    };
    double g = 1 / std::sqrt(0.5 + 1e-5); // rmsnorm of a unit basis vector's component
    // position 0: x = e0 + (g, 0); position 1: x = e1 + mean((g, 0), (0, g));
    // position 2: x = e1 + mean((g, 0), (0, g), (0, g))
    std::pair<double, double> want[3] = {norm(1 + g, 0), norm(g / 2, 1 + g / 2), norm(g / 3, 1 + 2 * g / 3)};
    for (int p = 0; p < 3; p++) {
        INFO("position " << p);
        // logits = final-normed x . e_v (the classifier is the embedding)
        CHECK(l[2 * p] == Approx(want[p].first).margin(1e-6));
        CHECK(l[2 * p + 1] == Approx(want[p].second).margin(1e-6));
    }
    CHECK(l[0] == Approx(std::sqrt(2.0)).margin(1e-4));
}

TEST_CASE("llama: tiny models load from .bin and safetensors alike, shared and unshared classifier", "[llama]")
{
    for (bool shared : {true, false}) {
        INFO("shared classifier " << shared);
        vqs_rng r;
        vqs_rng_seed(&r, 7);
        tiny_model tm(small_cfg(shared), &r);
        tmpdir t;
        tm.write_st(t.file("m.safetensors"), tm.config_json());
        tm.write_bin(t.file("m.bin"));
        auto a = load(t.file("m.safetensors"));
        auto b = load(t.file("m.bin")); // load() tells the formats apart by content
        REQUIRE(vqs_llama_cfg(a.get())->shared_classifier == (int)shared);
        REQUIRE(vqs_llama_ntensors(a.get()) == tm.names.size());
        for (size_t i = 0; i < tm.names.size(); i++) {
            const float *w;
            size_t rows, cols;
            REQUIRE(vqs_llama_tensor(a.get(), i, &w, &rows, &cols) == tm.names[i]);
            REQUIRE(rows * cols == tm.w[tm.names[i]].size());
            REQUIRE(std::memcmp(w, tm.w[tm.names[i]].data(), rows * cols * 4) == 0);
        }
        REQUIRE(vqs_llama_tensor(a.get(), tm.names.size(), nullptr, nullptr, nullptr) == nullptr);
        std::vector<int> tok = {1, 5, 9, 15, 0, 3, 3, 7, 2, 11};
        auto la = logits_of(a.get(), tok), lb = logits_of(b.get(), tok);
        REQUIRE(std::memcmp(la.data(), lb.data(), la.size() * 4) == 0);
        for (float x : la)
            REQUIRE(std::isfinite(x));
        if (!shared) {
            // the classifier is output.weight, not the embedding
            std::vector<float> e = tm.w["tok_embeddings.weight"];
            REQUIRE_OK(vqs_llama_set_weight(a.get(), "output.weight", e.data(), e.size()));
            auto lc = logits_of(a.get(), tok);
            REQUIRE(std::memcmp(la.data(), lc.data(), la.size() * 4) != 0);
        }
    }
}

TEST_CASE("llama: forward refuses too many tokens and tokens outside the vocabulary", "[llama]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 3);
    tiny_model tm(small_cfg(), &r);
    tmpdir t;
    tm.write_st(t.file("m.safetensors"), tm.config_json());
    auto m = load(t.file("m.safetensors"));
    std::vector<int> tok(11, 1);
    std::vector<float> l(11 * 16);
    REQUIRE_ERR(vqs_llama_forward(m.get(), tok.data(), 11, l.data()), VQS_EINVAL);
    REQUIRE_ERR(vqs_llama_forward(m.get(), tok.data(), 0, l.data()), VQS_EINVAL);
    tok[4] = 16;
    REQUIRE_ERR(vqs_llama_forward(m.get(), tok.data(), 10, l.data()), VQS_EINVAL);
    REQUIRE(std::string(vqs_errdetail()).find("position 4") != std::string::npos);
    tok[4] = -1;
    REQUIRE_ERR(vqs_llama_forward(m.get(), tok.data(), 10, l.data()), VQS_EINVAL);
}

TEST_CASE("llama: bad safetensors files are refused naming the tensor or config field", "[llama]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 5);
    tiny_model tm(small_cfg(), &r);
    tmpdir t;
    std::string p = t.file("bad.safetensors");
    vqs_llama *m = nullptr;
    auto expect = [&](int code, const std::string &needle) {
        int rc = vqs_llama_load(p.c_str(), &m);
        std::string d = vqs_errdetail();
        INFO(vqs_err_name(rc) << ": " << d);
        REQUIRE(rc == code);
        REQUIRE(m == nullptr);
        REQUIRE(d.find(needle) != std::string::npos);
    };
    SECTION("a missing tensor") {
        tm.write_st(p, tm.config_json(), "layers.1.feed_forward.w2.weight");
        expect(VQS_ENOTFOUND, "'layers.1.feed_forward.w2.weight'");
    }
    SECTION("a tensor of the wrong shape") {
        tm.shape["layers.0.attention.wk.weight"] = {8, 8}; // GQA needs [4, 8]
        tm.w["layers.0.attention.wk.weight"].resize(64);
        tm.write_st(p, tm.config_json());
        expect(VQS_ESHAPE, "'layers.0.attention.wk.weight': shape [8, 8], the config needs [4, 8]");
    }
    SECTION("a norm given as a matrix") {
        tm.shape["norm.weight"] = {1, 8};
        tm.write_st(p, tm.config_json());
        expect(VQS_ESHAPE, "'norm.weight'");
    }
    SECTION("malformed config JSON") {
        tm.write_st(p, "{\"dim\": 8, \"hidden_dim\": ");
        expect(VQS_EHEADER, "config: malformed JSON");
    }
    SECTION("config is not an object") {
        tm.write_st(p, "[8, 12]");
        expect(VQS_EHEADER, "config: not a JSON object");
    }
    SECTION("a config field missing") {
        std::string c = tm.config_json();
        c.replace(c.find("\"n_kv_heads\": 2, "), 17, "");
        tm.write_st(p, c);
        expect(VQS_EHEADER, "'n_kv_heads' is missing");
    }
    SECTION("a config field of the wrong type") {
        std::string c = tm.config_json();
        c.replace(c.find("\"dim\": 8"), 8, "\"dim\": \"8\"");
        tm.write_st(p, c);
        expect(VQS_EHEADER, "'dim' is not an integer");
    }
    SECTION("a config field out of range") {
        std::string c = tm.config_json();
        c.replace(c.find("\"n_layers\": 2"), 13, "\"n_layers\": 0");
        tm.write_st(p, c);
        expect(VQS_EHEADER, "'n_layers' = 0");
    }
    SECTION("n_heads that does not divide dim") {
        std::string c = tm.config_json();
        c.replace(c.find("\"n_heads\": 4"), 12, "\"n_heads\": 3");
        tm.write_st(p, c);
        expect(VQS_EHEADER, "n_heads = 3 does not divide dim = 8");
    }
    SECTION("n_kv_heads that does not divide n_heads") {
        std::string c = tm.config_json();
        c.replace(c.find("\"n_kv_heads\": 2"), 15, "\"n_kv_heads\": 3");
        tm.write_st(p, c);
        expect(VQS_EHEADER, "n_kv_heads = 3");
    }
    SECTION("shared_classifier false without output.weight") {
        std::string c = tm.config_json();
        c.replace(c.find("true"), 4, "false");
        tm.write_st(p, c);
        expect(VQS_ENOTFOUND, "'output.weight' is missing");
    }
    SECTION("a config field vqs does not read") {
        std::string c = tm.config_json();
        c.replace(c.find("\"dim\": 8"), 8, "\"rope_theta\": 500000.0, \"dim\": 8");
        tm.write_st(p, c);
        expect(VQS_EHEADER, "field 'rope_theta' is not one vqs reads");
    }
    SECTION("shared_classifier true beside an output.weight") {
        tm.add("output.weight", {(uint64_t)tm.c.vocab_size, (uint64_t)tm.c.dim}, nullptr, 0);
        tm.write_st(p, tm.config_json());
        expect(VQS_EHEADER, "tensor 'output.weight' is present but the config has \"shared_classifier\": true");
    }
    SECTION("a tensor the model does not have") {
        tm.add("layers.0.attention.bq", {(uint64_t)tm.c.dim}, nullptr, 0);
        tm.write_st(p, tm.config_json());
        expect(VQS_EHEADER, "tensor 'layers.0.attention.bq' is not a tensor of this model");
    }
    SECTION("a NaN weight") {
        tm.w["layers.1.attention.wo.weight"][13] = NAN;
        tm.write_st(p, tm.config_json());
        expect(VQS_ENONFINITE, "layers.1.attention.wo.weight");
    }
    SECTION("no file") {
        p = t.file("absent.safetensors");
        expect(-ENOENT, "absent.safetensors");
    }
}

TEST_CASE("llama: bad llama2.c .bin files are refused", "[llama]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 6);
    for (bool shared : {true, false}) {
        INFO("shared " << shared);
        tiny_model tm(small_cfg(shared), &r);
        tmpdir t;
        std::string p = t.file("m.bin");
        tm.write_bin(p);
        auto good = read_bytes(p);
        vqs_llama *m = nullptr;
        auto expect = [&](const std::vector<unsigned char> &bytes, int code, const std::string &needle) {
            write_bytes(p, bytes.data(), bytes.size());
            int rc = vqs_llama_load_bin(p.c_str(), &m);
            std::string d = vqs_errdetail();
            INFO(vqs_err_name(rc) << ": " << d);
            REQUIRE(rc == code);
            REQUIRE(m == nullptr);
            REQUIRE(d.find(needle) != std::string::npos);
        };
        auto b = good;
        b.resize(good.size() - 4);
        expect(b, VQS_ETRUNC, shared ? "truncated in the RoPE tables" : "truncated in tensor 'output.weight'");
        b.resize(20);
        expect(b, VQS_ETRUNC, "header");
        b = good;
        b.resize(28 + 16 * 8 * 4 + 10); // inside the first layer's attention_norm
        expect(b, VQS_ETRUNC, "'layers.0.attention_norm.weight'");
        b = good;
        b.push_back(0);
        expect(b, VQS_ESHAPE, "1 trailing bytes");
        b = good;
        int32_t bad_heads = 3;
        std::memcpy(b.data() + 12, &bad_heads, 4);
        expect(b, VQS_EHEADER, "n_heads = 3");
        // a Llama-2-7B header over a tiny file: refused from the sizes,
        // before 27 GB of weights are allocated
        b = good;
        int32_t big[7] = {4096, 11008, 32, 32, 32, shared ? 32000 : -32000, 2048};
        std::memcpy(b.data(), big, sizeof big);
        expect(b, VQS_ETRUNC, "truncated in tensor 'tok_embeddings.weight'");
        // a header whose model is past any memory
        int32_t huge[7] = {1 << 24, 1 << 24, 1 << 16, 1 << 10, 1 << 10, 1 << 24, 16};
        std::memcpy(b.data(), huge, sizeof huge);
        expect(b, VQS_EHEADER, "beyond this reference");
        b = good;
        float nan = NAN; // first float of tok_embeddings' row 1
        std::memcpy(b.data() + 28 + 8 * 4, &nan, 4);
        expect(b, VQS_ENONFINITE, "'tok_embeddings.weight': element 8 (row 1, column 0) is NaN");
    }
}

TEST_CASE("llama: clone and set_weight change only the named tensor", "[llama]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 8);
    tiny_model tm(small_cfg(false), &r);
    tmpdir t;
    tm.write_st(t.file("m.safetensors"), tm.config_json());
    auto m = load(t.file("m.safetensors"));
    vqs_llama *cp = nullptr;
    REQUIRE_OK(vqs_llama_clone(m.get(), &cp));
    llama_ptr c(cp, vqs_llama_free);
    const char *target = "layers.1.feed_forward.w3.weight";
    std::vector<float> w(12 * 8);
    for (size_t i = 0; i < w.size(); i++)
        w[i] = (float)i / 7.0f;
    REQUIRE_OK(vqs_llama_set_weight(c.get(), target, w.data(), w.size()));
    REQUIRE_ERR(vqs_llama_set_weight(c.get(), target, w.data(), w.size() - 1), VQS_ESHAPE);
    REQUIRE_ERR(vqs_llama_set_weight(c.get(), "layers.2.feed_forward.w3.weight", w.data(), w.size()),
                VQS_ENOTFOUND);
    REQUIRE(std::string(vqs_errdetail()).find("layers.2.feed_forward.w3.weight") != std::string::npos);
    for (size_t i = 0; i < vqs_llama_ntensors(m.get()); i++) {
        const float *a, *b;
        size_t ra, ca, rb, cb;
        std::string n = vqs_llama_tensor(m.get(), i, &a, &ra, &ca);
        REQUIRE(vqs_llama_tensor(c.get(), i, &b, &rb, &cb) == n);
        REQUIRE(a != b); // a deep copy
        INFO(n);
        // the original keeps the file's values
        REQUIRE(std::memcmp(a, tm.w[n].data(), ra * ca * 4) == 0);
        if (n == target)
            REQUIRE(std::memcmp(b, w.data(), rb * cb * 4) == 0);
        else
            REQUIRE(std::memcmp(a, b, ra * ca * 4) == 0);
    }
    std::vector<int> tok = {1, 2, 3, 4, 5};
    auto la = logits_of(m.get(), tok), lb = logits_of(c.get(), tok);
    REQUIRE(std::memcmp(la.data(), lb.data(), la.size() * 4) != 0);
}

TEST_CASE("llama: sampling is deterministic per seed, starts with BOS and stays in the vocabulary", "[llama]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 9);
    tiny_model tm(small_cfg(), &r);
    tmpdir t;
    tm.write_st(t.file("m.safetensors"), tm.config_json());
    auto m = load(t.file("m.safetensors"));
    const int nseq = 6, len = 10;
    std::vector<int> a(nseq * len), b(nseq * len), c(nseq * len);
    REQUIRE_OK(vqs_llama_sample(m.get(), nseq, len, 1, 42, a.data()));
    REQUIRE_OK(vqs_llama_sample(m.get(), nseq, len, 1, 42, b.data()));
    REQUIRE_OK(vqs_llama_sample(m.get(), nseq, len, 1, 43, c.data()));
    REQUIRE(a == b);
    REQUIRE(a != c);
    for (int s = 0; s < nseq; s++)
        REQUIRE(a[(size_t)s * len] == 1);
    for (int x : a)
        REQUIRE((x >= 0 && x < 16));
    // sequences differ from each other (one seed each)
    REQUIRE(!std::equal(a.begin(), a.begin() + len, a.begin() + len));
    REQUIRE_ERR(vqs_llama_sample(m.get(), nseq, 11, 1, 42, a.data()), VQS_EINVAL);
    REQUIRE_ERR(vqs_llama_sample(m.get(), nseq, len, 16, 42, a.data()), VQS_EINVAL);
    REQUIRE_ERR(vqs_llama_sample(m.get(), 0, len, 1, 42, a.data()), VQS_EINVAL);
}

TEST_CASE("llama: sampled tokens follow the model's distribution", "[llama]")
{
    // 20000 sequences of 2 tokens: the second token's frequencies against
    // softmax of the logits after BOS, within 5 standard deviations
    vqs_rng r;
    vqs_rng_seed(&r, 10);
    tiny_model tm(small_cfg(), &r);
    tmpdir t;
    tm.write_st(t.file("m.safetensors"), tm.config_json());
    auto m = load(t.file("m.safetensors"));
    auto l = logits_of(m.get(), {1});
    std::vector<double> p(16);
    double z = 0, mx = *std::max_element(l.begin(), l.end());
    for (int i = 0; i < 16; i++)
        z += p[i] = std::exp((double)l[i] - mx);
    const int n = 20000;
    std::vector<int> tok(2 * n);
    REQUIRE_OK(vqs_llama_sample(m.get(), n, 2, 1, 123, tok.data()));
    std::vector<double> cnt(16);
    for (int s = 0; s < n; s++)
        cnt[tok[2 * s + 1]] += 1;
    for (int i = 0; i < 16; i++) {
        double pi = p[i] / z, sd = std::sqrt(pi * (1 - pi) / n);
        INFO("token " << i << ": p " << pi << ", frequency " << cnt[i] / n);
        CHECK(std::fabs(cnt[i] / n - pi) <= 5 * sd + 1e-9);
    }
}

TEST_CASE("llm compare: a model against itself, a perturbed copy, and any thread count", "[llama]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 11);
    tiny_model tm(small_cfg(), &r);
    tmpdir t;
    tm.write_st(t.file("m.safetensors"), tm.config_json());
    auto m = load(t.file("m.safetensors"));
    const int nseq = 7, len = 10;
    std::vector<int> tok(nseq * len);
    REQUIRE_OK(vqs_llama_sample(m.get(), nseq, len, 1, 5, tok.data()));

    vqs_llm_quality q;
    REQUIRE_OK(vqs_llm_compare(m.get(), m.get(), tok.data(), nseq, len, 2, &q));
    REQUIRE(q.positions == (size_t)nseq * (len - 1));
    REQUIRE(q.kl_mean == 0.0);
    REQUIRE(q.kl_p99 == 0.0);
    REQUIRE(q.kl_max == 0.0);
    REQUIRE(q.top1 == 1.0);
    REQUIRE(q.ce == q.ce_ref);
    REQUIRE(q.ce_ref > 0);

    vqs_llama *cp = nullptr;
    REQUIRE_OK(vqs_llama_clone(m.get(), &cp));
    llama_ptr c(cp, vqs_llama_free);
    auto w = tm.w["layers.0.feed_forward.w1.weight"];
    for (auto &x : w)
        x += (float)(0.3 * vqs_rng_normal(&r));
    REQUIRE_OK(vqs_llama_set_weight(c.get(), "layers.0.feed_forward.w1.weight", w.data(), w.size()));
    vqs_llm_quality q1, q2, q3;
    REQUIRE_OK(vqs_llm_compare(m.get(), c.get(), tok.data(), nseq, len, 1, &q1));
    REQUIRE_OK(vqs_llm_compare(m.get(), c.get(), tok.data(), nseq, len, 2, &q2));
    REQUIRE_OK(vqs_llm_compare(m.get(), c.get(), tok.data(), nseq, len, 5, &q3));
    REQUIRE(q1.kl_mean > 0);
    REQUIRE(q1.kl_max >= q1.kl_p99);
    REQUIRE(q1.kl_p99 > 0);
    REQUIRE(q1.ce != q1.ce_ref);
    REQUIRE(q1.ce_ref == q.ce_ref);
    REQUIRE(q1.top1 <= 1.0);
    REQUIRE(std::memcmp(&q1, &q2, sizeof q1) == 0);
    REQUIRE(std::memcmp(&q1, &q3, sizeof q1) == 0);

    // the numbers by hand from the logits: mean KL, top-1, cross-entropy
    double kl = 0, agree = 0, ce = 0, ce_ref = 0, kmax = 0;
    for (int s = 0; s < nseq; s++) {
        std::vector<int> seq(tok.begin() + s * len, tok.begin() + (s + 1) * len);
        auto la = logits_of(m.get(), seq), lb = logits_of(c.get(), seq);
        for (int i = 0; i + 1 < len; i++) {
            const float *a = &la[(size_t)i * 16], *b = &lb[(size_t)i * 16];
            double za = 0, zb = 0;
            for (int j = 0; j < 16; j++) {
                za += std::exp((double)a[j]);
                zb += std::exp((double)b[j]);
            }
            double k = 0;
            for (int j = 0; j < 16; j++) {
                double pa = std::exp((double)a[j]) / za, pb = std::exp((double)b[j]) / zb;
                k += pa * std::log(pa / pb);
            }
            kl += k;
            kmax = std::max(kmax, k);
            agree += std::max_element(a, a + 16) - a == std::max_element(b, b + 16) - b;
            ce_ref -= std::log(std::exp((double)a[seq[i + 1]]) / za);
            ce -= std::log(std::exp((double)b[seq[i + 1]]) / zb);
        }
    }
    double np = (double)q1.positions;
    CHECK(q1.kl_mean == Approx(kl / np).epsilon(1e-9));
    CHECK(q1.kl_max == Approx(kmax).epsilon(1e-9));
    CHECK(q1.top1 == agree / np);
    CHECK(q1.ce_ref == Approx(ce_ref / np).epsilon(1e-9));
    CHECK(q1.ce == Approx(ce / np).epsilon(1e-9));

    // argument errors
    REQUIRE_ERR(vqs_llm_compare(m.get(), c.get(), tok.data(), nseq, 1, 1, &q1), VQS_EINVAL);
    REQUIRE_ERR(vqs_llm_compare(m.get(), c.get(), tok.data(), nseq, 11, 1, &q1), VQS_EINVAL);
    tok[3] = 99;
    REQUIRE_ERR(vqs_llm_compare(m.get(), c.get(), tok.data(), nseq, len, 1, &q1), VQS_EINVAL);
    REQUIRE(std::string(vqs_errdetail()).find("sequence 0, position 3") != std::string::npos);
    tiny_model other(small_cfg(false), &r);
    other.write_st(t.file("o.safetensors"), other.config_json());
    auto o = load(t.file("o.safetensors"));
    tok[3] = 1;
    REQUIRE_ERR(vqs_llm_compare(m.get(), o.get(), tok.data(), nseq, len, 1, &q1), VQS_EINVAL);
}

TEST_CASE("llm compare: stories260K, sampled sequences, against itself and with one tensor rounded", "[llama][data]")
{
    auto m = load(data_path(ST));
    const int nseq = 4, len = 128;
    std::vector<int> tok(nseq * len), tok2(nseq * len);
    REQUIRE_OK(vqs_llama_sample(m.get(), nseq, len, 1, 2024, tok.data()));
    REQUIRE_OK(vqs_llama_sample(m.get(), nseq, len, 1, 2024, tok2.data()));
    REQUIRE(tok == tok2);
    vqs_llm_quality q;
    REQUIRE_OK(vqs_llm_compare(m.get(), m.get(), tok.data(), nseq, len, 0, &q));
    REQUIRE(q.kl_max == 0.0);
    REQUIRE(q.top1 == 1.0);
    // a trained model on its own samples: cross-entropy well below log(512) = 6.24
    REQUIRE(q.ce_ref < 3.0);
    REQUIRE(q.ce_ref > 0.1);

    vqs_llama *cp = nullptr;
    REQUIRE_OK(vqs_llama_clone(m.get(), &cp));
    llama_ptr c(cp, vqs_llama_free);
    const float *w;
    size_t rows, cols;
    std::string name = vqs_llama_tensor(m.get(), 2, &w, &rows, &cols);
    REQUIRE(name == "layers.0.attention.wq.weight");
    std::vector<float> wr(w, w + rows * cols);
    for (auto &x : wr)
        x = std::round(x * 64) / 64; // a grid of step 1/64 (the weights have sd ~0.1)
    REQUIRE_OK(vqs_llama_set_weight(c.get(), name.c_str(), wr.data(), wr.size()));
    vqs_llm_quality q2;
    REQUIRE_OK(vqs_llm_compare(m.get(), c.get(), tok.data(), nseq, len, 0, &q2));
    INFO("KL mean " << q2.kl_mean << " p99 " << q2.kl_p99 << " top-1 " << q2.top1 << " ce " << q2.ce << " ref " << q2.ce_ref);
    REQUIRE(q2.kl_mean > 0);
    REQUIRE(q2.kl_mean < 0.5); // 0.026 when written
    REQUIRE(q2.top1 > 0.5);
    REQUIRE(q2.ce_ref == q.ce_ref);
}
