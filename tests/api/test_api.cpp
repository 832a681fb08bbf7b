// Tests of the HTTP service (api/) over real sockets on loopback, with real LMDB
// files under the server:
// - the fiori RAG chunks (real MiniLM embeddings and their metadata as payloads) go in over
//   HTTP, train automatically, and every search, filtered or not, JSON or binary, equals the
//   in-process search of the same collection after the server stops; a restart serves the same;
// - bad input: each malformed request gets a 4xx naming what was wrong and changes nothing;
// - the api key (401), the body limit (413), and a bounded fuzz run the server must survive;
// - `vqs serve` stops on SIGTERM after the requests in flight and serves the same data again.
#include "vqs_test.hpp"

#include "vqs_http.h"

#include <arpa/inet.h>
#include <cmath>
#include <csignal>
#include <cstring>
#include <fstream>
#include <jansson.h>
#include <netinet/in.h>
#include <random>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace vqs_test;

#include "http_client.hpp"

using namespace vqs_http_test;

namespace
{

struct fiori {
    size_t n = 778, d = 384;
    std::vector<float> x;
    std::vector<json_t *> payloads; // owned
    fiori()
    {
        std::string e = data_path("fiori_docs_minilm384/embeddings.bin");
        std::string rp = data_path("fiori_docs_minilm384/records.jsonl");
        x.resize(n * d);
        FILE *f = std::fopen(e.c_str(), "rb");
        REQUIRE(f);
        REQUIRE(std::fread(x.data(), sizeof(float), n * d, f) == n * d);
        std::fclose(f);
        std::ifstream in(rp);
        std::string line;
        while (std::getline(in, line)) {
            json_t *j = parse(line);
            json_object_del(j, "content");
            json_object_del(j, "excerpt");
            payloads.push_back(j);
        }
        REQUIRE(payloads.size() == n);
    }
    ~fiori()
    {
        for (auto *p : payloads)
            json_decref(p);
    }
    bool keep(size_t i) const // the filter of the tests below
    {
        const char *c = json_string_value(json_object_get(payloads[i], "category"));
        json_t *w = json_object_get(payloads[i], "wordCount");
        return c && std::string(c) == "Sapui5" && json_is_integer(w) && json_integer_value(w) >= 200 &&
               json_integer_value(w) < 600;
    }
};

const char *FILTER = R"({"must":[{"key":"category","match":{"value":"Sapui5"}},)"
                     R"({"key":"wordCount","range":{"gte":200,"lt":600}}]})";

int keep_fiori(void *ctx, int64_t iid) { return static_cast<const fiori *>(ctx)->keep((size_t)iid); }

struct hit {
    uint64_t id;
    double score;
};

std::vector<hit> hits_of(const json_t *arr)
{
    std::vector<hit> h;
    REQUIRE(json_is_array(arr));
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *p = json_array_get(arr, i);
        REQUIRE(json_is_integer(json_object_get(p, "id")));
        h.push_back({(uint64_t)json_integer_value(json_object_get(p, "id")),
                     json_number_value(json_object_get(p, "score"))});
    }
    return h;
}

} // namespace

