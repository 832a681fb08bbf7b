// vqs recommend (tools/recommend.c, tools/report_cmds.c): the picks on the
// fixture, checked by hand against its table; the message when nothing
// qualifies; and that what it prints works: every row's collection body is
// accepted by a real `vqs serve`, and the printed `vqs import` and
// `vqs search` command lines run on a small vector file.
#include "tools_test.hpp"

#include "../api/http_client.hpp"

#include <cmath>
#include <csignal>

using namespace vqs_test;
using namespace vqs_tools_test;

namespace
{

std::string pick(const vqs_results *r, vqs_qmetric m, vqs_cost c, double maxb, double minq)
{
    vqs_recommend_query q = {m, c, maxb, minq};
    size_t row = 99999;
    REQUIRE_OK(vqs_recommend_pick(r, &q, &row));
    REQUIRE(row < r->nrows);
    return r->rows[row].spec;
}

std::string pick_error(const vqs_results *r, vqs_qmetric m, vqs_cost c, double maxb, double minq)
{
    vqs_recommend_query q = {m, c, maxb, minq};
    size_t row;
    REQUIRE_ERR(vqs_recommend_pick(r, &q, &row), VQS_ENOTFOUND);
    return vqs_errdetail();
}

// A minimal ok row for hand-made results.
json_t *mini_row(const char *spec, double total, double r10, json_t *qps)
{
    json_t *r = json_pack("{ss ss sn sn sn ss ss ss si si si sf sf sf sf sf sf sf sf sf sf sf sn sn sn sn so sn s{}}",
                          "spec", spec, "status", "ok", "transform", "pca_dims", "pca_fraction", "quantizer", "SQ8",
                          "refine", "none", "index", "flat", "nprobe", 0, "oversampling", 1, "candidates", 0,
                          "code_bytes", total - 8, "total_bytes", total, "bits_per_dim", 8.0, "compression", 4.0,
                          "train_s", 0.1, "add_s", 0.1, "recall_at_1", r10, "recall_at_10", r10, "recall_at_100", r10,
                          "ndcg_at_10", r10, "mrr_at_10", r10, "qrels_ndcg_at_10", "qrels_recall_at_10", "sqnr_db",
                          "rel_mse", "qps_1_thread", qps, "qps_all_threads", "spread");
    REQUIRE(r != nullptr);
    return r;
}

// The service stopped (SIGTERM, then waited for) when the test leaves, pass or fail.
struct serve_proc {
    pid_t pid = -1;
    FILE *out = nullptr;
    int port = 0;
    explicit serve_proc(const std::string &dir)
    {
        port = vqs_http_test::spawn_serve(dir, {"--threads", "2"}, &pid, &out);
    }
    ~serve_proc()
    {
        if (pid > 0) {
            kill(pid, SIGTERM);
            int st;
            waitpid(pid, &st, 0);
        }
        if (out)
            fclose(out);
    }
};

std::vector<std::string> argv_of(const json_t *a)
{
    std::vector<std::string> v;
    size_t i;
    json_t *s;
    json_array_foreach(a, i, s)
    {
        REQUIRE(json_is_string(s));
        v.push_back(json_string_value(s));
    }
    return v;
}

} // namespace

