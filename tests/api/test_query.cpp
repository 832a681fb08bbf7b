// Tests of the search variants (api/h_query.c) over real HTTP: query (vector, point id,
// nearest, mmr, recommend, prefetch with rrf/dbsf and nested prefetch), query/batch,
// query/groups, search/groups, recommend (and batch, groups), score_threshold; and that
// every unknown or unsupported field is refused. Each answer is checked against ground
// truth computed here by brute force over the known vectors, with Qdrant's formulas
// written out in the test. The collections stay below their training size, so vqs
// searches them exactly.
#include "vqs_test.hpp"

#include "vqs_http.h"

#include <algorithm>
#include <cmath>
#include <jansson.h>
#include <map>
#include <random>
#include <set>

using namespace vqs_test;

#include "http_client.hpp"

using namespace vqs_http_test;

namespace
{

const size_t N = 60, D = 8, NGRP = 5;

struct data {
    std::vector<float> x; // N * D
    data()
    {
        std::mt19937 rng(1234);
        std::normal_distribution<float> g(0, 1);
        x.resize(N * D);
        for (auto &v : x)
            v = g(rng);
    }
    const float *v(size_t i) const { return &x[i * D]; }
};

// a collection "c" of N points with payloads {"grp": i % NGRP, "tag": "a"|"b", "n": i}
void load(int port, const data &X, const char *distance)
{
    jptr c(ok_result(http(port, "PUT", "/collections/c",
                          std::string(R"({"vectors":{"size":8,"distance":")") + distance + "\"}}")));
    std::string b = R"({"points":[)";
    for (size_t i = 0; i < N; i++)
        b += (i ? "," : "") + std::string(R"({"id":)") + std::to_string(i) + R"(,"vector":)" + vec_json(X.v(i), D) +
             R"(,"payload":{"grp":)" + std::to_string(i % NGRP) + R"(,"tag":")" + (i % 3 ? "a" : "b") +
             R"(","n":)" + std::to_string(i) + "}}";
    jptr u(ok_result(http(port, "PUT", "/collections/c/points", b + "]}")));
}

double dotp(const float *a, const float *b)
{
    double s = 0;
    for (size_t i = 0; i < D; i++)
        s += (double)a[i] * b[i];
    return s;
}
double sqd(const float *a, const float *b)
{
    double s = 0;
    for (size_t i = 0; i < D; i++)
        s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return s;
}

struct hit {
    uint64_t id;
    double score;
};
using hits = std::vector<hit>;

hits hits_of(const json_t *a)
{
    hits h;
    REQUIRE(json_is_array(a));
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *p = json_array_get(a, i);
        h.push_back({(uint64_t)json_integer_value(json_object_get(p, "id")), json_number_value(json_object_get(p, "score"))});
    }
    return h;
}

// the points of the answer (a list, or {"points": list})
hits answer(const http_resp &r)
{
    jptr j(ok_result(r));
    return hits_of(json_is_object(j.j) ? json_object_get(j.j, "points") : j.j);
}

// every point's expected score (larger is better unless lower); the k best, ties broken any way
void check_topk(const hits &got, const std::map<uint64_t, double> &expect, size_t k, bool lower = false,
                double tol = 1e-4)
{
    INFO("k " << k << ", candidates " << expect.size());
    REQUIRE(got.size() == std::min(k, expect.size()));
    std::set<uint64_t> seen;
    for (size_t i = 0; i < got.size(); i++) {
        INFO("rank " << i << " id " << got[i].id);
        REQUIRE(expect.count(got[i].id));
        REQUIRE(seen.insert(got[i].id).second);
        REQUIRE(got[i].score == Approx(expect.at(got[i].id)).margin(tol));
        if (i)
            REQUIRE((lower ? got[i].score >= got[i - 1].score - tol : got[i].score <= got[i - 1].score + tol));
    }
    if (got.empty())
        return;
    double last = got.back().score;
    for (auto &e : expect) // nothing better than the last answered was left out
        if (lower ? e.second < last - tol : e.second > last + tol)
            REQUIRE(seen.count(e.first));
}

std::map<uint64_t, double> by_dot(const data &X, const float *q, const std::set<uint64_t> &skip = {})
{
    std::map<uint64_t, double> m;
    for (size_t i = 0; i < N; i++)
        if (!skip.count(i))
            m[i] = dotp(q, X.v(i));
    return m;
}

