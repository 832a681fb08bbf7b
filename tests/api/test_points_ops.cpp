// Tests of the points API beyond upsert/retrieve/delete, over real HTTP: payload updates
// (set, set at a nested key, overwrite, delete keys, clear; by ids and by filter), vector
// updates, points/batch (in order, and atomic: a batch whose last operation fails changes
// nothing), scroll (every point exactly once over the pages, with and without a filter, in
// Qdrant's id order; order_by), bad input (a 4xx, nothing changed), and a restart showing
// the same state. Every answer is checked against a model the test keeps itself.
#include "vqs_test.hpp"

#include "vqs_http.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cstring>
#include <jansson.h>
#include <map>
#include <netinet/in.h>
#include <atomic>
#include <set>
#include <thread>
#include <sys/socket.h>
#include <unistd.h>

using namespace vqs_test;

#include "http_client.hpp"

using namespace vqs_http_test;

namespace
{

const size_t D = 4;

// the expected state: point id -> vector and payload (canonical JSON text, sorted keys)
struct model {
    std::map<std::string, std::vector<float>> vec;
    std::map<std::string, std::string> pay;
};

std::string canon(const json_t *j)
{
    if (!j || (json_is_object(j) && json_object_size(j) == 0))
        return "{}";
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    std::string r(s);
    free(s);
    return r;
}

// any JSON value as text (http_client's dump takes objects and arrays only)
std::string dump_any(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    REQUIRE(s != nullptr);
    std::string r(s);
    free(s);
    return r;
}

std::string id_key(const json_t *id)
{
    INFO("point id " << (id ? dump_any(id) : "(none)"));
    REQUIRE((json_is_integer(id) || json_is_string(id)));
    if (json_is_integer(id))
        return std::to_string((unsigned long long)json_integer_value(id));
    return json_string_value(id);
}


std::vector<float> vec_of(uint64_t i) { return {float(i), float(i % 7) - 3.f, 0.5f * float(i % 5), 1.f}; }

const std::string C = "/collections/p";

void create(int port, const std::string &extra = "")
{
    jptr r(ok_result(http(port, "PUT", C, R"({"vectors":{"size":4,"distance":"Euclid"})" + extra + "}")));
}

// upserts integer ids [a, b) with payload {"g": i % 3, "n": i, "tags": [i % 2]}
void upsert_range(int port, model &m, uint64_t a, uint64_t b)
{
    std::string body = R"({"points":[)";
    for (uint64_t i = a; i < b; i++) {
        auto v = vec_of(i);
        std::string p = "{\"g\":" + std::to_string(i % 3) + ",\"n\":" + std::to_string(i) + ",\"tags\":[" +
                        std::to_string(i % 2) + "]}";
        body += (i > a ? "," : "") + std::string("{\"id\":") + std::to_string(i) + ",\"vector\":" +
                vec_json(v.data(), D) + ",\"payload\":" + p + "}";
        m.vec[std::to_string(i)] = v;
        jptr pj(parse(p));
        m.pay[std::to_string(i)] = canon(pj.j);
    }
    jptr r(ok_result(http(port, "PUT", C + "/points?wait=true", body + "]}")));
}

// everything the server holds, read back through scroll (all pages), compared with m
void check_state(int port, const model &m)
{
    std::map<std::string, std::vector<float>> vec;
    std::map<std::string, std::string> pay;
    std::string offset = "null";
    for (int pages = 0; pages < 1000; pages++) {
        jptr r(ok_result(http(port, "POST", C + "/points/scroll",
                              R"({"limit":13,"with_payload":true,"with_vector":true,"offset":)" + offset + "}")));
        json_t *pts = json_object_get(r.j, "points");
        for (size_t i = 0; i < json_array_size(pts); i++) {
            json_t *p = json_array_get(pts, i);
            std::string k = id_key(json_object_get(p, "id"));
            REQUIRE(vec.count(k) == 0); // each point once
            std::vector<float> v;
            json_t *jv = json_object_get(p, "vector");
            for (size_t j = 0; j < json_array_size(jv); j++)
                v.push_back((float)json_number_value(json_array_get(jv, j)));
            vec[k] = v;
            pay[k] = canon(json_object_get(p, "payload"));
        }
        json_t *next = json_object_get(r.j, "next_page_offset");
        if (json_is_null(next))
            break;
        offset = dump_any(next);
    }
    REQUIRE(vec.size() == m.vec.size());
    for (auto &kv : m.vec) {
        INFO("point " << kv.first);
        REQUIRE(vec.count(kv.first) == 1);
        REQUIRE(vec[kv.first] == kv.second);
        REQUIRE(pay[kv.first] == m.pay.at(kv.first));
    }
    jptr c(ok_result(http(port, "POST", C + "/points/count", "{}")));
    REQUIRE(json_integer_value(json_object_get(c.j, "count")) == (json_int_t)m.vec.size());
}

// the model's payload of k as JSON (new reference)
json_t *pay_of(const model &m, const std::string &k) { return parse(m.pay.at(k)); }
void set_pay(model &m, const std::string &k, json_t *j)
{
    m.pay[k] = canon(j);
    json_decref(j);
}

int g_of(const model &m, const std::string &k)
{
    jptr p(pay_of(m, k));
    json_t *g = json_object_get(p.j, "g");
    return json_is_integer(g) ? (int)json_integer_value(g) : -1;
}

// the number of points the server counts for filter f
long count(int port, const std::string &f)
{
    jptr c(ok_result(http(port, "POST", C + "/points/count", "{\"filter\":" + f + "}")));
    return (long)json_integer_value(json_object_get(c.j, "count"));
}

void require_completed(const http_resp &r)
{
    jptr j(ok_result(r));
    REQUIRE(json_is_integer(json_object_get(j.j, "operation_id")));
    REQUIRE(std::string(json_string_value(json_object_get(j.j, "status"))) == "completed");
}

} // namespace

