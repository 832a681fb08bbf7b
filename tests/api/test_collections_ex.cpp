// Tests of the collection endpoints beyond create/list/drop (api/h_collections.c,
// api/h_aliases.c, api/routes.c), over real sockets with real LMDB files:
// - aliases: create / rename / delete in one atomic list (a failing action changes
//   nothing), every collection route through an alias, an alias may not shadow a
//   collection (nor the reverse), they survive a restart and go with their collection;
// - PATCH: the search defaults and the training size change and are used (a search after
//   the PATCH equals brute force computed here), persist, and every field vqs does not
//   have is refused naming it with nothing changed;
// - collection info in Qdrant's shape, and create's refusals of what vqs does not honour;
// - 405 with Allow for a wrong method on every kind of route, 404 still for unknown paths
//   and collections; the refused Qdrant endpoints; GET / and its version.
#include "vqs_test.hpp"

#include "vqs_http.h"

#include <algorithm>
#include <cstring>
#include <jansson.h>
#include <string>
#include <vector>

using namespace vqs_test;

#include "http_client.hpp"

using namespace vqs_http_test;

namespace
{

const size_t D = 8;

void create(int port, const std::string &name, const std::string &vqs = R"({"spec":"SQ8","train_size":0})")
{
    jptr r(ok_result(http(port, "PUT", "/collections/" + name,
                          R"({"vectors":{"size":8,"distance":"Euclid"},"vqs":)" + vqs + "}")));
    REQUIRE(json_is_true(r.j));
}

void upsert(int port, const std::string &coll, const std::vector<float> &x, size_t first, size_t n)
{
    std::string body = R"({"points":[)";
    for (size_t i = first; i < first + n; i++)
        body += (i > first ? "," : "") + std::string(R"({"id":)") + std::to_string(i) + R"(,"vector":)" +
                vec_json(&x[i * D], D) + "}";
    body += "]}";
    jptr r(ok_result(http(port, "PUT", "/collections/" + coll + "/points?wait=true", body)));
}

// the aliases an endpoint lists, "alias>collection" sorted
std::vector<std::string> aliases(int port, const std::string &path = "/aliases")
{
    jptr r(ok_result(http(port, "GET", path)));
    json_t *a = json_object_get(r.j, "aliases");
    REQUIRE(json_is_array(a));
    std::vector<std::string> out;
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *e = json_array_get(a, i);
        REQUIRE(json_object_size(e) == 2);
        out.push_back(std::string(json_string_value(json_object_get(e, "alias_name"))) + ">" +
                      json_string_value(json_object_get(e, "collection_name")));
    }
    std::sort(out.begin(), out.end());
    return out;
}

using strs = std::vector<std::string>;

uint64_t count(int port, const std::string &coll)
{
    jptr r(ok_result(http(port, "POST", "/collections/" + coll + "/points/count", "{}")));
    return (uint64_t)json_integer_value(json_object_get(r.j, "count"));
}

// the ids of a search, best first
std::vector<uint64_t> search_ids(int port, const std::string &coll, const float *q, size_t k)
{
    jptr r(ok_result(http(port, "POST", "/collections/" + coll + "/points/search",
                          R"({"vector":)" + vec_json(q, D) + R"(,"limit":)" + std::to_string(k) + "}")));
    std::vector<uint64_t> ids;
    for (size_t i = 0; i < json_array_size(r.j); i++)
        ids.push_back((uint64_t)json_integer_value(json_object_get(json_array_get(r.j, i), "id")));
    return ids;
}

// exact k nearest (Euclid) of q among x[0..n), ties by id
std::vector<uint64_t> brute(const std::vector<float> &x, size_t n, const float *q, size_t k)
{
    std::vector<std::pair<double, uint64_t>> d(n);
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < D; j++)
            s += ((double)x[i * D + j] - q[j]) * ((double)x[i * D + j] - q[j]);
        d[i] = {s, i};
    }
    std::sort(d.begin(), d.end());
    std::vector<uint64_t> ids;
    for (size_t i = 0; i < k; i++)
        ids.push_back(d[i].second);
    return ids;
}

json_t *info(int port, const std::string &coll) { return ok_result(http(port, "GET", "/collections/" + coll)); }

json_t *path(json_t *j, std::initializer_list<const char *> keys)
{
    for (const char *k : keys)
        j = json_object_get(j, k);
    return j;
}