// the ids of m ranked (best first)
std::vector<uint64_t> ranked(const std::map<uint64_t, double> &m, bool lower = false)
{
    std::vector<uint64_t> ids;
    for (auto &e : m)
        ids.push_back(e.first);
    std::sort(ids.begin(), ids.end(), [&](uint64_t a, uint64_t b) {
        return lower ? m.at(a) < m.at(b) : m.at(a) > m.at(b);
    });
    return ids;
}

std::string V(const data &X, size_t i) { return vec_json(X.v(i), D); }

float sigm(float x) { return 0.5f * (x / (1.0f + std::fabs(x)) + 1.0f); }

} // namespace

TEST_CASE("query: nearest, by point id, score_threshold, offset, batch", "[api][query]")
{
    tmpdir t;
    server S(t.path + "/data");
    data X;
    load(S.port, X, "Dot");
    const std::string qv = V(X, 3);
    auto all = by_dot(X, X.v(3));
    // a vector, {"nearest": v} and the plain search agree with brute force
    check_topk(answer(http(S.port, "POST", "/collections/c/points/query", R"({"query":)" + qv + R"(,"limit":7})")), all,
               7);
    {
        // with_payload before any filter loaded the payload cache: read with the hits
        http_resp r = http(S.port, "POST", "/collections/c/points/query",
                           R"({"query":{"nearest":)" + qv + R"(},"limit":7,"using":"","with_payload":["n"]})");
        check_topk(answer(r), all, 7);
        jptr j(ok_result(r));
        json_t *pts = json_object_get(j.j, "points");
        for (size_t i = 0; i < json_array_size(pts); i++) {
            json_t *p = json_array_get(pts, i);
            REQUIRE(json_integer_value(json_object_get(json_object_get(p, "payload"), "n")) ==
                    json_integer_value(json_object_get(p, "id")));
            REQUIRE(json_object_size(json_object_get(p, "payload")) == 1);
        }
    }
    check_topk(answer(http(S.port, "POST", "/collections/c/points/search",
                           R"({"vector":{"name":"","vector":)" + qv + R"(},"limit":7})")),
               all, 7);
    // by point id: its stored vector, the point itself excluded (as Qdrant)
    check_topk(answer(http(S.port, "POST", "/collections/c/points/query", R"({"query":3,"limit":7})")),
               by_dot(X, X.v(3), {3}), 7);
    // offset: ranks 4..8
    auto rk = ranked(all);
    hits off = answer(http(S.port, "POST", "/collections/c/points/query", R"({"query":)" + qv + R"(,"limit":5,"offset":4})"));
    REQUIRE(off.size() == 5);
    for (size_t i = 0; i < 5; i++)
        REQUIRE(off[i].id == rk[i + 4]);
    // score_threshold: exactly the points scoring at least it
    double thr = all.at(rk[9]);
    hits th = answer(http(S.port, "POST", "/collections/c/points/query",
                          R"({"query":)" + qv + R"(,"limit":50,"score_threshold":)" + std::to_string(thr - 1e-3) + "}"));
    REQUIRE(th.size() == 10);
    // a filter
    std::map<uint64_t, double> fa;
    for (auto &e : all)
        if (e.first % NGRP == 2)
            fa[e.first] = e.second;
    check_topk(answer(http(S.port, "POST", "/collections/c/points/query",
                           R"({"query":)" + qv + R"(,"limit":4,"filter":{"must":[{"key":"grp","match":{"value":2}}]}})")),
               fa, 4);
    // query/batch
    jptr b(ok_result(http(S.port, "POST", "/collections/c/points/query/batch",
                          R"({"searches":[{"query":)" + qv + R"(,"limit":3},{"query":)" + V(X, 9) + R"(,"limit":2}]})")));
    REQUIRE(json_array_size(b.j) == 2);
    check_topk(hits_of(json_object_get(json_array_get(b.j, 0), "points")), all, 3);
    check_topk(hits_of(json_object_get(json_array_get(b.j, 1), "points")), by_dot(X, X.v(9)), 2);
}