TEST_CASE("api: fiori RAG chunks over HTTP equal the in-process search (filtered, binary, batch) and survive a "
          "restart",
          "[api][data]")
{
    fiori F;
    tmpdir t;
    std::string dir = t.file("data");
    const size_t k = 10, nq = 25;
    std::vector<std::vector<hit>> plain(nq), filtered(nq);
    {
        server S(dir);
        REQUIRE(ok_result(http(S.port, "PUT", "/collections/fiori",
                               R"({"vectors":{"size":384,"distance":"Cosine"},)"
                               R"("vqs":{"spec":"PQ48x8","train_size":500,"rerank":"disk","oversampling":4}})")) ==
                json_true());
        json_decref(json_true());
        // upsert in batches of 100 with the metadata as payloads; training happens at 500
        for (size_t b0 = 0; b0 < F.n; b0 += 100) {
            jptr body(json_object());
            json_t *pts = json_array();
            for (size_t i = b0; i < std::min(F.n, b0 + 100); i++) {
                json_t *p = json_object();
                json_object_set_new(p, "id", json_integer((json_int_t)i));
                json_object_set_new(p, "vector", parse(vec_json(&F.x[i * F.d], F.d)));
                json_object_set(p, "payload", F.payloads[i]);
                json_array_append_new(pts, p);
            }
            json_object_set_new(body.j, "points", pts);
            jptr r(ok_result(http(S.port, "PUT", "/collections/fiori/points?wait=true", dump(body.j))));
            REQUIRE(std::string(json_string_value(json_object_get(r.j, "status"))) == "completed");
        }
        jptr info(ok_result(http(S.port, "GET", "/collections/fiori")));
        REQUIRE(json_integer_value(json_object_get(info.j, "points_count")) == (json_int_t)F.n);
        REQUIRE(json_is_true(json_object_get(json_object_get(info.j, "vqs"), "trained")));
        REQUIRE(json_number_value(json_object_get(json_object_get(info.j, "vqs"), "compression_ratio")) == 32.0);
        size_t nkeep = 0;
        for (size_t i = 0; i < F.n; i++)
            nkeep += F.keep(i);
        jptr cnt(ok_result(http(S.port, "POST", "/collections/fiori/points/count",
                                std::string(R"({"exact":true,"filter":)") + FILTER + "}")));
        REQUIRE(json_integer_value(json_object_get(cnt.j, "count")) == (json_int_t)nkeep);
        REQUIRE(nkeep > 20);
        REQUIRE(nkeep < F.n / 3);

        std::string batch = R"({"searches":[)";
        for (size_t qi = 0; qi < nq; qi++) {
            size_t row = qi * 31;
            std::string v = vec_json(&F.x[row * F.d], F.d);
            jptr r(ok_result(http(S.port, "POST", "/collections/fiori/points/search",
                                  R"({"vector":)" + v + R"(,"limit":10,"with_payload":["category"]})")));
            plain[qi] = hits_of(r.j);
            REQUIRE(plain[qi].size() == k);
            REQUIRE(plain[qi][0].id == row); // the chunk itself first
            REQUIRE(plain[qi][0].score == Approx(1.0).margin(1e-5));
            REQUIRE(json_object_get(json_object_get(json_array_get(r.j, 0), "payload"), "category"));
            REQUIRE(!json_object_get(json_object_get(json_array_get(r.j, 0), "payload"), "title"));
            // filtered: k results, all matching (applied during the search, not after it)
            jptr rf(ok_result(http(S.port, "POST", "/collections/fiori/points/search",
                                   R"({"vector":)" + v + R"(,"limit":10,"with_payload":true,"filter":)" + FILTER +
                                       "}")));
            filtered[qi] = hits_of(rf.j);
            REQUIRE(filtered[qi].size() == k);
            for (auto &h : filtered[qi])
                REQUIRE(F.keep(h.id));
            // the binary fast path answers the same
            auto bin = http(S.port, "POST", "/collections/fiori/points/search?limit=10",
                            std::string((const char *)&F.x[row * F.d], F.d * sizeof(float)), "",
                            "application/octet-stream");
            jptr rb(ok_result(bin));
            auto hb = hits_of(rb.j);
            REQUIRE(hb.size() == k);
            for (size_t j = 0; j < k; j++) {
                REQUIRE(hb[j].id == plain[qi][j].id);
                REQUIRE(hb[j].score == Approx(plain[qi][j].score).epsilon(1e-6));
            }
            // the query API, with an offset: the results 3..7 of the same search with limit 8
            jptr rq(ok_result(http(S.port, "POST", "/collections/fiori/points/query",
                                   R"({"query":)" + v + R"(,"limit":5,"offset":3})")));
            jptr r8(ok_result(http(S.port, "POST", "/collections/fiori/points/search",
                                   R"({"vector":)" + v + R"(,"limit":8})")));
            auto hq = hits_of(json_object_get(rq.j, "points")), h8 = hits_of(r8.j);
            REQUIRE(hq.size() == 5);
            for (size_t j = 0; j < 5; j++)
                REQUIRE(hq[j].id == h8[j + 3].id);
            batch += (qi ? "," : "") + std::string(R"({"vector":)") + v + R"(,"limit":10})";
        }
        batch += "]}";
        jptr rbatch(ok_result(http(S.port, "POST", "/collections/fiori/points/search/batch", batch)));
        REQUIRE(json_array_size(rbatch.j) == nq);
        for (size_t qi = 0; qi < nq; qi++) {
            auto hb = hits_of(json_array_get(rbatch.j, qi));
            for (size_t j = 0; j < k; j++)
                REQUIRE(hb[j].id == plain[qi][j].id);
        }
        // the query API by point id: the stored vector is the query, the point itself excluded (as Qdrant)
        jptr qid(ok_result(http(S.port, "POST", "/collections/fiori/points/query", R"({"query":31,"limit":3})")));
        REQUIRE(hits_of(json_object_get(qid.j, "points")).size() == 3);
        for (auto &h : hits_of(json_object_get(qid.j, "points")))
            REQUIRE(h.id != 31);
        require_error(http(S.port, "POST", "/collections/fiori/points/query", R"({"query":99999})"), 404, "99999");
                // retrieve: payload and stored (normalised) vector
        jptr got(ok_result(http(S.port, "POST", "/collections/fiori/points",
                                R"({"ids":[7, 777, 100000],"with_payload":true,"with_vector":true})")));
        REQUIRE(json_array_size(got.j) == 2);
        json_t *p7 = json_array_get(got.j, 0);
        REQUIRE(json_equal(json_object_get(p7, "payload"), F.payloads[7]));
        REQUIRE(json_array_size(json_object_get(p7, "vector")) == F.d);
    }
    // the server is stopped: the same collection in-process gives the same answers
    {
        vqs_catalog *cat = nullptr;
        REQUIRE_OK(vqs_catalog_open(dir.c_str(), nullptr, &cat));
        vqs_coll *c = nullptr;
        REQUIRE_OK(vqs_coll_open(cat, "fiori", nullptr, &c));
        for (size_t qi = 0; qi < nq; qi++) {
            for (int withf : {0, 1}) {
                std::vector<vqs_pid> ids(k);
                std::vector<float> dist(k);
                vqs_coll_search_params p = {};
                if (withf) {
                    p.filter = keep_fiori; // internal ids = upsert order = the ids here
                    p.filter_ctx = &F;
                }
                REQUIRE_OK(coll_search_arrays(c, &p, 1, &F.x[qi * 31 * F.d], k, ids.data(), dist.data(), nullptr));
                auto &h = withf ? filtered[qi] : plain[qi];
                for (size_t j = 0; j < k; j++) {
                    INFO("query " << qi << " filtered " << withf << " rank " << j);
                    REQUIRE(ids[j].u64 == h[j].id);
                    REQUIRE(dist[j] == Approx(h[j].score).epsilon(1e-6));
                }
            }
        }
        vqs_coll_close(c);
        vqs_catalog_close(cat);
    }
    // restart: the same data, the same answers
    server S(dir);
    for (size_t qi = 0; qi < nq; qi += 6) {
        jptr r(ok_result(http(S.port, "POST", "/collections/fiori/points/search",
                              R"({"vector":)" + vec_json(&F.x[qi * 31 * F.d], F.d) + R"(,"limit":10,"filter":)" +
                                  FILTER + "}")));
        auto h = hits_of(r.j);
        for (size_t j = 0; j < k; j++)
            REQUIRE(h[j].id == filtered[qi][j].id);
    }
    // drop
    REQUIRE(ok_result(http(S.port, "DELETE", "/collections/fiori")) == json_true());
    json_decref(json_true());
    require_error(http(S.port, "GET", "/collections/fiori"), 404, "fiori");
    jptr lst(ok_result(http(S.port, "GET", "/collections")));
    REQUIRE(json_array_size(json_object_get(lst.j, "collections")) == 0);
}