TEST_CASE("points ops: payload updates by ids and filter match a model and survive a restart", "[points_ops]")
{
    tmpdir t;
    model m;
    {
        server S(t.file("data"));
        create(S.port);
        upsert_range(S.port, m, 0, 40);
        // load the payload cache first, so the updates below must keep it in step
        REQUIRE(count(S.port, R"({"must":[{"key":"g","match":{"value":1}}]})") == 13);

        // set: merge keys into points 1, 2, 3
        require_completed(http(S.port, "POST", C + "/points/payload?wait=true",
                               R"({"payload":{"x":"a","g":9},"points":[1,2,3]})"));
        for (const char *k : {"1", "2", "3"}) {
            json_t *p = pay_of(m, k);
            json_object_set_new(p, "x", json_string("a"));
            json_object_set_new(p, "g", json_integer(9));
            set_pay(m, k, p);
        }
        check_state(S.port, m);

        // set at a nested key, twice (the second merges into what the first created)
        require_completed(http(S.port, "POST", C + "/points/payload", R"({"payload":{"c":1},"points":[4],"key":"a.b"})"));
        require_completed(http(S.port, "POST", C + "/points/payload", R"({"payload":{"d":2},"points":[4],"key":"a.b"})"));
        {
            json_t *p = pay_of(m, "4");
            json_object_set_new(p, "a", json_pack("{s:{s:i, s:i}}", "b", "c", 1, "d", 2));
            set_pay(m, "4", p);
        }
        check_state(S.port, m);

        // overwrite
        require_completed(http(S.port, "PUT", C + "/points/payload", R"({"payload":{"only":true},"points":[5]})"));
        set_pay(m, "5", json_pack("{s:b}", "only", 1));
        // delete keys by filter (g == 1), a nested key of point 4 by id
        require_completed(
            http(S.port, "POST", C + "/points/payload/delete", R"({"keys":["n","tags"],"filter":{"must":[{"key":"g","match":{"value":1}}]}})"));
        for (auto &kv : m.pay)
            if (g_of(m, kv.first) == 1) {
                json_t *p = pay_of(m, kv.first);
                json_object_del(p, "n");
                json_object_del(p, "tags");
                set_pay(m, kv.first, p);
            }
        require_completed(http(S.port, "POST", C + "/points/payload/delete", R"({"keys":["a.b.c"],"points":[4]})"));
        {
            json_t *p = pay_of(m, "4");
            json_object_del(json_object_get(json_object_get(p, "a"), "b"), "c");
            set_pay(m, "4", p);
        }
        // clear by ids and set by filter
        require_completed(http(S.port, "POST", C + "/points/payload/clear", R"({"points":[6, 7]})"));
        m.pay["6"] = m.pay["7"] = "{}";
        require_completed(http(S.port, "POST", C + "/points/payload",
                               R"({"payload":{"two":true},"filter":{"must":[{"key":"g","match":{"value":2}}]}})"));
        long twos = 0;
        for (auto &kv : m.pay)
            if (g_of(m, kv.first) == 2) {
                json_t *p = pay_of(m, kv.first);
                json_object_set_new(p, "two", json_true());
                set_pay(m, kv.first, p);
                twos++;
            }
        check_state(S.port, m);
        // the payload cache (filters) follows the updates
        REQUIRE(count(S.port, R"({"must":[{"key":"two","match":{"value":true}}]})") == twos);
        REQUIRE(count(S.port, R"({"must":[{"key":"x","match":{"value":"a"}}]})") == 3);
        REQUIRE(count(S.port, R"({"must":[{"key":"g","match":{"value":9}}]})") == 3);
        REQUIRE(count(S.port, R"({"must":[{"key":"only","match":{"value":true}}]})") == 1);

        // an unknown id: 404 naming it, nothing changed (point 1 is not touched either)
        require_error(http(S.port, "POST", C + "/points/payload", R"({"payload":{"z":1},"points":[1,999]})"), 404,
                      "No point with id 999");
        require_error(http(S.port, "PUT", C + "/points/payload", R"({"payload":{"z":1},"points":[999]})"), 404, "999");
        require_error(http(S.port, "POST", C + "/points/payload/clear", R"({"points":[2,998]})"), 404, "998");
        check_state(S.port, m);
        S.stop();
    }
    // a restart on the same directory shows the same payloads
    server S2(t.file("data"));
    check_state(S2.port, m);
    REQUIRE(count(S2.port, R"({"must":[{"key":"x","match":{"value":"a"}}]})") == 3);
}

