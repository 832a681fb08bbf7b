// Tests of named vectors (Qdrant's "vectors": {"NAME": {...}, ...}) over real HTTP:
// create and collection info, upsert with every vector, search by {"name", "vector"},
// "using" in query, prefetch and recommend, binary search ?using=, with_vector as a
// list of names, payload-index filters, vector updates, points/batch, delete by filter,
// scroll, refusals that change nothing, a restart, drop and re-create, and one named
// vector alone (LlamaIndex's "text-dense"). Every answer is checked against brute force
// computed here over the vectors the test sent. The collections stay below their
// training size, so vqs searches them exactly; cosine vectors are stored normalised.
#include "vqs_test.hpp"

#include "vqs_http.h"

#include <algorithm>
#include <cmath>
#include <dirent.h>
#include <jansson.h>
#include <map>
#include <random>
#include <set>

using namespace vqs_test;

#include "http_client.hpp"

using namespace vqs_http_test;

namespace
{

enum metric { COS, L2, DOT };
struct vdef {
    const char *name;
    size_t d;
    metric m;
};
// in name order (vqs keeps them sorted; the create body below lists them otherwise)
const vdef VD[3] = {{"alpha", 6, COS}, {"beta", 4, L2}, {"gamma", 5, DOT}};
const size_t NV = 3, N = 80, NGRP = 5;

const std::string C = "/collections/nv";

// point i's id: an integer, or every fourth a UUID
std::string key_of(size_t i)
{
    if (i % 4 != 3)
        return std::to_string(i);
    char b[64];
    std::snprintf(b, sizeof b, "5f0c1a2b-0000-4000-8000-%012zx", i);
    return b;
}
std::string id_json(size_t i) { return i % 4 == 3 ? "\"" + key_of(i) + "\"" : key_of(i); }

double dotp(const float *a, const float *b, size_t d)
{
    double s = 0;
    for (size_t i = 0; i < d; i++)
        s += (double)a[i] * b[i];
    return s;
}

std::vector<float> normalised(const float *x, size_t d)
{
    double n = std::sqrt(dotp(x, x, d));
    std::vector<float> o(x, x + d);
    for (auto &v : o)
        v = (float)(v / n);
    return o;
}

// the points the test sent: per vector the raw values and what the collection stores
struct model {
    std::vector<std::vector<float>> raw[NV], st[NV]; // [vector][point] -> d floats
    std::vector<bool> live;
    std::mt19937 rng{4321};
    model()
    {
        live.assign(N, true);
        for (size_t v = 0; v < NV; v++) {
            raw[v].resize(N);
            st[v].resize(N);
            for (size_t i = 0; i < N; i++)
                set(v, i, fresh(v));
        }
    }
    std::vector<float> fresh(size_t v)
    {
        std::normal_distribution<float> g(0, 1);
        std::vector<float> x(VD[v].d);
        for (auto &e : x)
            e = g(rng);
        return x;
    }
    void set(size_t v, size_t i, const std::vector<float> &x)
    {
        raw[v][i] = x;
        st[v][i] = VD[v].m == COS ? normalised(x.data(), x.size()) : x;
    }
    // {"alpha": [...], "beta": [...], "gamma": [...]} of point i (raw values)
    std::string vectors(size_t i) const
    {
        std::string s = "{";
        for (size_t v = 0; v < NV; v++)
            s += (v ? ",\"" : "\"") + std::string(VD[v].name) + "\":" + vec_json(raw[v][i].data(), VD[v].d);
        return s + "}";
    }
    std::string point(size_t i) const
    {
        return "{\"id\":" + id_json(i) + ",\"vector\":" + vectors(i) + ",\"payload\":{\"grp\":" +
               std::to_string(i % NGRP) + ",\"tag\":\"" + (i % 3 ? "a" : "b") + "\",\"n\":" + std::to_string(i) + "}}";
    }
    // the score of point i for query q over vector v, as Qdrant answers it
    double score(size_t v, const std::vector<float> &q, size_t i) const
    {
        const float *x = st[v][i].data();
        size_t d = VD[v].d;
        if (VD[v].m == COS) {
            auto qn = normalised(q.data(), d);
            return dotp(qn.data(), x, d);
        }
        if (VD[v].m == DOT)
            return dotp(q.data(), x, d);
        double s = 0;
        for (size_t j = 0; j < d; j++)
            s += ((double)q[j] - x[j]) * ((double)q[j] - x[j]);
        return std::sqrt(s);
    }
    // every live point's score (keep: which points count; skip: excluded examples)
    std::map<std::string, double> all(size_t v, const std::vector<float> &q,
                                      const std::function<bool(size_t)> &keep = {}) const
    {
        std::map<std::string, double> m;
        for (size_t i = 0; i < N; i++)
            if (live[i] && (!keep || keep(i)))
                m[key_of(i)] = score(v, q, i);
        return m;
    }
    size_t index_of(const std::string &k) const
    {
        for (size_t i = 0; i < N; i++)
            if (key_of(i) == k)
                return i;
        FAIL("unknown point id " << k);
        return 0;
    }
};

std::string create_body()
{
    // gamma first: vqs keeps the names sorted whatever the order sent
    return R"({"vectors":{"gamma":{"size":5,"distance":"Dot"},)"
           R"("alpha":{"size":6,"distance":"Cosine","vqs":{"spec":"SQfp32"}},)"
           R"("beta":{"size":4,"distance":"Euclid","on_disk":false,"vqs":{"spec":"SQ4","rerank":"memory"}}}})";
}

void load(int port, const model &M)
{
    jptr c(ok_result(http(port, "PUT", C, create_body())));
    std::string b = R"({"points":[)";
    for (size_t i = 0; i < N; i++)
        b += (i ? "," : "") + M.point(i);
    jptr u(ok_result(http(port, "PUT", C + "/points?wait=true", b + "]}")));
}

std::string key_json(const json_t *id)
{
    if (json_is_integer(id))
        return std::to_string((unsigned long long)json_integer_value(id));
    REQUIRE(json_is_string(id));
    return json_string_value(id);
}

using hits = std::vector<std::pair<std::string, double>>;

hits hits_of(const json_t *a)
{
    hits h;
    REQUIRE(json_is_array(a));
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *p = json_array_get(a, i);
        h.push_back({key_json(json_object_get(p, "id")), json_number_value(json_object_get(p, "score"))});
    }
    return h;
}

// the points of an answer (a list, or {"points": list})
hits answer(const http_resp &r)
{
    jptr j(ok_result(r));
    return hits_of(json_is_object(j.j) ? json_object_get(j.j, "points") : j.j);
}

// the k best of expect (larger is better unless lower), ties broken any way
void check_topk(const hits &got, const std::map<std::string, double> &expect, size_t k, bool lower = false,
                double tol = 1e-4)
{
    INFO("k " << k << ", candidates " << expect.size());
    REQUIRE(got.size() == std::min(k, expect.size()));
    std::set<std::string> seen;
    for (size_t i = 0; i < got.size(); i++) {
        INFO("rank " << i << " id " << got[i].first);
        REQUIRE(expect.count(got[i].first));
        REQUIRE(seen.insert(got[i].first).second);
        REQUIRE(got[i].second == Approx(expect.at(got[i].first)).margin(tol));
        if (i)
            REQUIRE((lower ? got[i].second >= got[i - 1].second - tol : got[i].second <= got[i - 1].second + tol));
    }
    if (got.empty())
        return;
    double last = got.back().second;
    for (auto &e : expect)
        if (lower ? e.second < last - tol : e.second > last + tol)
            REQUIRE(seen.count(e.first));
}

std::vector<std::string> ranked(const std::map<std::string, double> &m, bool lower = false)
{
    std::vector<std::string> ids;
    for (auto &e : m)
        ids.push_back(e.first);
    std::sort(ids.begin(), ids.end(), [&](const std::string &a, const std::string &b) {
        return lower ? m.at(a) < m.at(b) : m.at(a) > m.at(b);
    });
    return ids;
}

bool lower_of(size_t v) { return VD[v].m == L2; }

