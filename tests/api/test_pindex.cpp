// Payload indexes over HTTP (api/h_index.c) and the filtered-search planner (api/plan.c):
// - PUT/DELETE .../index answer as Qdrant, payload_schema lists the indexes with their points;
// - a filtered search whose indexed conditions bound it to few points is scored exactly over
//   them: it equals a brute-force filtered top-k computed here, on an exact (untrained)
//   collection where it also equals the unindexed scan, and on a trained IVF collection with
//   nprobe 1, whose scan would miss most of them;
// - the indexes follow upserts, replacements and deletes, and a restart;
// - bad index requests are refused with a 400 naming what is wrong, and change nothing.
#include "vqs_test.hpp"

#include "http_client.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>

using namespace vqs_test;
using namespace vqs_http_test;

namespace
{

const size_t D = 8;

const char *const UIDS[] = {"6a2f0b3c-9f9e-4a51-9a43-1f6f2d1e7c01", "7d444840-9dc0-11d1-b245-5ffdce74fad2"};

struct pt {
    uint64_t id;
    std::vector<float> v;
    std::string color; // "c0".."c19"
    int64_t num;       // 0..999
    std::vector<std::string> tags;
    bool flag;
    int uid; // -1: none
    std::string src;
};

pt make_point(uint64_t id, std::mt19937 &rng)
{
    std::normal_distribution<float> g;
    pt p;
    p.id = id;
    for (size_t j = 0; j < D; j++)
        p.v.push_back(g(rng));
    p.color = "c" + std::to_string(rng() % 20);
    p.num = (int64_t)(rng() % 1000);
    for (size_t i = 0, n = rng() % 3; i < n; i++)
        p.tags.push_back("t" + std::to_string(rng() % 10));
    p.flag = rng() % 8 == 0;
    p.uid = rng() % 10 == 0 ? (int)(rng() % 2) : -1;
    p.src = rng() % 2 ? "web" : "pdf";
    return p;
}

json_t *point_json(const pt &p)
{
    json_t *tags = json_array();
    for (auto &t : p.tags)
        json_array_append_new(tags, json_string(t.c_str()));
    json_t *pay = json_pack("{s:s, s:I, s:o, s:b, s:{s:s}, s:s}", "color", p.color.c_str(), "num", (json_int_t)p.num,
                            "tags", tags, "flag", (int)p.flag, "meta", "src", p.src.c_str(), "text",
                            ("Hello " + p.color).c_str());
    if (p.uid >= 0)
        json_object_set_new(pay, "uid", json_string(UIDS[p.uid]));
    json_t *v = json_array();
    for (float x : p.v)
        json_array_append_new(v, json_real(x));
    return json_pack("{s:I, s:o, s:o}", "id", (json_int_t)p.id, "vector", v, "payload", pay);
}

void upsert(int port, const std::string &c, const std::vector<pt> &pts)
{
    json_t *arr = json_array();
    for (auto &p : pts)
        json_array_append_new(arr, point_json(p));
    jptr body(json_pack("{s:o}", "points", arr));
    jptr r(ok_result(http(port, "PUT", "/collections/" + c + "/points?wait=true", dump(body.j))));
}

struct filt {
    std::string json;
    std::function<bool(const pt &)> keep;
    bool planned = true; // false: scanned (approximate on "ivf")
};

std::vector<filt> filters()
{
    auto has_tag = [](const pt &p, const char *t) { return std::find(p.tags.begin(), p.tags.end(), t) != p.tags.end(); };
    return {
        {R"({"must":[{"key":"color","match":{"value":"c3"}}]})", [](const pt &p) { return p.color == "c3"; }},
        {R"({"must":[{"key":"color","match":{"any":["c1","c2"]}},{"key":"num","range":{"gte":100,"lt":500}}]})",
         [](const pt &p) { return (p.color == "c1" || p.color == "c2") && p.num >= 100 && p.num < 500; }},
        {R"({"must":{"key":"num","range":{"gt":950}}})", [](const pt &p) { return p.num > 950; }},
        {R"({"should":[{"key":"flag","match":{"value":true}}]})", [](const pt &p) { return p.flag; }},
        {R"({"must":[{"key":"tags","match":{"value":"t5"}}]})", [=](const pt &p) { return has_tag(p, "t5"); }},
        {R"({"must":[{"key":"tags[]","match":{"any":["t1","t2"]}},{"key":"flag","match":{"value":false}}]})",
         [=](const pt &p) { return (has_tag(p, "t1") || has_tag(p, "t2")) && !p.flag; }},
        {std::string(R"({"must":[{"key":"uid","match":{"value":")") + UIDS[1] + R"("}}]})",
         [](const pt &p) { return p.uid == 1; }},
        {R"({"must":[{"key":"color","match":{"value":"c4"}}],"must_not":[{"key":"num","range":{"lt":500}}]})",
         [](const pt &p) { return p.color == "c4" && !(p.num < 500); }},
        {R"({"must":[{"key":"meta.src","match":{"value":"pdf"}},{"key":"num","range":{"lte":80.5}}]})",
         [](const pt &p) { return p.src == "pdf" && p.num <= 80; }},
        // not planned: a substring (text), a value the integer index cannot answer
        {R"({"must":[{"key":"text","match":{"text":"o c1"}}]})", [](const pt &p) { return p.color.rfind("c1", 0) == 0; },
         false},
        {R"({"must":[{"key":"num","match":{"value":"5"}}]})", [](const pt &) { return false; }},
        {R"({"must":[{"key":"color","match":{"value":"nothing"}}]})", [](const pt &) { return false; }},
    };
}

struct res {
    uint64_t id;
    double score;
};

std::vector<res> brute(const std::vector<pt> &pts, const std::vector<float> &q, const filt &f, size_t k)
{
    std::vector<res> all;
    for (auto &p : pts) {
        if (!f.keep(p))
            continue;
        double s = 0;
        for (size_t j = 0; j < D; j++)
            s += ((double)p.v[j] - q[j]) * ((double)p.v[j] - q[j]);
        all.push_back({p.id, std::sqrt(s)});
    }
    std::sort(all.begin(), all.end(), [](const res &a, const res &b) { return a.score < b.score || (a.score == b.score && a.id < b.id); });
    if (all.size() > k)
        all.resize(k);
    return all;
}

// through points/search, or (via_query) points/query, which plans the same way (h_query.c)
std::vector<res> search(int port, const std::string &c, const std::vector<float> &q, const std::string &filter,
                        size_t k, bool via_query = false)
{
    std::string body = std::string(via_query ? R"({"query":)" : R"({"vector":)") + vec_json(q.data(), D) +
                       R"(,"limit":)" + std::to_string(k) + R"(,"filter":)" + filter + "}";
    jptr r(ok_result(http(port, "POST", "/collections/" + c + (via_query ? "/points/query" : "/points/search"), body)));
    json_t *list = via_query ? json_object_get(r.j, "points") : r.j;
    std::vector<res> out;
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *h = json_array_get(list, i);
        out.push_back({(uint64_t)json_integer_value(json_object_get(h, "id")),
                       json_number_value(json_object_get(h, "score"))});
    }
    return out;
}

void require_same(const std::vector<res> &got, const std::vector<res> &want, const std::string &what)
{
    INFO(what);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); i++) {
        INFO("rank " << i);
        REQUIRE(got[i].id == want[i].id);
        REQUIRE(std::fabs(got[i].score - want[i].score) <= 1e-4 * (1 + want[i].score));
    }
}