TEST_CASE("points ops: vector updates keep the payload, unnamed-vector forms, refusals", "[points_ops]")
{
    for (int trained = 0; trained < 2; trained++) {
        DYNAMIC_SECTION((trained ? "trained" : "untrained"))
        {
            tmpdir t;
            model m;
            server S(t.file("data"));
            create(S.port, trained ? R"(,"vqs":{"spec":"SQ8","train_size":30,"rerank":"disk"})" : "");
            upsert_range(S.port, m, 0, 40);
            // the update: {"": [...]} and [...] are both the unnamed vector
            std::vector<float> v3 = {100, 1, 2, 3}, v9 = {-50, 5, 5, 5};
            require_completed(http(S.port, "PUT", C + "/points/vectors?wait=true",
                                   R"({"points":[{"id":3,"vector":{"":)" + vec_json(v3.data(), D) +
                                       R"(}},{"id":9,"vector":)" + vec_json(v9.data(), D) + "}]}"));
            m.vec["3"] = v3;
            m.vec["9"] = v9;
            check_state(S.port, m);
            // a search finds the new vector (distance 0) and not the old one
            jptr r(ok_result(http(S.port, "POST", C + "/points/search",
                                  "{\"vector\":" + vec_json(v3.data(), D) + ",\"limit\":1,\"with_payload\":true}")));
            REQUIRE(json_integer_value(json_object_get(json_array_get(r.j, 0), "id")) == 3);
            REQUIRE(canon(json_object_get(json_array_get(r.j, 0), "payload")) == m.pay["3"]);

            // a missing id: 404 naming it, the other point of the request unchanged
            require_error(http(S.port, "PUT", C + "/points/vectors",
                               R"({"points":[{"id":4,"vector":[9,9,9,9]},{"id":777,"vector":[1,1,1,1]}]})"),
                          404, "777");
            // named, sparse, multi-vectors; delete_vectors
            require_error(http(S.port, "PUT", C + "/points/vectors", R"({"points":[{"id":4,"vector":{"text":[1,2,3,4]}}]})"),
                          400, "Not existing vector name error: text");
            require_error(http(S.port, "PUT", C + "/points/vectors",
                               R"({"points":[{"id":4,"vector":{"":{"indices":[1],"values":[0.5]}}}]})"),
                          400, "sparse vectors are not supported");
            require_error(http(S.port, "PUT", C + "/points/vectors", R"({"points":[{"id":4,"vector":[[1,2,3,4]]}]})"),
                          400, "multi-vectors");
            require_error(http(S.port, "PUT", C + "/points/vectors", R"({"points":[{"id":4,"vector":[1,2,3]}]})"), 400,
                          "dimension");
            require_error(http(S.port, "PUT", C + "/points/vectors", R"({"points":[{"id":4,"vector":[1,2,3,4],"payload":{}}]})"),
                          400, "\"payload\"");
            require_error(http(S.port, "POST", C + "/points/vectors/delete", R"({"points":[4],"vector":[""]})"), 400,
                          "not supported by vqs");
            check_state(S.port, m);

            // upsert takes {"": [...]} too, and refuses unknown fields (top level and per point)
            std::vector<float> v50 = {7, 7, 7, 7};
            require_completed(http(S.port, "PUT", C + "/points",
                                   R"({"points":[{"id":50,"vector":{"":)" + vec_json(v50.data(), D) + "}}]}"));
            m.vec["50"] = v50;
            m.pay["50"] = "{}";
            require_error(http(S.port, "PUT", C + "/points", R"({"points":[{"id":51,"vector":[1,2,3,4],"paylod":{}}]})"), 400,
                          "paylod");
            require_error(http(S.port, "PUT", C + "/points", R"({"points":[],"shard_key":"a"})"), 400,
                          "not supported by vqs");
            // null: the field is not asked for (clients send it so)
            require_completed(http(S.port, "PUT", C + "/points", R"({"points":[],"shard_key":null})"));
            require_error(http(S.port, "POST", C + "/points", R"({"ids":[1],"with_vectors":true})"), 400, "with_vectors");
            require_error(http(S.port, "POST", C + "/points/delete", R"({"points":[1],"wait":true})"), 400, "wait");
            require_error(http(S.port, "POST", C + "/points/count", R"({"filtr":{}})"), 400, "filtr");
            check_state(S.port, m);
        }
    }
}