TEST_CASE("recommend: picks on the fixture, checked by hand", "[recommend]")
{
    auto r = load_fixture();
    const vqs_qmetric R10 = VQS_Q_RECALL10;
    // <= 200 total bytes: BIN .785 (144.2 B) beats PCA192,SQ4 .733, PCA192,ROT,BIN .648, PCA384,BIN .641
    REQUIRE(pick(r.r, R10, VQS_COST_TOTAL, 200, NAN) == "BIN");
    // counting code bytes only, ROT,BIN,RFlat (104 B of codes, recall 1) fits 200
    REQUIRE(pick(r.r, R10, VQS_COST_CODE, 200, NAN) == "ROT,BIN,RFlat");
    // a budget that takes exact (3072 B) and RFlat (3384.7 B), both at recall 1: the fewer bytes
    REQUIRE(pick(r.r, R10, VQS_COST_TOTAL, 4000, NAN) == "exact");
    // a budget exactly at a row's cost includes it
    REQUIRE(pick(r.r, R10, VQS_COST_TOTAL, 424.444, NAN) == "SQ4");
    REQUIRE(pick(r.r, R10, VQS_COST_TOTAL, 424.443, NAN) == "PCA192,SQ8");
    // fewest bytes reaching a target: SQ8s .9912 at 808.006 B; SQ8 .995 at 808.444 B (>= counts)
    REQUIRE(pick(r.r, R10, VQS_COST_TOTAL, NAN, 0.99) == "SQ8s");
    REQUIRE(pick(r.r, R10, VQS_COST_TOTAL, NAN, 0.995) == "SQ8");
    REQUIRE(pick(r.r, R10, VQS_COST_TOTAL, NAN, 0.999) == "ROT,BIN,Refine(SQfp16)"); // .9994 at 1848.7 B
    REQUIRE(pick(r.r, R10, VQS_COST_TOTAL, NAN, 0.9995) == "exact");
    // by code bytes RFlat and Refine(SQfp16) both have 104: the higher recall
    REQUIRE(pick(r.r, R10, VQS_COST_CODE, NAN, 0.999) == "ROT,BIN,RFlat");
    // another metric: nDCG@10 >= 0.99 first reached by SQ8s (.9934)
    REQUIRE(pick(r.r, VQS_Q_NDCG10, VQS_COST_TOTAL, NAN, 0.99) == "SQ8s");
    // nothing fits: the message names the smallest
    std::string e = pick_error(r.r, R10, VQS_COST_TOTAL, 100, NAN);
    INFO(e);
    REQUIRE(e.find("no configuration fits 100 total bytes") != std::string::npos);
    REQUIRE(e.find("the smallest is PCA192,ROT,BIN at 125.2") != std::string::npos);
    // a metric the results do not have
    e = pick_error(r.r, VQS_Q_QRELS_NDCG10, VQS_COST_TOTAL, 1000, NAN);
    REQUIRE(e.find("without --qrels") != std::string::npos);
    // exactly one of budget and target
    vqs_recommend_query both = {R10, VQS_COST_TOTAL, 100, 0.9};
    size_t row;
    REQUIRE_ERR(vqs_recommend_pick(r.r, &both, &row), VQS_EINVAL);
}

TEST_CASE("recommend: a target nothing reaches names the best, ties go to fewer bytes then speed", "[recommend]")
{
    // the fixture without its two rows at recall 1
    json_t *d = fixture_json();
    json_t *rows = json_object_get(d, "rows");
    for (size_t i = json_array_size(rows); i-- > 0;) {
        const char *s = json_string_value(json_object_get(json_array_get(rows, i), "spec"));
        if (!strcmp(s, "exact") || !strcmp(s, "ROT,BIN,RFlat"))
            json_array_remove(rows, i);
    }
    {
        auto r = parse_doc(d);
        std::string e = pick_error(r.r, VQS_Q_RECALL10, VQS_COST_TOTAL, NAN, 0.9995);
        INFO(e);
        REQUIRE(e.find("no configuration reaches recall@10 0.9995; the best is ROT,BIN,Refine(SQfp16) at 0.9994") !=
                std::string::npos);
    }
    // hand-made ties: the same recall at the same bytes, one faster; and one without timing
    json_array_clear(rows);
    json_array_append_new(rows, mini_row("slow", 100, 0.9, json_real(1000)));
    json_array_append_new(rows, mini_row("fast", 100, 0.9, json_real(2000)));
    json_array_append_new(rows, mini_row("untimed", 100, 0.9, json_null()));
    json_array_append_new(rows, mini_row("dear", 120, 0.9, json_real(9000)));
    json_array_append_new(rows, mini_row("better", 150, 0.95, json_real(10)));
    {
        auto r = parse_doc(d);
        REQUIRE(pick(r.r, VQS_Q_RECALL10, VQS_COST_TOTAL, 130, NAN) == "fast");  // best .9: fewer bytes, then faster
        REQUIRE(pick(r.r, VQS_Q_RECALL10, VQS_COST_TOTAL, 150, NAN) == "better"); // the better metric first
        REQUIRE(pick(r.r, VQS_Q_RECALL10, VQS_COST_TOTAL, NAN, 0.9) == "fast");   // fewest bytes, then faster
        REQUIRE(pick(r.r, VQS_Q_RECALL10, VQS_COST_TOTAL, NAN, 0.91) == "better");
    }
    json_decref(d);
}