std::string named_q(size_t v, const std::vector<float> &q)
{
    return std::string(R"({"name":")") + VD[v].name + R"(","vector":)" + vec_json(q.data(), q.size()) + "}";
}
std::string Q(const std::vector<float> &q) { return vec_json(q.data(), q.size()); }

// the "vector" object of a returned point holds exactly the vectors of mask, equal to the stored ones
void check_vectors(const model &M, const json_t *p, unsigned mask)
{
    std::string k = key_json(json_object_get(p, "id"));
    size_t i = M.index_of(k);
    json_t *vo = json_object_get(p, "vector");
    INFO("point " << k << ": " << (vo ? dump(vo) : "(no vector)"));
    if (!mask) {
        REQUIRE((vo == nullptr || json_is_null(vo)));
        return;
    }
    REQUIRE(json_is_object(vo));
    size_t want = 0;
    for (size_t v = 0; v < NV; v++) {
        json_t *a = json_object_get(vo, VD[v].name);
        if (!(mask >> v & 1)) {
            REQUIRE(a == nullptr);
            continue;
        }
        want++;
        REQUIRE(json_array_size(a) == VD[v].d);
        for (size_t j = 0; j < VD[v].d; j++)
            REQUIRE(json_number_value(json_array_get(a, j)) == Approx(M.st[v][i][j]).margin(1e-6));
    }
    REQUIRE(json_object_size(vo) == want);
}

// each vector searched by {"name", "vector"} and by query "using": the brute-force top k
void check_searches(int port, const model &M, size_t k, const std::vector<size_t> &qpoints)
{
    for (size_t v = 0; v < NV; v++)
        for (size_t qi : qpoints) {
            INFO("vector " << VD[v].name << ", query point " << qi);
            auto q = M.raw[v][qi];
            for (auto &x : q)
                x += 0.1f; // not a stored vector
            auto e = M.all(v, q);
            check_topk(answer(http(port, "POST", C + "/points/search",
                                   R"({"vector":)" + named_q(v, q) + ",\"limit\":" + std::to_string(k) + "}")),
                       e, k, lower_of(v));
            check_topk(answer(http(port, "POST", C + "/points/query",
                                   R"({"query":)" + Q(q) + R"(,"using":")" + VD[v].name +
                                       "\",\"limit\":" + std::to_string(k) + "}")),
                       e, k, lower_of(v));
        }
}

// groups by grp, as Qdrant forms them from a ranking
std::vector<std::pair<int, std::vector<std::string>>> expect_groups(const model &M, const std::vector<std::string> &rank,
                                                                    size_t limit, size_t gsize)
{
    std::vector<std::pair<int, std::vector<std::string>>> g;
    for (auto &id : rank) {
        int v = (int)(M.index_of(id) % NGRP);
        auto it = std::find_if(g.begin(), g.end(), [&](auto &p) { return p.first == v; });
        if (it == g.end()) {
            if (g.size() == limit)
                continue;
            g.push_back({v, {}});
            it = g.end() - 1;
        }
        if (it->second.size() < gsize)
            it->second.push_back(id);
    }
    return g;
}

long count(int port)
{
    jptr c(ok_result(http(port, "POST", C + "/points/count", "{}")));
    return (long)json_integer_value(json_object_get(c.j, "count"));
}

std::string collection_list(int port)
{
    jptr l(ok_result(http(port, "GET", "/collections")));
    std::vector<std::string> names;
    json_t *cs = json_object_get(l.j, "collections");
    for (size_t i = 0; i < json_array_size(cs); i++)
        names.push_back(json_string_value(json_object_get(json_array_get(cs, i), "name")));
    std::sort(names.begin(), names.end());
    std::string s;
    for (auto &n : names)
        s += n + ",";
    return s;
}

// the info fields that describe the vectors, as text (for comparing before and after)
std::string vectors_info(int port)
{
    jptr g(ok_result(http(port, "GET", C)));
    json_t *o = json_pack("{s:O, s:O, s:O, s:O}", "vectors", json_object_get(json_object_get(json_object_get(g.j, "config"), "params"), "vectors"),
                          "vqs", json_object_get(json_object_get(g.j, "vqs"), "vectors"), "points",
                          json_object_get(g.j, "points_count"), "vcount", json_object_get(g.j, "vectors_count"));
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    std::string r(s);
    free(s);
    json_decref(o);
    return r;
}

// every point read back by scroll (all pages) with with_vector w: each point once, the vectors of mask
void check_scroll(int port, const model &M, const std::string &w, unsigned mask)
{
    std::set<std::string> seen;
    std::string offset = "null";
    for (int pages = 0; pages < 100; pages++) {
        jptr r(ok_result(
            http(port, "POST", C + "/points/scroll", R"({"limit":17,"with_vector":)" + w + R"(,"offset":)" + offset + "}")));
        json_t *pts = json_object_get(r.j, "points");
        for (size_t i = 0; i < json_array_size(pts); i++) {
            json_t *p = json_array_get(pts, i);
            REQUIRE(seen.insert(key_json(json_object_get(p, "id"))).second);
            check_vectors(M, p, mask);
        }
        json_t *next = json_object_get(r.j, "next_page_offset");
        if (json_is_null(next))
            break;
        char *s = json_dumps(next, JSON_COMPACT | JSON_ENCODE_ANY);
        offset = s;
        free(s);
    }
    size_t live = 0;
    for (size_t i = 0; i < N; i++)
        if (M.live[i]) {
            live++;
            REQUIRE(seen.count(key_of(i)));
        }
    REQUIRE(seen.size() == live);
}

} // namespace

