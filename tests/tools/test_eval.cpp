// Tests for `vqs eval` (tools/eval.c): the metric functions of
// tools/eval_metrics.c on hand-computed cases, and the built command run on
// small seeded data, its vqs-eval/2 JSON read back with Jansson. Every
// expected value comes from the construction of the data or from an
// independent computation, never from a second run of the code under test.
#include "vqs_test.hpp"

#include "eval_internal.h"
#include "eval_metrics.h"

#include <jansson.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

using namespace vqs_test;

namespace {

// ---- the command ----------------------------------------------------------

struct run_result {
    int status; // exit status
    std::string out, err;
};

run_result run_eval(const tmpdir &t, const std::string &args)
{
    std::string cmd = std::string(VQS_CLI_PATH) + " eval " + args + " >" + t.file("stdout.txt") + " 2>" +
                      t.file("stderr.txt");
    int s = std::system(cmd.c_str());
    run_result r;
    r.status = WIFEXITED(s) ? WEXITSTATUS(s) : -1;
    auto o = read_bytes(t.file("stdout.txt")), e = read_bytes(t.file("stderr.txt"));
    r.out.assign(o.begin(), o.end());
    r.err.assign(e.begin(), e.end());
    return r;
}

using json_ptr = std::unique_ptr<json_t, decltype(&json_decref)>;

json_ptr load_json(const std::string &path)
{
    json_error_t e;
    json_t *j = json_load_file(path.c_str(), 0, &e);
    INFO(path << ": " << e.text << " at line " << e.line);
    REQUIRE(j != nullptr);
    return json_ptr(j, json_decref);
}

const json_t *rows(const json_ptr &j)
{
    const json_t *r = json_object_get(j.get(), "rows");
    REQUIRE(json_is_array(r));
    return r;
}

// the row of spec (and oversampling, when given)
const json_t *row(const json_ptr &j, const std::string &spec, double os = 0)
{
    size_t i;
    const json_t *r;
    json_array_foreach(rows(j), i, r)
    {
        if (spec == json_string_value(json_object_get(r, "spec")) &&
            (os == 0 || json_number_value(json_object_get(r, "oversampling")) == os))
            return r;
    }
    FAIL("no row for " << spec << " oversampling " << os);
    return nullptr;
}

double num(const json_t *r, const char *key)
{
    const json_t *v = json_object_get(r, key);
    INFO("field " << key);
    REQUIRE(json_is_number(v));
    return json_number_value(v);
}

std::string str(const json_t *r, const char *key)
{
    const json_t *v = json_object_get(r, key);
    INFO("field " << key);
    REQUIRE(json_is_string(v));
    return json_string_value(v);
}

void write_fvecs(const std::string &path, const std::vector<float> &x, size_t d)
{
    REQUIRE_OK(vqs_write_fvecs(path.c_str(), x.size() / d, d, x.data()));
}

} // namespace

// ---- metric functions ------------------------------------------------------