TEST_CASE("query: prefetch re-scored by nearest, nested prefetch, rrf, dbsf", "[api][query]")
{
    tmpdir t;
    server S(t.path + "/data");
    data X;
    load(S.port, X, "Dot");
    auto a = by_dot(X, X.v(1)), b = by_dot(X, X.v(2));
    auto la = ranked(a), lb = ranked(b);
    // nearest over a prefetch: the 20 best for v1, ranked by v2
    {
        std::map<uint64_t, double> e;
        for (size_t i = 0; i < 20; i++)
            e[la[i]] = b.at(la[i]);
        check_topk(answer(http(S.port, "POST", "/collections/c/points/query",
                               R"({"prefetch":{"query":)" + V(X, 1) + R"(,"limit":20},"query":)" + V(X, 2) +
                                   R"(,"limit":5})")),
                   e, 5);
        // nested: the best 20 for v1, of them the best 8 for v4, ranked by v2
        auto c4 = by_dot(X, X.v(4));
        std::vector<uint64_t> mid(la.begin(), la.begin() + 20);
        std::sort(mid.begin(), mid.end(), [&](uint64_t x, uint64_t y) { return c4.at(x) > c4.at(y); });
        std::map<uint64_t, double> e2;
        for (size_t i = 0; i < 8; i++)
            e2[mid[i]] = b.at(mid[i]);
        check_topk(answer(http(S.port, "POST", "/collections/c/points/query",
                               R"({"prefetch":{"prefetch":{"query":)" + V(X, 1) + R"(,"limit":20},"query":)" +
                                   V(X, 4) + R"(,"limit":8},"query":)" + V(X, 2) + R"(,"limit":5})")),
                   e2, 5);
        // a prefetch filter applies to it; the root filter to every prefetch
        std::map<uint64_t, double> e3;
        size_t got = 0;
        for (size_t i = 0; i < N && got < 20; i++)
            if (la[i] % 3 && la[i] % NGRP != 0) { // tag "a" (prefetch filter), grp != 0 (root filter)
                e3[la[i]] = b.at(la[i]);
                got++;
            }
        check_topk(answer(http(S.port, "POST", "/collections/c/points/query",
                               R"({"prefetch":{"query":)" + V(X, 1) +
                                   R"(,"limit":20,"filter":{"must":[{"key":"tag","match":{"value":"a"}}]}},"query":)" +
                                   V(X, 2) + R"(,"limit":5,"filter":{"must_not":[{"key":"grp","match":{"value":0}}]}})")),
                   e3, 5);
    }
    // RRF (Qdrant: 1 / ((pos + 1) / weight + k - 1), k = 2)
    auto rrf = [&](size_t k, double wa, double wb) {
        std::map<uint64_t, double> e;
        for (size_t i = 0; i < 10; i++) {
            e[la[i]] += 1.0 / ((double)(i + 1) / wa + (double)k - 1);
            e[lb[i]] += 1.0 / ((double)(i + 1) / wb + (double)k - 1);
        }
        return e;
    };
    const std::string pf = R"({"prefetch":[{"query":)" + V(X, 1) + R"(,"limit":10},{"query":)" + V(X, 2) + R"(,"limit":10}],)";
    check_topk(answer(http(S.port, "POST", "/collections/c/points/query", pf + R"("query":{"fusion":"rrf"},"limit":6})")),
               rrf(2, 1, 1), 6);
    check_topk(answer(http(S.port, "POST", "/collections/c/points/query",
                           pf + R"("query":{"rrf":{"k":5,"weights":[2,1]}},"limit":6})")),
               rrf(5, 2, 1), 6);
    // DBSF: each list to mean ± 3 sample standard deviations, summed
    {
        std::map<uint64_t, double> e;
        for (auto *l : {&la, &lb}) {
            const auto &m = l == &la ? a : b;
            double mean = 0, var = 0;
            for (size_t i = 0; i < 10; i++)
                mean += m.at((*l)[i]) / 10;
            for (size_t i = 0; i < 10; i++)
                var += (m.at((*l)[i]) - mean) * (m.at((*l)[i]) - mean) / 9;
            double lo = mean - 3 * std::sqrt(var), hi = mean + 3 * std::sqrt(var);
            for (size_t i = 0; i < 10; i++)
                e[(*l)[i]] += (m.at((*l)[i]) - lo) / (hi - lo);
        }
        check_topk(answer(http(S.port, "POST", "/collections/c/points/query", pf + R"("query":{"fusion":"dbsf"},"limit":6})")),
                   e, 6);
        // score_threshold on the fused score
        auto rk = ranked(e);
        double thr = e.at(rk[2]) - 1e-3;
        hits h = answer(http(S.port, "POST", "/collections/c/points/query",
                             pf + R"("query":{"fusion":"dbsf"},"limit":6,"score_threshold":)" + std::to_string(thr) + "}"));
        REQUIRE(h.size() == 3);
    }
    // no query with one prefetch: its own ranking
    check_topk(answer(http(S.port, "POST", "/collections/c/points/query",
                           R"({"prefetch":{"query":)" + V(X, 1) + R"(,"limit":10},"limit":4})")),
               a, 4);
}