TEST_CASE("recommend: eval specs map to collection settings the service honours", "[recommend]")
{
    auto r = load_fixture();
    auto desc = [&](const char *spec) {
        json_t *d = nullptr;
        REQUIRE_OK(vqs_recommend_describe(r.r, index_of(r.r, spec), nullptr, nullptr, &d));
        return std::shared_ptr<json_t>(d, json_decref);
    };
    auto str = [](json_t *o, const char *k) {
        json_t *v = json_object_get(o, k);
        return v && json_is_string(v) ? std::string(json_string_value(v)) : std::string("<absent>");
    };
    auto notes = [](json_t *d) {
        std::string all;
        size_t i;
        json_t *n;
        json_array_foreach(json_object_get(d, "notes"), i, n)
        all += std::string(json_string_value(n)) + "\n";
        return all;
    };
    // no refine stage: the spec as measured, no re-scoring (as measured)
    auto p = desc("PCA384,ROT,BIN");
    json_t *c = json_object_get(p.get(), "collection");
    REQUIRE(str(c, "spec") == "PCA384,ROT,BIN");
    REQUIRE(str(c, "rerank") == "none");
    REQUIRE(json_object_get(c, "oversampling") == nullptr);
    REQUIRE(dump(json_object_get(p.get(), "create_body")) ==
            R"({"vectors":{"size":768,"distance":"Cosine"},"vqs":{"spec":"PCA384,ROT,BIN","rerank":"none"}})");
    // RFlat: the spec without it, re-scoring from disk with the measured oversampling
    auto f = desc("ROT,BIN,RFlat");
    c = json_object_get(f.get(), "collection");
    REQUIRE(str(c, "spec") == "ROT,BIN");
    REQUIRE(str(c, "rerank") == "disk");
    REQUIRE(json_number_value(json_object_get(c, "oversampling")) == 10);
    REQUIRE(notes(f.get()).find("same exact re-scoring of 100 candidates") != std::string::npos);
    // Refine(SQfp16): the same, and the note says the service re-scores exactly instead
    auto g = desc("ROT,BIN,Refine(SQfp16)");
    c = json_object_get(g.get(), "collection");
    REQUIRE(str(c, "spec") == "ROT,BIN");
    REQUIRE(str(c, "rerank") == "disk");
    REQUIRE(notes(g.get()).find("not with Refine(SQfp16) codes") != std::string::npos);
    REQUIRE(str(g.get(), "import") == "vqs import --data DIR --collection sts15k_bert768 --spec ROT,BIN --metric cos "
                                      "--rerank disk --vectors /work/shared/data/sts15k_bert768/base.fvecs");
    // IVF: nprobe stored by the body, passed to vqs search
    auto v = desc("IVF64,SQ8");
    c = json_object_get(v.get(), "collection");
    REQUIRE(str(c, "spec") == "IVF64,SQ8");
    REQUIRE(json_integer_value(json_object_get(c, "nprobe")) == 8);
    REQUIRE(str(v.get(), "search").find("--nprobe 8") != std::string::npos);
    // exact search: a collection that never trains, no import command
    auto x = desc("exact");
    c = json_object_get(x.get(), "collection");
    REQUIRE(json_object_get(c, "spec") == nullptr);
    REQUIRE(json_integer_value(json_object_get(c, "train_size")) == 0);
    REQUIRE(json_is_null(json_object_get(x.get(), "import")));
    REQUIRE(json_is_null(json_object_get(x.get(), "import_argv")));
    REQUIRE(notes(x.get()).find("train_size 0") != std::string::npos);
    // a raw float32 base needs --dim; a spec with shell metacharacters is quoted
    vqs_recommend_names nm = {};
    nm.vectors = "/data/emb it's.bin";
    json_t *d = nullptr;
    REQUIRE_OK(vqs_recommend_describe(r.r, index_of(r.r, "ROT,BIN,Refine(SQfp16)"), nullptr, &nm, &d));
    std::shared_ptr<json_t> dd(d, json_decref);
    REQUIRE(str(d, "import") == "vqs import --data DIR --collection sts15k_bert768 --spec ROT,BIN --metric cos "
                                "--rerank disk --vectors '/data/emb it'\\''s.bin' --dim 768");
}