TEST_CASE("named vectors: create, info, upsert, search each vector by name and by using, with_vector lists",
          "[api][named]")
{
    tmpdir t;
    server S(t.path + "/data");
    model M;
    load(S.port, M);

    // collection info: every vector's size, distance and spec; vectors_count = points x vectors
    {
        jptr g(ok_result(http(S.port, "GET", C)));
        INFO(dump(g.j));
        REQUIRE(json_integer_value(json_object_get(g.j, "points_count")) == (json_int_t)N);
        REQUIRE(json_integer_value(json_object_get(g.j, "vectors_count")) == (json_int_t)(N * NV));
        REQUIRE(json_integer_value(json_object_get(g.j, "indexed_vectors_count")) == 0);
        json_t *vs = json_object_get(json_object_get(json_object_get(g.j, "config"), "params"), "vectors");
        REQUIRE(json_object_size(vs) == NV);
        const char *dist[] = {"Cosine", "Euclid", "Dot"};
        const char *spec[] = {"SQfp32", "SQ4", "SQ8"};
        json_t *vq = json_object_get(json_object_get(g.j, "vqs"), "vectors");
        REQUIRE(json_object_size(vq) == NV);
        for (size_t v = 0; v < NV; v++) {
            INFO("vector " << VD[v].name);
            json_t *p = json_object_get(vs, VD[v].name);
            REQUIRE(json_integer_value(json_object_get(p, "size")) == (json_int_t)VD[v].d);
            REQUIRE(std::string(json_string_value(json_object_get(p, "distance"))) == dist[v]);
            REQUIRE(std::string(json_string_value(json_object_get(json_object_get(vq, VD[v].name), "spec"))) == spec[v]);
            REQUIRE(json_is_false(json_object_get(json_object_get(vq, VD[v].name), "trained")));
        }
        // beta: on_disk false is rerank "memory"
        REQUIRE(json_is_false(json_object_get(json_object_get(vs, "beta"), "on_disk")));
        REQUIRE(std::string(json_string_value(json_object_get(json_object_get(vq, "beta"), "rerank"))) == "memory");
        REQUIRE(json_is_true(json_object_get(json_object_get(vs, "alpha"), "on_disk")));
    }

    check_searches(S.port, M, 7, {0, 3, 41});

    // a UUID point's own vector (cosine: its normalised form scores 1 against itself)
    {
        hits h = answer(http(S.port, "POST", C + "/points/query",
                             R"({"query":)" + Q(M.raw[0][7]) + R"(,"using":"alpha","limit":1})"));
        REQUIRE(h.size() == 1);
        REQUIRE(h[0].first == key_of(7));
        REQUIRE(h[0].second == Approx(1).margin(1e-5));
    }
    // a point id as the query, over the vector "using" names; the point itself excluded
    for (size_t v = 0; v < NV; v++) {
        INFO("vector " << VD[v].name);
        auto e = M.all(v, M.st[v][11], [](size_t i) { return i != 11; });
        check_topk(answer(http(S.port, "POST", C + "/points/query",
                               R"({"query":"5f0c1a2b-0000-4000-8000-00000000000b","using":")" + std::string(VD[v].name) +
                                   R"(","limit":5})")),
                   e, 5, lower_of(v));
        // {"nearest": v} in a query object
        check_topk(answer(http(S.port, "POST", C + "/points/query",
                               R"({"query":{"nearest":)" + Q(M.raw[v][20]) + R"(},"using":")" +
                                   std::string(VD[v].name) + R"(","limit":4})")),
                   M.all(v, M.raw[v][20]), 4, lower_of(v));
    }

    // search/batch with a different vector per search
    {
        jptr b(ok_result(http(S.port, "POST", C + "/points/search/batch",
                              R"({"searches":[{"vector":)" + named_q(2, M.raw[2][5]) + R"(,"limit":3},{"vector":)" +
                                  named_q(1, M.raw[1][6]) + R"(,"limit":4},{"vector":)" + named_q(0, M.raw[0][8]) +
                                  R"(,"limit":2}]})")));
        REQUIRE(json_array_size(b.j) == 3);
        check_topk(hits_of(json_array_get(b.j, 0)), M.all(2, M.raw[2][5]), 3);
        check_topk(hits_of(json_array_get(b.j, 1)), M.all(1, M.raw[1][6]), 4, true);
        check_topk(hits_of(json_array_get(b.j, 2)), M.all(0, M.raw[0][8]), 2);
        // query/batch with "using" per search
        jptr qb(ok_result(http(S.port, "POST", C + "/points/query/batch",
                               R"({"searches":[{"query":)" + Q(M.raw[1][9]) + R"(,"using":"beta","limit":3},{"query":)" +
                                   Q(M.raw[2][9]) + R"(,"using":"gamma","limit":3}]})")));
        REQUIRE(json_array_size(qb.j) == 2);
        check_topk(hits_of(json_object_get(json_array_get(qb.j, 0), "points")), M.all(1, M.raw[1][9]), 3, true);
        check_topk(hits_of(json_object_get(json_array_get(qb.j, 1), "points")), M.all(2, M.raw[2][9]), 3);
    }

    // search/groups by a named vector
    {
        auto e = expect_groups(M, ranked(M.all(1, M.raw[1][12]), true), 3, 2);
        jptr g(ok_result(http(S.port, "POST", C + "/points/search/groups",
                              R"({"vector":)" + named_q(1, M.raw[1][12]) + R"(,"group_by":"grp","limit":3,"group_size":2})")));
        json_t *gs = json_object_get(g.j, "groups");
        REQUIRE(json_array_size(gs) == e.size());
        for (size_t i = 0; i < e.size(); i++) {
            json_t *gi = json_array_get(gs, i);
            REQUIRE(json_integer_value(json_object_get(gi, "id")) == e[i].first);
            hits h = hits_of(json_object_get(gi, "hits"));
            REQUIRE(h.size() == e[i].second.size());
            for (size_t k = 0; k < h.size(); k++)
                REQUIRE(h[k].first == e[i].second[k]);
        }
    }

    // the binary search names its vector with ?using=
    {
        const auto &q = M.raw[1][30];
        check_topk(answer(http(S.port, "POST", C + "/points/search?limit=6&using=beta",
                               std::string((const char *)q.data(), q.size() * sizeof(float)), "",
                               "application/octet-stream")),
                   M.all(1, q), 6, true);
        const auto &q2 = M.raw[2][30];
        check_topk(answer(http(S.port, "POST", C + "/points/search?limit=6&using=gamma",
                               std::string((const char *)q2.data(), q2.size() * sizeof(float)), "",
                               "application/octet-stream")),
                   M.all(2, q2), 6);
        require_error(http(S.port, "POST", C + "/points/search?limit=6",
                           std::string((const char *)q.data(), q.size() * sizeof(float)), "", "application/octet-stream"),
                      400, "Not existing vector name");
        require_error(http(S.port, "POST", C + "/points/search?limit=6&using=delta",
                           std::string((const char *)q.data(), q.size() * sizeof(float)), "", "application/octet-stream"),
                      400, "Not existing vector name error: delta");
    }

    // with_vector: a list of names returns exactly those, as stored (cosine: normalised)
    {
        struct {
            std::string w;
            unsigned mask;
        } ws[] = {{R"(["alpha","gamma"])", 5}, {R"(["beta"])", 2}, {"true", 7}, {"false", 0}, {"[]", 0}};
        for (auto &w : ws) {
            INFO("with_vector " << w.w);
            jptr r(ok_result(http(S.port, "POST", C + "/points/search",
                                  R"({"vector":)" + named_q(0, M.raw[0][2]) + R"(,"limit":5,"with_vector":)" + w.w + "}")));
            REQUIRE(json_array_size(r.j) == 5);
            for (size_t i = 0; i < json_array_size(r.j); i++)
                check_vectors(M, json_array_get(r.j, i), w.mask);
            jptr q(ok_result(http(S.port, "POST", C + "/points/query",
                                  R"({"query":)" + Q(M.raw[2][2]) + R"(,"using":"gamma","limit":4,"with_vector":)" +
                                      w.w + "}")));
            json_t *pts = json_object_get(q.j, "points");
            REQUIRE(json_array_size(pts) == 4);
            for (size_t i = 0; i < json_array_size(pts); i++)
                check_vectors(M, json_array_get(pts, i), w.mask);
            jptr p(ok_result(http(S.port, "POST", C + "/points",
                                  R"({"ids":[0,4,"5f0c1a2b-0000-4000-8000-00000000001b"],"with_vector":)" + w.w + "}")));
            REQUIRE(json_array_size(p.j) == 3);
            for (size_t i = 0; i < json_array_size(p.j); i++)
                check_vectors(M, json_array_get(p.j, i), w.mask);
        }
        // GET one point: every vector (Qdrant's default there)
        jptr one(ok_result(http(S.port, "GET", C + "/points/" + key_of(15))));
        check_vectors(M, one.j, 7);
    }
}

TEST_CASE("named vectors: prefetch stages with their own using, rrf, nearest re-scoring another vector's candidates",
          "[api][named]")
{
    tmpdir t;
    server S(t.path + "/data");
    model M;
    load(S.port, M);
    auto qa = M.raw[0][17], qb = M.raw[1][23], qg = M.raw[2][29];
    auto a = M.all(0, qa), b = M.all(1, qb), g = M.all(2, qg);
    auto la = ranked(a), lb = ranked(b, true), lg = ranked(g);

    // RRF over alpha's and beta's lists (Qdrant: 1 / ((pos + 1) / weight + k - 1), k = 2)
    auto rrf = [&](const std::vector<const std::vector<std::string> *> &ls, size_t lim, double k) {
        std::map<std::string, double> e;
        for (auto *l : ls)
            for (size_t i = 0; i < lim; i++)
                e[(*l)[i]] += 1.0 / ((double)(i + 1) + k - 1);
        return e;
    };
    check_topk(answer(http(S.port, "POST", C + "/points/query",
                           R"({"prefetch":[{"query":)" + Q(qa) + R"(,"using":"alpha","limit":10},{"query":)" + Q(qb) +
                               R"(,"using":"beta","limit":10}],"query":{"fusion":"rrf"},"limit":6})")),
               rrf({&la, &lb}, 10, 2), 6);
    // three vectors, one of them by {"name","vector"}-free nested prefetch, rrf with k = 4
    check_topk(answer(http(S.port, "POST", C + "/points/query",
                           R"({"prefetch":[{"query":)" + Q(qa) + R"(,"using":"alpha","limit":8},{"query":)" + Q(qb) +
                               R"(,"using":"beta","limit":8},{"query":)" + Q(qg) +
                               R"(,"using":"gamma","limit":8}],"query":{"rrf":{"k":4}},"limit":10})")),
               rrf({&la, &lb, &lg}, 8, 4), 10);

    // nearest over alpha re-scoring the 20 best of beta
    {
        std::map<std::string, double> e;
        for (size_t i = 0; i < 20; i++)
            e[lb[i]] = a.at(lb[i]);
        check_topk(answer(http(S.port, "POST", C + "/points/query",
                               R"({"prefetch":{"query":)" + Q(qb) + R"(,"using":"beta","limit":20},"query":)" + Q(qa) +
                                   R"(,"using":"alpha","limit":5})")),
                   e, 5);
    }
    // Euclid (beta) re-scoring the 25 best of gamma (Dot): distances, ascending
    {
        std::map<std::string, double> e;
        for (size_t i = 0; i < 25; i++)
            e[lg[i]] = b.at(lg[i]);
        check_topk(answer(http(S.port, "POST", C + "/points/query",
                               R"({"prefetch":{"query":)" + Q(qg) + R"(,"using":"gamma","limit":25},"query":)" + Q(qb) +
                                   R"(,"using":"beta","limit":6})")),
                   e, 6, true);
    }
    // nested: gamma's 30 best, of them beta's nearest 12, ranked by alpha
    {
        std::vector<std::string> mid(lg.begin(), lg.begin() + 30);
        std::sort(mid.begin(), mid.end(), [&](const std::string &x, const std::string &y) { return b.at(x) < b.at(y); });
        std::map<std::string, double> e;
        for (size_t i = 0; i < 12; i++)
            e[mid[i]] = a.at(mid[i]);
        check_topk(answer(http(S.port, "POST", C + "/points/query",
                               R"({"prefetch":{"prefetch":{"query":)" + Q(qg) + R"(,"using":"gamma","limit":30},"query":)" +
                                   Q(qb) + R"(,"using":"beta","limit":12},"query":)" + Q(qa) + R"(,"using":"alpha","limit":5})")),
                   e, 5);
    }
    // a prefetch without "using" in a collection of named vectors is a 400 naming it
    require_error(http(S.port, "POST", C + "/points/query",
                       R"({"prefetch":{"query":)" + Q(qb) + R"(,"limit":20},"query":)" + Q(qa) + R"(,"using":"alpha"})"),
                  400, "using");
    // the query's own {"name","vector"} must agree with "using"
    require_error(http(S.port, "POST", C + "/points/query",
                       R"({"query":)" + named_q(0, qa) + R"(,"using":"gamma"})"),
                  400, "vector \"alpha\" and \"using\" name different vectors");
}