TEST_CASE("query: mmr follows Qdrant's maximal marginal relevance", "[api][query]")
{
    tmpdir t;
    server S(t.path + "/data");
    data X;
    load(S.port, X, "Cosine");
    // cosine: every vector normalised, as the collection stores them
    std::vector<float> nx(X.x);
    for (size_t i = 0; i < N; i++) {
        double n = std::sqrt(dotp(X.v(i), X.v(i)));
        for (size_t j = 0; j < D; j++)
            nx[i * D + j] = (float)(X.v(i)[j] / n);
    }
    auto cosq = [&](size_t i, size_t j) { return dotp(&nx[i * D], &nx[j * D]); };
    const size_t q = 5, cand = 15, limit = 5;
    const double diversity = 0.6, lambda = 1 - diversity;
    std::vector<uint64_t> ids;
    for (size_t i = 0; i < N; i++)
        ids.push_back(i);
    std::sort(ids.begin(), ids.end(), [&](uint64_t x, uint64_t y) { return cosq(q, x) > cosq(q, y); });
    ids.resize(cand);
    std::vector<uint64_t> picked = {ids[0]};
    std::vector<bool> used(cand, false);
    used[0] = true;
    while (picked.size() < limit) {
        size_t best = cand;
        double bs = 0;
        for (size_t i = 0; i < cand; i++) {
            if (used[i])
                continue;
            double ms = -1e30;
            for (auto p : picked)
                ms = std::max(ms, cosq(ids[i], p));
            double s = lambda * cosq(q, ids[i]) - (1 - lambda) * ms;
            if (best == cand || s > bs)
                best = i, bs = s;
        }
        used[best] = true;
        picked.push_back(ids[best]);
    }
    hits h = answer(http(S.port, "POST", "/collections/c/points/query",
                         R"({"query":{"nearest":)" + V(X, q) + R"(,"mmr":{"diversity":0.6,"candidates_limit":15}},"limit":5})"));
    REQUIRE(h.size() == limit);
    for (size_t i = 0; i < limit; i++) {
        INFO("rank " << i);
        REQUIRE(h[i].id == picked[i]);
        REQUIRE(h[i].score == Approx(cosq(q, picked[i])).margin(1e-4)); // the relevance score, as Qdrant
    }
    // diversity 0: the plain nearest order
    hits h0 = answer(http(S.port, "POST", "/collections/c/points/query",
                          R"({"query":{"nearest":)" + V(X, q) + R"(,"mmr":{"diversity":0}},"limit":5})"));
    for (size_t i = 0; i < limit; i++)
        REQUIRE(h0[i].id == ids[i]);
}