TEST_CASE("recommend: the CLI prints the pick, its figures and the commands, --json the same, non-zero when nothing qualifies",
          "[recommend]")
{
    tmpdir t;
    auto p = run_vqs(t, {"recommend", "--results", fixture_path(), "--max-bytes", "200"});
    INFO(p.out << p.err);
    REQUIRE(p.code == 0);
    REQUIRE(p.out.find("best recall@10 within 200 total bytes per vector: BIN") != std::string::npos);
    REQUIRE(p.out.find("recall@10 0.7850") != std::string::npos);
    REQUIRE(p.out.find("968 queries/s") != std::string::npos);
    REQUIRE(p.out.find("vqs import --data DIR --collection sts15k_bert768 --spec BIN --metric cos --rerank none "
                       "--vectors /work/shared/data/sts15k_bert768/base.fvecs") != std::string::npos);
    REQUIRE(p.out.find("PUT /collections/sts15k_bert768") != std::string::npos);
    REQUIRE(p.out.find(R"({"vectors":{"size":768,"distance":"Cosine"},"vqs":{"spec":"BIN","rerank":"none"}})") !=
            std::string::npos);

    auto n = run_vqs(t, {"recommend", "--results", fixture_path(), "--min-recall", "0.99", "--metric", "ndcg@10",
                         "--json"});
    INFO(n.err);
    REQUIRE(n.code == 0);
    vqs_http_test::jptr j(vqs_http_test::parse(n.out));
    REQUIRE(std::string(json_string_value(json_object_get(j.j, "spec"))) == "SQ8s");
    REQUIRE(std::string(json_string_value(json_object_get(j.j, "metric"))) == "nDCG@10");
    REQUIRE(json_number_value(json_object_get(json_object_get(j.j, "figures"), "ndcg_at_10")) == 0.9934);
    REQUIRE(json_object_get(json_object_get(j.j, "figures"), "qps_1_thread") != nullptr);

    auto none = run_vqs(t, {"recommend", "--results", fixture_path(), "--max-bytes", "64"});
    REQUIRE(none.code == 1);
    REQUIRE(none.out.empty());
    REQUIRE(none.err.find("no configuration fits 64 total bytes per vector; the smallest is PCA192,ROT,BIN") !=
            std::string::npos);
    // usage errors: exit 2 with the reason
    auto u = run_vqs(t, {"recommend", "--results", fixture_path(), "--max-bytes", "64", "--min-recall", "0.9"});
    REQUIRE(u.code == 2);
    u = run_vqs(t, {"recommend", "--results", fixture_path(), "--min-recall", "1.5"});
    REQUIRE(u.code == 2);
    REQUIRE(u.err.find("--min-recall '1.5'") != std::string::npos);
    u = run_vqs(t, {"recommend", "--results", fixture_path(), "--max-bytes", "64", "--metric", "f1"});
    REQUIRE(u.code == 2);
    // a broken results file: the loader's message
    json_t *d = fixture_json();
    json_object_del(row_of(d, "SQ8"), "total_bytes");
    write_bytes(t.file("bad.json"), dump(d).data(), dump(d).size());
    json_decref(d);
    auto b = run_vqs(t, {"recommend", "--results", t.file("bad.json"), "--max-bytes", "500"});
    REQUIRE(b.code == 1);
    REQUIRE(b.err.find("rows[2] (spec 'SQ8'): missing field 'total_bytes'") != std::string::npos);
}