namespace
{

// a small collection for the error tests: 8-d, L2, 40 points with ids 0..39
void make_small(int port, const char *name = "s")
{
    REQUIRE(ok_result(http(port, "PUT", std::string("/collections/") + name,
                           R"({"vectors":{"size":8,"distance":"Euclid"},"vqs":{"spec":"SQ8","train_size":30}})")) ==
            json_true());
    json_decref(json_true());
    auto x = synth(40, 8, 7);
    std::string body = R"({"points":[)";
    for (size_t i = 0; i < 40; i++)
        body += (i ? "," : "") + std::string(R"({"id":)") + std::to_string(i) + R"(,"vector":)" +
                vec_json(&x[i * 8], 8) + R"(,"payload":{"tag":")" + (i % 2 ? "odd" : "even") + R"("}})";
    body += "]}";
    jptr r(ok_result(http(port, "PUT", std::string("/collections/") + name + "/points", body)));
}

std::string state(int port) // count + a search, to show nothing changed
{
    jptr c(ok_result(http(port, "POST", "/collections/s/points/count", "{}")));
    jptr r(ok_result(http(port, "POST", "/collections/s/points/search",
                          R"({"vector":[0,0,0,0,0,0,0,0],"limit":40,"with_payload":true})")));
    return dump(c.j) + dump(r.j);
}

} // namespace