TEST_CASE("points ops: points/batch applies in order and is atomic", "[points_ops]")
{
    tmpdir t;
    model m;
    server S(t.file("data"));
    create(S.port);
    upsert_range(S.port, m, 0, 20);
    REQUIRE(count(S.port, R"({"must":[{"key":"g","match":{"value":0}}]})") == 7);
    std::vector<float> v100 = {1, 2, 3, 4}, v2 = {8, 8, 8, 8};
    const std::string good = R"({"upsert":{"points":[{"id":100,"vector":)" + vec_json(v100.data(), D) +
                             R"(,"payload":{"k":1}}]}},)"
                             R"({"set_payload":{"payload":{"m":2},"points":[100]}},)"
                             R"({"delete":{"points":[0]}},)"
                             R"({"overwrite_payload":{"payload":{"o":3},"points":[1]}},)"
                             R"({"update_vectors":{"points":[{"id":2,"vector":)" + vec_json(v2.data(), D) + "}]}},"
                             R"({"set_payload":{"payload":{"del":true},"points":[7,8]}},)"
                             R"({"delete":{"filter":{"must":[{"key":"del","match":{"value":true}}]}}},)"
                             R"({"delete_payload":{"keys":["g"],"points":[3]}},)"
                             R"({"clear_payload":{"points":[4]}})";
    // the same operations followed by one that fails: nothing changes
    const std::string bad_tails[] = {
        R"({"set_payload":{"payload":{"z":1},"points":[555]}})",
        R"({"update_vectors":{"points":[{"id":556,"vector":[1,1,1,1]}]}})",
        R"({"set_payload":{"payload":{"z":1},"points":[100],"colour":1}})",
        R"({"delete_vectors":{"points":[5],"vector":[""]}})",
        R"({"frobnicate":{}})",
        R"({"upsert":{"points":[{"id":101,"vector":[1,2]}]}})",
    };
    for (auto &tail : bad_tails) {
        INFO(tail);
        http_resp r = http(S.port, "POST", C + "/points/batch", "{\"operations\":[" + good + "," + tail + "]}");
        REQUIRE(r.code >= 400);
        REQUIRE(r.code < 500);
        check_state(S.port, m);
    }
    REQUIRE(count(S.port, R"({"must":[{"key":"g","match":{"value":0}}]})") == 7);
    // applied: one result per operation, each sees the ones before it
    jptr r(ok_result(http(S.port, "POST", C + "/points/batch?wait=true", "{\"operations\":[" + good + "]}")));
    REQUIRE(json_array_size(r.j) == 9);
    m.vec["100"] = v100;
    m.pay["100"] = R"({"k":1,"m":2})";
    m.vec.erase("0"), m.pay.erase("0");
    m.pay["1"] = R"({"o":3})";
    m.vec["2"] = v2;
    m.vec.erase("7"), m.pay.erase("7");
    m.vec.erase("8"), m.pay.erase("8");
    {
        json_t *p = pay_of(m, "3");
        json_object_del(p, "g");
        set_pay(m, "3", p);
    }
    m.pay["4"] = "{}";
    check_state(S.port, m);
    // the payload cache follows the batch: g == 0 lost 0 (deleted) and 3 (key removed)
    long g0 = 0;
    for (auto &kv : m.pay)
        g0 += g_of(m, kv.first) == 0;
    REQUIRE(count(S.port, R"({"must":[{"key":"g","match":{"value":0}}]})") == g0);
    REQUIRE(count(S.port, R"({"must":[{"key":"m","match":{"value":2}}]})") == 1);
    // an upsert then a delete of the same point in one batch: gone
    require_completed(http(S.port, "POST", C + "/points/payload", R"({"payload":{"q":1},"points":[5]})"));
    jptr r2(ok_result(http(S.port, "POST", C + "/points/batch",
                           R"({"operations":[{"upsert":{"points":[{"id":200,"vector":[1,1,1,1]}]}},{"delete":{"points":[200]}}]})")));
    json_t *p5 = pay_of(m, "5");
    json_object_set_new(p5, "q", json_integer(1));
    set_pay(m, "5", p5);
    check_state(S.port, m);
}