TEST_CASE("named vectors: recommend with using, examples by id read from that vector", "[api][named]")
{
    tmpdir t;
    server S(t.path + "/data");
    model M;
    load(S.port, M);
    const size_t P1 = 7, P2 = 12, NG = 19; // 7 and 19 are UUIDs
    const std::string pn = R"("positive":[)" + id_json(P1) + "," + id_json(P2) + R"(],"negative":[)" + id_json(NG) + "]";
    auto not_ex = [&](size_t i) { return i != P1 && i != P2 && i != NG; };
    for (size_t v = 0; v < NV; v++) {
        INFO("vector " << VD[v].name);
        size_t d = VD[v].d;
        // Qdrant's average_vector: avg(pos) + avg(pos) - avg(neg), over the stored vectors
        std::vector<float> av(d);
        for (size_t j = 0; j < d; j++) {
            double p = ((double)M.st[v][P1][j] + M.st[v][P2][j]) / 2;
            av[j] = (float)(p + p - M.st[v][NG][j]);
        }
        auto e = M.all(v, av, not_ex);
        const std::string u = std::string(R"("using":")") + VD[v].name + "\"";
        check_topk(answer(http(S.port, "POST", C + "/points/recommend", "{" + pn + "," + u + R"(,"limit":6})")), e, 6,
                   lower_of(v));
        check_topk(answer(http(S.port, "POST", C + "/points/query",
                               R"({"query":{"recommend":{)" + pn + "}}," + u + R"(,"limit":6})")),
                   e, 6, lower_of(v));
        // sum_scores: Qdrant's raw similarities (Euclid: minus the squared distance)
        std::map<std::string, double> es;
        for (size_t i = 0; i < N; i++) {
            if (!not_ex(i))
                continue;
            auto sim = [&](size_t o) {
                double s = 0;
                for (size_t j = 0; j < d; j++)
                    s += VD[v].m == L2 ? -((double)M.st[v][i][j] - M.st[v][o][j]) * ((double)M.st[v][i][j] - M.st[v][o][j])
                                       : (double)M.st[v][i][j] * M.st[v][o][j];
                return (float)s;
            };
            es[key_of(i)] = (double)sim(P1) + sim(P2) - sim(NG);
        }
        check_topk(answer(http(S.port, "POST", C + "/points/recommend",
                               "{" + pn + "," + u + R"(,"strategy":"sum_scores","limit":5})")),
                   es, 5, false, 1e-3);
    }
    // without "using": a named collection has no default vector
    require_error(http(S.port, "POST", C + "/points/recommend", "{" + pn + R"(,"limit":6})"), 400, "using");
    require_error(http(S.port, "POST", C + "/points/recommend", "{" + pn + R"(,"using":"delta","limit":6})"), 400,
                  "Not existing vector name error: delta");
}

TEST_CASE("named vectors: filtered search with a payload index equals brute force over the matching points",
          "[api][named]")
{
    tmpdir t;
    server S(t.path + "/data");
    model M;
    load(S.port, M);
    jptr ix(ok_result(http(S.port, "PUT", C + "/index?wait=true", R"({"field_name":"grp","field_schema":"integer"})")));
    jptr ix2(ok_result(http(S.port, "PUT", C + "/index?wait=true", R"({"field_name":"tag","field_schema":"keyword"})")));
    {
        jptr g(ok_result(http(S.port, "GET", C)));
        REQUIRE(json_object_size(json_object_get(g.j, "payload_schema")) == 2);
    }
    const std::string f2 = R"({"must":[{"key":"grp","match":{"value":2}}]})";
    const std::string fab = R"({"must":[{"key":"tag","match":{"value":"b"}}],"must_not":[{"key":"grp","range":{"gte":3}}]})";
    auto in2 = [](size_t i) { return i % NGRP == 2; };
    auto inab = [](size_t i) { return i % 3 == 0 && i % NGRP < 3; };
    for (size_t v = 0; v < NV; v++) {
        INFO("vector " << VD[v].name);
        auto q = M.raw[v][33];
        check_topk(answer(http(S.port, "POST", C + "/points/search",
                               R"({"vector":)" + named_q(v, q) + R"(,"limit":5,"filter":)" + f2 + "}")),
                   M.all(v, q, in2), 5, lower_of(v));
        check_topk(answer(http(S.port, "POST", C + "/points/query",
                               R"({"query":)" + Q(q) + R"(,"using":")" + VD[v].name + R"(","limit":6,"filter":)" + fab + "}")),
                   M.all(v, q, inab), 6, lower_of(v));
        // more than match: all of them
        check_topk(answer(http(S.port, "POST", C + "/points/search",
                               R"({"vector":)" + named_q(v, q) + R"(,"limit":40,"filter":)" + f2 + "}")),
                   M.all(v, q, in2), 40, lower_of(v));
    }
    // a prefetch over beta with the filter, re-scored by gamma
    {
        auto b = M.all(1, M.raw[1][4], in2);
        auto lb = ranked(b, true);
        std::map<std::string, double> e;
        for (size_t i = 0; i < 10; i++)
            e[lb[i]] = M.score(2, M.raw[2][4], M.index_of(lb[i]));
        check_topk(answer(http(S.port, "POST", C + "/points/query",
                               R"({"prefetch":{"query":)" + Q(M.raw[1][4]) + R"(,"using":"beta","limit":10,"filter":)" +
                                   f2 + R"(},"query":)" + Q(M.raw[2][4]) + R"(,"using":"gamma","limit":4})")),
                   e, 4);
    }
}

