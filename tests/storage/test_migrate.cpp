// Storage layout versions: a data directory written by the last build of layout 1
// (tests/fixtures/layout_v1, made by make_v1.py there) opens with today's build. A writable open
// migrates it in place (layout 2), a read-only open reads it as it is and changes no byte; either
// way every point, id, payload, deletion and the trained state are what the fixture's generator
// wrote. The expected values below are written from make_v1.py, not read back from vqs.
#include "vqs_test.hpp"

#include "vqs_collection.h"
#include "vqs_store_db.h"

#include <jansson.h>

using namespace vqs_test;

namespace
{

std::string copy_fixture(const tmpdir &t)
{
    std::string dir = t.file("v1");
    std::string cmd = "mkdir -p '" + dir + "' && cp '" VQS_SOURCE_DIR "/tests/fixtures/layout_v1/vqs.mdb' '" VQS_SOURCE_DIR
                      "/tests/fixtures/layout_v1/plain.vec' '" VQS_SOURCE_DIR "/tests/fixtures/layout_v1/trained.vec' '" +
                      dir + "/' && chmod u+w '" + dir + "'/*";
    REQUIRE(std::system(cmd.c_str()) == 0);
    return dir;
}

json_t *payload_of(vqs_coll *c, const vqs_pid &id)
{
    char *p = nullptr;
    REQUIRE_OK(vqs_coll_lookup(c, &id, nullptr, &p));
    REQUIRE(p != nullptr);
    json_error_t je;
    json_t *j = json_loads(p, 0, &je);
    free(p);
    REQUIRE(j != nullptr);
    return j;
}

vqs_pid u64(uint64_t v)
{
    vqs_pid p{};
    p.kind = VQS_PID_U64;
    p.u64 = v;
    return p;
}

vqs_pid uuid_of(int i)
{
    char s[40];
    std::snprintf(s, sizeof s, "8c3f2a1e-0000-4000-8000-%012d", i);
    vqs_pid p{};
    REQUIRE_OK(vqs_pid_parse(s, &p));
    return p;
}

// What make_v1.py wrote, checked through the collection layer.
void check_contents(vqs_catalog *cat)
{
    char **names = nullptr;
    size_t n = 0;
    REQUIRE_OK(vqs_catalog_list(cat, &names, &n));
    REQUIRE(n == 2);
    CHECK(std::string(names[0]) == "plain");
    CHECK(std::string(names[1]) == "trained");
    vqs_catalog_list_free(names, n);

    vqs_coll *c = nullptr;
    REQUIRE_OK(vqs_coll_open(cat, "plain", nullptr, &c));
    CHECK(vqs_coll_count(c) == 29);
    CHECK(vqs_coll_d(c) == 4);
    CHECK(vqs_coll_config_of(c)->metric == VQS_METRIC_COS);
    CHECK(!vqs_coll_is_trained(c));
    const char *cities[] = {"Berlin", "Paris", "Rome"};
    for (int i = 1; i <= 30; i++) {
        vqs_pid id = u64((uint64_t)i);
        if (i == 2) {
            REQUIRE_ERR(vqs_coll_lookup(c, &id, nullptr, nullptr), VQS_ENOTFOUND);
            continue;
        }
        json_t *p = payload_of(c, id);
        CHECK(std::string(json_string_value(json_object_get(p, "city"))) == cities[i % 3]);
        CHECK(json_integer_value(json_object_get(p, "n")) == i);
        CHECK(json_array_size(json_object_get(p, "tags")) == (size_t)(i % 3));
        json_decref(p);
        float v[4];
        REQUIRE_OK(vqs_coll_get(c, &id, v, nullptr));
        double norm = 0;
        for (float x : v)
            norm += (double)x * x;
        CHECK(std::fabs(norm - 1.0) < 1e-5); // cosine collections keep the normalised vector
    }
    // the stored vector of each point is its own nearest neighbour (exact search, untrained)
    for (int i : {1, 7, 30}) {
        vqs_pid id = u64((uint64_t)i);
        float v[4];
        REQUIRE_OK(vqs_coll_get(c, &id, v, nullptr));
        vqs_coll_hit h[1] = {};
        REQUIRE_OK(vqs_coll_search(c, nullptr, 1, v, 1, h));
        CHECK(h[0].id.kind == VQS_PID_U64);
        CHECK(h[0].id.u64 == (uint64_t)i);
    }
    vqs_coll_close(c);

    REQUIRE_OK(vqs_coll_open(cat, "trained", nullptr, &c));
    CHECK(vqs_coll_count(c) == 57);
    CHECK(vqs_coll_is_trained(c));
    CHECK(std::string(vqs_coll_config_of(c)->spec) == "SQ8");
    CHECK(vqs_coll_config_of(c)->rerank == VQS_RERANK_DISK);
    for (int i = 0; i < 60; i++) {
        vqs_pid id = i % 2 ? u64((uint64_t)i) : uuid_of(i);
        if (i == 1 || i == 3 || i == 5) {
            REQUIRE_ERR(vqs_coll_lookup(c, &id, nullptr, nullptr), VQS_ENOTFOUND);
            continue;
        }
        json_t *p = payload_of(c, id);
        CHECK(json_integer_value(json_object_get(p, "group")) == i % 5);
        CHECK(std::string(json_string_value(json_object_get(p, "text"))) == "word" + std::to_string(i) + " other");
        json_decref(p);
        float v[8];
        REQUIRE_OK(vqs_coll_get(c, &id, v, nullptr));
        vqs_coll_hit h[1] = {};
        vqs_coll_search_params sp{};
        sp.rerank = VQS_RERANK_ON; // re-scored with the stored vector: itself at distance 0
        REQUIRE_OK(vqs_coll_search(c, &sp, 1, v, 1, h));
        CHECK(h[0].dist == 0.0f);
        CHECK(h[0].id.kind == id.kind);
        CHECK((id.kind == VQS_PID_U64 ? h[0].id.u64 == id.u64 : !std::memcmp(h[0].id.uuid, id.uuid, 16)));
    }
    vqs_coll_close(c);
}

} // namespace