TEST_CASE("points ops: scroll visits every point once, in Qdrant's id order, with and without a filter",
          "[points_ops]")
{
    tmpdir t;
    model m;
    vqs_server_opts o = {};
    o.max_limit = 50;
    server S(t.file("data"), o);
    create(S.port);
    upsert_range(S.port, m, 0, 45);
    // UUIDs come after every integer, by their bytes (canonical text order)
    std::vector<std::string> uu = {"f0000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-0000000000aa",
                                   "7fffffff-ffff-ffff-ffff-ffffffffffff", "12345678-1234-1234-1234-123456789abc"};
    std::string body = R"({"points":[)";
    for (size_t i = 0; i < uu.size(); i++) {
        std::vector<float> v = {float(i), 0, 0, 0};
        body += (i ? "," : "") + std::string("{\"id\":\"") + uu[i] + "\",\"vector\":" + vec_json(v.data(), D) +
                ",\"payload\":{\"g\":0,\"n\":" + std::to_string(1000 + i) + "}}";
        m.vec[uu[i]] = v;
        m.pay[uu[i]] = "{\"g\":0,\"n\":" + std::to_string(1000 + i) + "}";
    }
    jptr up(ok_result(http(S.port, "PUT", C + "/points", body + "]}")));
    // big integers sort numerically, not as text
    upsert_range(S.port, m, 100, 102);
    std::vector<std::string> expect;
    for (uint64_t i = 0; i < 45; i++)
        expect.push_back(std::to_string(i));
    expect.push_back("100"), expect.push_back("101");
    std::vector<std::string> su = uu;
    std::sort(su.begin(), su.end());
    expect.insert(expect.end(), su.begin(), su.end());
    check_state(S.port, m);

    for (int filtered = 0; filtered < 2; filtered++)
        for (size_t limit : {1, 6, 50}) {
            INFO("filtered " << filtered << ", limit " << limit);
            std::vector<std::string> want;
            for (auto &k : expect)
                if (!filtered || g_of(m, k) == 0)
                    want.push_back(k);
            std::vector<std::string> got;
            std::string offset = "null";
            for (int pages = 0; pages < 200; pages++) {
                std::string b = "{\"limit\":" + std::to_string(limit) + ",\"offset\":" + offset +
                                (filtered ? R"(,"filter":{"must":[{"key":"g","match":{"value":0}}]})" : "") +
                                R"(,"with_payload":false})";
                jptr r(ok_result(http(S.port, "POST", C + "/points/scroll", b)));
                json_t *pts = json_object_get(r.j, "points");
                REQUIRE(json_array_size(pts) <= limit);
                for (size_t i = 0; i < json_array_size(pts); i++) {
                    REQUIRE(json_object_get(json_array_get(pts, i), "payload") == nullptr);
                    REQUIRE(json_object_get(json_array_get(pts, i), "vector") == nullptr);
                    got.push_back(id_key(json_object_get(json_array_get(pts, i), "id")));
                }
                json_t *next = json_object_get(r.j, "next_page_offset");
                if (json_is_null(next))
                    break;
                REQUIRE(json_array_size(pts) == limit);
                offset = dump_any(next);
            }
            REQUIRE(got == want);
        }
    // an offset that is not a stored id starts at the next one
    {
        jptr r(ok_result(http(S.port, "POST", C + "/points/scroll", R"({"offset":46,"limit":3,"with_payload":false})")));
        json_t *pts = json_object_get(r.j, "points");
        REQUIRE(json_array_size(pts) == 3);
        REQUIRE(json_integer_value(json_object_get(json_array_get(pts, 0), "id")) == 100);
        REQUIRE(id_key(json_object_get(json_array_get(pts, 2), "id")) == su[0]);
        // default limit 10 and with_payload true
        jptr d(ok_result(http(S.port, "POST", C + "/points/scroll", "{}")));
        REQUIRE(json_array_size(json_object_get(d.j, "points")) == 10);
        REQUIRE(json_object_get(json_array_get(json_object_get(d.j, "points"), 0), "payload") != nullptr);
        REQUIRE(json_integer_value(json_object_get(d.j, "next_page_offset")) == 10);
    }
    // order_by: the best values of "n", then from start_from
    {
        jptr r(ok_result(http(S.port, "POST", C + "/points/scroll",
                              R"({"limit":5,"order_by":{"key":"n","direction":"desc"},"filter":{"must":[{"key":"g","match":{"value":0}}]}})")));
        std::vector<std::pair<double, std::string>> all;
        for (auto &kv : m.pay) {
            jptr p(parse(kv.second));
            if (g_of(m, kv.first) == 0)
                all.push_back({json_number_value(json_object_get(p.j, "n")), kv.first});
        }
        std::sort(all.begin(), all.end(), [](auto &a, auto &b) { return a.first > b.first; });
        json_t *pts = json_object_get(r.j, "points");
        REQUIRE(json_array_size(pts) == 5);
        REQUIRE(json_is_null(json_object_get(r.j, "next_page_offset")));
        for (size_t i = 0; i < 5; i++) {
            REQUIRE(id_key(json_object_get(json_array_get(pts, i), "id")) == all[i].second);
            json_t *ov = json_object_get(json_array_get(pts, i), "order_value");
            REQUIRE(json_is_integer(ov)); // "n" holds integers
            REQUIRE(json_number_value(ov) == all[i].first);
        }
        jptr a(ok_result(http(S.port, "POST", C + "/points/scroll",
                              R"({"limit":3,"order_by":{"key":"n","start_from":40}})")));
        json_t *ap = json_object_get(a.j, "points");
        REQUIRE(json_array_size(ap) == 3);
        for (size_t i = 0; i < 3; i++)
            REQUIRE(json_integer_value(json_object_get(json_array_get(ap, i), "id")) == (json_int_t)(40 + i));
    }
    // bad input: a 4xx naming what is wrong
    require_error(http(S.port, "POST", C + "/points/scroll", R"({"limit":51})"), 400, "limit");
    require_error(http(S.port, "POST", C + "/points/scroll", R"({"offset":-1})"), 400, "offset");
    require_error(http(S.port, "POST", C + "/points/scroll", R"({"offset":1,"order_by":"n"})"), 400, "start_from");
    require_error(http(S.port, "POST", C + "/points/scroll", R"({"order_by":{"key":"n","direction":"up"}})"), 400,
                  "direction");
    require_error(http(S.port, "POST", C + "/points/scroll", R"({"limits":3})"), 400, "limits");
    require_error(http(S.port, "POST", C + "/points/scroll", R"({"filter":{"must":[{"kee":"g"}]}})"), 400, "");
    check_state(S.port, m);
}

