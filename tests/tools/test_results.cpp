// The eval results loader (tools/results.c) and the Pareto front
// (tools/pareto.c): the fixture loads with the figures it holds; every kind
// of broken file is refused naming the file, the row and the field; the front
// is checked on hand cases (ties, a row dominated by one of equal cost) and
// against the definition on random points with many ties.
#include "tools_test.hpp"

#include "pareto.h"

#include <cmath>
#include <random>

using namespace vqs_test;
using namespace vqs_tools_test;

namespace
{

// The loader's error for an edited fixture: code and detail.
std::pair<int, std::string> load_error(const json_t *doc)
{
    std::string s = dump(doc);
    vqs_results *r = nullptr;
    int rc = vqs_results_parse(s.data(), s.size(), "bad.json", &r);
    REQUIRE(r == nullptr);
    return {rc, vqs_errdetail()};
}

void require_detail(const std::pair<int, std::string> &e, int code, const std::vector<std::string> &needles)
{
    INFO("detail: " << e.second);
    REQUIRE(e.first == code);
    for (auto &n : needles)
        REQUIRE(e.second.find(n) != std::string::npos);
}

} // namespace

TEST_CASE("results: the fixture loads with its figures, nulls as NAN", "[results]")
{
    auto r = load_fixture();
    REQUIRE(std::string(r->format) == "vqs-eval/2");
    REQUIRE(std::string(r->dataset.name) == "sts15k_bert768");
    REQUIRE(r->dataset.d == 768);
    REQUIRE(r->dataset.n == 14004);
    REQUIRE(r->dataset.qrels == nullptr);
    REQUIRE(r->k == 10);
    REQUIRE(r->seeds == 3);
    REQUIRE(r->timing == 1);
    REQUIRE(r->symmetric == 0);
    REQUIRE(r->nrows == 23);
    size_t ok = 0, err = 0, noqps = 0;
    for (size_t i = 0; i < r->nrows; i++) {
        ok += r->rows[i].ok;
        err += !r->rows[i].ok;
        noqps += r->rows[i].ok && std::isnan(r->rows[i].qps_1_thread);
    }
    REQUIRE(ok == 22);
    REQUIRE(err == 1);
    REQUIRE(noqps == 3);
    const vqs_result_row &e = r->rows[index_of(r.r, "PCA1024,SQ8")];
    REQUIRE(!e.ok);
    REQUIRE(std::string(e.error).find("larger than d = 768") != std::string::npos);
    const vqs_result_row &x = r->rows[index_of(r.r, "exact")];
    REQUIRE(std::isnan(x.sqnr_db));
    REQUIRE(x.transform == nullptr);
    REQUIRE(x.pca_dims == 0);
    REQUIRE(std::isnan(x.pca_fraction));
    REQUIRE(std::isnan(x.spread[VQS_Q_RECALL10])); // "spread": {}
    const vqs_result_row &p = r->rows[index_of(r.r, "PCA384,ROT,BIN")];
    REQUIRE(std::string(p.transform) == "PCA384,ROT");
    REQUIRE(p.pca_dims == 384);
    REQUIRE(p.pca_fraction == 0.5);
    REQUIRE(p.q[VQS_Q_RECALL10] == 0.7234);
    REQUIRE(p.code_bytes == 56);
    REQUIRE(p.spread[VQS_Q_RECALL10] == Approx(0.0005 + 0.006 * (1 - 0.7234)).margin(1e-4));
    REQUIRE(std::isnan(p.q[VQS_Q_QRELS_NDCG10]));
    const vqs_result_row &rf = r->rows[index_of(r.r, "ROT,BIN,RFlat")];
    REQUIRE(std::string(rf.refine) == "RFlat");
    REQUIRE(rf.oversampling == 10);
    REQUIRE(rf.candidates == 100);
    REQUIRE(vqs_result_cost(&rf, VQS_COST_CODE) == 104);
    REQUIRE(vqs_result_cost(&rf, VQS_COST_TOTAL) == 3384.699);
}