TEST_CASE("api: bad input gets a 4xx naming what was wrong and changes nothing", "[api]")
{
    tmpdir t;
    vqs_server_opts o = {};
    o.max_body = 64 * 1024;
    o.max_batch = 100;
    server S(t.file("data"), o);
    make_small(S.port);
    std::string before = state(S.port);
    const std::string P = "/collections/s/points";
    const std::string v8 = "[1,2,3,4,5,6,7,8]";
    // binary bodies: upsert records are u64 id + 8 float32, search bodies 8 float32
    float f8[8] = {1, 2, 3, 4, 5, 6, 7, 8}, n8[8] = {1, 2, 3, NAN, 5, 6, 7, 8};
    uint64_t id5 = 5;
    const std::string q8((const char *)f8, sizeof f8), qnan((const char *)n8, sizeof n8);
    const std::string rec_nan = std::string((const char *)&id5, 8) + qnan;
    struct bad {
        std::string method, path, body;
        int code;
        std::string needle;
    } cases[] = {
        {"PUT", P, R"({"points":[{"id":100,"vector":[1,2,3)", 400, "malformed JSON"},
        {"PUT", P, R"({"points":[{"id":100,"vector":)" + v8 + "}],}", 400, "malformed JSON"},
        {"PUT", P, "", 400, "JSON body"},
        {"PUT", P, "[1,2]", 400, "must be an object"},
        {"PUT", P, R"({"points":[{"id":100,"vector":[1,2,3]}]})", 400, "dimension 3"},
        {"PUT", P, R"({"points":[{"id":100,"vector":[1,2,3,4,5,6,7,NaN]}]})", 400, "malformed JSON"},
        {"PUT", P, R"({"points":[{"id":100,"vector":[1,2,3,4,5,6,7,1e999]}]})", 400, "malformed JSON"},
        {"PUT", P, R"({"points":[{"id":100,"vector":[1,2,3,4,5,6,7,1e300]}]})", 400, "element 7"},
        {"PUT", P, R"({"points":[{"id":100,"vector":[1,2,3,4,5,6,7,"8"]}]})", 400, "element 7"},
        {"PUT", P, R"({"points":[{"id":1.5,"vector":)" + v8 + "}]}", 400, "point id"},
        {"PUT", P, R"({"points":[{"id":-4,"vector":)" + v8 + "}]}", 400, "negative"},
        {"PUT", P, R"({"points":[{"id":"not-a-uuid","vector":)" + v8 + "}]}", 400, "not a UUID"},
        {"PUT", P, R"({"points":[{"id":true,"vector":)" + v8 + "}]}", 400, "point id"},
        {"PUT", P, R"({"points":[{"id":100,"vector":)" + v8 + R"(,"payload":[1]}]})", 400, "payload"},
        // a good point and a bad one: neither is stored
        {"PUT", P, R"({"points":[{"id":100,"vector":)" + v8 + R"(},{"id":101,"vector":[1]}]})", 400, "point 1"},
        {"PUT", P, R"({"points":[{"id":100,"vector":)" + v8 + R"(},{"id":100,"vector":)" + v8 + "}]}", 400,
         "twice"},
        {"PUT", "/collections/nope/points", R"({"points":[]})", 404, "nope"},
        {"POST", "/collections/nope/points/search", R"({"vector":[1]})", 404, "doesn't exist"},
        {"POST", P + "/search", R"({"vector":)" + v8 + R"(,"limit":-1})", 400, "limit"},
        {"POST", P + "/search", R"({"vector":)" + v8 + R"(,"limit":1000000000})", 400, "limit"},
        {"POST", P + "/search", R"({"vector":)" + v8 + R"(,"limit":0})", 400, "limit"},
        {"POST", P + "/search", R"({"vector":)" + v8 + R"(,"limit":5000,"offset":6000})", 400, "offset"},
        {"POST", P + "/search", R"({"vector":[1,2],"limit":3})", 400, "dimension 2"},
        {"POST", P + "/search", R"({"limit":3})", 400, "vector"},
        {"POST", P + "/search", R"({"vector":)" + v8 + R"(,"filter":{"must":[{"key":"tag","match":{}}]}})", 400,
         "filter.must[0]"},
        {"POST", P + "/search", R"({"vector":)" + v8 + R"(,"filter":{"muts":[]}})", 400, "muts"},
        {"POST", P + "/search", R"({"vector":)" + v8 + R"(,"with_payload":3})", 400, "with_payload"},
        {"POST", P + "/search", R"({"vector":)" + v8 + R"(,"params":{"quantization":{"oversampling":0}}})", 400,
         "oversampling"},
        {"POST", P + "/search/batch", R"({"searches":[{"vector":)" + v8 + R"(},{"vector":[1]}]})", 400,
         "searches[1]"},
        {"POST", P + "/delete", R"({"points":["x"]})", 400, "points[0]"},
        {"POST", P + "/search", std::string(4, '\x01') + "bin", 400, "binary search"},
        {"PUT", "/collections/s", R"({"vectors":{"size":8,"distance":"Cosine"}})", 409, "already exists"},
        {"PUT", "/collections/s2", R"({"vectors":{"size":8,"distance":"Manhattan"}})", 400, "distance"},
        {"PUT", "/collections/s2", R"({"vectors":{"size":8,"distance":"Cosine"},"vqs":{"spec":"PQ3x8"}})", 400,
         "PQ3x8"},
        {"PUT", "/collections/s2", R"({"vectors":{"size":0,"distance":"Cosine"}})", 400, "size"},
        {"PUT", "/collections/s2", R"({"vectors":{"size":8,"distance":"Cosine"},"vqs":{"clip":0.3}})", 400,
         "\"vqs\".\"clip\""},
        {"PUT", "/collections/s2", R"({"vectors":{"size":8,"distance":"Cosine"},"vqs":{"clip":1.5}})", 400,
         "\"vqs\".\"clip\""},
        {"PUT", "/collections/s2", R"({"vectors":{"size":8,"distance":"Cosine"},"vqs":{"clip":"0.99"}})", 400,
         "\"vqs\".\"clip\""},
        {"PUT", "/collections/s2", R"({"vectors":{"size":8,"distance":"Cosine"},"vqs":{"clip":0}})", 400,
         "(0.5, 1]"},
        {"PUT", "/collections/bad%20name", R"({"vectors":{"size":8,"distance":"Cosine"}})", 400, "name"},
        {"PUT", "/collections/s2", R"({"vectors":{"size":8,"distance":"Cosine"},"optimizers_config":{"indexing_threshold":-1}})",
         400, "indexing_threshold"},
        {"PUT", "/collections/s2", R"({"vectors":{"size":8,"distance":"Cosine"},"quantization_config":{"product":{"compression":"x3"}}})",
         400, "compression"},
        {"PUT", P, std::string(7, 'x'), 400, "binary upsert: 7 bytes"},
        {"PUT", P, rec_nan, 400, "binary upsert: record 0 (id 5), element 3 is not finite"},
        {"POST", P + "/search", qnan, 400, "binary search: query 0, element 3 is not finite"},
        {"POST", P + "/search?limit=abc", q8, 400, "limit=abc"},
        {"POST", P + "/search?oversampling=0", q8, 400, "oversampling=0"},
    };
    for (auto &c : cases) {
        INFO(c.method << " " << c.path << " " << c.body.substr(0, 200));
        bool bin = c.needle.rfind("binary", 0) == 0 || c.path.find('?') != std::string::npos;
        std::string ctype = bin ? "application/octet-stream" : "application/json";
        require_error(http(S.port, c.method, c.path, c.body, "", ctype), c.code, c.needle);
        REQUIRE(state(S.port) == before);
    }
    // too many points in one batch (max_batch 100)
    std::string many = R"({"points":[)";
    for (int i = 0; i < 101; i++)
        many += (i ? "," : "") + std::string(R"({"id":)") + std::to_string(1000 + i) + R"(,"vector":)" + v8 + "}";
    many += "]}";
    require_error(http(S.port, "PUT", P, many), 400, "at most 100");
    // a body over the limit: 413 before the body is read
    std::string big(70 * 1024, ' ');
    big = R"({"points":[]})" + big;
    auto r = http(S.port, "PUT", P, big);
    REQUIRE(r.code == 413);
    REQUIRE(state(S.port) == before);
    require_error(http(S.port, "GET", "/collections/s2"), 404, "s2");
    // and the good request still works
    jptr ok(ok_result(http(S.port, "PUT", P, R"({"points":[{"id":100,"vector":)" + v8 + "}]}")));
    REQUIRE(state(S.port) != before);
}