std::string header(const http_resp &r, const std::string &name)
{
    std::string h = r.headers, lname = name;
    std::transform(h.begin(), h.end(), h.begin(), ::tolower);
    std::transform(lname.begin(), lname.end(), lname.begin(), ::tolower);
    size_t p = h.find("\r\n" + lname + ":");
    if (p == std::string::npos)
        return "";
    p += 3 + lname.size();
    size_t e = r.headers.find("\r\n", p);
    std::string v = r.headers.substr(p, e == std::string::npos ? std::string::npos : e - p);
    while (!v.empty() && v[0] == ' ')
        v.erase(0, 1);
    return v;
}

} // namespace

TEST_CASE("colls_ex: aliases change atomically, route every collection endpoint, persist and go with their "
          "collection",
          "[colls_ex][aliases]")
{
    tmpdir t;
    std::string dir = t.file("data");
    auto x = synth(60, D, 3);
    const std::string A = "/collections/aliases";
    {
        server S(dir);
        create(S.port, "a");
        create(S.port, "b");
        upsert(S.port, "a", x, 0, 20);
        upsert(S.port, "b", x, 20, 30);
        REQUIRE(aliases(S.port).empty());

        jptr r(ok_result(http(S.port, "POST", A,
                              R"({"actions":[{"create_alias":{"collection_name":"a","alias_name":"prod"}},)"
                              R"({"create_alias":{"collection_name":"b","alias_name":"old"}},)"
                              R"({"create_alias":{"collection_name":"a","alias_name":"tmp"}},)"
                              R"({"rename_alias":{"old_alias_name":"tmp","new_alias_name":"tmp2"}}]})")));
        REQUIRE(json_is_true(r.j));
        REQUIRE(aliases(S.port) == strs{"old>b", "prod>a", "tmp2>a"});
        REQUIRE(aliases(S.port, "/collections/a/aliases") == strs{"prod>a", "tmp2>a"});
        REQUIRE(aliases(S.port, "/collections/b/aliases") == strs{"old>b"});
        // an alias names its collection: the aliases of an alias are its collection's
        REQUIRE(aliases(S.port, "/collections/prod/aliases") == strs{"prod>a", "tmp2>a"});

        // every kind of collection route through the alias reaches the collection
        REQUIRE(count(S.port, "prod") == 20);
        REQUIRE(count(S.port, "old") == 30);
        jptr ex(ok_result(http(S.port, "GET", "/collections/prod/exists")));
        REQUIRE(json_is_true(json_object_get(ex.j, "exists")));
        jptr in(info(S.port, "prod"));
        REQUIRE(json_integer_value(json_object_get(in.j, "points_count")) == 20);
        upsert(S.port, "prod", x, 50, 10); // ids 50..59 into a
        REQUIRE(count(S.port, "a") == 30);
        std::vector<float> xa(x.begin(), x.begin() + 20 * D);
        xa.insert(xa.end(), x.begin() + 50 * D, x.end());
        for (size_t qi = 0; qi < 5; qi++) {
            const float *q = &x[(25 + qi) * D];
            auto want = brute(xa, 30, q, 5);
            for (auto &id : want)
                if (id >= 20)
                    id += 30; // xa rows 20..29 are ids 50..59
            REQUIRE(search_ids(S.port, "prod", q, 5) == want);
            REQUIRE(search_ids(S.port, "a", q, 5) == want);
        }
        jptr pt(ok_result(http(S.port, "GET", "/collections/prod/points/55")));
        REQUIRE(json_integer_value(json_object_get(pt.j, "id")) == 55);

        // a failing action changes nothing, whatever came before it in the list
        const strs before = aliases(S.port);
        require_error(http(S.port, "POST", A,
                           R"({"actions":[{"create_alias":{"collection_name":"a","alias_name":"x1"}},)"
                           R"({"delete_alias":{"alias_name":"prod"}},)"
                           R"({"rename_alias":{"old_alias_name":"missing","new_alias_name":"x2"}}]})"),
                      404, "actions[2]");
        REQUIRE(aliases(S.port) == before);
        require_error(http(S.port, "POST", A,
                           R"({"actions":[{"delete_alias":{"alias_name":"prod"}},)"
                           R"({"create_alias":{"collection_name":"nope","alias_name":"x"}}]})"),
                      404, "nope");
        REQUIRE(aliases(S.port) == before);
        // an alias may not shadow a collection, nor a collection an alias
        require_error(http(S.port, "POST", A,
                           R"({"actions":[{"delete_alias":{"alias_name":"old"}},)"
                           R"({"create_alias":{"collection_name":"a","alias_name":"b"}}]})"),
                      409, "`b` already exists");
        require_error(http(S.port, "POST", A,
                           R"({"actions":[{"rename_alias":{"old_alias_name":"old","new_alias_name":"a"}}]})"),
                      409, "`a` already exists");
        require_error(http(S.port, "PUT", "/collections/prod", R"({"vectors":{"size":8,"distance":"Dot"}})"), 409,
                      "prod");
        // an alias names a collection, not an alias
        require_error(http(S.port, "POST", A,
                           R"({"actions":[{"create_alias":{"collection_name":"prod","alias_name":"y"}}]})"),
                      404, "prod");
        // malformed actions: 400 naming the action and field, nothing changed
        require_error(http(S.port, "POST", A, R"({"actions":[{"create_alias":{"collection_name":"a"}}]})"), 400,
                      "actions[0].create_alias.alias_name");
        require_error(http(S.port, "POST", A,
                           R"({"actions":[{"create_alias":{"collection_name":"a","alias_name":"q","x":1}}]})"),
                      400, "\"x\"");
        require_error(http(S.port, "POST", A, R"({"actions":[{"drop_alias":{"alias_name":"prod"}}]})"), 400,
                      "drop_alias");
        require_error(http(S.port, "POST", A, R"({"actions":[],"force":true})"), 400, "force");
        require_error(http(S.port, "POST", A,
                           R"({"actions":[{"create_alias":{"collection_name":"a","alias_name":"bad/name"}}]})"),
                      400, "alias_name");
        REQUIRE(aliases(S.port) == before);
        // deleting an alias that does not exist changes nothing and succeeds (as Qdrant)
        jptr d(ok_result(http(S.port, "POST", A, R"({"actions":[{"delete_alias":{"alias_name":"ghost"}}]})")));
        REQUIRE(aliases(S.port) == before);
        // create on an existing alias points it elsewhere
        jptr re(ok_result(http(S.port, "POST", A,
                               R"({"actions":[{"create_alias":{"collection_name":"b","alias_name":"tmp2"}}]})")));
        REQUIRE(aliases(S.port) == strs{"old>b", "prod>a", "tmp2>b"});
        // dropping by alias is not dropping: create and drop take real names, as Qdrant
        require_error(http(S.port, "DELETE", "/collections/prod"), 404, "prod");
        REQUIRE(count(S.port, "a") == 30);
    }
    {
        server S(dir); // a restart reads them back
        REQUIRE(aliases(S.port) == strs{"old>b", "prod>a", "tmp2>b"});
        REQUIRE(count(S.port, "prod") == 30);
        // a dropped collection takes its aliases with it
        jptr d(ok_result(http(S.port, "DELETE", "/collections/b")));
        REQUIRE(aliases(S.port) == strs{"prod>a"});
        require_error(http(S.port, "POST", "/collections/old/points/count", "{}"), 404, "old");
        // the name is free again, for a collection or an alias
        create(S.port, "old");
        REQUIRE(count(S.port, "old") == 0);
    }
    server S(dir);
    REQUIRE(aliases(S.port) == strs{"prod>a"});
    REQUIRE(count(S.port, "old") == 0);
}