TEST_CASE("recommend: every row's collection body is accepted by vqs serve, and answers searches", "[recommend][api]")
{
    auto r = load_fixture();
    tmpdir t;
    serve_proc s(t.file("data"));
    using vqs_http_test::http;
    int made = 0;
    for (size_t i = 0; i < r->nrows; i++) {
        if (!r->rows[i].ok)
            continue;
        std::string name = "c" + std::to_string(i);
        vqs_recommend_names nm = {};
        nm.collection = name.c_str();
        json_t *d = nullptr;
        REQUIRE_OK(vqs_recommend_describe(r.r, i, nullptr, &nm, &d));
        vqs_http_test::jptr dj(d);
        std::string path = json_string_value(json_object_get(d, "create_path"));
        REQUIRE(path == "/collections/" + name);
        std::string body = dump(json_object_get(d, "create_body"));
        INFO(r->rows[i].spec << ": PUT " << path << " " << body);
        auto resp = http(s.port, "PUT", path, body);
        json_decref(vqs_http_test::ok_result(resp));
        // the collection has the mapped settings
        vqs_http_test::jptr info(vqs_http_test::ok_result(http(s.port, "GET", path)));
        json_t *v = json_object_get(info.j, "vqs");
        REQUIRE(v != nullptr);
        json_t *want = json_object_get(d, "collection");
        if (json_object_get(want, "spec"))
            REQUIRE(std::string(json_string_value(json_object_get(v, "spec"))) ==
                    json_string_value(json_object_get(want, "spec")));
        REQUIRE(std::string(json_string_value(json_object_get(v, "rerank"))) ==
                json_string_value(json_object_get(want, "rerank")));
        for (const char *k : {"nprobe", "oversampling", "train_size"})
            if (json_object_get(want, k))
                REQUIRE(json_number_value(json_object_get(v, k)) == json_number_value(json_object_get(want, k)));
        made++;
    }
    REQUIRE(made == 22);
    // the body printed by the CLI for a refine pick (spec without RFlat, re-scoring from disk) and for exact
    // search (never trains) take points and answer a search
    for (auto args : std::vector<std::vector<std::string>>{{"--max-bytes", "200", "--cost", "code"},
                                                           {"--min-recall", "0.9995"}}) {
        std::vector<std::string> a = {"recommend", "--results", fixture_path(), "--json", "--collection", "cli"};
        a.insert(a.end(), args.begin(), args.end());
        auto p = run_vqs(t, a);
        INFO(p.err);
        REQUIRE(p.code == 0);
        vqs_http_test::jptr j(vqs_http_test::parse(p.out));
        std::string body = dump(json_object_get(j.j, "create_body"));
        INFO(body);
        json_decref(vqs_http_test::ok_result(http(s.port, "PUT", "/collections/cli", body)));
        std::vector<float> x = synth(30, 768, 5, true);
        std::string pts = R"({"points":[)";
        for (size_t i = 0; i < 30; i++)
            pts += (i ? "," : "") + std::string(R"({"id":)") + std::to_string(i) +
                   R"(,"vector":)" + vqs_http_test::vec_json(&x[i * 768], 768) + "}";
        pts += "]}";
        json_decref(vqs_http_test::ok_result(http(s.port, "PUT", "/collections/cli/points", pts)));
        vqs_http_test::jptr res(vqs_http_test::ok_result(
            http(s.port, "POST", "/collections/cli/points/search",
                 R"({"limit":3,"vector":)" + vqs_http_test::vec_json(&x[7 * 768], 768) + "}")));
        REQUIRE(json_array_size(res.j) == 3);
        REQUIRE(json_integer_value(json_object_get(json_array_get(res.j, 0), "id")) == 7);
        json_decref(vqs_http_test::ok_result(http(s.port, "DELETE", "/collections/cli")));
    }
}