TEST_CASE("eval metrics: recall, nDCG and RR on hand-computed cases", "[eval]")
{
    const int64_t gt[10] = {5, 3, 9, 1, 7, 2, 8, 0, 4, 6};
    SECTION("ids only")
    {
        const int64_t res[10] = {3, 11, 5, 12, 13, 14, 15, 16, 17, 1};
        // hits 3, 5, 1 at ranks 1, 3, 10 (0-based 0, 2, 9)
        REQUIRE(vqs_eval_recall(VQS_METRIC_L2, gt, nullptr, 10, res, nullptr, 10) == Approx(0.3));
        REQUIRE(vqs_eval_recall(VQS_METRIC_L2, gt, nullptr, 1, res, nullptr, 1) == 0.0);
        double dcg = 1 / std::log2(2.0) + 1 / std::log2(4.0) + 1 / std::log2(11.0), idcg = 0;
        for (int j = 0; j < 10; j++)
            idcg += 1 / std::log2(j + 2.0);
        REQUIRE(vqs_eval_ndcg(VQS_METRIC_L2, gt, nullptr, 10, res, nullptr, 10) == Approx(dcg / idcg));
        // the nearest (5) is at rank 3
        REQUIRE(vqs_eval_rr(VQS_METRIC_L2, gt, nullptr, res, nullptr, 10) == Approx(1.0 / 3));
        REQUIRE(vqs_eval_rr(VQS_METRIC_L2, gt, nullptr, res, nullptr, 2) == 0.0);
    }
    SECTION("duplicates count once, missing results (-1) count nothing")
    {
        const int64_t res[10] = {5, 5, 5, 3, -1, -1, 9, 9, 1, 7};
        REQUIRE(vqs_eval_recall(VQS_METRIC_L2, gt, nullptr, 10, res, nullptr, 10) == Approx(0.5));
        double dcg = 1 / std::log2(2.0) + 1 / std::log2(5.0) + 1 / std::log2(8.0) + 1 / std::log2(10.0) +
                     1 / std::log2(11.0),
               idcg = 0;
        for (int j = 0; j < 10; j++)
            idcg += 1 / std::log2(j + 2.0);
        REQUIRE(vqs_eval_ndcg(VQS_METRIC_L2, gt, nullptr, 10, res, nullptr, 10) == Approx(dcg / idcg));
        REQUIRE(vqs_eval_rr(VQS_METRIC_L2, gt, nullptr, res, nullptr, 10) == 1.0);
    }
    SECTION("ties with the k-th true distance count as found (L2 and similarities)")
    {
        // true top-3: ids 1, 2, 3 at distances 1, 2, 4; id 7 also at 4 (a tie), id 8 at 5
        const int64_t g[3] = {1, 2, 3};
        const float gd[3] = {1, 2, 4};
        const int64_t res[3] = {1, 7, 8};
        const float rd[3] = {1, 4, 5};
        REQUIRE(vqs_eval_recall(VQS_METRIC_L2, g, gd, 3, res, rd, 3) == Approx(2.0 / 3));
        REQUIRE(vqs_eval_recall(VQS_METRIC_L2, g, nullptr, 3, res, nullptr, 3) == Approx(1.0 / 3));
        // RR: a tie with the nearest's distance is the nearest
        const int64_t r2[3] = {9, 4, 1};
        const float d2[3] = {3, 1, 1};
        REQUIRE(vqs_eval_rr(VQS_METRIC_L2, g, gd, r2, d2, 3) == Approx(0.5));
        // similarities: larger is better
        const float gs[3] = {0.9f, 0.8f, 0.5f};
        const float rs[3] = {0.9f, 0.5f, 0.4f};
        REQUIRE(vqs_eval_recall(VQS_METRIC_IP, g, gs, 3, res, rs, 3) == Approx(2.0 / 3));
        // more ties than slots never score above 1
        const int64_t r3[3] = {7, 8, 9};
        const float d3[3] = {0.5f, 0.5f, 0.5f};
        REQUIRE(vqs_eval_ndcg(VQS_METRIC_L2, g, gd, 3, r3, d3, 3) == 1.0);
        REQUIRE(vqs_eval_recall(VQS_METRIC_L2, g, gd, 3, r3, d3, 3) == 1.0);
    }
}

TEST_CASE("eval metrics: per-query recall averages to vqs_recall, ties included", "[eval]")
{
    const size_t n = 400, nq = 60, d = 4, K = 20;
    // integer-valued data: many exact distance ties
    vqs_rng r;
    vqs_rng_seed(&r, 17);
    std::vector<float> x(n * d), q(nq * d);
    for (auto &v : x)
        v = (float)(vqs_rng_next(&r) % 5);
    for (auto &v : q)
        v = (float)(vqs_rng_next(&r) % 5);
    vqs_matrix B = {x.data(), n, d, d}, Q = {q.data(), nq, d, d};
    std::vector<int64_t> gt(nq * K), res(nq * K);
    std::vector<float> gd(nq * K), rd(nq * K);
    REQUIRE_OK(vqs_exact_knn(nullptr, VQS_METRIC_L2, &B, &Q, K, gt.data(), gd.data()));
    // "results": random ids, some of them true neighbours
    for (size_t i = 0; i < nq * K; i++)
        res[i] = (vqs_rng_next(&r) & 1) ? gt[i] : (int64_t)(vqs_rng_next(&r) % n);
    REQUIRE_OK(vqs_exact_distances(VQS_METRIC_L2, &B, &Q, K, res.data(), rd.data()));
    vqs_knn G = {nq, K, gt.data(), gd.data()}, R = {nq, K, res.data(), rd.data()};
    for (size_t k : {1, 5, 10, 20}) {
        double s = 0;
        for (size_t i = 0; i < nq; i++)
            s += vqs_eval_recall(VQS_METRIC_L2, gt.data() + i * K, gd.data() + i * K, k, res.data() + i * K,
                                 rd.data() + i * K, k);
        INFO("k " << k);
        REQUIRE(s / nq == Approx(vqs_recall(VQS_METRIC_L2, &G, &R, k, k)).epsilon(1e-12));
    }
}