TEST_CASE("colls_ex: PATCH changes the search defaults and training size, which are used and persist, and refuses "
          "the rest naming it",
          "[colls_ex][patch]")
{
    tmpdir t;
    std::string dir = t.file("data");
    const size_t n = 200, k = 5;
    auto x = synth(n + 40, D, 9);
    {
        server S(dir);
        create(S.port, "c", R"({"spec":"IVF4,SQ8","train_size":0,"nprobe":1,"oversampling":1})");
        upsert(S.port, "c", x, 0, n);
        jptr i0(info(S.port, "c"));
        REQUIRE(json_is_false(path(i0.j, {"vqs", "trained"})));
        REQUIRE(json_integer_value(json_object_get(i0.j, "indexed_vectors_count")) == 0);

        // the training size, at or below the points held: the next upsert trains
        jptr p1(ok_result(http(S.port, "PATCH", "/collections/c", R"({"vqs":{"train_size":150}})")));
        REQUIRE(json_is_true(p1.j));
        jptr i1(info(S.port, "c"));
        REQUIRE(json_integer_value(path(i1.j, {"vqs", "train_size"})) == 150);
        REQUIRE(json_is_false(path(i1.j, {"vqs", "trained"})));
        upsert(S.port, "c", x, n, 1);
        jptr i2(info(S.port, "c"));
        REQUIRE(json_is_true(path(i2.j, {"vqs", "trained"})));
        REQUIRE(json_integer_value(json_object_get(i2.j, "indexed_vectors_count")) == (json_int_t)n + 1);

        // every list probed and every point re-scored: the search is exact
        jptr p2(ok_result(http(S.port, "PATCH", "/collections/c", R"({"vqs":{"nprobe":4,"oversampling":100}})")));
        jptr i3(info(S.port, "c"));
        REQUIRE(json_integer_value(path(i3.j, {"vqs", "nprobe"})) == 4);
        REQUIRE(json_number_value(path(i3.j, {"vqs", "oversampling"})) == 100);
        for (size_t qi = 0; qi < 10; qi++) {
            const float *q = &x[(n + 10 + qi) * D];
            REQUIRE(search_ids(S.port, "c", q, k) == brute(x, n + 1, q, k));
        }

        // Qdrant's indexing threshold (KB of float32 vectors) is the training size; through an alias too
        jptr al(ok_result(http(S.port, "POST", "/collections/aliases",
                               R"({"actions":[{"create_alias":{"collection_name":"c","alias_name":"cc"}}]})")));
        jptr p3(ok_result(http(S.port, "PATCH", "/collections/cc",
                               R"({"optimizers_config":{"indexing_threshold":64,"deleted_threshold":null},)"
                               R"("params":{"replication_factor":1,"on_disk_payload":true},"hnsw_config":null})")));
        jptr i4(info(S.port, "c"));
        REQUIRE(json_integer_value(path(i4.j, {"vqs", "train_size"})) == 64 * 1024 / (4 * D));
        REQUIRE(json_integer_value(path(i4.j, {"config", "optimizer_config", "indexing_threshold"})) == 64);

        // refused, naming the field; nothing changes (not even the fields before it)
        const std::string before = dump(path(i4.j, {"vqs"}));
        struct bad {
            std::string body;
            int code;
            std::string needle;
        } cases[] = {
            {R"({"vqs":{"nprobe":2},"hnsw_config":{"m":16}})", 400, "hnsw_config.m"},
            {R"({"vqs":{"nprobe":2},"optimizers_config":{"deleted_threshold":0.5}})", 400, "deleted_threshold"},
            {R"({"vqs":{"nprobe":2},"params":{"replication_factor":2}})", 400, "params.replication_factor"},
            {R"({"vqs":{"nprobe":2},"params":{"on_disk_payload":false}})", 400, "params.on_disk_payload"},
            {R"({"vqs":{"nprobe":2},"params":{"read_fan_out_factor":1}})", 400, "read_fan_out_factor"},
            {R"({"vqs":{"nprobe":2},"sparse_vectors":{"s":{}}})", 400, "sparse"},
            {R"({"vqs":{"nprobe":2},"quantization_config":{"scalar":{"type":"int8"}}})", 400, "quantization_config"},
            {R"({"vqs":{"nprobe":2},"vectors":{"":{"on_disk":true}}})", 400, "vectors"},
            {R"({"vqs":{"nprobe":2},"metadata":{"a":1}})", 400, "metadata"},
            {R"({"vqs":{"nprobe":2},"strict_mode_config":{"enabled":true}})", 400, "strict_mode_config"},
            {R"({"vqs":{"nprobe":2},"colour":"blue"})", 400, "colour"},
            {R"({"vqs":{"nprobe":2,"spec":"PQ2x8"}})", 400, "\"spec\""},
            {R"({"vqs":{"nprobe":2,"rerank":"none"}})", 400, "\"rerank\""},
            {R"({"vqs":{"nprobe":0}})", 400, "nprobe"},
            {R"({"vqs":{"oversampling":0.5}})", 400, "oversampling"},
            {R"({"vqs":{"train_size":10},"optimizers_config":{"indexing_threshold":1}})", 400, "give one"},
            {R"({"vqs":{"nprobe":2})", 400, "malformed JSON"},
        };
        for (auto &c : cases) {
            INFO(c.body);
            require_error(http(S.port, "PATCH", "/collections/c", c.body), c.code, c.needle);
        }
        jptr i5(info(S.port, "c"));
        REQUIRE(dump(path(i5.j, {"vqs"})) == before);
        require_error(http(S.port, "PATCH", "/collections/nope", R"({"vqs":{"nprobe":2}})"), 404, "nope");
    }
    server S(dir); // persisted
    jptr i(info(S.port, "c"));
    REQUIRE(json_integer_value(path(i.j, {"vqs", "nprobe"})) == 4);
    REQUIRE(json_number_value(path(i.j, {"vqs", "oversampling"})) == 100);
    REQUIRE(json_integer_value(path(i.j, {"vqs", "train_size"})) == 64 * 1024 / (4 * D));
    for (size_t qi = 0; qi < 5; qi++) {
        const float *q = &x[(n + 20 + qi) * D];
        REQUIRE(search_ids(S.port, "c", q, k) == brute(x, n + 1, q, k));
    }
}