TEST_CASE("points ops: malformed payload, vector and batch requests get a 4xx and change nothing", "[points_ops]")
{
    tmpdir t;
    model m;
    vqs_server_opts o = {};
    o.max_batch = 50;
    server S(t.file("data"), o);
    create(S.port);
    upsert_range(S.port, m, 0, 10);
    struct bad {
        std::string method, path, body, needle;
    } cases[] = {
        {"POST", "/points/payload", R"({"payload":{"a":1}})", "points"},
        {"POST", "/points/payload", R"({"payload":{"a":1},"points":[1],"filter":{}})", "not both"},
        {"POST", "/points/payload", R"({"payload":[1],"points":[1]})", "payload"},
        {"POST", "/points/payload", R"({"payload":{"a":1},"points":[-1]})", "points[0]"},
        {"POST", "/points/payload", R"({"payload":{"a":1},"points":["nope"]})", "points[0]"},
        {"POST", "/points/payload", R"({"payload":{"a":1},"points":[1],"key":"a[].b"})", "key"},
        {"POST", "/points/payload", R"({"payload":{"a":1},"points":[1],"key":7})", "key"},
        {"POST", "/points/payload", R"({"payload":{"a":1},"points":[1],"shard_key":"x"})", "not supported by vqs"},
        {"POST", "/points/payload", R"({"payload":{"a":1},"points":[1],"extra":1})", "extra"},
        {"PUT", "/points/payload", R"({"payload":{"a":1},"points":[1],"key":"a"})", "key"},
        {"POST", "/points/payload/delete", R"({"keys":"a","points":[1]})", "keys"},
        {"POST", "/points/payload/delete", R"({"keys":[1],"points":[1]})", "keys[0]"},
        {"POST", "/points/payload/clear", R"({})", "points"},
        {"POST", "/points/payload/clear", R"({"points":[1],"payload":{}})", "payload"},
        {"POST", "/points/payload/clear", R"({"filter":{"must":"x"}})", ""},
        {"PUT", "/points/vectors", R"({"points":{}})", "points"},
        {"PUT", "/points/vectors", R"({"points":[{"vector":[1,2,3,4]}]})", "id"},
        {"PUT", "/points/vectors", R"({"points":[{"id":1}]})", "vector"},
        {"PUT", "/points/vectors", R"({"points":[{"id":1,"vector":[1,2,"x",4]}]})", "element 2"},
        {"POST", "/points/batch", R"({})", "operations"},
        {"POST", "/points/batch", R"({"operations":[1]})", "operations[0]"},
        {"POST", "/points/batch", R"({"operations":[{"upsert":{},"delete":{}}]})", "one key"},
        {"POST", "/points/batch", R"({"operations":[{"delete":{"points":[1],"x":1}}]})", "x"},
        {"POST", "/points/batch", R"({"operations":[],"extra":[]})", "extra"},
        {"POST", "/points/batch", R"({"operations":[{"upsert":{"points":[{"id":1,"vector":[1,2,3,4]},{"id":1,"vector":[1,2,3,4]}]}}]})",
         "repeats an id"},
        {"POST", "/points/payload", "{\"payload\":{\"a\":1},\"points\":[" + [] {
             std::string s;
             for (int i = 0; i < 51; i++)
                 s += (i ? "," : "") + std::to_string(i);
             return s;
         }() + "]}",
         "max-batch"},
        {"POST", "/points/payload", "not json", "malformed JSON"},
    };
    for (auto &c : cases) {
        INFO(c.method << " " << c.path << " " << c.body);
        http_resp r = http(S.port, c.method, C + c.path, c.body);
        REQUIRE(r.code == 400);
        require_error(r, 400, c.needle);
    }
    check_state(S.port, m);
    // an empty batch is fine and changes nothing
    jptr r(ok_result(http(S.port, "POST", C + "/points/batch", R"({"operations":[]})")));
    REQUIRE(json_array_size(r.j) == 0);
    check_state(S.port, m);
    // and so are operations that select nothing
    jptr r2(ok_result(http(S.port, "POST", C + "/points/batch",
                           R"({"operations":[{"upsert":{"points":[]}},{"update_vectors":{"points":[]}},)"
                           R"({"delete":{"filter":{"must":[{"key":"g","match":{"value":77}}]}}},)"
                           R"({"set_payload":{"payload":{"a":1},"filter":{"must":[{"key":"g","match":{"value":77}}]}}},)"
                           R"({"clear_payload":{"points":[]}}]})")));
    REQUIRE(json_array_size(r2.j) == 5);
    check_state(S.port, m);
}