TEST_CASE("eval metrics: qrels nDCG with graded gains and recall over the relevant", "[eval]")
{
    tmpdir t;
    std::ofstream(t.file("q.tsv")) << "query-id\tcorpus-id\tscore\n"
                                   << "# a comment\n"
                                   << "0\t4\t2\n0\t9\t1\n0\t30\t3\n"
                                   << "1\t7\t0\n" // grade 0: not relevant
                                   << "2\t1\t1\n";
    vqs_qrels *qr = nullptr;
    REQUIRE_OK(vqs_qrels_read(t.file("q.tsv").c_str(), 3, 3, 40, &qr));
    std::unique_ptr<vqs_qrels, decltype(&vqs_qrels_free)> hold(qr, vqs_qrels_free);
    const int64_t res[10] = {9, 0, 4, 5, 6, 7, 8, 10, 11, 12};
    // DCG = 1/log2(2) + 2/log2(4) = 2; IDCG = 3 + 2/log2(3) + 1/log2(4)
    double idcg = 3 + 2 / std::log2(3.0) + 0.5;
    REQUIRE(vqs_eval_qrels_ndcg(qr, 0, res, 10) == Approx(2 / idcg));
    REQUIRE(vqs_eval_qrels_recall(qr, 0, res, 10) == Approx(2.0 / 3));
    REQUIRE(std::isnan(vqs_eval_qrels_ndcg(qr, 1, res, 10))); // nothing relevant: left out
    REQUIRE(vqs_eval_qrels_ndcg(qr, 2, res, 10) == 0.0);
    REQUIRE(vqs_eval_qrels_recall(qr, 2, res, 10) == 0.0);

    // errors name the file and the line
    struct {
        const char *text;
        int code;
        const char *what;
    } bad[] = {
        {"0\t1\n", VQS_EFORMAT, "line 1"},
        {"0\t1\t2\t3\n", VQS_EFORMAT, "line 1"},
        {"0\t1\t1\nq1\td1\t1\n", VQS_EFORMAT, "line 2"},
        {"0\t1\tx\n", VQS_EFORMAT, "score"},
        {"0\t99\t1\n", VQS_ERANGE, "corpus id 99"},
        {"5\t1\t1\n", VQS_ERANGE, "query id 5"},
        {"0\t1\t1\n0\t1\t2\n", VQS_EINVAL, "twice"},
    };
    for (auto &b : bad) {
        std::ofstream(t.file("b.tsv")) << b.text;
        vqs_qrels *q2 = nullptr;
        int rc = vqs_qrels_read(t.file("b.tsv").c_str(), 3, 3, 40, &q2);
        std::string det = vqs_errdetail();
        INFO(b.text << " -> " << vqs_err_name(rc) << ": " << det);
        REQUIRE(rc == b.code);
        REQUIRE(q2 == nullptr);
        REQUIRE(det.find(b.what) != std::string::npos);
        REQUIRE(det.find("b.tsv") != std::string::npos);
    }
}

TEST_CASE("eval metrics: mean and sample standard deviation", "[eval]")
{
    double v[] = {1, 2, 3, 4, NAN}, m, s;
    vqs_eval_mean_std(v, 5, &m, &s);
    REQUIRE(m == Approx(2.5));
    REQUIRE(s == Approx(std::sqrt(5.0 / 3)));
    vqs_eval_mean_std(v, 1, &m, &s);
    REQUIRE(m == 1.0);
    REQUIRE(s == 0.0);
    vqs_eval_mean_std(v + 4, 1, &m, &s);
    REQUIRE(std::isnan(m));
}

// ---- sweep grids -------------------------------------------------------------------

TEST_CASE("eval sweeps: the grids expand to the specs their help promises", "[eval]")
{
    auto specs = [](const char *name, size_t d) {
        eval_entries E = {};
        REQUIRE_OK(eval_sweep_add(&E, name, d));
        std::vector<std::pair<std::string, size_t>> v; // spec, oversampling values
        for (size_t i = 0; i < E.n; i++)
            v.push_back({E.v[i].spec, E.v[i].nos});
        eval_entries_free(&E);
        return v;
    };
    auto has = [](const std::vector<std::pair<std::string, size_t>> &v, const std::string &s) {
        return std::count_if(v.begin(), v.end(), [&](auto &p) { return p.first == s; }) == 1;
    };
    auto paper = specs("paper", 768);
    REQUIRE(paper.size() == 28);
    for (const char *s : {"exact", "SQfp8", "SQ8", "SQ8s", "SQ4", "BIN", "ROT,BIN", "PCA25%,Flat", "PCA50%,SQ8s",
                          "PCA75%,ROT,BIN", "PCA50%,BIN"})
        REQUIRE(has(paper, s));
    auto quick = specs("quick", 768);
    REQUIRE(quick.size() == 8);
    REQUIRE(quick.back().first == "SQ4,RFlat");
    REQUIRE(quick.back().second == 2);
    auto full = specs("full", 768);
    REQUIRE(full.size() == 92);
    // PQ and RVQ sizes follow the dimension after the PCA (768, 192, 384, 576)
    for (const char *s : {"PQ192x8", "PQ96x8", "PQ192x4", "RVQ24x8", "PCA25%,PQ48x8", "PCA25%,PQ24x8",
                          "PCA75%,PQ144x4", "PCA50%,RVQ12x8", "SQfp16,RFlat", "PCA50%,SQ4,RFlat", "exact"})
        REQUIRE(has(full, s));
    REQUIRE_FALSE(has(full, "PCA50%,Flat,RFlat")); // float32 re-scored by float32
    for (auto &e : full)
        REQUIRE(e.second == (e.first.find("RFlat") != std::string::npos ? 3u : 0u));
    // an awkward dimension: M rounded down to a divisor
    auto odd = specs("full", 100);
    REQUIRE(has(odd, "PQ25x8"));   // 100 / 4
    REQUIRE(has(odd, "PQ10x8"));   // 100 / 8 = 12 -> 10
    REQUIRE(has(odd, "PCA25%,PQ5x8")); // 25 / 4 = 6 -> 5
    eval_entries E = {};
    REQUIRE_ERR(eval_sweep_add(&E, "/nonexistent/grid", 8), VQS_EUSAGE);
    eval_entries_free(&E);
}