// The "vqs" extension's clip (SQ8/SQ4 training ranges): stored with the new collection, shown by GET,
// kept across a restart, and used by the training that happens later, after the restart, when the
// upserts reach train_size: the trained SQ4 grid is exactly that of a codec trained in-process with
// sq_clip 0.9 on the same points (and not the default's).
TEST_CASE("api: the vqs clip of a new collection is stored and used when it trains later", "[api]")
{
    tmpdir t;
    std::string dir = t.file("data");
    const size_t n = 600, d = 16;
    auto x = synth(n, d, 12); // a Gaussian mixture with outliers: clipping changes the ranges
    {
        server S(dir);
        REQUIRE(ok_result(http(S.port, "PUT", "/collections/c",
                               R"({"vectors":{"size":16,"distance":"Euclid"},)"
                               R"("vqs":{"spec":"SQ4","clip":0.9,"train_size":600,"rerank":"none"}})")) ==
                json_true());
        json_decref(json_true());
    }
    server S(dir);
    jptr info(ok_result(http(S.port, "GET", "/collections/c")));
    json_t *vq = json_object_get(info.j, "vqs");
    REQUIRE(json_number_value(json_object_get(vq, "clip")) == Approx(0.9).epsilon(1e-9));
    REQUIRE(json_is_false(json_object_get(vq, "trained")));
    std::string body = R"({"points":[)";
    for (size_t i = 0; i < n; i++)
        body += (i ? "," : "") + std::string(R"({"id":)") + std::to_string(i) + R"(,"vector":)" +
                vec_json(&x[i * d], d) + "}";
    body += "]}";
    jptr up(ok_result(http(S.port, "PUT", "/collections/c/points?wait=true", body)));
    jptr info2(ok_result(http(S.port, "GET", "/collections/c")));
    REQUIRE(json_is_true(json_object_get(json_object_get(info2.j, "vqs"), "trained")));
    S.stop();

    // the stored trained state's SQ4 grid is that of a codec trained in-process with clip 0.9
    auto stored = stored_sq_grid(dir, "c", d);
    REQUIRE(stored == trained_sq4_grid(x.data(), n, d, 0.9f));
    REQUIRE(stored != trained_sq4_grid(x.data(), n, d, 0.0f));
}