// every filter, 6 queries each, against the brute force; returns how many results were compared
size_t check_searches(int port, const std::string &c, const std::vector<pt> &pts, uint32_t seed)
{
    std::mt19937 rng(seed);
    std::normal_distribution<float> g;
    size_t n = 0;
    for (auto &f : filters())
        for (int i = 0; i < 6 && (f.planned || c == "exact"); i++) {
            std::vector<float> q(D);
            for (auto &x : q)
                x = g(rng);
            auto want = brute(pts, q, f, 10);
            require_same(search(port, c, q, f.json, 10), want, c + " filter " + f.json);
            require_same(search(port, c, q, f.json, 10, true), want, c + " query, filter " + f.json);
            n += want.size();
        }
    return n;
}

void create_indexes(int port, const std::string &c)
{
    const char *bodies[] = {
        R"({"field_name":"color","field_schema":"keyword"})",
        R"({"field_name":"num","field_schema":{"type":"integer","lookup":true,"range":true}})",
        R"({"field_name":"tags","field_schema":{"type":"keyword","is_tenant":false,"on_disk":true}})",
        R"({"field_name":"flag","field_schema":"bool"})",
        R"({"field_name":"uid","field_schema":{"type":"uuid"}})",
        R"({"field_name":"meta.src","field_schema":"keyword"})",
        R"({"field_name":"text","field_schema":{"type":"text","tokenizer":"word","lowercase":true}})",
    };
    for (auto *b : bodies) {
        jptr r(ok_result(http(port, "PUT", "/collections/" + c + "/index?wait=true", b)));
        REQUIRE(std::string(json_string_value(json_object_get(r.j, "status"))) == "completed");
        REQUIRE(json_is_integer(json_object_get(r.j, "operation_id")));
    }
}

json_t *schema(int port, const std::string &c)
{
    jptr info(ok_result(http(port, "GET", "/collections/" + c)));
    return json_incref(json_object_get(info.j, "payload_schema"));
}

} // namespace