// ---- the command ---------------------------------------------------------------

TEST_CASE("vqs eval: re-scoring at oversampling 1 has the recall@10 of its first stage", "[eval][cli]")
{
    // X,RFlat at oversampling 1 re-scores exactly X's 10 results, so its
    // recall@10 is X's (the former eval reported the recall of 100
    // candidates); more candidates can only help
    tmpdir t;
    const size_t n = 4000, nq = 100, d = 32;
    write_fvecs(t.file("b.fvecs"), synth(n, d, 101), d);
    write_fvecs(t.file("q.fvecs"), synth(nq, d, 102), d);
    auto r = run_eval(t, "--base " + t.file("b.fvecs") + " --queries " + t.file("q.fvecs") +
                             " --spec SQ4 --spec SQ4,RFlat --spec PQ8x4 --spec PQ8x4,RFlat --oversampling 1,2,4"
                             " --threads 2 --no-timing --out " + t.file("e"));
    INFO(r.err);
    REQUIRE(r.status == 0);
    auto j = load_json(t.file("e.json"));
    for (std::string x : {"SQ4", "PQ8x4"}) {
        INFO(x);
        const json_t *plain = row(j, x), *o1 = row(j, x + ",RFlat", 1), *o2 = row(j, x + ",RFlat", 2),
                     *o4 = row(j, x + ",RFlat", 4);
        REQUIRE(num(plain, "candidates") == 0);
        REQUIRE(num(o1, "candidates") == 10);
        REQUIRE(num(o2, "candidates") == 20);
        REQUIRE(num(o4, "candidates") == 40);
        REQUIRE(str(o1, "refine") == "RFlat");
        REQUIRE(num(o1, "recall_at_10") == num(plain, "recall_at_10"));
        REQUIRE(num(plain, "recall_at_10") < 1.0); // or the test says nothing
        REQUIRE(num(o2, "recall_at_10") >= num(o1, "recall_at_10"));
        REQUIRE(num(o4, "recall_at_10") >= num(o2, "recall_at_10"));
        // re-scoring puts the nearest of the candidates first: recall@1 can only rise
        REQUIRE(num(o1, "recall_at_1") >= num(plain, "recall_at_1"));
        // recall@100 from a k = 100 search: at oversampling 1 the 100 candidates are X's 100
        REQUIRE(num(o1, "recall_at_100") == num(plain, "recall_at_100"));
    }
}

TEST_CASE("vqs eval: a bad spec leaves the other rows, an error row and a non-zero exit", "[eval][cli]")
{
    tmpdir t;
    const size_t n = 1500, nq = 20, d = 16;
    write_fvecs(t.file("b.fvecs"), synth(n, d, 111), d);
    write_fvecs(t.file("q.fvecs"), synth(nq, d, 112), d);
    auto r = run_eval(t, "--base " + t.file("b.fvecs") + " --queries " + t.file("q.fvecs") +
                             " --spec SQ8 --spec PQ7x8 --spec NOPE --spec IVF5000,SQ8 --spec exact --no-timing"
                             " --out " + t.file("e"));
    REQUIRE(r.status == 1);
    REQUIRE(r.err.find("PQ7x8") != std::string::npos);
    auto j = load_json(t.file("e.json"));
    REQUIRE(json_array_size(rows(j)) == 5);
    REQUIRE(str(row(j, "SQ8"), "status") == "ok");
    REQUIRE(str(row(j, "exact"), "status") == "ok");
    for (const char *bad : {"PQ7x8", "NOPE", "IVF5000,SQ8"}) {
        INFO(bad);
        const json_t *e = row(j, bad);
        REQUIRE(str(e, "status") == "error");
        REQUIRE(!str(e, "error").empty());
        REQUIRE(json_object_size(e) == 3); // spec, status, error and nothing else
    }
    REQUIRE(str(row(j, "IVF5000,SQ8"), "error").find("5000") != std::string::npos);
    // the CSV has the same rows
    auto csv = read_bytes(t.file("e.csv"));
    std::string cs(csv.begin(), csv.end());
    REQUIRE(std::count(cs.begin(), cs.end(), '\n') == 6);
    REQUIRE(cs.find("\"NOPE\",\"error\"") != std::string::npos);
    // the markdown table on stdout too
    REQUIRE(r.out.find("| NOPE | error:") != std::string::npos);
}