TEST_CASE("named vectors: vector updates, atomic points/batch, delete by filter, scroll with_vector", "[api][named]")
{
    tmpdir t;
    server S(t.path + "/data");
    model M;
    load(S.port, M);

    // PUT points/vectors with every name replaces them (an int and a UUID point)
    {
        std::string b = R"({"points":[)";
        for (size_t i : {5, 27}) {
            for (size_t v = 0; v < NV; v++)
                M.set(v, i, M.fresh(v));
            b += (i == 5 ? "" : ",") + std::string("{\"id\":") + id_json(i) + ",\"vector\":" + M.vectors(i) + "}";
        }
        jptr r(ok_result(http(S.port, "PUT", C + "/points/vectors?wait=true", b + "]}")));
        check_searches(S.port, M, 6, {5, 27});
        // the new vector of 27 is its own nearest (Dot aside: a longer vector may score more)
        for (size_t v = 0; v < NV; v++) {
            if (VD[v].m == DOT)
                continue;
            hits h = answer(http(S.port, "POST", C + "/points/search",
                                 R"({"vector":)" + named_q(v, M.raw[v][27]) + R"(,"limit":1})"));
            REQUIRE(h.size() == 1);
            REQUIRE(h[0].first == key_of(27));
        }
    }
    // a subset of the names: 400 naming the missing one, nothing changed
    {
        auto x = M.fresh(0);
        require_error(http(S.port, "PUT", C + "/points/vectors",
                           R"({"points":[{"id":6,"vector":{"alpha":)" + Q(x) + "}}]}"),
                      400, "vector \"beta\" is missing");
        jptr p(ok_result(http(S.port, "POST", C + "/points", R"({"ids":[6],"with_vector":true})")));
        check_vectors(M, json_array_get(p.j, 0), 7);
    }
    check_scroll(S.port, M, "true", 7);

    // the batch form of an upsert: "vectors": {"NAME": [one vector per id], ...} (Qdrant's named
    // BatchVectorStruct, as qdrant-client's Batch sends it)
    {
        const size_t ids[] = {40, 43, 44};
        std::string bv[NV];
        std::vector<float> nx[NV][3];
        for (size_t v = 0; v < NV; v++)
            for (size_t k = 0; k < 3; k++) {
                nx[v][k] = M.fresh(v);
                bv[v] += (k ? "," : "") + Q(nx[v][k]);
            }
        auto body = [&](size_t short_one) {
            std::string b = R"({"batch":{"ids":[40,"5f0c1a2b-0000-4000-8000-00000000002b",44],"vectors":{)";
            for (size_t v = 0; v < NV; v++) {
                std::string arr = bv[v];
                if (v == short_one) // two vectors for three ids
                    arr = arr.substr(0, arr.rfind(",["));
                b += (v ? ",\"" : "\"") + std::string(VD[v].name) + "\":[" + arr + "]";
            }
            return b + R"(},"payloads":[{"grp":0,"tag":"a","n":40},{"grp":3,"tag":"a","n":43},{"grp":4,"tag":"a","n":44}]}})";
        };
        std::string before = vectors_info(S.port);
        require_error(http(S.port, "PUT", C + "/points", body(1)), 400, "\"NAME\": [one vector per id]");
        require_error(http(S.port, "PUT", C + "/points",
                           R"({"batch":{"ids":[40],"vectors":{"alpha":[)" + Q(nx[0][0]) + R"(],"beta":[)" + Q(nx[1][0]) +
                               "]}}}"),
                      400, "vector \"gamma\" is missing");
        require_error(http(S.port, "PUT", C + "/points", R"({"batch":{"ids":[40],"vectors":[)" + Q(nx[0][0]) + "]}}"), 400,
                      "Not existing vector name error");
        REQUIRE(vectors_info(S.port) == before);
        check_scroll(S.port, M, "true", 7);
        jptr r(ok_result(http(S.port, "PUT", C + "/points?wait=true", body(NV))));
        for (size_t v = 0; v < NV; v++)
            for (size_t k = 0; k < 3; k++)
                M.set(v, ids[k], nx[v][k]);
        check_scroll(S.port, M, "true", 7);
        check_searches(S.port, M, 6, {40, 43, 44});
        // and as an operation of points/batch
        for (size_t v = 0; v < NV; v++) {
            bv[v].clear();
            for (size_t k = 0; k < 3; k++) {
                nx[v][k] = M.fresh(v);
                bv[v] += (k ? "," : "") + Q(nx[v][k]);
            }
        }
        jptr rb(ok_result(http(S.port, "POST", C + "/points/batch?wait=true", R"({"operations":[{"upsert":)" + body(NV) + "}]}")));
        for (size_t v = 0; v < NV; v++)
            for (size_t k = 0; k < 3; k++)
                M.set(v, ids[k], nx[v][k]);
        check_scroll(S.port, M, "true", 7);
        check_searches(S.port, M, 6, {44});
    }

    // points/batch: upsert a new point, replace 8's vectors, delete 9; the same with a failing
    // last operation first: nothing of it applied
    {
        std::vector<float> nv8[NV];
        for (size_t v = 0; v < NV; v++)
            nv8[v] = M.fresh(v);
        std::string v8 = "{";
        for (size_t v = 0; v < NV; v++)
            v8 += (v ? ",\"" : "\"") + std::string(VD[v].name) + "\":" + Q(nv8[v]);
        v8 += "}";
        // point 10 deleted first, then re-created by the batch's upsert with new vectors
        jptr d(ok_result(http(S.port, "POST", C + "/points/delete?wait=true", R"({"points":[10]})")));
        M.live[10] = false;
        std::vector<float> nv10[NV];
        for (size_t v = 0; v < NV; v++)
            nv10[v] = M.fresh(v);
        std::string v10 = "{";
        for (size_t v = 0; v < NV; v++)
            v10 += (v ? ",\"" : "\"") + std::string(VD[v].name) + "\":" + Q(nv10[v]);
        v10 += "}";
        const std::string ops = R"({"upsert":{"points":[{"id":10,"vector":)" + v10 +
                                R"(,"payload":{"grp":0,"tag":"b","n":10}}]}},{"update_vectors":{"points":[{"id":8,"vector":)" +
                                v8 + R"(}]}},{"delete":{"points":[9]}})";
        std::string before = vectors_info(S.port);
        // a missing vector in the last operation (refused while parsing)
        require_error(http(S.port, "POST", C + "/points/batch",
                           R"({"operations":[)" + ops + R"(,{"update_vectors":{"points":[{"id":11,"vector":{"alpha":)" +
                               Q(M.fresh(0)) + "}}]}}]}"),
                      400, "vector \"beta\" is missing");
        // a point that does not exist in the last operation (found while applying)
        http_resp r = http(S.port, "POST", C + "/points/batch",
                           R"({"operations":[)" + ops + R"(,{"update_vectors":{"points":[{"id":99999,"vector":)" + v8 +
                               "}]}}]}");
        INFO(r.body);
        REQUIRE(r.code >= 400);
        REQUIRE(r.code < 500);
        REQUIRE(vectors_info(S.port) == before);
        REQUIRE(count(S.port) == (long)N - 1);
        check_scroll(S.port, M, "true", 7);
        check_searches(S.port, M, 5, {8, 9});
        // now the batch alone
        jptr ok(ok_result(http(S.port, "POST", C + "/points/batch?wait=true", R"({"operations":[)" + ops + "]}")));
        for (size_t v = 0; v < NV; v++) {
            M.set(v, 8, nv8[v]);
            M.set(v, 10, nv10[v]);
        }
        M.live[10] = true;
        M.live[9] = false;
        REQUIRE(count(S.port) == (long)N - 1);
        check_scroll(S.port, M, "true", 7);
        check_searches(S.port, M, 5, {8, 10, 9});
    }

    // delete by filter: gone from every vector's search
    {
        jptr d(ok_result(http(S.port, "POST", C + "/points/delete?wait=true",
                              R"({"filter":{"must":[{"key":"grp","match":{"value":3}}]}})")));
        for (size_t i = 0; i < N; i++)
            if (i % NGRP == 3)
                M.live[i] = false;
        long live = 0;
        for (size_t i = 0; i < N; i++)
            live += M.live[i];
        REQUIRE(count(S.port) == live);
        check_searches(S.port, M, (size_t)live, {1, 13});
        jptr g(ok_result(http(S.port, "GET", C)));
        REQUIRE(json_integer_value(json_object_get(g.j, "vectors_count")) == (json_int_t)(live * NV));
    }
    // a delete by a filter that matches nothing, alone and in a batch: nothing changes
    {
        jptr d(ok_result(http(S.port, "POST", C + "/points/delete?wait=true",
                              R"({"filter":{"must":[{"key":"grp","match":{"value":99}}]}})")));
        jptr b(ok_result(http(S.port, "POST", C + "/points/batch?wait=true",
                              R"({"operations":[{"delete":{"filter":{"must":[{"key":"grp","match":{"value":99}}]}}},)"
                              R"({"delete":{"filter":{"must":[{"key":"grp","match":{"value":3}}]}}}]})")));
        check_searches(S.port, M, 5, {1});
    }
    // scroll: with_vector as lists
    check_scroll(S.port, M, R"(["gamma"])", 4);
    check_scroll(S.port, M, R"(["beta","alpha"])", 3);
    check_scroll(S.port, M, "false", 0);
    require_error(http(S.port, "POST", C + "/points/scroll", R"({"with_vector":["alpha","delta"]})"), 400,
                  "Not existing vector name error: delta");
}