TEST_CASE("colls_ex: collection info has the fields Qdrant's clients read, and create refuses what vqs does not "
          "honour",
          "[colls_ex][info]")
{
    tmpdir t;
    server S(t.file("data"));
    jptr made(ok_result(http(S.port, "PUT", "/collections/c",
                             R"({"vectors":{"size":8,"distance":"Cosine","on_disk":true},"shard_number":1,)"
                             R"("replication_factor":1,"write_consistency_factor":1,"on_disk_payload":true,)"
                             R"("hnsw_config":null,"wal_config":null,"sparse_vectors":{},)"
                             R"("optimizers_config":{"indexing_threshold":2},)"
                             R"("quantization_config":{"scalar":{"type":"int8","quantile":0.99,"always_ram":true}}})")));
    auto x = synth(30, D, 5);
    upsert(S.port, "c", x, 0, 30);
    jptr in(info(S.port, "c"));
    json_t *i = in.j;
    REQUIRE(std::string(json_string_value(json_object_get(i, "status"))) == "green");
    REQUIRE(std::string(json_string_value(json_object_get(i, "optimizer_status"))) == "ok");
    REQUIRE(json_integer_value(json_object_get(i, "points_count")) == 30);
    REQUIRE(json_integer_value(json_object_get(i, "vectors_count")) == 30);
    REQUIRE(json_integer_value(json_object_get(i, "segments_count")) == 1);
    // indexing_threshold 2 KB = 64 points of 8 float32: not trained at 30
    REQUIRE(json_integer_value(json_object_get(i, "indexed_vectors_count")) == 0);
    REQUIRE(json_integer_value(path(i, {"vqs", "train_size"})) == 64);
    REQUIRE(json_integer_value(path(i, {"config", "params", "vectors", "size"})) == 8);
    REQUIRE(std::string(json_string_value(path(i, {"config", "params", "vectors", "distance"}))) == "Cosine");
    REQUIRE(json_is_true(path(i, {"config", "params", "vectors", "on_disk"})));
    REQUIRE(json_integer_value(path(i, {"config", "params", "shard_number"})) == 1);
    REQUIRE(json_is_true(path(i, {"config", "params", "on_disk_payload"})));
    REQUIRE(json_integer_value(path(i, {"config", "hnsw_config", "m"})) == 0); // no graph
    REQUIRE(json_is_integer(path(i, {"config", "hnsw_config", "ef_construct"})));
    REQUIRE(json_is_integer(path(i, {"config", "hnsw_config", "full_scan_threshold"})));
    REQUIRE(json_integer_value(path(i, {"config", "optimizer_config", "indexing_threshold"})) == 2);
    REQUIRE(json_is_integer(path(i, {"config", "optimizer_config", "default_segment_number"})));
    REQUIRE(json_is_integer(path(i, {"config", "optimizer_config", "flush_interval_sec"})));
    REQUIRE(json_is_null(path(i, {"config", "wal_config"})));
    REQUIRE(std::string(json_string_value(path(i, {"config", "quantization_config", "scalar", "type"}))) == "int8");
    REQUIRE(json_number_value(path(i, {"config", "quantization_config", "scalar", "quantile"})) ==
            Approx(0.99).epsilon(1e-6));
    REQUIRE(json_number_value(path(i, {"vqs", "clip"})) == Approx(0.99).epsilon(1e-6));
    REQUIRE(json_is_object(json_object_get(i, "payload_schema")));
    REQUIRE(std::string(json_string_value(path(i, {"vqs", "rerank"}))) == "disk");

    // on_disk false keeps the full vectors in memory
    jptr m(ok_result(http(S.port, "PUT", "/collections/m", R"({"vectors":{"size":4,"distance":"Dot","on_disk":false}})")));
    jptr mi(info(S.port, "m"));
    REQUIRE(std::string(json_string_value(path(mi.j, {"vqs", "rerank"}))) == "memory");
    REQUIRE(json_is_false(path(mi.j, {"config", "params", "vectors", "on_disk"})));

    struct bad {
        std::string body, needle;
    } cases[] = {
        {R"({"vectors":{"dense":{"size":8,"distance":"Cosine","multivector_config":{"comparator":"max_sim"}}}})",
         "\"vectors\".\"dense\".\"multivector_config\": not supported"},
        {R"({"vectors":{"size":8,"distance":"Cosine"},"sparse_vectors":{"text":{}}})", "sparse vectors"},
        {R"({"vectors":{"size":8,"distance":"Cosine"},"hnsw_config":{"m":16,"payload_m":4}})", "payload_m"},
        {R"({"vectors":{"size":8,"distance":"Cosine"},"hnsw_config":{"m":1}})", "hnsw_config\".m"},
        {R"({"vectors":{"size":8,"distance":"Cosine"},"hnsw_config":{"m":8,"ef_construct":2}})", "ef_construct"},
        {R"({"vectors":{"size":8,"distance":"Cosine"},"hnsw_config":{"m":8},"vqs":{"spec":"IVF4,SQ8"}})",
         "one or the other"},
        {R"({"vectors":{"size":8,"distance":"Cosine"},"wal_config":{"wal_capacity_mb":32}})", "wal_config"},
        {R"({"vectors":{"size":8,"distance":"Cosine"},"shard_number":2})", "shard_number"},
        {R"({"vectors":{"size":8,"distance":"Cosine"},"sharding_method":"custom"})", "sharding_method"},
        {R"({"vectors":{"size":8,"distance":"Cosine"},"replication_factor":3})", "replication_factor"},
        {R"({"vectors":{"size":8,"distance":"Cosine"},"on_disk_payload":false})", "on_disk_payload"},
        {R"({"vectors":{"size":8,"distance":"Cosine"},"optimizers_config":{"memmap_threshold":1}})", "memmap_threshold"},
        {R"({"vectors":{"size":8,"distance":"Cosine"},"metadata":{"a":1}})", "metadata"},
        {R"({"vectors":{"size":8,"distance":"Cosine"},"strict_mode_config":{"enabled":true}})", "strict_mode_config"},
        {R"({"vectors":{"size":8,"distance":"Cosine"},"colour":"blue"})", "colour"},
        {R"({"vectors":{"size":8,"distance":"Cosine","multivector_config":{"comparator":"max_sim"}}})",
         "multivector_config"},
        {R"({"vectors":{"size":8,"distance":"Cosine","datatype":"float16"}})", "datatype"},
        {R"({"vectors":{"size":8,"distance":"Cosine","hnsw_config":{"on_disk":true}}})", "hnsw_config\".on_disk"},
        {R"({"vectors":{"size":8,"distance":"Manhattan"}})", "Manhattan"},
        {R"({"vectors":{"size":8,"distance":"Cosine","sizes":1}})", "sizes"},
        {R"({"vectors":{"size":8,"distance":"Cosine"},"quantization_config":{"scalar":{"always_ram":false}}})",
         "always_ram"},
        {R"({"vectors":{"size":8,"distance":"Cosine"},"quantization_config":{"scalar":{"type":"int8","x":1}}})",
         "scalar.x"},
        {R"({"vectors":{"size":8,"distance":"Cosine"},"quantization_config":{"scalar":{},"binary":{}}})",
         "quantization_config"},
    };
    for (auto &c : cases) {
        INFO(c.body);
        require_error(http(S.port, "PUT", "/collections/n", c.body), 400, c.needle);
    }
    jptr list(ok_result(http(S.port, "GET", "/collections")));
    REQUIRE(json_array_size(json_object_get(list.j, "collections")) == 2); // c and m only
}