TEST_CASE("api: with an api key, a request without the matching key gets 401", "[api]")
{
    tmpdir t;
    vqs_server_opts o = {};
    o.api_key = "s3cret-key";
    server S(t.file("data"), o);
    require_error(http(S.port, "GET", "/collections"), 401, "api-key");
    require_error(http(S.port, "GET", "/collections", "", "api-key: s3cret-kez\r\n"), 401, "api-key");
    require_error(http(S.port, "GET", "/collections", "", "api-key: s3cret-key-and-more\r\n"), 401, "api-key");
    require_error(http(S.port, "GET", "/collections", "", "api-key: \r\n"), 401, "api-key");
    jptr a(ok_result(http(S.port, "GET", "/collections", "", "api-key: s3cret-key\r\n")));
    jptr b(ok_result(http(S.port, "GET", "/collections", "", "Authorization: Bearer s3cret-key\r\n")));
    // health probes stay open, as the README says
    REQUIRE(http(S.port, "GET", "/healthz").code == 200);
    REQUIRE(http(S.port, "GET", "/livez").code == 200);
    REQUIRE(http(S.port, "GET", "/readyz").code == 200);
    // metrics count the refusals
    auto m = http(S.port, "GET", "/metrics", "", "api-key: s3cret-key\r\n");
    REQUIRE(m.code == 200);
    REQUIRE(m.body.find("vqs_http_requests_total{endpoint=\"list_collections\",code=\"2xx\"} 2") != std::string::npos);
    REQUIRE(m.body.find("vqs_http_request_duration_seconds_bucket") != std::string::npos);
}