TEST_CASE("named vectors: refusals name the problem and change nothing", "[api][named]")
{
    tmpdir t;
    server S(t.path + "/data");
    model M;
    load(S.port, M);
    const std::string list0 = collection_list(S.port), info0 = vectors_info(S.port);
    auto q = M.raw[2][4];
    hits h0 = answer(http(S.port, "POST", C + "/points/search", R"({"vector":)" + named_q(2, q) + R"(,"limit":8})"));
    const std::string a = Q(M.fresh(0)), b = Q(M.fresh(1)), g = Q(M.fresh(2));
    struct bad {
        const char *method;
        std::string path, body, needle;
    } bads[] = {
        // points
        {"PUT", C + "/points", R"({"points":[{"id":1000,"vector":{"alpha":)" + a + R"(,"gamma":)" + g + "}}]}",
         "vector \"beta\" is missing"},
        {"PUT", C + "/points", R"({"points":[{"id":1000,"vector":{"alpha":)" + a + R"(,"beta":)" + b + R"(,"gamma":)" + g +
                                   R"(,"delta":[1,2]}}]})",
         "Not existing vector name error: delta"},
        {"PUT", C + "/points", R"({"points":[{"id":1000,"vector":)" + a + "}]}", "Not existing vector name error"},
        {"PUT", C + "/points", R"({"points":[{"id":1000,"vector":{}}]})", "is missing"},
        {"PUT", C + "/points", R"({"points":[{"id":1000,"vector":{"alpha":{"indices":[0],"values":[1]},"beta":)" + b +
                                   R"(,"gamma":)" + g + "}}]}",
         "sparse vectors are not supported"},
        {"PUT", C + "/points", R"({"points":[{"id":1000,"vector":{"indices":[0],"values":[1]}}]})",
         "Not existing vector name error: indices (a sparse vector? sparse vectors are not supported"},
        {"PUT", C + "/points", R"({"points":[{"id":1000,"vector":{"text":"hello","model":"m"}}]})",
         "inference is not supported"},
        {"PUT", C + "/points", R"({"points":[{"id":1000,"vector":7}]})", "array"},
        {"PUT", C + "/points", R"({"points":[{"id":1000,"vector":{"alpha":)" + a + R"(,"beta":[1,2,3],"gamma":)" + g +
                                   "}}]}",
         "\"beta\""},
        {"PUT", C + "/points", R"({"points":[{"id":1000,"vector":{"alpha":)" + a + R"(,"beta":[[1,2,3,4]],"gamma":)" +
                                   g + "}}]}",
         "multi-vectors"},
        // a valid point before a bad one: neither stored
        {"PUT", C + "/points", R"({"points":[{"id":1001,"vector":{"alpha":)" + a + R"(,"beta":)" + b + R"(,"gamma":)" + g +
                                   R"(}},{"id":1000,"vector":{"alpha":)" + a + R"(,"beta":)" + b + "}}]}",
         "vector \"gamma\" is missing"},
        {"PUT", C + "/points", R"({"batch":{"ids":[1000],"vectors":{"alpha":[)" + a + R"(]}}})", "vector \"beta\" is missing"},
        {"PUT", C + "/points/vectors", R"({"points":[{"id":1,"vector":{"alpha":)" + a + R"(,"beta":)" + b + R"(,"gamma":)" +
                                           g + R"(,"zeta":[1]}}]})",
         "Not existing vector name error: zeta"},
        {"POST", C + "/points/vectors/delete", R"({"points":[1],"vector":["alpha"]})", "delete the points instead"},
        // searches
        {"POST", C + "/points/search", R"({"vector":{"name":"delta","vector":)" + g + "},\"limit\":3}",
         "Not existing vector name error: delta"},
        {"POST", C + "/points/search", R"({"vector":)" + g + ",\"limit\":3}", "Not existing vector name error"},
        {"POST", C + "/points/search", R"({"vector":{"name":"gamma","vector":{"indices":[0],"values":[1]}},"limit":3})",
         "sparse vectors are not supported"},
        {"POST", C + "/points/search", R"({"vector":{"name":"gamma","vector":)" + a + "},\"limit\":3}", "dimension 6"},
        {"POST", C + "/points/search", R"({"vector":)" + named_q(2, q) + R"(,"limit":3,"with_vector":["gamma","delta"]})",
         "Not existing vector name error: delta"},
        {"POST", C + "/points/search/batch",
         R"({"searches":[{"vector":)" + named_q(2, q) + R"(},{"vector":{"name":"delta","vector":)" + g + "}}]}",
         "Not existing vector name error: delta"},
        {"POST", C + "/points/query", R"({"query":)" + g + R"(,"using":"delta"})", "Not existing vector name error: delta"},
        {"POST", C + "/points/query", R"({"query":)" + g + "}", "Not existing vector name error"},
        {"POST", C + "/points/query", R"({"query":)" + g + R"(,"using":7})", "using"},
        {"POST", C + "/points/query",
         R"({"prefetch":{"query":)" + g + R"(,"using":"delta"},"query":{"fusion":"rrf"}})",
         "Not existing vector name error: delta"},
        {"POST", C + "/points/query", R"({"query":)" + g + R"(,"using":"gamma","with_vector":["x"]})",
         "Not existing vector name error: x"},
        {"POST", C + "/points/query", R"({"query":{"indices":[1],"values":[1.0]},"using":"gamma"})",
         "sparse vectors are not supported"},
        {"POST", C + "/points", R"({"ids":[1],"with_vector":["nope"]})", "Not existing vector name error: nope"},
        {"POST", C + "/points", R"({"ids":[1],"with_vector":[3]})", "with_vector"},
    };
    for (auto &x : bads) {
        INFO(x.method << " " << x.path << " " << x.body);
        http_resp r = http(S.port, x.method, x.path, x.body);
        require_error(r, 400, x.needle);
    }
    REQUIRE(count(S.port) == (long)N);
    REQUIRE(vectors_info(S.port) == info0);
    check_scroll(S.port, M, "true", 7);
    hits h1 = answer(http(S.port, "POST", C + "/points/search", R"({"vector":)" + named_q(2, q) + R"(,"limit":8})"));
    REQUIRE(h1 == h0);

    // collections that cannot be created: a 400, none created
    std::string v17 = "{";
    for (int i = 0; i < 17; i++)
        v17 += (i ? ",\"v" : "\"v") + std::to_string(i) + R"(":{"size":2,"distance":"Dot"})";
    v17 += "}";
    struct {
        std::string body, needle;
    } bad_create[] = {
        {R"({"vectors":)" + v17 + "}", "17 named vectors"},
        {R"({"vectors":{"a":{"size":4,"distance":"Dot"},"b":{"size":4,"distance":"Dot","hnsw_config":{"m":16,"payload_m":2}}}})",
         "hnsw_config"},
        {R"({"vectors":{"a":{"size":4,"distance":"Dot"},"b":{"size":4,"distance":"Dot","vqs":{"spec":"PQ3x8"}}}})",
         "\"vectors\".\"b\""},
        {R"({"vectors":{"a":{"size":4,"distance":"Dot"},"b":{"size":4,"distance":"Dot","vqs":{"spec":"XYZ"}}}})",
         "\"vectors\".\"b\""},
        {R"({"vectors":{"a":{"size":4,"distance":"Dot"},"b":{"size":4,"distance":"Manhattan"}}})", "Manhattan"},
        {R"({"vectors":{"a":{"size":4,"distance":"Dot"},"b":{"size":0,"distance":"Dot"}}})", "\"vectors\".\"b\""},
        {R"({"vectors":{"a":{"size":4,"distance":"Dot"},"b":{"distance":"Dot"}}})", "\"vectors\".\"b\""},
        {R"({"vectors":{"a":{"size":4,"distance":"Dot"},"b":{"size":4,"distance":"Dot","multivector_config":{"comparator":"max_sim"}}}})",
         "multivector_config"},
        {R"({"vectors":{"a":{"size":4,"distance":"Dot","colour":1}}})", "colour"},
        {R"({"vectors":{"a":{"size":4,"distance":"Dot"}},"sparse_vectors":{"s":{}}})", "sparse"},
        {R"({"vectors":{"a":{"size":4,"distance":"Dot","vqs":{"rerank":"sometimes"}}}})", "rerank"},
        {R"({"vectors":{"bad\u0001name":{"size":4,"distance":"Dot"}}})", "control character"},
        {R"({"vectors":{"":{"size":4,"distance":"Dot"}}})", "vector name ''"},
    };
    for (auto &x : bad_create) {
        INFO(x.body);
        require_error(http(S.port, "PUT", "/collections/bad", x.body), 400, x.needle);
        require_error(http(S.port, "GET", "/collections/bad"), 404, "bad");
        REQUIRE(collection_list(S.port) == list0);
    }
    for (auto *f : {"bad.vec", "bad@1.vec"})
        REQUIRE(access((t.path + "/data/" + f).c_str(), F_OK) != 0);
    // 16 named vectors are the most, and null or empty hnsw_config per vector is accepted
    std::string v16 = "{";
    for (int i = 0; i < 16; i++)
        v16 += (i ? ",\"v" : "\"v") + std::to_string(i) + R"(":{"size":2,"distance":"Dot","hnsw_config":{"m":null}})";
    v16 += "}";
    jptr c16(ok_result(http(S.port, "PUT", "/collections/c16", R"({"vectors":)" + v16 + "}")));
    jptr g16(ok_result(http(S.port, "GET", "/collections/c16")));
    REQUIRE(json_object_size(json_object_get(json_object_get(json_object_get(g16.j, "config"), "params"), "vectors")) == 16);
    // an existing name is a 409, the collection unchanged
    require_error(http(S.port, "PUT", C, create_body()), 409, "already exists");
    REQUIRE(vectors_info(S.port) == info0);
}