TEST_CASE("query and recommend: average_vector, best_score, sum_scores, examples excluded", "[api][query]")
{
    tmpdir t;
    server S(t.path + "/data");
    data X;
    load(S.port, X, "Dot");
    const std::set<uint64_t> ex = {7, 11, 20};
    // average_vector: avg(pos) + avg(pos) - avg(neg)
    std::vector<float> av(D);
    for (size_t j = 0; j < D; j++) {
        double p = (X.v(7)[j] + (double)X.v(11)[j]) / 2;
        av[j] = (float)(p + p - X.v(20)[j]);
    }
    auto eavg = by_dot(X, av.data(), ex);
    const std::string pn = R"("positive":[7,11],"negative":[20])";
    check_topk(answer(http(S.port, "POST", "/collections/c/points/query",
                           R"({"query":{"recommend":{)" + pn + R"(}},"limit":6})")),
               eavg, 6);
    check_topk(answer(http(S.port, "POST", "/collections/c/points/recommend", "{" + pn + R"(,"limit":6})")), eavg, 6);
    // examples as vectors: nothing excluded
    check_topk(answer(http(S.port, "POST", "/collections/c/points/recommend",
                           R"({"positive":[)" + V(X, 7) + "," + V(X, 11) + R"(],"negative":[)" + V(X, 20) +
                               R"(],"limit":6})")),
               by_dot(X, av.data()), 6);
    // best_score: sigmoid(max pos) if max pos > max neg, else -sigmoid(max neg)
    std::map<uint64_t, double> ebest, esum;
    for (size_t i = 0; i < N; i++) {
        if (ex.count(i))
            continue;
        float p1 = (float)dotp(X.v(i), X.v(7)), p2 = (float)dotp(X.v(i), X.v(11)), n1 = (float)dotp(X.v(i), X.v(20));
        float mp = std::max(p1, p2);
        ebest[i] = mp > n1 ? sigm(mp) : -sigm(n1);
        esum[i] = (double)p1 + p2 - n1;
    }
    check_topk(answer(http(S.port, "POST", "/collections/c/points/query",
                           R"({"query":{"recommend":{)" + pn + R"(,"strategy":"best_score"}},"limit":6})")),
               ebest, 6);
    check_topk(answer(http(S.port, "POST", "/collections/c/points/recommend",
                           "{" + pn + R"(,"strategy":"sum_scores","limit":6})")),
               esum, 6);
    // recommend/batch
    jptr b(ok_result(http(S.port, "POST", "/collections/c/points/recommend/batch",
                          R"({"searches":[{)" + pn + R"(,"limit":2},{"positive":[3],"limit":3}]})")));
    REQUIRE(json_array_size(b.j) == 2);
    check_topk(hits_of(json_array_get(b.j, 0)), eavg, 2);
    check_topk(hits_of(json_array_get(b.j, 1)), by_dot(X, X.v(3), {3}), 3);
    // recommend re-scoring a prefetch: the examples are excluded from the prefetch too (Qdrant merges the
    // root's must_not has_id into its prefetches), so it holds 25 other points
    auto l1 = ranked(by_dot(X, X.v(1), ex));
    std::map<uint64_t, double> ep;
    for (size_t i = 0; i < 25; i++)
        ep[l1[i]] = ebest.at(l1[i]);
    check_topk(answer(http(S.port, "POST", "/collections/c/points/query",
                           R"({"prefetch":{"query":)" + V(X, 1) + R"(,"limit":25},"query":{"recommend":{)" + pn +
                               R"(,"strategy":"best_score"}},"limit":4})")),
               ep, 4);
}