TEST_CASE("pindex: filtered searches planned over payload indexes equal a brute-force filtered top-k, through "
          "upserts, replacements, deletes and a restart",
          "[pindex][api]")
{
    tmpdir t;
    std::string dir = t.file("data");
    std::mt19937 rng(5);
    std::vector<pt> pts;
    for (uint64_t i = 0; i < 600; i++)
        pts.push_back(make_point(i, rng));
    // "exact": never trained, so its scan is exact too; "ivf": trained at 300 points, searched
    // with nprobe 1 (of 16 lists), re-scored from the vector file
    const char *colls[][2] = {
        {"exact", R"({"vectors":{"size":8,"distance":"Euclid"},"vqs":{"spec":"SQ8","rerank":"disk"}})"},
        {"ivf", R"({"vectors":{"size":8,"distance":"Euclid"},)"
                R"("vqs":{"spec":"IVF16,SQ8","train_size":300,"rerank":"disk","nprobe":1}})"},
    };
    {
        server S(dir);
        for (auto &c : colls) {
            jptr r(ok_result(http(S.port, "PUT", std::string("/collections/") + c[0], c[1])));
            upsert(S.port, c[0], std::vector<pt>(pts.begin(), pts.begin() + 400)); // built over these
            create_indexes(S.port, c[0]);
            upsert(S.port, c[0], std::vector<pt>(pts.begin() + 400, pts.end())); // kept by the hooks
        }
        jptr ps(schema(S.port, "exact"));
        REQUIRE(json_object_size(ps.j) == 7);
        size_t red = 0, withuid = 0;
        for (auto &p : pts)
            red += p.color.size() > 0, withuid += p.uid >= 0;
        REQUIRE(dump(json_object_get(ps.j, "color")) ==
                R"({"data_type":"keyword","points":)" + std::to_string(red) + "}");
        REQUIRE(dump(json_object_get(ps.j, "uid")) == R"({"data_type":"uuid","points":)" + std::to_string(withuid) + "}");
        REQUIRE(std::string(json_string_value(json_object_get(json_object_get(ps.j, "text"), "data_type"))) == "text");
        for (auto &c : colls)
            REQUIRE(check_searches(S.port, c[0], pts, 1) > 300);

        // replace 60 points (new vectors and payloads), delete 50, add 100
        std::vector<pt> repl;
        for (uint64_t i = 0; i < 60; i++)
            repl.push_back(make_point(i, rng));
        std::vector<pt> more;
        for (uint64_t i = 600; i < 700; i++)
            more.push_back(make_point(i, rng));
        for (auto &c : colls) {
            upsert(S.port, c[0], repl);
            upsert(S.port, c[0], more);
            std::string del = R"({"points":[)";
            for (uint64_t i = 100; i < 150; i++)
                del += (i > 100 ? "," : "") + std::to_string(i);
            jptr r(ok_result(http(S.port, "POST", std::string("/collections/") + c[0] + "/points/delete?wait=true",
                                  del + "]}")));
        }
        for (uint64_t i = 0; i < 60; i++)
            pts[i] = repl[i];
        pts.erase(pts.begin() + 100, pts.begin() + 150);
        pts.insert(pts.end(), more.begin(), more.end());
        for (auto &c : colls)
            REQUIRE(check_searches(S.port, c[0], pts, 2) > 300);
    }
    {
        server S(dir); // a restart
        for (auto &c : colls)
            REQUIRE(check_searches(S.port, c[0], pts, 3) > 300);
        // without the indexes the exact collection's scan answers the same (and the IVF one,
        // scanning 1 list of 16, does not: the exact path was taken above)
        for (const char *f : {"color", "num", "tags", "flag", "uid", "meta.src", "text"}) {
            jptr r(ok_result(http(S.port, "DELETE", std::string("/collections/exact/index/") + f + "?wait=true")));
            REQUIRE(std::string(json_string_value(json_object_get(r.j, "status"))) == "completed");
        }
        jptr ps(schema(S.port, "exact"));
        REQUIRE(json_object_size(ps.j) == 0);
        REQUIRE(check_searches(S.port, "exact", pts, 3) > 300);
        std::mt19937 r2(9);
        std::normal_distribution<float> g;
        size_t differ = 0;
        jptr off(ok_result(http(S.port, "DELETE", "/collections/ivf/index/color")));
        for (int i = 0; i < 20; i++) {
            std::vector<float> q(D);
            for (auto &x : q)
                x = g(r2);
            filt f = filters()[0];
            auto want = brute(pts, q, f, 10);
            auto got = search(S.port, "ivf", q, f.json, 10);
            differ += got.size() != want.size() || !std::equal(got.begin(), got.end(), want.begin(), [](const res &a, const res &b) { return a.id == b.id; });
        }
        REQUIRE(differ > 0);
    }
}