// Qdrant's hnsw_config at create asks for vqs's graph (VAMANA<2m>/L<ef_construct>, and /D with
// on_disk: its links in a mapped file); collection info reports it back in Qdrant's fields;
// params.hnsw_ef is the search beam; points upserted, deleted and upserted again through HTTP are
// found as exact search finds them, after a restart too.
TEST_CASE("colls_ex: hnsw_config creates a graph collection, hnsw_ef is its beam, upserts and deletes go "
          "through it",
          "[api][graph]")
{
  for (int disk : {0, 1}) {
    INFO("hnsw_config.on_disk " << disk);
    tmpdir t;
    const std::string dir = t.path + "/data";
    const size_t n = 600, k = 5;
    auto x = synth(n + 40, D, 77);
    auto search_ef = [&](int port, const float *q, int ef) {
        jptr r(ok_result(http(port, "POST", "/collections/g/points/search",
                              R"({"vector":)" + vec_json(q, D) + R"(,"limit":)" + std::to_string(k) +
                                  R"(,"params":{"hnsw_ef":)" + std::to_string(ef) + "}}")));
        std::vector<uint64_t> ids;
        for (size_t i = 0; i < json_array_size(r.j); i++)
            ids.push_back((uint64_t)json_integer_value(json_object_get(json_array_get(r.j, i), "id")));
        return ids;
    };
    {
        server S(dir);
        jptr c(ok_result(http(S.port, "PUT", "/collections/g",
                              R"({"vectors":{"size":8,"distance":"Euclid"},"hnsw_config":{"m":8,"ef_construct":40)" +
                                  std::string(disk ? R"(,"on_disk":true},)" : "},") +
                                  R"("vqs":{"spec":"SQ8","train_size":0}})")));
        jptr i(info(S.port, "g"));
        REQUIRE(std::string(json_string_value(path(i.j, {"vqs", "spec"}))) ==
                (disk ? "VAMANA16/L40/D,SQ8" : "VAMANA16/L40,SQ8"));
        REQUIRE(json_is_true(path(i.j, {"config", "hnsw_config", "on_disk"})) == disk);
        REQUIRE(json_integer_value(path(i.j, {"config", "hnsw_config", "m"})) == 8);
        REQUIRE(json_integer_value(path(i.j, {"config", "hnsw_config", "ef_construct"})) == 40);
        upsert(S.port, "g", x, 0, n);
        // delete a third, upsert ten of them again
        std::string del = R"({"points":[)";
        for (size_t id = 0; id < n / 3; id++)
            del += (id ? "," : "") + std::to_string(id);
        del += "]}";
        jptr dr(ok_result(http(S.port, "POST", "/collections/g/points/delete?wait=true", del)));
        upsert(S.port, "g", x, 0, 10);
        REQUIRE(count(S.port, "g") == n - n / 3 + 10);
        for (size_t qi = 0; qi < 20; qi++) {
            const float *q = &x[(n + qi) * D];
            auto got = search_ef(S.port, q, (int)n); // a beam over every node: exact on the codes, re-scored
            std::vector<uint64_t> want;
            std::vector<std::pair<double, uint64_t>> dd;
            for (size_t id = 0; id < n; id++) {
                if (id >= 10 && id < n / 3)
                    continue;
                double s2 = 0;
                for (size_t j = 0; j < D; j++)
                    s2 += ((double)x[id * D + j] - q[j]) * ((double)x[id * D + j] - q[j]);
                dd.push_back({s2, id});
            }
            std::sort(dd.begin(), dd.end());
            for (size_t j = 0; j < k; j++)
                want.push_back(dd[j].second);
            REQUIRE(got == want);
        }
        require_error(http(S.port, "POST", "/collections/g/points/search",
                           R"({"vector":)" + vec_json(&x[0], D) + R"(,"params":{"hnsw_ef":0}})"),
                      400, "hnsw_ef");
    }
    server S(dir); // reopened: the graph is read back from its snapshot
    jptr i(info(S.port, "g"));
    REQUIRE(json_integer_value(path(i.j, {"config", "hnsw_config", "m"})) == 8);
    REQUIRE(json_is_true(path(i.j, {"config", "hnsw_config", "on_disk"})) == disk);
    REQUIRE(count(S.port, "g") == n - n / 3 + 10);
    const float *q = &x[(n + 3) * D];
    auto a = search_ef(S.port, q, (int)n);
    REQUIRE(a.size() == k);
    for (auto id : a)
        REQUIRE(!(id >= 10 && id < n / 3));
  }
  // on_disk on a spec's own graph adds /D; with no graph it is refused (above: the bad bodies)
  tmpdir t;
  server S(t.path + "/data");
  jptr c(ok_result(http(S.port, "PUT", "/collections/v",
                        R"({"vectors":{"size":8,"distance":"Dot","hnsw_config":{"on_disk":true}},)"
                        R"("vqs":{"spec":"VAMANA12,SQ8"}})")));
  jptr i(info(S.port, "v"));
  REQUIRE(std::string(json_string_value(path(i.j, {"vqs", "spec"}))) == "VAMANA12/D,SQ8");
  REQUIRE(json_is_true(path(i.j, {"config", "hnsw_config", "on_disk"})));
  require_error(http(S.port, "PUT", "/collections/w",
                     R"({"vectors":{"size":8,"distance":"Dot"},"hnsw_config":{"m":0,"on_disk":true}})"),
                400, "no graph is asked for");
}