TEST_CASE("recommend: the printed vqs import and vqs search command lines run", "[recommend]")
{
    tmpdir t;
    // a small 768-d file in place of the data set's base (the commands are the same)
    const size_t n = 400, d = 768;
    std::vector<float> x = synth(n, d, 11, true);
    REQUIRE_OK(vqs_write_fvecs(t.file("small.fvecs").c_str(), n, d, x.data()));
    REQUIRE_OK(vqs_write_fvecs(t.file("q.fvecs").c_str(), 5, d, x.data()));
    auto r = load_fixture();
    std::string dir = t.file("data"), vec = t.file("small.fvecs"), qf = t.file("q.fvecs");
    vqs_recommend_names nm = {dir.c_str(), "imp", vec.c_str(), qf.c_str()};

    // what the CLI prints is the description's argv
    auto p = run_vqs(t, {"recommend", "--results", fixture_path(), "--json", "--max-bytes", "300", "--data", dir,
                         "--collection", "imp", "--vectors", vec, "--queries", qf});
    INFO(p.err);
    REQUIRE(p.code == 0);
    vqs_http_test::jptr cli(vqs_http_test::parse(p.out));
    REQUIRE(std::string(json_string_value(json_object_get(cli.j, "spec"))) == "PCA192,SQ8");
    json_t *desc = nullptr;
    REQUIRE_OK(vqs_recommend_describe(r.r, index_of(r.r, "PCA192,SQ8"), nullptr, &nm, &desc));
    vqs_http_test::jptr dj(desc);
    REQUIRE(argv_of(json_object_get(cli.j, "import_argv")) == argv_of(json_object_get(desc, "import_argv")));
    REQUIRE(argv_of(json_object_get(cli.j, "search_argv")) == argv_of(json_object_get(desc, "search_argv")));
    REQUIRE(std::string(json_string_value(json_object_get(cli.j, "import"))) ==
            "vqs import --data " + dir + " --collection imp --spec PCA192,SQ8 --metric cos --rerank none --vectors " +
                vec);

    // PCA (a plain pick), ROT,BIN,RFlat (--rerank disk, --oversampling at search), IVF64,SQ8 (--nprobe)
    for (const char *spec : {"PCA192,SQ8", "ROT,BIN,RFlat", "IVF64,SQ8"}) {
        INFO(spec);
        json_t *dd = nullptr;
        REQUIRE_OK(vqs_recommend_describe(r.r, index_of(r.r, spec), nullptr, &nm, &dd));
        vqs_http_test::jptr j(dd);
        auto imp = argv_of(json_object_get(dd, "import_argv"));
        auto sea = argv_of(json_object_get(dd, "search_argv"));
        REQUIRE(imp[0] == "vqs");
        imp[0] = VQS_CLI_PATH;
        sea[0] = VQS_CLI_PATH;
        for (auto &s : sea)
            if (s == "ids.ivecs")
                s = t.file("ids.ivecs");
        auto ir = run(t, imp);
        INFO(ir.err);
        REQUIRE(ir.code == 0);
        REQUIRE(ir.out.find("total 400") != std::string::npos);
        auto sr = run(t, sea);
        INFO(sr.err);
        REQUIRE(sr.code == 0);
        std::vector<unsigned char> ids = read_bytes(t.file("ids.ivecs"));
        REQUIRE(ids.size() == 5 * (4 + 4 * 10));
        if (!strcmp(spec, "ROT,BIN,RFlat")) { // re-scored exactly from disk: query q (base row q) finds itself first
            REQUIRE(std::find(imp.begin(), imp.end(), "disk") != imp.end());
            REQUIRE(std::find(imp.begin(), imp.end(), "ROT,BIN") != imp.end());
            REQUIRE(std::find(sea.begin(), sea.end(), "--oversampling") != sea.end());
            for (int q = 0; q < 5; q++) {
                int32_t first;
                std::memcpy(&first, &ids[(size_t)q * 44 + 4], 4);
                REQUIRE(first == q);
            }
        }
        if (!strcmp(spec, "IVF64,SQ8"))
            REQUIRE(std::find(sea.begin(), sea.end(), "--nprobe") != sea.end());
        auto dr = run_vqs(t, {"drop", "--data", dir, "--collection", "imp"});
        REQUIRE(dr.code == 0);
    }
}