TEST_CASE("vqs eval: --report draws the page from the results it wrote, error rows included", "[eval][cli]")
{
    tmpdir t;
    const size_t n = 1500, nq = 20, d = 16;
    write_fvecs(t.file("b.fvecs"), synth(n, d, 121), d);
    write_fvecs(t.file("q.fvecs"), synth(nq, d, 122), d);
    const std::string io = "--base " + t.file("b.fvecs") + " --queries " + t.file("q.fvecs");
    // no results file to draw from: usage error, nothing written
    auto u = run_eval(t, io + " --spec SQ8 --no-timing --report " + t.file("u.html"));
    REQUIRE(u.status == 2);
    REQUIRE(u.err.find("--report") != std::string::npos);
    struct stat st;
    REQUIRE(stat(t.file("u.html").c_str(), &st) != 0);
    // three good specs and a bad one: the recall plot has the 3 good rows and exact
    auto r = run_eval(t, io + " --spec SQ8 --spec SQ4 --spec NOPE --spec PQ4x8 --spec exact --no-timing --out " +
                             t.file("e") + " --report " + t.file("e.html"));
    REQUIRE(r.status == 1); // the bad spec
    REQUIRE(r.err.find("wrote " + t.file("e.html")) != std::string::npos);
    auto h = read_bytes(t.file("e.html"));
    std::string html(h.begin(), h.end());
    REQUIRE(html.find("id=\"plot-recall-bytes\" data-points=\"4\"") != std::string::npos);
    REQUIRE(html.find("NOPE") != std::string::npos); // the error row is in the table
    REQUIRE(html.find("PQ4x8") != std::string::npos);
}

TEST_CASE("vqs eval: PCA50% resolves, PCA<d>,Flat is exact on L2, a shared PCA equals its own training",
          "[eval][cli]")
{
    tmpdir t;
    const size_t n = 3000, nq = 50, d = 24;
    write_fvecs(t.file("b.fvecs"), synth(n, d, 121), d);
    write_fvecs(t.file("q.fvecs"), synth(nq, d, 122), d);
    std::string io = "--base " + t.file("b.fvecs") + " --queries " + t.file("q.fvecs") + " --no-timing --threads 2";
    auto r = run_eval(t, io + " --spec PCA50%,Flat --spec PCA50%,SQ8 --spec PCA24,Flat --spec PCA12,SQ4"
                              " --spec SQ8 --spec SQ8,RFlat --oversampling 1 --out " + t.file("a"));
    INFO(r.err);
    REQUIRE(r.status == 0);
    auto a = load_json(t.file("a.json"));
    const json_t *p = row(a, "PCA50%,Flat");
    REQUIRE(str(p, "transform") == "PCA12");
    REQUIRE(num(p, "pca_dims") == 12);
    REQUIRE(num(p, "pca_fraction") == 0.5);
    REQUIRE(str(p, "quantizer") == "Flat");
    REQUIRE(num(p, "code_bytes") == 48);
    REQUIRE(num(p, "bits_per_dim") == 16);
    REQUIRE(json_is_null(json_object_get(p, "train_reused")));
    // a full-dimension float32 PCA is a rotation: exact neighbours on L2
    // (up to ties within float rounding, which synthetic data does not have)
    const json_t *full = row(a, "PCA24,Flat");
    REQUIRE(num(full, "recall_at_10") == 1.0);
    REQUIRE(num(full, "recall_at_100") == 1.0);
    REQUIRE(num(full, "sqnr_db") > 60);
    // the PCA of PCA50%,SQ8 and PCA12,SQ4 was trained once, by PCA50%,Flat
    REQUIRE(str(row(a, "PCA50%,SQ8"), "train_reused") == "PCA12");
    REQUIRE(str(row(a, "PCA12,SQ4"), "train_reused") == "PCA12");
    REQUIRE(str(row(a, "SQ8,RFlat"), "train_reused") == "SQ8");
    // ... and the numbers are those of a run that trains each alone
    for (const char *spec : {"PCA50%,SQ8", "PCA12,SQ4", "SQ8,RFlat"}) {
        INFO(spec);
        auto r2 = run_eval(t, io + " --spec '" + spec + "' --oversampling 1 --out " + t.file("b"));
        REQUIRE(r2.status == 0);
        auto b = load_json(t.file("b.json"));
        const json_t *x = row(a, spec), *y = row(b, spec);
        REQUIRE(json_is_null(json_object_get(y, "train_reused")));
        for (const char *f : {"recall_at_1", "recall_at_10", "recall_at_100", "ndcg_at_10", "mrr_at_10", "sqnr_db",
                              "rel_mse", "code_bytes"})
            REQUIRE(num(x, f) == num(y, f));
    }
}