namespace
{
// groups as Qdrant forms them: walk the ranking, a group per grp value, at most limit groups of group_size
std::vector<std::pair<int, std::vector<uint64_t>>> expect_groups(const std::vector<uint64_t> &rank, size_t limit,
                                                                 size_t gsize)
{
    std::vector<std::pair<int, std::vector<uint64_t>>> g;
    for (auto id : rank) {
        int v = (int)(id % NGRP);
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

void check_groups(const http_resp &r, const std::vector<std::pair<int, std::vector<uint64_t>>> &e)
{
    jptr j(ok_result(r));
    json_t *g = json_object_get(j.j, "groups");
    REQUIRE(json_array_size(g) == e.size());
    for (size_t i = 0; i < e.size(); i++) {
        json_t *gi = json_array_get(g, i);
        REQUIRE(json_integer_value(json_object_get(gi, "id")) == e[i].first);
        hits h = hits_of(json_object_get(gi, "hits"));
        REQUIRE(h.size() == e[i].second.size());
        for (size_t k = 0; k < h.size(); k++)
            REQUIRE(h[k].id == e[i].second[k]);
    }
}
} // namespace

TEST_CASE("query: search/groups, query/groups, recommend/groups", "[api][query]")
{
    tmpdir t;
    server S(t.path + "/data");
    data X;
    load(S.port, X, "Dot");
    auto e = expect_groups(ranked(by_dot(X, X.v(8))), 3, 2);
    check_groups(http(S.port, "POST", "/collections/c/points/search/groups",
                      R"({"vector":)" + V(X, 8) + R"(,"group_by":"grp","limit":3,"group_size":2})"),
                 e);
    check_groups(http(S.port, "POST", "/collections/c/points/query/groups",
                      R"({"query":)" + V(X, 8) + R"(,"group_by":"grp","limit":3,"group_size":2,"with_payload":true})"),
                 e);
    check_groups(http(S.port, "POST", "/collections/c/points/recommend/groups",
                      R"({"positive":[8],"group_by":"grp","limit":4,"group_size":3})"),
                 expect_groups(ranked(by_dot(X, X.v(8), {8})), 4, 3));
    require_error(http(S.port, "POST", "/collections/c/points/search/groups",
                       R"({"vector":)" + V(X, 8) + R"(,"group_by":"grp","limit":3,"group_size":2,"with_lookup":"x"})"),
                  400, "with_lookup");
    require_error(http(S.port, "POST", "/collections/c/points/search/groups",
                       R"({"vector":)" + V(X, 8) + R"(,"limit":3,"group_size":2})"),
                  400, "group_by");
}

TEST_CASE("query: Euclid scores are distances, score_threshold keeps the nearer", "[api][query]")
{
    tmpdir t;
    server S(t.path + "/data");
    data X;
    load(S.port, X, "Euclid");
    std::map<uint64_t, double> dist;
    for (size_t i = 0; i < N; i++)
        dist[i] = std::sqrt(sqd(X.v(i), X.v(6)));
    check_topk(answer(http(S.port, "POST", "/collections/c/points/query", R"({"query":)" + V(X, 6) + R"(,"limit":5})")),
               dist, 5, true);
    auto rk = ranked(dist, true);
    double thr = dist.at(rk[6]) + 1e-4;
    REQUIRE(answer(http(S.port, "POST", "/collections/c/points/query",
                        R"({"query":)" + V(X, 6) + R"(,"limit":30,"score_threshold":)" + std::to_string(thr) + "}"))
                .size() == 7);
    // a prefetch re-scored: distances, ascending, threshold on them
    std::map<uint64_t, double> d2;
    auto r1 = ranked([&] {
        std::map<uint64_t, double> m;
        for (size_t i = 0; i < N; i++)
            m[i] = std::sqrt(sqd(X.v(i), X.v(1)));
        return m;
    }(), true);
    for (size_t i = 0; i < 20; i++)
        d2[r1[i]] = dist.at(r1[i]);
    check_topk(answer(http(S.port, "POST", "/collections/c/points/query",
                           R"({"prefetch":{"query":)" + V(X, 1) + R"(,"limit":20},"query":)" + V(X, 6) + R"(,"limit":5})")),
               d2, 5, true);
    // best_score on Euclid: similarity is minus the squared distance (Qdrant's raw score)
    std::map<uint64_t, double> eb;
    for (size_t i = 0; i < N; i++)
        if (i != 6 && i != 30) {
            float p = (float)-sqd(X.v(i), X.v(6)), n = (float)-sqd(X.v(i), X.v(30));
            eb[i] = p > n ? sigm(p) : -sigm(n);
        }
    check_topk(answer(http(S.port, "POST", "/collections/c/points/recommend",
                           R"({"positive":[6],"negative":[30],"strategy":"best_score","limit":5})")),
               eb, 5, false, 1e-5);
}

TEST_CASE("query: unknown and unsupported fields are refused, limits hold", "[api][query]")
{
    tmpdir t;
    vqs_server_opts o = {};
    o.max_candidates = 200;
    server S(t.path + "/data", o);
    data X;
    load(S.port, X, "Dot");
    const std::string v = V(X, 0);
    struct {
        const char *path;
        std::string body;
        const char *needle;
    } bad[] = {
        {"search", R"({"vector":)" + v + R"(,"limit":3,"colour":1})", "unknown field \"colour\""},
        {"search", R"({"vector":)" + v + R"(,"prefetch":{}})", "\"prefetch\" is not supported by vqs"},
        {"search", R"({"vector":)" + v + R"(,"params":{"hnsw_ef":64}})", "\"hnsw_ef\": collection index"},
        {"search", R"({"vector":)" + v + R"(,"params":{"exact":true}})", "\"exact\": true is not supported by vqs"},
        {"search", R"({"vector":)" + v + R"(,"params":{"quantization":{"rescore":true,"x":1}}})", "unknown field \"x\""},
        {"search", R"({"vector":{"name":"text","vector":)" + v + "}}", "Not existing vector name error: text"},
        {"search", R"({"vector":{"name":"s","vector":{"indices":[1],"values":[0.5]}}})", "sparse vectors are not supported"},
        {"search/batch", R"({"searches":[],"extra":1})", "unknown field \"extra\""},
        {"search/batch", R"({"searches":[{"vector":)" + v + R"(,"bogus":true}]})", "searches[0]"},
        {"query", R"({"query":)" + v + R"(,"bogus":1})", "unknown field \"bogus\""},
        {"query", R"({"query":)" + v + R"(,"using":"text"})", "Not existing vector name error: text"},
        {"query", R"({"query":)" + v + R"(,"lookup_from":{"collection":"x"}})", "\"lookup_from\" is not supported by vqs"},
        {"query", R"({"query":)" + v + R"(,"shard_key":"a"})", "\"shard_key\" is not supported by vqs"},
        {"query", R"({"query":{"indices":[1],"values":[1.0]}})", "sparse vectors are not supported"},
        {"query", R"({"query":{"discover":{"target":1,"context":[]}}})", "discover query is not supported by vqs"},
        {"query", R"({"query":{"context":[]}})", "context query is not supported by vqs"},
        {"query", R"({"query":{"order_by":"n"}})", "order_by query is not supported by vqs"},
        {"query", R"({"query":{"formula":{}}})", "formula query is not supported by vqs"},
        {"query", R"({"query":{"sample":"random"}})", "sample query is not supported by vqs"},
        {"query", R"({"query":{"teleport":1}})", "unknown query kind \"teleport\""},
        {"query", R"({"query":{"text":"hello","model":"m"}})", "inference"},
        {"query", R"({"query":{"nearest":{"text":"hello","model":"m"}}})", "inference"},
        {"query", R"({"query":{"nearest":)" + v + R"(,"mmr":{"diversity":2}}})", "diversity"},
        {"query", R"({"query":{"nearest":)" + v + R"(,"mmr":{"lambda":0.5}}})", "unknown field \"lambda\""},
        {"query", R"({"query":{"fusion":"rrf"}})", "fusion needs \"prefetch\""},
        {"query", R"({"query":{"fusion":"max"},"prefetch":[]})", "rrf"},
        {"query", R"({"prefetch":{"query":)" + v + R"(,"offset":3},"query":{"fusion":"rrf"}})", "prefetch[0]: a prefetch: unknown field \"offset\""},
        {"query", R"({"prefetch":[{"query":)" + v + R"(},{"query":)" + v + R"(}],"query":{"rrf":{"weights":[1]}}})", "weights"},
        {"query", R"({"query":{"recommend":{"positive":[1],"strategy":"best"}}})", "strategy"},
        {"query", R"({"query":{"recommend":{"positive":[1],"extra":[]}}})", "unknown field \"extra\""},
        {"query", R"({"query":{"recommend":{"negative":[1]}}})", "positive"},
        {"query/batch", R"({"searches":[{"query":)" + v + R"(},{"query":)" + v + R"(,"with_lookup":1}]})", "searches[1]"},
        {"query/groups", R"({"query":)" + v + R"(,"group_by":"grp","offset":1})", "unknown field \"offset\""},
        {"recommend", R"({"positive":[1],"limit":3,"hello":1})", "unknown field \"hello\""},
        {"recommend", R"({"positive":[1],"limit":3,"lookup_from":{"collection":"x"}})", "not supported by vqs"},
        {"recommend", R"({"positive":[1]})", "\"limit\" is missing"},
        // limits: limit above --max-limit, candidates above --max-candidates, nesting
        {"query", R"({"query":)" + v + R"(,"limit":100000})", "limit"},
        {"query", R"({"prefetch":[{"query":)" + v + R"(,"limit":150},{"query":)" + v +
                      R"(,"limit":150}],"query":{"fusion":"rrf"}})", "--max-candidates"},
    };
    for (auto &b : bad) {
        INFO(b.path << " " << b.body);
        require_error(http(S.port, "POST", std::string("/collections/c/points/") + b.path, b.body), 400, b.needle);
    }
    require_error(http(S.port, "POST", "/collections/c/points/recommend", R"({"positive":[99999],"limit":3})"), 404,
                  "99999");
    std::string deep = R"({"query":)" + v + "}";
    for (int i = 0; i < 12; i++)
        deep = R"({"prefetch":)" + deep + R"(,"query":)" + v + "}";
    require_error(http(S.port, "POST", "/collections/c/points/query", deep), 400, "nested more than");
    // nulls are absent fields, and nothing was changed by the refusals
    check_topk(answer(http(S.port, "POST", "/collections/c/points/query",
                           R"({"query":)" + v + R"(,"limit":3,"filter":null,"shard_key":null,"params":{"hnsw_ef":null,"exact":false}})")),
               by_dot(X, X.v(0)), 3);
    jptr cnt(ok_result(http(S.port, "POST", "/collections/c/points/count", "{}")));
    REQUIRE(json_integer_value(json_object_get(cnt.j, "count")) == (json_int_t)N);
}