TEST_CASE("results: unknown fields are accepted, missing or mistyped ones are refused naming file, row and field",
          "[results]")
{
    // forward compatibility: extra fields at every level load
    {
        json_t *d = fixture_json();
        json_object_set_new(d, "future_top", json_string("x"));
        json_object_set_new(json_object_get(d, "dataset"), "license", json_string("cc"));
        json_object_set_new(row_of(d, "SQ8"), "recall_at_1000", json_real(0.5));
        auto r = parse_doc(d);
        REQUIRE(r->nrows == 23);
        json_decref(d);
    }
    SECTION("a row without a required field")
    {
        json_t *d = fixture_json();
        json_object_del(row_of(d, "SQ8s"), "recall_at_10"); // rows[3]
        require_detail(load_error(d), VQS_EFORMAT, {"bad.json", "rows[3]", "spec 'SQ8s'", "missing field 'recall_at_10'"});
        json_decref(d);
    }
    SECTION("a field of the wrong type")
    {
        json_t *d = fixture_json();
        json_object_set_new(row_of(d, "BIN"), "code_bytes", json_string("104")); // rows[5]
        require_detail(load_error(d), VQS_EFORMAT,
                       {"bad.json", "rows[5]", "spec 'BIN'", "field 'code_bytes'", "expected a number, got a string"});
        json_decref(d);
    }
    SECTION("null where the schema has no null")
    {
        json_t *d = fixture_json();
        json_object_set_new(row_of(d, "SQ4"), "ndcg_at_10", json_null());
        require_detail(load_error(d), VQS_EFORMAT, {"rows[4]", "field 'ndcg_at_10'", "got null"});
        json_decref(d);
    }
    SECTION("a value out of range")
    {
        json_t *d = fixture_json();
        json_object_set_new(row_of(d, "SQ4"), "recall_at_1", json_real(1.5));
        require_detail(load_error(d), VQS_EFORMAT, {"rows[4]", "field 'recall_at_1'", "out of range"});
        json_decref(d);
    }
    SECTION("pca_dims without pca_fraction")
    {
        json_t *d = fixture_json();
        json_object_set_new(row_of(d, "SQ4"), "pca_dims", json_integer(384));
        require_detail(load_error(d), VQS_EFORMAT, {"rows[4]", "pca_fraction"});
        json_decref(d);
    }
    SECTION("an error row without its message, a row with an unknown status")
    {
        json_t *d = fixture_json();
        json_object_del(row_of(d, "PCA1024,SQ8"), "error");
        require_detail(load_error(d), VQS_EFORMAT, {"rows[22]", "spec 'PCA1024,SQ8'", "missing field 'error'"});
        json_decref(d);
        d = fixture_json();
        json_object_set_new(row_of(d, "SQ8"), "status", json_string("skipped"));
        require_detail(load_error(d), VQS_EFORMAT, {"rows[2]", "field 'status'", "skipped"});
        json_decref(d);
    }
    SECTION("a row without a spec, a row that is not an object")
    {
        json_t *d = fixture_json();
        json_object_del(row_of(d, "SQ8"), "spec");
        require_detail(load_error(d), VQS_EFORMAT, {"rows[2]", "missing field 'spec'"});
        json_decref(d);
        d = fixture_json();
        json_array_set_new(json_object_get(d, "rows"), 1, json_integer(7));
        require_detail(load_error(d), VQS_EFORMAT, {"rows[1]", "expected an object, got an integer"});
        json_decref(d);
    }
    SECTION("top level and data set fields")
    {
        json_t *d = fixture_json();
        json_object_del(json_object_get(d, "dataset"), "d");
        require_detail(load_error(d), VQS_EFORMAT, {"bad.json", "dataset", "missing field 'd'"});
        json_decref(d);
        d = fixture_json();
        json_object_set_new(json_object_get(d, "dataset"), "metric", json_string("hamming"));
        require_detail(load_error(d), VQS_EFORMAT, {"dataset", "field 'metric'", "hamming"});
        json_decref(d);
        d = fixture_json();
        json_object_set_new(d, "timing", json_integer(1));
        require_detail(load_error(d), VQS_EFORMAT, {"field 'timing'", "expected true or false"});
        json_decref(d);
        d = fixture_json();
        json_object_set_new(d, "rows", json_object());
        require_detail(load_error(d), VQS_EFORMAT, {"field 'rows'", "expected an array"});
        json_decref(d);
    }
    SECTION("the format string")
    {
        json_t *d = fixture_json();
        json_object_set_new(d, "format", json_string("vqs-eval/1"));
        require_detail(load_error(d), VQS_EVERSION, {"bad.json", "format 'vqs-eval/1'", "expected 'vqs-eval/2'"});
        json_object_set_new(d, "format", json_string("faiss-bench"));
        require_detail(load_error(d), VQS_EFORMAT, {"format 'faiss-bench'"});
        json_object_del(d, "format");
        require_detail(load_error(d), VQS_EFORMAT, {"missing field 'format'"});
        json_decref(d);
    }
}