TEST_CASE("api: a bounded fuzz run of random and mutated requests, the server keeps answering", "[api][fuzz]")
{
    tmpdir t;
    vqs_server_opts o = {};
    o.max_body = 256 * 1024;
    server S(t.file("data"), o);
    make_small(S.port);
    make_small(S.port, "s2");
    const char *paths[] = {"/collections/s/points",        "/collections/s/points/search",
                           "/collections/s/points/search/batch", "/collections/s/points/query",
                           "/collections/s/points/count",  "/collections/s/points/delete",
                           "/collections/s",               "/collections",
                           "/collections/s/points/7",      "/collections/s2/points/search",
                           "/collections/s/train",         "/metrics",
                           "/",                            "/collections/s/points/search?limit=3"};
    const char *methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH"};
    const std::string v8 = "[0.1,2,3,4,5,6,7,8]";
    const std::string seeds[] = {
        R"({"vector":)" + v8 + R"(,"limit":5,"with_payload":true,"filter":{"must":[{"key":"tag","match":{"value":"odd"}}],"should":[{"key":"x","range":{"gt":1}}]}})",
        R"({"points":[{"id":3,"vector":)" + v8 + R"(,"payload":{"tag":"odd","n":[1,2,{"a":null}]}}]})",
        R"({"searches":[{"vector":)" + v8 + R"(,"limit":2},{"vector":)" + v8 + R"(,"offset":1}]})",
        R"({"query":{"nearest":)" + v8 + R"(},"limit":3,"params":{"quantization":{"rescore":false}}})",
        R"({"filter":{"must_not":[{"has_id":[1,2,"5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]}]}})",
        R"({"batch":{"ids":[20,21],"vectors":[)" + v8 + "," + v8 + R"(],"payloads":[{},null]}})",
        R"({"vectors":{"size":8,"distance":"Dot"},"vqs":{"spec":"IVF4,PQ2x4","train_size":10}})",
    };
    std::mt19937_64 rng(20261123);
    int answered = 0;
    for (int it = 0; it < 1500; it++) {
        std::string body = seeds[rng() % 7];
        int nmut = (int)(rng() % 6);
        for (int m = 0; m < nmut && !body.empty(); m++) {
            size_t pos = rng() % body.size();
            switch (rng() % 5) {
            case 0: body[pos] = (char)(rng() % 256); break;
            case 1: body.erase(pos, 1 + rng() % 8); break;
            case 2: body.insert(pos, std::string(1 + rng() % 3, "{}[],:\"0-e9.\\"[rng() % 13])); break;
            case 3: body.resize(pos); break;
            default: body.insert(pos, body.substr(rng() % body.size(), rng() % 40)); break;
            }
        }
        if (rng() % 20 == 0) { // random bytes
            body.resize(rng() % 200);
            for (auto &ch : body)
                ch = (char)(rng() % 256);
        }
        std::string path = paths[rng() % (sizeof paths / sizeof *paths)];
        if (rng() % 30 == 0)
            path += std::string(1, (char)('!' + rng() % 90));
        if (rng() % 8 == 0) { // percent escapes, good and bad, anywhere in the path
            const char hx[] = "0123456789abcdefABCDEFgz%/";
            std::string esc = "%";
            for (int k = (int)(rng() % 3); k > 0; k--)
                esc += hx[rng() % (sizeof hx - 1)];
            path.insert(rng() % path.size(), esc);
        }
        std::string method = methods[rng() % 5];
        std::string ctype = rng() % 10 == 0 ? "application/octet-stream" : "application/json";
        auto r = http(S.port, method, path, body, "", ctype);
        INFO("request " << it << ": " << method << " " << path << " " << body.substr(0, 300));
        REQUIRE(r.code >= 200);
        REQUIRE(r.code < 500);
        answered++;
        if (it % 100 == 0)
            REQUIRE(http(S.port, "GET", "/healthz").code == 200);
    }
    REQUIRE(answered == 1500);
    // still serving (the fuzz may have dropped or recreated "s"; "s2" is never dropped)
    REQUIRE(http(S.port, "GET", "/healthz").code == 200);
    jptr l(ok_result(http(S.port, "GET", "/collections")));
    jptr c(ok_result(http(S.port, "POST", "/collections/s2/points/count", "{}")));
    REQUIRE(json_integer_value(json_object_get(c.j, "count")) >= 40);
}