TEST_CASE("vqs eval: leave-one-out leaves the query out of its results and ground truth", "[eval][cli]")
{
    // pairs of rows (2i, 2i+1) on a line, 10 apart, the twins 1 apart across
    // it: every row's nearest OTHER row is its twin. PCA1 keeps the line and
    // drops the twins' difference, so a search there finds the query and
    // its twin tied at distance 0 (lower id first). Right: the query is
    // dropped, its twin comes first, recall@1 = 1. A query left in the
    // results (or in the ground truth, or in both) costs recall@1 for half
    // the queries.
    tmpdir t;
    const size_t pairs = 200, d = 2;
    std::vector<float> x;
    for (size_t i = 0; i < pairs; i++)
        for (int tw = 0; tw < 2; tw++) {
            x.push_back(10.0f * (float)i);
            x.push_back((float)tw);
        }
    write_fvecs(t.file("b.fvecs"), x, d);
    auto r = run_eval(t, "--base " + t.file("b.fvecs") + " --queries loo:60 --spec exact --spec PCA1,Flat"
                             " --spec PCA1,Flat,RFlat --oversampling 1 --no-timing --seed 3 --per-query " +
                             t.file("pq") + " --out " + t.file("e"));
    INFO(r.err);
    REQUIRE(r.status == 0);
    auto j = load_json(t.file("e.json"));
    const json_t *ds = json_object_get(j.get(), "dataset");
    REQUIRE(num(ds, "n") == 2 * pairs); // the base keeps every row
    REQUIRE(num(ds, "nq") == 60);
    REQUIRE(str(ds, "queries") == "loo:60");
    for (const char *spec : {"exact", "PCA1,Flat", "PCA1,Flat,RFlat"}) {
        INFO(spec);
        REQUIRE(num(row(j, spec), "recall_at_1") == 1.0);
        REQUIRE(num(row(j, spec), "mrr_at_10") == 1.0);
    }
    // the first stage of a re-scoring spec keeps (k + 1) x oversampling
    REQUIRE(num(row(j, "PCA1,Flat,RFlat"), "candidates") == 11);
    // the per-query file names 60 distinct base rows
    std::ifstream f(t.file("pq.tsv"));
    std::string line;
    std::getline(f, line);
    REQUIRE(line.rfind("spec\tnprobe\toversampling\tseed\tquery\trecall_at_10", 0) == 0);
    std::set<size_t> qs;
    size_t lines = 0;
    while (std::getline(f, line)) {
        std::istringstream s(line);
        std::string spec, np, os, seed, q;
        std::getline(s, spec, '\t');
        std::getline(s, np, '\t');
        std::getline(s, os, '\t');
        std::getline(s, seed, '\t');
        std::getline(s, q, '\t');
        REQUIRE(seed == "3");
        qs.insert(std::stoul(q));
        lines++;
    }
    REQUIRE(lines == 3 * 60);
    REQUIRE(qs.size() == 60);
    REQUIRE(*qs.rbegin() < 2 * pairs);
}

TEST_CASE("vqs eval: split takes the queries out of the base", "[eval][cli]")
{
    // the twin pairs of the leave-one-out test: once a query is out of the
    // base, its twin is its nearest row, and PCA1 search finds the twin at
    // distance 0. Had the query stayed in the base, ground truth would be
    // the query itself while PCA1 search returns whichever of the tied
    // twins has the lower id: odd rows would score RR@10 = 1/2.
    tmpdir t;
    const size_t pairs = 500, d = 2, nq = 40;
    std::vector<float> x;
    for (size_t i = 0; i < pairs; i++)
        for (int tw = 0; tw < 2; tw++) {
            x.push_back(10.0f * (float)i);
            x.push_back((float)tw);
        }
    write_fvecs(t.file("b.fvecs"), x, d);
    auto r = run_eval(t, "--base " + t.file("b.fvecs") + " --queries split:40 --spec PCA1,Flat --spec SQfp32"
                             " --no-timing --per-query " + t.file("pq") + " --out " + t.file("e"));
    INFO(r.err);
    REQUIRE(r.status == 0);
    auto j = load_json(t.file("e.json"));
    const json_t *ds = json_object_get(j.get(), "dataset");
    REQUIRE(num(ds, "n") == 2 * pairs - nq);
    REQUIRE(num(ds, "nq") == nq);
    // per query (row, RR@10) of PCA1,Flat
    std::ifstream f(t.file("pq.tsv"));
    std::string line;
    std::getline(f, line);
    std::map<size_t, double> rr;
    while (std::getline(f, line)) {
        std::istringstream s(line);
        std::string field[8];
        for (auto &fl : field)
            std::getline(s, fl, '\t');
        if (field[0] == "PCA1,Flat")
            rr[std::stoul(field[4])] = std::stod(field[7]);
    }
    REQUIRE(rr.size() == nq);
    size_t odd = 0;
    for (auto &q : rr) {
        if (rr.count(q.first ^ 1)) // its twin left the base too: no known answer
            continue;
        INFO("query row " << q.first);
        REQUIRE(q.second == 1.0);
        odd += q.first & 1;
    }
    REQUIRE(odd > 0); // so a query left in the base would have shown
    // float32 codes on the reduced base: exact
    REQUIRE(num(row(j, "SQfp32"), "recall_at_10") == 1.0);
}