TEST_CASE("results: a file that is not JSON, a duplicate key, a missing file", "[results]")
{
    vqs_results *r = nullptr;
    std::string s = "{\"format\": \"vqs-eval/2\",\n \"rows\": [1,}";
    REQUIRE_ERR(vqs_results_parse(s.data(), s.size(), "trunc.json", &r), VQS_EFORMAT);
    REQUIRE(std::string(vqs_errdetail()).find("trunc.json: line 2") != std::string::npos);
    s = "{\"format\": \"vqs-eval/2\", \"format\": \"vqs-eval/2\"}";
    REQUIRE_ERR(vqs_results_parse(s.data(), s.size(), "dup.json", &r), VQS_EFORMAT);
    REQUIRE(std::string(vqs_errdetail()).find("duplicate") != std::string::npos);
    REQUIRE_ERR(vqs_results_load("/nonexistent/r.json", &r), -ENOENT);
    REQUIRE(std::string(vqs_errdetail()).find("/nonexistent/r.json") != std::string::npos);
    REQUIRE(r == nullptr);
    vqs_qmetric m;
    REQUIRE_OK(vqs_qmetric_parse("ndcg@10", &m));
    REQUIRE(m == VQS_Q_NDCG10);
    REQUIRE_OK(vqs_qmetric_parse("recall_at_100", &m));
    REQUIRE(m == VQS_Q_RECALL100);
    REQUIRE_ERR(vqs_qmetric_parse("recall@5", &m), VQS_EUSAGE);
    REQUIRE(std::string(vqs_errdetail()).find("recall@5") != std::string::npos);
}

namespace
{

struct front_out {
    std::vector<int> flag;
    std::vector<long> tie_of;
    std::vector<size_t> front;
};

front_out front_of(const std::vector<double> &c, const std::vector<double> &q, const std::vector<unsigned char> *use = nullptr)
{
    front_out o;
    size_t n = c.size(), nf = 99;
    o.flag.assign(n, -1);
    o.tie_of.assign(n, -7);
    o.front.assign(n + 1, 99);
    REQUIRE_OK(vqs_pareto_front(n, c.data(), q.data(), use ? use->data() : nullptr, o.flag.data(), o.tie_of.data(),
                                o.front.data(), &nf));
    o.front.resize(nf);
    return o;
}

} // namespace

TEST_CASE("pareto: hand cases, ties keep the first, a row of equal cost and lower quality is dominated", "[pareto]")
{
    // (1, .5) dominates (2, .4); (3, .9) and (4, .95) each buy more quality
    auto a = front_of({1, 2, 3, 4}, {0.5, 0.4, 0.9, 0.95});
    REQUIRE(a.flag == std::vector<int>{VQS_PARETO_FRONT, VQS_PARETO_DOMINATED, VQS_PARETO_FRONT, VQS_PARETO_FRONT});
    REQUIRE(a.front == std::vector<size_t>{0, 2, 3});
    // the same cost: the lower quality is dominated (cost <=, quality > strictly)
    auto b = front_of({2, 2}, {0.8, 0.9});
    REQUIRE(b.flag == std::vector<int>{VQS_PARETO_DOMINATED, VQS_PARETO_FRONT});
    REQUIRE(b.front == std::vector<size_t>{1});
    // the same quality: the dearer is dominated
    auto c = front_of({3, 1}, {0.8, 0.8});
    REQUIRE(c.flag == std::vector<int>{VQS_PARETO_DOMINATED, VQS_PARETO_FRONT});
    // identical points: the first is kept on the front, the others are ties of it
    auto d = front_of({2, 1, 2, 2, 2}, {0.7, 0.5, 0.7, 0.7, 0.6});
    REQUIRE(d.flag == std::vector<int>{VQS_PARETO_FRONT, VQS_PARETO_FRONT, VQS_PARETO_TIE, VQS_PARETO_TIE,
                                       VQS_PARETO_DOMINATED});
    REQUIRE(d.tie_of == std::vector<long>{-1, -1, 0, 0, -1});
    REQUIRE(d.front == std::vector<size_t>{1, 0});
    // identical to a dominated point: dominated, not a tie
    auto e = front_of({1, 2, 2}, {0.9, 0.5, 0.5});
    REQUIRE(e.flag == std::vector<int>{VQS_PARETO_FRONT, VQS_PARETO_DOMINATED, VQS_PARETO_DOMINATED});
    // points not in use and non-finite values take no part and dominate nothing
    std::vector<unsigned char> use = {1, 0, 1, 1};
    auto f = front_of({1, 0.5, 2, NAN}, {0.5, 0.99, 0.7, 1.0}, &use);
    REQUIRE(f.flag == std::vector<int>{VQS_PARETO_FRONT, VQS_PARETO_OUT, VQS_PARETO_FRONT, VQS_PARETO_OUT});
    REQUIRE(f.front == std::vector<size_t>{0, 2});
    // nothing
    size_t nf = 5;
    REQUIRE_OK(vqs_pareto_front(0, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, &nf));
    REQUIRE(nf == 0);
    int fl;
    double one = 1;
    REQUIRE_ERR(vqs_pareto_front(1, &one, nullptr, nullptr, &fl, nullptr, nullptr, &nf), VQS_EINVAL);
}