TEST_CASE("api: vqs serve stops on SIGTERM after the requests in flight, and serves the same data again",
          "[api]")
{
    tmpdir t;
    std::string dir = t.file("data");
    auto start = [&](pid_t *pid) {
        FILE *f = nullptr;
        int port = spawn_serve(dir, {"--threads", "2"}, pid, &f);
        return std::make_pair(port, f);
    };
    pid_t pid;
    auto [port, out] = start(&pid);
    make_small(port);
    // a large upsert in flight when SIGTERM arrives: it completes and is durable
    auto x = synth(3000, 8, 9);
    std::string body = R"({"points":[)";
    for (size_t i = 0; i < 3000; i++)
        body += (i ? "," : "") + std::string(R"({"id":)") + std::to_string(1000 + i) + R"(,"vector":)" +
                vec_json(&x[i * 8], 8) + "}";
    body += "]}";
    // the upsert's headers and half its body are sent, then SIGTERM: the
    // request is in flight (the server reports it) when the stop begins,
    // and its second half arrives while the server is stopping
    int fd = connect_from(port);
    REQUIRE(fd >= 0);
    std::string req = "PUT /collections/s/points?wait=true HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                      "Content-Type: application/json\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n";
    size_t half = req.size() + body.size() / 2;
    req += body;
    auto send_all = [&](size_t from, size_t to) {
        while (from < to) {
            ssize_t w = send(fd, req.data() + from, to - from, MSG_NOSIGNAL);
            REQUIRE(w > 0);
            from += (size_t)w;
        }
    };
    send_all(0, half);
    // in flight: this metrics request and the upsert
    double t0 = vqs_now();
    while (metric(port, "vqs_http_requests_in_flight") < 2 && vqs_now() - t0 < 60)
        std::this_thread::yield();
    REQUIRE(metric(port, "vqs_http_requests_in_flight") >= 2);
    kill(pid, SIGTERM);
    send_all(half, req.size());
    http_resp big;
    std::string all;
    char buf[4096];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;)
        all.append(buf, (size_t)n);
    close(fd);
    if (all.compare(0, 9, "HTTP/1.1 ") == 0)
        big.code = std::atoi(all.c_str() + 9);
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    REQUIRE(WIFEXITED(st));
    REQUIRE(WEXITSTATUS(st) == 0);
    char line[512];
    std::string rest;
    while (fgets(line, sizeof line, out))
        rest += line;
    fclose(out);
    REQUIRE(rest.find("stopped") != std::string::npos);
    // the upsert in flight at the stop finished (200) and is durable
    INFO("in-flight upsert: " << all.substr(0, 300));
    REQUIRE(big.code == 200);
    auto [port2, out2] = start(&pid);
    jptr c(ok_result(http(port2, "POST", "/collections/s/points/count", "{}")));
    REQUIRE(json_integer_value(json_object_get(c.j, "count")) == 3040);
    kill(pid, SIGINT);
    REQUIRE(waitpid(pid, &st, 0) == pid);
    REQUIRE(WIFEXITED(st));
    REQUIRE(WEXITSTATUS(st) == 0);
    fclose(out2);
}

TEST_CASE("api: vqs serve stops gracefully whichever of its threads SIGINT reaches", "[api]")
{
    // Threads that exist before main (OpenBLAS's pool) do not block SIGINT;
    // a signal delivered to one of them once killed the server outright.
    // Here SIGINT goes to the first thread other than main that does not
    // block it (or to main when there is none), with tgkill.
    tmpdir t;
    pid_t pid;
    FILE *out = nullptr;
    int port = spawn_serve(t.file("data"), {"--threads", "2"}, &pid, &out);
    REQUIRE(http(port, "GET", "/healthz").code == 200);
    long target = pid;
    for (long tid = pid + 1; tid < pid + 4096; tid++) {
        std::ifstream st("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status");
        std::string line;
        while (st && std::getline(st, line))
            if (line.rfind("SigBlk:", 0) == 0 && (std::stoull(line.substr(7), nullptr, 16) & (1ull << (SIGINT - 1))) == 0)
                target = tid;
        if (target != pid)
            break;
    }
    INFO("SIGINT to thread " << target << " of " << pid);
    REQUIRE(syscall(SYS_tgkill, pid, target, SIGINT) == 0);
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    REQUIRE(WIFEXITED(st));
    REQUIRE(WEXITSTATUS(st) == 0);
    std::string rest;
    char line[512];
    while (fgets(line, sizeof line, out))
        rest += line;
    fclose(out);
    REQUIRE(rest.find("stopped") != std::string::npos);
}