TEST_CASE("vqs eval: qrels metrics on a hand-made case", "[eval][cli]")
{
    // base: points 0..19 on a line; query 0 at -0.5 (exact order 0, 1, 2, ...),
    // query 1 at 19.5 (order 19, 18, ...), query 2 unjudged
    tmpdir t;
    std::vector<float> b, q = {-0.5f, 0, 19.5f, 0, 7.2f, 0};
    for (int i = 0; i < 20; i++) {
        b.push_back((float)i);
        b.push_back(0);
    }
    write_fvecs(t.file("b.fvecs"), b, 2);
    write_fvecs(t.file("q.fvecs"), q, 2);
    std::ofstream(t.file("qrels.tsv")) << "query-id\tcorpus-id\tscore\n0\t0\t1\n0\t2\t2\n0\t15\t3\n1\t19\t1\n";
    auto r = run_eval(t, "--base " + t.file("b.fvecs") + " --queries " + t.file("q.fvecs") + " --qrels " +
                             t.file("qrels.tsv") + " --spec exact --no-timing --out " + t.file("e"));
    INFO(r.err);
    REQUIRE(r.status == 0);
    auto j = load_json(t.file("e.json"));
    const json_t *e = row(j, "exact");
    // query 0: DCG = 1/log2(2) + 2/log2(4) = 2, IDCG = 3 + 2/log2(3) + 1/2,
    // recall 2/3; query 1: nDCG 1, recall 1
    double nd0 = 2 / (3 + 2 / std::log2(3.0) + 0.5);
    REQUIRE(num(e, "qrels_ndcg_at_10") == Approx((nd0 + 1) / 2).epsilon(1e-9));
    REQUIRE(num(e, "qrels_recall_at_10") == Approx((2.0 / 3 + 1) / 2).epsilon(1e-9));
    REQUIRE(str(json_object_get(j.get(), "dataset"), "qrels") == t.file("qrels.tsv"));
    // with fewer than 100 base rows recall@100 is not defined
    REQUIRE(json_is_null(json_object_get(e, "recall_at_100")));
    // qrels go with a query file only
    auto bad = run_eval(t, "--base " + t.file("b.fvecs") + " --queries split:2 --qrels " + t.file("qrels.tsv") +
                               " --spec exact");
    REQUIRE(bad.status == 2);
}

TEST_CASE("vqs eval: symmetric queries, seeds and spread, --no-timing", "[eval][cli]")
{
    tmpdir t;
    const size_t n = 2000, nq = 50, d = 32;
    write_fvecs(t.file("b.fvecs"), synth(n, d, 131), d);
    write_fvecs(t.file("q.fvecs"), synth(nq, d, 132), d);
    std::string io = "--base " + t.file("b.fvecs") + " --queries " + t.file("q.fvecs") + " --threads 2";
    auto a = run_eval(t, io + " --spec SQ4 --spec SQfp32 --no-timing --out " + t.file("a"));
    auto s = run_eval(t, io + " --spec SQ4 --spec SQfp32 --no-timing --symmetric --out " + t.file("s"));
    REQUIRE(a.status == 0);
    REQUIRE(s.status == 0);
    auto ja = load_json(t.file("a.json")), js = load_json(t.file("s.json"));
    REQUIRE(json_is_true(json_object_get(js.get(), "symmetric")));
    REQUIRE(json_is_false(json_object_get(ja.get(), "symmetric")));
    // float32 codes decode to the query itself: nothing changes
    for (const char *f : {"recall_at_1", "recall_at_10", "recall_at_100", "ndcg_at_10", "mrr_at_10"})
        REQUIRE(num(row(ja, "SQfp32"), f) == num(row(js, "SQfp32"), f));
    // 4-bit codes change the query, and so the results
    bool differs = false;
    for (const char *f : {"recall_at_10", "recall_at_100", "ndcg_at_10"})
        differs |= num(row(ja, "SQ4"), f) != num(row(js, "SQ4"), f);
    REQUIRE(differs);
    // --no-timing: null queries/s
    REQUIRE(json_is_false(json_object_get(ja.get(), "timing")));
    REQUIRE(json_is_null(json_object_get(row(ja, "SQ4"), "qps_1_thread")));
    REQUIRE(json_is_null(json_object_get(row(ja, "SQ4"), "qps_all_threads")));
    REQUIRE(json_object_size(json_object_get(row(ja, "SQ4"), "spread")) == 0);

    // three seeds: the trainings differ (k-means), rows carry the spread
    auto m = run_eval(t, io + " --spec PQ8x4 --spec IVF8,SQ8 --seeds 3 --seed 5 --out " + t.file("m"));
    INFO(m.err);
    REQUIRE(m.status == 0);
    auto jm = load_json(t.file("m.json"));
    REQUIRE(num(jm.get(), "seeds") == 3);
    const json_t *pq = row(jm, "PQ8x4"), *sp = json_object_get(pq, "spread");
    for (const char *f : {"recall_at_1", "recall_at_10", "recall_at_100", "ndcg_at_10", "mrr_at_10", "sqnr_db",
                          "rel_mse", "qps_1_thread", "qps_all_threads", "train_s", "add_s"}) {
        INFO(f);
        REQUIRE(json_is_number(json_object_get(sp, f)));
        REQUIRE(json_number_value(json_object_get(sp, f)) >= 0);
    }
    // different codebooks per seed: the SQNR varies
    REQUIRE(json_number_value(json_object_get(sp, "sqnr_db")) > 0);
    REQUIRE(num(pq, "qps_1_thread") > 0); // timing on
    REQUIRE(num(row(jm, "IVF8,SQ8"), "nprobe") == 16);
}