TEST_CASE("colls_ex: a wrong method on an existing route is a 405 with Allow, unknown paths and collections stay 404",
          "[colls_ex][405]")
{
    tmpdir t;
    server S(t.file("data"));
    create(S.port, "c");
    struct c405 {
        std::string method, path, allow;
    } cases[] = {
        {"POST", "/", "GET"},
        {"DELETE", "/collections", "GET"},
        {"POST", "/collections/c", "GET, PUT, DELETE, PATCH"},
        {"POST", "/collections/missing", "GET, PUT, DELETE, PATCH"}, // wrong for any collection
        {"GET", "/collections/c/points/search", "POST"},
        {"PATCH", "/collections/c/points", "PUT, POST"},
        {"GET", "/collections/c/points/payload", "POST, PUT"},
        {"GET", "/collections/c/index", "PUT"},
        {"PUT", "/collections/c/exists", "GET"},
        {"PUT", "/collections/aliases", "POST"},
        {"POST", "/aliases", "GET"},
        {"POST", "/collections/c/aliases", "GET"},
        {"DELETE", "/collections/c/points/count", "POST"},
        {"POST", "/telemetry", "GET"},
        {"PUT", "/snapshots", "GET, POST"},
    };
    for (auto &c : cases) {
        INFO(c.method << " " << c.path);
        http_resp r = http(S.port, c.method, c.path, c.method == "GET" || c.method == "DELETE" ? "" : "{}");
        require_error(r, 405, "not allowed");
        REQUIRE(header(r, "Allow") == c.allow);
    }
    require_error(http(S.port, "GET", "/nope"), 404, "Not found");
    require_error(http(S.port, "GET", "/collections/c/nope"), 404, "Not found");
    require_error(http(S.port, "GET", "/collections/missing"), 404, "missing");
    require_error(http(S.port, "POST", "/collections/missing/points/search", R"({"vector":[1]})"), 404, "missing");
    REQUIRE(header(http(S.port, "GET", "/nope"), "Allow").empty());
}