TEST_CASE("named vectors: a restart answers the same, drop and re-create leave no vector file behind",
          "[api][named]")
{
    tmpdir t;
    model M;
    const std::string dir = t.path + "/data";
    std::string info0;
    std::vector<hits> ans0;
    auto answers = [&](int port) {
        std::vector<hits> r;
        for (size_t v = 0; v < NV; v++) {
            r.push_back(answer(http(port, "POST", C + "/points/search",
                                    R"({"vector":)" + named_q(v, M.raw[v][14]) + R"(,"limit":9})")));
            r.push_back(answer(http(port, "POST", C + "/points/query",
                                    R"({"query":)" + Q(M.raw[v][31]) + R"(,"using":")" + VD[v].name + R"(","limit":9})")));
        }
        r.push_back(answer(http(port, "POST", C + "/points/query",
                                R"({"prefetch":[{"query":)" + Q(M.raw[0][2]) + R"(,"using":"alpha","limit":10},{"query":)" +
                                    Q(M.raw[1][2]) + R"(,"using":"beta","limit":10}],"query":{"fusion":"rrf"},"limit":6})")));
        return r;
    };
    {
        server S(dir);
        load(S.port, M);
        jptr d(ok_result(http(S.port, "POST", C + "/points/delete?wait=true", R"({"points":[2,"5f0c1a2b-0000-4000-8000-000000000017"]})")));
        M.live[2] = M.live[23] = false;
        info0 = vectors_info(S.port);
        ans0 = answers(S.port);
        check_searches(S.port, M, 6, {14});
    }
    {
        server S(dir);
        REQUIRE(vectors_info(S.port) == info0);
        auto a1 = answers(S.port);
        REQUIRE(a1.size() == ans0.size());
        for (size_t i = 0; i < a1.size(); i++) {
            INFO("answer " << i);
            REQUIRE(a1[i].size() == ans0[i].size());
            for (size_t k = 0; k < a1[i].size(); k++) {
                REQUIRE(a1[i][k].first == ans0[i][k].first);
                REQUIRE(a1[i][k].second == Approx(ans0[i][k].second).margin(1e-6));
            }
        }
        check_searches(S.port, M, 6, {14, 50});
        check_scroll(S.port, M, "true", 7);

        // the collection's files: one vector file per vector
        auto files = [&] {
            std::set<std::string> f;
            DIR *d = opendir(dir.c_str());
            REQUIRE(d != nullptr);
            while (dirent *e = readdir(d))
                if (std::string(e->d_name).find(".vec") != std::string::npos)
                    f.insert(e->d_name);
            closedir(d);
            return f;
        };
        auto f0 = files();
        INFO("vector files before the drop: " << [&] {
            std::string s;
            for (auto &x : f0)
                s += x + " ";
            return s;
        }());
        REQUIRE(f0.count("nv.vec"));
        REQUIRE(f0.count("nv@1.vec") + f0.count("nv@2.vec") >= 1); // beta keeps its vectors in memory

        jptr dr(ok_result(http(S.port, "DELETE", C)));
        require_error(http(S.port, "GET", C), 404, "nv");
        auto f1 = files();
        for (auto &x : f1)
            REQUIRE(x.rfind("nv", 0) != 0);
        // re-created with the same name and other vectors
        jptr c(ok_result(http(S.port, "PUT", C,
                              R"({"vectors":{"beta":{"size":3,"distance":"Dot"},"zeta":{"size":2,"distance":"Euclid"}}})")));
        jptr g(ok_result(http(S.port, "GET", C)));
        REQUIRE(json_integer_value(json_object_get(g.j, "points_count")) == 0);
        json_t *vs = json_object_get(json_object_get(json_object_get(g.j, "config"), "params"), "vectors");
        REQUIRE(json_object_size(vs) == 2);
        REQUIRE(json_integer_value(json_object_get(json_object_get(vs, "beta"), "size")) == 3);
        jptr u(ok_result(http(S.port, "PUT", C + "/points?wait=true",
                              R"({"points":[{"id":1,"vector":{"beta":[1,0,0],"zeta":[0,0]}},)"
                              R"({"id":2,"vector":{"beta":[0,1,0],"zeta":[3,4]}}]})")));
        hits h = answer(http(S.port, "POST", C + "/points/query", R"({"query":[0,0],"using":"zeta","limit":2})"));
        REQUIRE(h.size() == 2);
        REQUIRE(h[0].first == "1");
        REQUIRE(h[1].first == "2");
        REQUIRE(h[1].second == Approx(5).margin(1e-5));
        require_error(http(S.port, "POST", C + "/points/query", R"({"query":[0,0,0,0],"using":"alpha"})"), 400,
                      "Not existing vector name error: alpha");
    }
    // and once more after a restart: the re-created collection, not the dropped one
    {
        server S(dir);
        jptr g(ok_result(http(S.port, "GET", C)));
        REQUIRE(json_integer_value(json_object_get(g.j, "points_count")) == 2);
        REQUIRE(json_integer_value(json_object_get(g.j, "vectors_count")) == 4);
        hits h = answer(http(S.port, "POST", C + "/points/query", R"({"query":[0,2,0],"using":"beta","limit":1})"));
        REQUIRE(h.size() == 1);
        REQUIRE(h[0].first == "2");
        REQUIRE(h[0].second == Approx(2).margin(1e-5));
    }
}

TEST_CASE("named vectors: one named vector alone, LlamaIndex's text-dense", "[api][named]")
{
    tmpdir t;
    server S(t.path + "/data");
    const std::string L = "/collections/llama";
    jptr c(ok_result(http(S.port, "PUT", L, R"({"vectors":{"text-dense":{"size":4,"distance":"Cosine"}}})")));
    {
        jptr g(ok_result(http(S.port, "GET", L)));
        json_t *vs = json_object_get(json_object_get(json_object_get(g.j, "config"), "params"), "vectors");
        REQUIRE(json_object_size(vs) == 1);
        REQUIRE(json_integer_value(json_object_get(json_object_get(vs, "text-dense"), "size")) == 4);
    }
    std::mt19937 rng(7);
    std::normal_distribution<float> gd(0, 1);
    const size_t n = 30;
    std::vector<std::vector<float>> x(n), xs(n);
    std::string b = R"({"points":[)";
    for (size_t i = 0; i < n; i++) {
        x[i].resize(4);
        for (auto &e : x[i])
            e = gd(rng);
        xs[i] = normalised(x[i].data(), 4);
        b += (i ? "," : "") + std::string(R"({"id":")") + key_of(i * 4 + 3) + R"(","vector":{"text-dense":)" +
             vec_json(x[i].data(), 4) + R"(},"payload":{"_node_content":"n)" + std::to_string(i) + R"(","doc_id":"d)" +
             std::to_string(i % 3) + "\"}}";
    }
    jptr u(ok_result(http(S.port, "PUT", L + "/points?wait=true", b + "]}")));
    std::vector<float> q = {0.3f, -1.0f, 0.5f, 2.0f};
    auto qn = normalised(q.data(), 4);
    std::map<std::string, double> e;
    for (size_t i = 0; i < n; i++)
        e[key_of(i * 4 + 3)] = dotp(qn.data(), xs[i].data(), 4);
    check_topk(answer(http(S.port, "POST", L + "/points/query",
                           R"({"query":)" + Q(q) + R"(,"using":"text-dense","limit":5,"with_payload":true})")),
               e, 5);
    check_topk(answer(http(S.port, "POST", L + "/points/search",
                           R"({"vector":{"name":"text-dense","vector":)" + Q(q) + R"(},"limit":5})")),
               e, 5);
    // LlamaIndex filters by doc_id and deletes by it
    std::map<std::string, double> e1;
    for (size_t i = 0; i < n; i++)
        if (i % 3 == 1)
            e1[key_of(i * 4 + 3)] = e.at(key_of(i * 4 + 3));
    check_topk(answer(http(S.port, "POST", L + "/points/query",
                           R"({"query":)" + Q(q) + R"(,"using":"text-dense","limit":4,)"
                           R"("filter":{"must":[{"key":"doc_id","match":{"value":"d1"}}]}})")),
               e1, 4);
    // with_vector true: {"text-dense": [...]}, normalised
    jptr p(ok_result(http(S.port, "POST", L + "/points", R"({"ids":[")" + key_of(3) + R"("],"with_vector":true})")));
    json_t *v = json_object_get(json_object_get(json_array_get(p.j, 0), "vector"), "text-dense");
    REQUIRE(json_array_size(v) == 4);
    for (size_t j = 0; j < 4; j++)
        REQUIRE(json_number_value(json_array_get(v, j)) == Approx(xs[0][j]).margin(1e-6));
    // the unnamed forms are refused: the collection's vector has a name
    require_error(http(S.port, "POST", L + "/points/query", R"({"query":)" + Q(q) + "}"), 400,
                  "Not existing vector name error");
    require_error(http(S.port, "PUT", L + "/points", R"({"points":[{"id":1,"vector":)" + Q(q) + "}]}"), 400,
                  "text-dense");
    jptr dd(ok_result(http(S.port, "POST", L + "/points/delete?wait=true",
                           R"({"filter":{"must":[{"key":"doc_id","match":{"value":"d1"}}]}})")));
    for (size_t i = 0; i < n; i++)
        if (i % 3 == 1)
            e.erase(key_of(i * 4 + 3));
    check_topk(answer(http(S.port, "POST", L + "/points/query",
                           R"({"query":)" + Q(q) + R"(,"using":"text-dense","limit":30})")),
               e, 30);
}