namespace
{

struct edit_set {
    std::string text; // the new payload
};

int set_edit(void *ctx, const vqs_pid *, const char *, size_t, char **out)
{
    *out = strdup(static_cast<edit_set *>(ctx)->text.c_str());
    return *out ? 0 : VQS_ENOMEM;
}

} // namespace

TEST_CASE("points ops: vqs_coll_apply replays cleanly when the LMDB map grows, and is all or nothing",
          "[points_ops][collection]")
{
    tmpdir t;
    vqs_catalog_opts co = {};
    co.map_size = 256 << 10; // small: the batch below grows the map several times (each a replay)
    vqs_catalog *cat = nullptr;
    REQUIRE_OK(vqs_catalog_open(t.file("data").c_str(), &co, &cat));
    const size_t d = 32, n = 1500;
    vqs_coll_config cfg = {};
    cfg.d = d;
    cfg.metric = VQS_METRIC_L2;
    std::snprintf(cfg.spec, sizeof cfg.spec, "SQ8");
    cfg.rerank = VQS_RERANK_DISK;
    REQUIRE_OK(vqs_coll_create(cat, "c", &cfg));
    vqs_coll *c = nullptr;
    REQUIRE_OK(vqs_coll_open(cat, "c", nullptr, &c));
    std::vector<vqs_pid> ids(n);
    std::vector<float> x(n * d);
    std::vector<std::string> pays(n);
    std::vector<const char *> pp(n);
    for (size_t i = 0; i < n; i++) {
        ids[i].kind = VQS_PID_U64;
        ids[i].u64 = i;
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = float((i * 31 + j * 7) % 101) - 50.f;
        pays[i] = "{\"i\":" + std::to_string(i) + ",\"pad\":\"" + std::string(200, 'a' + char(i % 26)) + "\"}";
        pp[i] = pays[i].c_str();
    }
    size_t map0 = vqs_catalog_map_size(cat);
    edit_set big{"{\"big\":\"" + std::string(300, 'z') + "\"}"};
    std::vector<vqs_pid> upd = {ids[5], ids[6]};
    std::vector<float> y(2 * d, 1.5f);
    vqs_coll_op ops[4] = {};
    ops[0].kind = VQS_COLL_OP_UPSERT, ops[0].n = n, ops[0].ids = ids.data(), ops[0].x = x.data(), ops[0].payloads = pp.data();
    ops[1].kind = VQS_COLL_OP_PAYLOAD, ops[1].edit = set_edit, ops[1].edit_ctx = &big; // every point
    ops[2].kind = VQS_COLL_OP_VECTORS, ops[2].n = 2, ops[2].ids = upd.data(), ops[2].x = y.data();
    ops[3].kind = VQS_COLL_OP_DELETE, ops[3].n = 1, ops[3].ids = &ids[7];
    // the same batch with a last operation naming a missing point: nothing at all
    vqs_pid missing = {};
    missing.kind = VQS_PID_U64;
    missing.u64 = 99999;
    vqs_coll_op bad[5] = {ops[0], ops[1], ops[2], ops[3], {}};
    bad[4].kind = VQS_COLL_OP_PAYLOAD, bad[4].n = 1, bad[4].ids = &missing, bad[4].edit = set_edit, bad[4].edit_ctx = &big;
    REQUIRE(vqs_coll_apply(c, 5, bad, nullptr, nullptr) == VQS_ENOTFOUND);
    vqs_clearerr();
    REQUIRE(vqs_coll_count(c) == 0);
    vqs_coll_info info;
    REQUIRE_OK(vqs_coll_stat(c, &info));
    REQUIRE(info.next_iid == 0);
    REQUIRE(info.vector_bytes <= 4096); // the vector file was cut back to nothing
    size_t nchanges = 0;
    auto cb = [](void *ctx, size_t nch, const vqs_coll_change *) { *static_cast<size_t *>(ctx) = nch; };
    REQUIRE_OK(vqs_coll_apply(c, 4, ops, cb, &nchanges));
    REQUIRE(vqs_catalog_map_size(cat) > map0); // the map grew: the session was replayed
    REQUIRE(nchanges == n + n + 2);            // upserts, edits, vector updates of the one attempt that committed
    auto check = [&](vqs_coll *cc) {
        REQUIRE(vqs_coll_count(cc) == n - 1);
        std::vector<float> v(d);
        for (size_t i = 0; i < n; i++) {
            char *p = nullptr;
            int rc = vqs_coll_get(cc, &ids[i], v.data(), &p);
            if (i == 7) {
                REQUIRE(rc == VQS_ENOTFOUND);
                vqs_clearerr();
                continue;
            }
            REQUIRE_OK(rc);
            REQUIRE(p != nullptr);
            REQUIRE(std::string(p) == big.text);
            free(p);
            const float *want = i == 5 || i == 6 ? y.data() : &x[i * d];
            REQUIRE(std::vector<float>(v.begin(), v.end()) == std::vector<float>(want, want + d));
        }
    };
    check(c);
    vqs_coll_close(c);
    REQUIRE_OK(vqs_coll_open(cat, "c", nullptr, &c));
    check(c);
    vqs_coll_close(c);
    vqs_catalog_close(cat);
}