TEST_CASE("vqs eval: sweeps expand to their grids, a sweep file, bad usage", "[eval][cli]")
{
    tmpdir t;
    const size_t n = 1200, nq = 10, d = 16;
    write_fvecs(t.file("b.fvecs"), synth(n, d, 141), d);
    write_fvecs(t.file("q.fvecs"), synth(nq, d, 142), d);
    std::string io = "--base " + t.file("b.fvecs") + " --queries " + t.file("q.fvecs") + " --no-timing --threads 2";
    auto r = run_eval(t, io + " --sweep quick --out " + t.file("q"));
    INFO(r.err);
    REQUIRE(r.status == 0);
    auto j = load_json(t.file("q.json"));
    std::vector<std::string> want = {"exact", "SQfp8", "SQ8", "SQ4", "ROT,BIN", "PCA50%,Flat", "PCA50%,SQ8",
                                     "SQ4,RFlat", "SQ4,RFlat"};
    REQUIRE(json_array_size(rows(j)) == want.size());
    for (size_t i = 0; i < want.size(); i++)
        REQUIRE(str(json_array_get(rows(j), i), "spec") == want[i]);
    REQUIRE(str(row(j, "PCA50%,SQ8"), "train_reused") == "PCA8");

    std::ofstream(t.file("grid.txt")) << "# a grid\nSQ8   # int8\n\nIVF4,SQ8 nprobe=1,4\nSQ4,RFlat oversampling=2\n";
    auto f = run_eval(t, io + " --sweep " + t.file("grid.txt") + " --out " + t.file("f"));
    REQUIRE(f.status == 0);
    auto jf = load_json(t.file("f.json"));
    REQUIRE(json_array_size(rows(jf)) == 4);
    REQUIRE(num(json_array_get(rows(jf), 1), "nprobe") == 1);
    REQUIRE(num(json_array_get(rows(jf), 2), "nprobe") == 4);
    REQUIRE(num(row(jf, "SQ4,RFlat"), "candidates") == 20);

    for (std::string bad : {" --sweep nosuchgrid", " --spec SQ8 --clip 0.4", " --spec SQ8 --seeds 0",
                            " --spec SQ8 --oversampling 0", " --spec SQ8 extra"}) {
        INFO(bad);
        REQUIRE(run_eval(t, io + bad).status == 2);
    }
    std::ofstream(t.file("bad.txt")) << "SQ8 nprobe=x\n";
    auto bf = run_eval(t, io + " --sweep " + t.file("bad.txt"));
    REQUIRE(bf.status != 0);
    REQUIRE(bf.err.find("line 1") != std::string::npos);
}

TEST_CASE("vqs eval: the paper sweep runs its 28 specs", "[eval][cli]")
{
    // quality only, on tiny data (SQ, BIN and PCA train in milliseconds)
    tmpdir t;
    const size_t n = 600, nq = 5, d = 16;
    write_fvecs(t.file("b.fvecs"), synth(n, d, 151), d);
    write_fvecs(t.file("q.fvecs"), synth(nq, d, 152), d);
    auto r = run_eval(t, "--base " + t.file("b.fvecs") + " --queries " + t.file("q.fvecs") +
                             " --no-timing --threads 2 --sweep paper --out " + t.file("p"));
    INFO(r.err);
    REQUIRE(r.status == 0);
    auto j = load_json(t.file("p.json"));
    REQUIRE(json_array_size(rows(j)) == 28);
    std::set<std::string> specs;
    size_t i;
    const json_t *x;
    json_array_foreach(rows(j), i, x) specs.insert(str(x, "spec"));
    REQUIRE(specs.size() == 28);
    for (const char *s : {"exact", "SQ8s", "PCA25%,Flat", "PCA75%,SQ4", "PCA50%,ROT,BIN", "BIN"})
        REQUIRE(specs.count(s) == 1);
    REQUIRE(str(row(j, "PCA75%,SQ4"), "transform") == "PCA12");
    REQUIRE(str(row(j, "SQ8s"), "quantizer") == "SQ8s");
}