TEST_CASE("named vectors: vectors called indices, values, model or size are ordinary names", "[api][named]")
{
    // Qdrant reads {"size": {...}} in a create as a vector called "size", and a point's {"indices": [...], "values": [...]} as two named vectors when they are
    // its collection's names; a sparse vector is only ever a named vector's value
    tmpdir t;
    server S(t.path + "/data");
    for (const char *names : {R"(["indices","values"])", R"(["model","values"])", R"(["distance","size"])"}) {
        jptr nl(parse(names));
        const std::string n0 = json_string_value(json_array_get(nl.j, 0)), n1 = json_string_value(json_array_get(nl.j, 1));
        INFO("vectors " << n0 << ", " << n1);
        const std::string P = "/collections/odd_" + n0;
        jptr c(ok_result(http(S.port, "PUT", P,
                              R"({"vectors":{")" + n0 + R"(":{"size":2,"distance":"Dot"},")" + n1 +
                                  R"(":{"size":3,"distance":"Euclid"}}})")));
        jptr u(ok_result(http(S.port, "PUT", P + "/points?wait=true",
                              R"({"points":[{"id":1,"vector":{")" + n0 + R"(":[1,0],")" + n1 + R"(":[0,0,0]}},)"
                              R"({"id":2,"vector":{")" + n0 + R"(":[0,2],")" + n1 + R"(":[1,1,1]}}]})")));
        hits h = answer(http(S.port, "POST", P + "/points/query", R"({"query":[0,1],"using":")" + n0 + R"(","limit":2})"));
        REQUIRE(h.size() == 2);
        REQUIRE(h[0].first == "2");
        REQUIRE(h[0].second == Approx(2));
        h = answer(http(S.port, "POST", P + "/points/search",
                        R"({"vector":{"name":")" + n1 + R"(","vector":[1,1,1]},"limit":2})"));
        REQUIRE(h.size() == 2);
        REQUIRE(h[0].first == "2");
        REQUIRE(h[0].second == Approx(0).margin(1e-6));
        REQUIRE(h[1].second == Approx(std::sqrt(3.0)).margin(1e-5));
        jptr p(ok_result(http(S.port, "POST", P + "/points", R"({"ids":[2],"with_vector":true})")));
        json_t *vo = json_object_get(json_array_get(p.j, 0), "vector");
        REQUIRE(dump(vo) == "{\"" + n0 + "\":[0.0,2.0],\"" + n1 + "\":[1.0,1.0,1.0]}");
        // a sparse value under a name is still refused
        require_error(http(S.port, "PUT", P + "/points",
                           R"({"points":[{"id":3,"vector":{")" + n0 + R"(":{"indices":[0],"values":[1]},")" + n1 +
                               R"(":[1,1,1]}}]})"),
                      400, "sparse vectors are not supported");
    }
}

TEST_CASE("named vectors: each vector trains at its own size, searches after training and after a restart",
          "[api][named]")
{
    tmpdir t;
    model M;
    const std::string dir = t.path + "/data";
    // alpha and gamma: float codes (exact once trained); beta: SQ8 codes re-ranked from memory
    const std::string body =
        R"({"vectors":{"alpha":{"size":6,"distance":"Cosine","vqs":{"spec":"SQfp32","train_size":30}},)"
        R"("beta":{"size":4,"distance":"Euclid","on_disk":false,"vqs":{"train_size":50}},)"
        R"("gamma":{"size":5,"distance":"Dot","vqs":{"spec":"SQfp32","train_size":70}}}})";
    auto trained = [&](int port) {
        jptr g(ok_result(http(port, "GET", C)));
        std::string s;
        for (size_t v = 0; v < NV; v++)
            s += json_is_true(json_object_get(json_object_get(json_object_get(json_object_get(g.j, "vqs"), "vectors"),
                                                              VD[v].name),
                                              "trained"))
                     ? "1"
                     : "0";
        return s + ":" + std::to_string(json_integer_value(json_object_get(g.j, "indexed_vectors_count")));
    };
    // exact for the float codes; for beta every answered score is exact and in order
    auto check = [&](int port, size_t k, const std::vector<size_t> &qp) {
        for (size_t v = 0; v < NV; v++)
            for (size_t qi : qp) {
                INFO("vector " << VD[v].name << ", query point " << qi);
                auto q = M.raw[v][qi];
                auto e = M.all(v, q);
                hits h = answer(http(port, "POST", C + "/points/query",
                                     R"({"query":)" + Q(q) + R"(,"using":")" + VD[v].name + "\",\"limit\":" +
                                         std::to_string(k) + "}"));
                if (v != 1) {
                    check_topk(h, e, k, lower_of(v));
                    continue;
                }
                REQUIRE(h.size() == std::min(k, e.size()));
                for (size_t i = 0; i < h.size(); i++) {
                    REQUIRE(h[i].second == Approx(e.at(h[i].first)).margin(1e-4));
                    if (i)
                        REQUIRE(h[i].second >= h[i - 1].second - 1e-6);
                }
                REQUIRE(h[0].first == ranked(e, true)[0]); // its own point, at distance 0
            }
    };
    std::vector<hits> before;
    {
        server S(dir);
        jptr c(ok_result(http(S.port, "PUT", C, body)));
        auto up = [&](size_t a, size_t b) {
            std::string s = R"({"points":[)";
            for (size_t i = a; i < b; i++)
                s += (i > a ? "," : "") + M.point(i);
            jptr u(ok_result(http(S.port, "PUT", C + "/points?wait=true", s + "]}")));
            for (size_t i = a; i < b; i++)
                M.live[i] = true;
        };
        M.live.assign(N, false);
        up(0, 40);
        REQUIRE(trained(S.port) == "100:40");
        check(S.port, 5, {1, 38});
        up(40, 60);
        REQUIRE(trained(S.port) == "110:120");
        up(60, N);
        REQUIRE(trained(S.port) == "111:240");
        check(S.port, 6, {0, 7, 55, 79});
        // vector updates and deletes after training
        std::string b = R"({"points":[)";
        for (size_t i : {3, 60}) {
            for (size_t v = 0; v < NV; v++)
                M.set(v, i, M.fresh(v));
            b += (i == 3 ? "" : ",") + std::string("{\"id\":") + id_json(i) + ",\"vector\":" + M.vectors(i) + "}";
        }
        jptr r(ok_result(http(S.port, "PUT", C + "/points/vectors?wait=true", b + "]}")));
        jptr d(ok_result(http(S.port, "POST", C + "/points/delete?wait=true",
                              R"({"filter":{"must":[{"key":"grp","match":{"value":1}}]}})")));
        for (size_t i = 0; i < N; i++)
            if (i % NGRP == 1)
                M.live[i] = false;
        check(S.port, 6, {3, 60, 22});
        check_scroll(S.port, M, "true", 7);
        for (size_t v = 0; v < NV; v++)
            before.push_back(answer(http(S.port, "POST", C + "/points/search",
                                         R"({"vector":)" + named_q(v, M.raw[v][33]) + R"(,"limit":8})")));
    }
    server S(dir);
    REQUIRE(trained(S.port) == "111:192");
    for (size_t v = 0; v < NV; v++) {
        hits h = answer(http(S.port, "POST", C + "/points/search", R"({"vector":)" + named_q(v, M.raw[v][33]) + R"(,"limit":8})"));
        REQUIRE(h.size() == before[v].size());
        for (size_t i = 0; i < h.size(); i++) {
            REQUIRE(h[i].first == before[v][i].first);
            REQUIRE(h[i].second == Approx(before[v][i].second).margin(1e-6));
        }
    }
    check(S.port, 6, {3, 60, 22, 77});
    check_scroll(S.port, M, "true", 7);
}

TEST_CASE("named vectors: the collection's quantization_config and vqs apply to every vector, a vector's own override them",
          "[api][named]")
{
    tmpdir t;
    server S(t.path + "/data");
    jptr c(ok_result(http(S.port, "PUT", "/collections/qq",
                          R"({"vectors":{"a":{"size":8,"distance":"Dot"},)"
                          R"("b":{"size":8,"distance":"Dot","quantization_config":{"scalar":{"type":"int8"}},"vqs":{"train_size":5}}},)"
                          R"("quantization_config":{"product":{"compression":"x4"}},"vqs":{"train_size":77,"nprobe":3}})")));
    jptr g(ok_result(http(S.port, "GET", "/collections/qq")));
    INFO(dump(g.j));
    json_t *vq = json_object_get(json_object_get(g.j, "vqs"), "vectors");
    json_t *a = json_object_get(vq, "a"), *b = json_object_get(vq, "b");
    REQUIRE(std::string(json_string_value(json_object_get(a, "spec"))) == "PQ8x8");
    REQUIRE(json_integer_value(json_object_get(a, "train_size")) == 77);
    REQUIRE(json_integer_value(json_object_get(a, "nprobe")) == 3);
    REQUIRE(std::string(json_string_value(json_object_get(b, "spec"))) == "SQ8");
    REQUIRE(json_integer_value(json_object_get(b, "train_size")) == 5);
    REQUIRE(json_integer_value(json_object_get(b, "nprobe")) == 3);
    json_t *vs = json_object_get(json_object_get(json_object_get(g.j, "config"), "params"), "vectors");
    REQUIRE(json_object_get(json_object_get(json_object_get(vs, "a"), "quantization_config"), "product") != nullptr);
    REQUIRE(json_object_get(json_object_get(json_object_get(vs, "b"), "quantization_config"), "scalar") != nullptr);
    REQUIRE(json_is_null(json_object_get(json_object_get(g.j, "config"), "quantization_config")));
    // PATCH "vqs" reaches every vector
    jptr p(ok_result(http(S.port, "PATCH", "/collections/qq", R"({"vqs":{"nprobe":9,"oversampling":2}})")));
    jptr g2(ok_result(http(S.port, "GET", "/collections/qq")));
    for (const char *n : {"a", "b"}) {
        json_t *x = json_object_get(json_object_get(json_object_get(g2.j, "vqs"), "vectors"), n);
        REQUIRE(json_integer_value(json_object_get(x, "nprobe")) == 9);
        REQUIRE(json_number_value(json_object_get(x, "oversampling")) == Approx(2));
    }
}