TEST_CASE("points ops: concurrent payload updates of one point leave the filter cache equal to storage",
          "[points_ops]")
{
    tmpdir t;
    model m;
    server S(t.file("data"));
    create(S.port);
    upsert_range(S.port, m, 0, 5);
    REQUIRE(count(S.port, R"({"must":[{"key":"g","match":{"value":1}}]})") == 2); // the cache is loaded
    std::vector<std::thread> th;
    std::atomic<int> failures{0};
    for (int w = 0; w < 4; w++)
        th.emplace_back([&, w] {
            for (int k = 0; k < 15; k++) {
                std::string body = "{\"payload\":{\"v\":" + std::to_string(w * 100 + k) + "},\"points\":[1]}";
                if (http(S.port, "POST", C + "/points/payload", body).code != 200)
                    failures++;
            }
        });
    for (auto &x : th)
        x.join();
    REQUIRE(failures == 0);
    // the value the cache holds (answers show cached payloads once it is loaded) ...
    jptr r(ok_result(http(S.port, "POST", C + "/points/scroll", R"({"limit":5})")));
    json_t *p1 = json_array_get(json_object_get(r.j, "points"), 1);
    REQUIRE(json_integer_value(json_object_get(p1, "id")) == 1);
    json_int_t v = json_integer_value(json_object_get(json_object_get(p1, "payload"), "v"));
    REQUIRE(count(S.port, "{\"must\":[{\"key\":\"v\",\"match\":{\"value\":" + std::to_string(v) + "}}]}") == 1);
    REQUIRE(count(S.port, R"({"must":[{"key":"v","range":{"gte":0}}]})") == 1);
    // ... is the one storage holds: after a restart the cache is rebuilt from LMDB
    S.stop();
    server S2(t.file("data"));
    REQUIRE(count(S2.port, "{\"must\":[{\"key\":\"v\",\"match\":{\"value\":" + std::to_string(v) + "}}]}") == 1);
}