TEST_CASE("pareto: random points on a coarse grid agree with the definition", "[pareto]")
{
    std::mt19937_64 g(7);
    for (int trial = 0; trial < 200; trial++) {
        size_t n = 1 + g() % 40;
        std::vector<double> c(n), q(n);
        for (size_t i = 0; i < n; i++) { // a 6 x 6 grid: many equal costs, qualities and identical points
            c[i] = (double)(1 + g() % 6) * 16;
            q[i] = (double)(g() % 6) / 5;
        }
        auto o = front_of(c, q);
        for (size_t i = 0; i < n; i++) {
            bool dominated = false;
            long first_same = -1;
            for (size_t j = 0; j < n; j++) {
                if (j == i)
                    continue;
                if (c[j] <= c[i] && q[j] >= q[i] && (c[j] < c[i] || q[j] > q[i]))
                    dominated = true;
                if (c[j] == c[i] && q[j] == q[i] && j < i && first_same < 0)
                    first_same = (long)j;
            }
            int want = dominated ? VQS_PARETO_DOMINATED : first_same >= 0 ? VQS_PARETO_TIE : VQS_PARETO_FRONT;
            INFO("trial " << trial << " point " << i << " (" << c[i] << ", " << q[i] << ")");
            REQUIRE(o.flag[i] == want);
            REQUIRE(o.tie_of[i] == (want == VQS_PARETO_TIE ? first_same : -1));
        }
        for (size_t j = 1; j < o.front.size(); j++) { // by increasing cost and quality
            REQUIRE(c[o.front[j]] > c[o.front[j - 1]]);
            REQUIRE(q[o.front[j]] > q[o.front[j - 1]]);
        }
    }
}

TEST_CASE("pareto: the fixture's front of recall@10 against total bytes, checked by hand", "[pareto][results]")
{
    auto r = load_fixture();
    std::vector<double> c(r->nrows), q(r->nrows);
    std::vector<unsigned char> use(r->nrows);
    for (size_t i = 0; i < r->nrows; i++) {
        use[i] = (unsigned char)r->rows[i].ok;
        c[i] = r->rows[i].ok ? r->rows[i].total_bytes : NAN;
        q[i] = r->rows[i].ok ? r->rows[i].q[VQS_Q_RECALL10] : NAN;
    }
    auto o = front_of(c, q, &use);
    std::vector<std::string> specs;
    for (size_t i : o.front)
        specs.push_back(r->rows[i].spec);
    // read off the table sorted by total bytes: each one beats every cheaper row's recall@10;
    // ROT,BIN,RFlat (recall 1 at 3384.7 B) is dominated by exact (recall 1 at 3072 B)
    REQUIRE(specs == std::vector<std::string>{"PCA192,ROT,BIN", "BIN", "PCA192,SQ8", "SQ4", "SQ8s", "SQ8",
                                              "ROT,BIN,Refine(SQfp16)", "exact"});
    REQUIRE(o.flag[index_of(r.r, "ROT,BIN,RFlat")] == VQS_PARETO_DOMINATED);
    REQUIRE(o.flag[index_of(r.r, "PCA1024,SQ8")] == VQS_PARETO_OUT);
}