TEST_CASE("storage: a layout-1 data directory is migrated by a writable open and keeps every point",
          "[storage][migrate]")
{
    tmpdir t;
    std::string dir = copy_fixture(t);
    vqs_db *db = nullptr;
    {
        REQUIRE_OK(vqs_db_open(dir.c_str(), nullptr, &db));
        uint32_t from = 99;
        CHECK(vqs_db_layout(db, &from) == VQS_DB_LAYOUT_VERSION);
        CHECK(from == 1);
        vqs_db_close(db);
    }
    // a second open finds it migrated
    REQUIRE_OK(vqs_db_open(dir.c_str(), nullptr, &db));
    uint32_t from = 99;
    CHECK(vqs_db_layout(db, &from) == VQS_DB_LAYOUT_VERSION);
    CHECK(from == 0);
    vqs_db_close(db);
    vqs_catalog *cat = nullptr;
    REQUIRE_OK(vqs_catalog_open(dir.c_str(), nullptr, &cat));
    check_contents(cat);
    // and it takes writes
    vqs_coll *c = nullptr;
    REQUIRE_OK(vqs_coll_open(cat, "plain", nullptr, &c));
    vqs_pid id = u64(1000);
    float v[4] = {1, 0, 0, 0};
    REQUIRE_OK(vqs_coll_upsert(c, 1, &id, v, nullptr));
    CHECK(vqs_coll_count(c) == 30);
    vqs_coll_close(c);
    vqs_catalog_close(cat);
}

TEST_CASE("storage: a layout-1 data directory opened read-only is read as it is, not a byte changed",
          "[storage][migrate]")
{
    tmpdir t;
    std::string dir = copy_fixture(t);
    auto before = read_bytes(dir + "/vqs.mdb");
    vqs_catalog_opts o{};
    o.read_only = 1;
    vqs_catalog *cat = nullptr;
    REQUIRE_OK(vqs_catalog_open(dir.c_str(), &o, &cat));
    check_contents(cat);
    vqs_catalog_close(cat);
    CHECK(read_bytes(dir + "/vqs.mdb") == before);
    vqs_db *db = nullptr;
    REQUIRE_OK(vqs_db_open(dir.c_str(), nullptr, &db)); // then migrated by a writer
    uint32_t from = 0;
    CHECK(vqs_db_layout(db, &from) == VQS_DB_LAYOUT_VERSION);
    CHECK(from == 1);
    vqs_db_close(db);
}