TEST_CASE("colls_ex: the rest of Qdrant's REST API is refused with a 400 naming it, GET / reports the API level",
          "[colls_ex][refused]")
{
    tmpdir t;
    server S(t.file("data"));
    create(S.port, "c");
    struct ref {
        std::string method, path, needle;
    } cases[] = {
        {"GET", "/telemetry", "telemetry"},
        {"GET", "/issues", "issues"},
        {"DELETE", "/issues", "issues"},
        {"GET", "/cluster", "cluster"},
        {"GET", "/cluster/telemetry", "cluster telemetry"},
        {"POST", "/cluster/recover", "cluster"},
        {"DELETE", "/cluster/peer/7", "peers"},
        {"GET", "/locks", "locks"},
        {"GET", "/snapshots", "snapshots"},
        {"POST", "/snapshots", "snapshots"},
        {"GET", "/snapshots/s.snapshot", "snapshots"},
        {"DELETE", "/snapshots/s.snapshot", "snapshots"},
        {"GET", "/collections/c/snapshots", "snapshots"},
        {"POST", "/collections/c/snapshots", "snapshots"},
        {"POST", "/collections/c/snapshots/upload", "snapshots"},
        {"PUT", "/collections/c/snapshots/recover", "snapshots"},
        {"GET", "/collections/c/snapshots/s1", "snapshots"},
        {"DELETE", "/collections/c/snapshots/s1", "snapshots"},
        {"GET", "/collections/c/shards/0/snapshot", "shard snapshots"},
        {"GET", "/collections/c/shards/0/snapshots", "shard snapshots"},
        {"POST", "/collections/c/shards/0/snapshots", "shard snapshots"},
        {"POST", "/collections/c/shards/0/snapshots/upload", "shard snapshots"},
        {"PUT", "/collections/c/shards/0/snapshots/recover", "shard snapshots"},
        {"GET", "/collections/c/shards/0/snapshots/s1", "shard snapshots"},
        {"DELETE", "/collections/c/shards/0/snapshots/s1", "shard snapshots"},
        {"PUT", "/collections/c/shards", "shard keys"},
        {"GET", "/collections/c/shards", "shard keys"},
        {"POST", "/collections/c/shards/delete", "shard keys"},
        {"PUT", "/collections/c/vectors/image", "named vector"},
        {"DELETE", "/collections/c/vectors/image", "named vector"},
        {"GET", "/collections/c/cluster", "cluster"},
        {"POST", "/collections/c/cluster", "cluster"},
        {"GET", "/collections/c/optimizations", "optimizations"},
        {"POST", "/collections/c/points/discover", "discover"},
        {"POST", "/collections/c/points/discover/batch", "discover"},
        {"POST", "/collections/c/facet", "facet"},
        {"POST", "/collections/c/points/search/matrix/pairs", "matrix"},
        {"POST", "/collections/c/points/search/matrix/offsets", "matrix"},
    };
    for (auto &c : cases) {
        INFO(c.method << " " << c.path);
        http_resp r = http(S.port, c.method, c.path, c.method == "GET" || c.method == "DELETE" ? "" : "{}");
        require_error(r, 400, "not supported by vqs: ");
        require_error(r, 400, c.needle);
    }
    // the refused routes have their own counters: /metrics still lists every route once
    http_resp m = http(S.port, "GET", "/metrics");
    REQUIRE(m.code == 200);
    REQUIRE(m.body.find("endpoint=\"search_matrix_offsets\"") != std::string::npos);

    // GET /: Qdrant's VersionInfo (unwrapped), the API level whose shapes vqs follows,
    // within one minor version of the 1.18 clients
    http_resp r = http(S.port, "GET", "/");
    REQUIRE(r.code == 200);
    jptr root(parse(r.body));
    REQUIRE(json_is_string(json_object_get(root.j, "title")));
    std::string v = json_string_value(json_object_get(root.j, "version"));
    REQUIRE(v == "1.18.0");
}