TEST_CASE("pindex: bad payload index requests are refused with a 400 naming the problem and change nothing",
          "[pindex][api]")
{
    tmpdir t;
    server S(t.file("data"));
    jptr c(ok_result(http(S.port, "PUT", "/collections/c", R"({"vectors":{"size":8,"distance":"Cosine"},"vqs":{"spec":"SQ8"}})")));
    std::mt19937 rng(1);
    std::vector<pt> pts;
    for (uint64_t i = 0; i < 20; i++)
        pts.push_back(make_point(i, rng));
    upsert(S.port, "c", pts);
    struct {
        const char *path, *body, *needle;
    } bad[] = {
        {"/collections/c/index", R"({"field_name":"x"})", "field_schema"},
        {"/collections/c/index", R"({"field_schema":"keyword"})", "field_name"},
        {"/collections/c/index", R"({"field_name":5,"field_schema":"keyword"})", "field_name"},
        {"/collections/c/index", R"({"field_name":"x","field_schema":"geo"})", "not supported by vqs"},
        {"/collections/c/index", R"({"field_name":"x","field_schema":"datetime"})", "not supported by vqs"},
        {"/collections/c/index", R"({"field_name":"x","field_schema":"words"})", "unknown type"},
        {"/collections/c/index", R"({"field_name":"x","field_schema":{"on_disk":true}})", "type"},
        {"/collections/c/index", R"({"field_name":"x","field_schema":{"type":"text","tokenizer":"prefix"}})",
         "tokenizer"},
        {"/collections/c/index", R"({"field_name":"x","field_schema":{"type":"text","min_token_len":2}})",
         "min_token_len"},
        {"/collections/c/index", R"({"field_name":"x","field_schema":{"type":"text","lowercase":false}})", "lowercase"},
        {"/collections/c/index", R"({"field_name":"x","field_schema":{"type":"keyword","lookup":true}})", "lookup"},
        {"/collections/c/index", R"({"field_name":"x","field_schema":{"type":"keyword","on_disk":"yes"}})", "on_disk"},
        {"/collections/c/index", R"({"field_name":"x","field_schema":"keyword","extra":1})", "extra"},
        {"/collections/c/index", R"({"field_name":"a[].b","field_schema":"keyword"})", "not supported by vqs"},
        {"/collections/c/index", R"({"field_name":"","field_schema":"keyword"})", "field name"},
        {"/collections/c/index?wait=maybe", R"({"field_name":"x","field_schema":"keyword"})", "wait"},
        {"/collections/c/index", R"([1])", ""},
    };
    for (auto &b : bad) {
        INFO(b.body);
        require_error(http(S.port, "PUT", b.path, b.body), 400, b.needle);
    }
    require_error(http(S.port, "PUT", "/collections/nope/index", R"({"field_name":"x","field_schema":"keyword"})"),
                  404, "nope");
    jptr ps(schema(S.port, "c"));
    REQUIRE(json_object_size(ps.j) == 0);
    // deleting an index that is not there: as Qdrant, fine
    jptr d(ok_result(http(S.port, "DELETE", "/collections/c/index/x")));
    // the same index twice, and another type for a field: both succeed (the second rebuilds)
    jptr a1(ok_result(http(S.port, "PUT", "/collections/c/index", R"({"field_name":"num","field_schema":"integer"})")));
    jptr a2(ok_result(http(S.port, "PUT", "/collections/c/index", R"({"field_name":"num","field_schema":"integer"})")));
    jptr a3(ok_result(http(S.port, "PUT", "/collections/c/index", R"({"field_name":"num","field_schema":"float"})")));
    jptr ps2(schema(S.port, "c"));
    REQUIRE(dump(ps2.j) == R"({"num":{"data_type":"float","points":20}})");
    // a cosine collection, planned through the float index: the brute-force cosine top k
    std::normal_distribution<float> g;
    for (int i = 0; i < 10; i++) {
        std::vector<float> q(D);
        for (auto &x : q)
            x = g(rng);
        double lo = (double)(rng() % 900);
        std::vector<res> want;
        for (auto &p : pts) {
            if (!((double)p.num >= lo && (double)p.num <= lo + 250))
                continue;
            double dot = 0, nq = 0, nv = 0;
            for (size_t j = 0; j < D; j++)
                dot += (double)q[j] * p.v[j], nq += (double)q[j] * q[j], nv += (double)p.v[j] * p.v[j];
            want.push_back({p.id, dot / std::sqrt(nq * nv)});
        }
        std::sort(want.begin(), want.end(), [](const res &a, const res &b) { return a.score > b.score; });
        if (want.size() > 5)
            want.resize(5);
        std::string f = R"({"must":[{"key":"num","range":{"gte":)" + std::to_string(lo) + R"(,"lte":)" +
                        std::to_string(lo + 250) + "}}]}";
        require_same(search(S.port, "c", q, f, 5), want, "cosine " + f);
    }
}
