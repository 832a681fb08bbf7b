// Storage layout versions: data directories written by the last builds of layouts 1 and 2
// (tests/fixtures/layout_v1, made by make_v1.py there; tests/fixtures/layout_v2, made by
// make_v2.py, the same points plus two payload indexes and an alias) open with today's build. A
// writable open migrates one in place (to VQS_DB_LAYOUT_VERSION), a read-only open reads it as it
// is and changes no byte; either way every point, id, vector, payload, deletion, the trained
// state, and (layout 2) the payload indexes and the alias are what the fixture's generator wrote.
// The expected values below are computed from the generators (their random stream replayed by
// pyrandom, a replica of Python's), not read back from vqs.
#include "vqs_test.hpp"

#include "vqs_collection.h"
#include "vqs_store_db.h"

#include <jansson.h>

#include <array>
#include <cmath>
#include <set>

using namespace vqs_test;

namespace
{

std::string copy_fixture(const tmpdir &t, const std::string &which = "layout_v1")
{
    std::string dir = t.file(which);
    std::string src = VQS_SOURCE_DIR "/tests/fixtures/" + which;
    std::string cmd = "mkdir -p '" + dir + "' && cp '" + src + "/vqs.mdb' '" + src + "/plain.vec' '" + src +
                      "/trained.vec' '" + dir + "/' && chmod u+w '" + dir + "'/*";
    REQUIRE(std::system(cmd.c_str()) == 0);
    return dir;
}

// Python's random module (MT19937, seeded as random.seed(int) does: init_by_array over the
// integer's 32-bit words), with random(), uniform() and gauss() as CPython computes them.
struct pyrandom {
    uint32_t mt[624];
    int mti = 625;
    double gauss_next = 0;
    bool has_gauss = false;
    explicit pyrandom(uint32_t seed)
    {
        init(19650218u);
        int i = 1;
        for (int k = 624; k; k--) { // init_by_array with key {seed}
            mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525u)) + seed;
            if (++i >= 624) {
                mt[0] = mt[623];
                i = 1;
            }
        }
        for (int k = 623; k; k--) {
            mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
            if (++i >= 624) {
                mt[0] = mt[623];
                i = 1;
            }
        }
        mt[0] = 0x80000000u;
    }
    void init(uint32_t s)
    {
        mt[0] = s;
        for (mti = 1; mti < 624; mti++)
            mt[mti] = 1812433253u * (mt[mti - 1] ^ (mt[mti - 1] >> 30)) + (uint32_t)mti;
    }
    uint32_t next()
    {
        static const uint32_t mag01[2] = {0, 0x9908b0dfu};
        if (mti >= 624) {
            int kk = 0;
            for (; kk < 624 - 397; kk++) {
                uint32_t y = (mt[kk] & 0x80000000u) | (mt[kk + 1] & 0x7fffffffu);
                mt[kk] = mt[kk + 397] ^ (y >> 1) ^ mag01[y & 1];
            }
            for (; kk < 623; kk++) {
                uint32_t y = (mt[kk] & 0x80000000u) | (mt[kk + 1] & 0x7fffffffu);
                mt[kk] = mt[kk + (397 - 624)] ^ (y >> 1) ^ mag01[y & 1];
            }
            uint32_t y = (mt[623] & 0x80000000u) | (mt[0] & 0x7fffffffu);
            mt[623] = mt[396] ^ (y >> 1) ^ mag01[y & 1];
            mti = 0;
        }
        uint32_t y = mt[mti++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680u;
        y ^= (y << 15) & 0xefc60000u;
        y ^= y >> 18;
        return y;
    }
    double random()
    {
        uint32_t a = next() >> 5, b = next() >> 6;
        return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
    }
    double uniform(double a, double b) { return a + (b - a) * random(); }
    double gauss(double mu, double sigma)
    {
        double z;
        if (has_gauss) {
            z = gauss_next;
            has_gauss = false;
        } else {
            double x2pi = random() * 2 * M_PI, g2rad = std::sqrt(-2.0 * std::log(1.0 - random()));
            z = std::cos(x2pi) * g2rad;
            gauss_next = std::sin(x2pi) * g2rad;
            has_gauss = true;
        }
        return mu + z * sigma;
    }
};
// Python's round(x, 4): the correctly rounded decimal (ties to even on the exact binary value, as
// glibc's printf), read back
inline double round4(double x)
{
    char b[64];
    std::snprintf(b, sizeof b, "%.4f", x);
    return std::strtod(b, nullptr);
}

// The vectors make_v1.py and make_v2.py sent (the same stream): plain's points 1..30
// (uniform(-1, 1), 4 places), then trained's 0..59 (gauss(0, 1), 4 places), as float32.
struct generated {
    std::array<std::array<float, 4>, 31> plain{};
    std::array<std::array<float, 8>, 60> trained{};
    generated()
    {
        pyrandom r(7);
        for (int i = 1; i <= 30; i++)
            for (auto &x : plain[(size_t)i])
                x = (float)round4(r.uniform(-1, 1));
        for (int i = 0; i < 60; i++)
            for (auto &x : trained[(size_t)i])
                x = (float)round4(r.gauss(0, 1));
    }
};

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

std::string key_of(const vqs_pid &p)
{
    char b[40];
    return vqs_pid_format(&p, b);
}

// trained's point i: odd ids integers, even ids UUIDs
vqs_pid trained_id(int i) { return i % 2 ? u64((uint64_t)i) : uuid_of(i); }

// The point ids (formatted) of n internal ids of c.
std::set<std::string> ids_of(vqs_coll *c, const uint64_t *iids, size_t n)
{
    std::set<std::string> out;
    for (size_t i = 0; i < n; i++) {
        vqs_pid id;
        REQUIRE_OK(vqs_coll_lookup_iid(c, iids[i], &id, nullptr));
        out.insert(key_of(id));
    }
    return out;
}

// The points of c whose indexed field matches q, by the payload index.
std::set<std::string> lookup(vqs_coll *c, const char *field, const vqs_db_pquery &q)
{
    uint64_t *iids = nullptr;
    size_t n = 0;
    int over = 0;
    REQUIRE_OK(vqs_coll_pindex_lookup(c, field, &q, 1000, &iids, &n, &over));
    REQUIRE(over == 0);
    auto s = ids_of(c, iids, n);
    free(iids);
    return s;
}

std::set<std::string> city_is(vqs_coll *c, const char *city)
{
    vqs_db_pvalue v = {};
    v.kind = VQS_PV_STR;
    v.s = city;
    v.len = std::strlen(city);
    vqs_db_pquery q = {};
    q.op = VQS_PQ_MATCH;
    q.n = 1;
    q.v = &v;
    return lookup(c, "city", q);
}

std::set<std::string> group_in(vqs_coll *c, int lo, int hi)
{
    vqs_db_pquery q = {};
    q.op = VQS_PQ_RANGE;
    q.lo = lo;
    q.hi = hi;
    return lookup(c, "group", q);
}

// The k best of the live points by brute force over the generated vectors (cosine or L2), as
// formatted ids, best first.
template <size_t D>
std::vector<std::string> brute(const std::vector<std::pair<vqs_pid, std::array<float, D>>> &pts, const float *q,
                               bool cos, size_t k)
{
    std::vector<std::pair<double, std::string>> ex;
    for (auto &p : pts) {
        double s = 0, qn = 0, xn = 0;
        for (size_t j = 0; j < D; j++) {
            if (cos) {
                s += (double)q[j] * p.second[j];
                qn += (double)q[j] * q[j];
                xn += (double)p.second[j] * p.second[j];
            } else {
                s += ((double)q[j] - p.second[j]) * ((double)q[j] - p.second[j]);
            }
        }
        ex.push_back({cos ? -s / std::sqrt(qn * xn) : s, key_of(p.first)});
    }
    std::sort(ex.begin(), ex.end());
    std::vector<std::string> out;
    for (size_t j = 0; j < k && j < ex.size(); j++)
        out.push_back(ex[j].second);
    return out;
}

// What make_v1.py (and for layout 2 make_v2.py) wrote, checked through the collection layer.
void check_contents(vqs_catalog *cat, int layout)
{
    static const generated G;
    char **names = nullptr;
    size_t n = 0;
    REQUIRE_OK(vqs_catalog_list(cat, &names, &n));
    REQUIRE(n == 2);
    CHECK(std::string(names[0]) == "plain");
    CHECK(std::string(names[1]) == "trained");
    vqs_catalog_list_free(names, n);
    vqs_db_alias *al = nullptr;
    size_t nal = 0;
    REQUIRE_OK(vqs_catalog_aliases(cat, &al, &nal));
    if (layout >= 2) {
        REQUIRE(nal == 1);
        CHECK(std::string(al[0].alias) == "docs");
        CHECK(std::string(al[0].coll) == "plain");
    } else {
        CHECK(nal == 0);
    }
    free(al);

    vqs_coll *c = nullptr;
    REQUIRE_OK(vqs_coll_open(cat, "plain", nullptr, &c));
    CHECK(vqs_coll_count(c) == 29);
    CHECK(vqs_coll_d(c) == 4);
    CHECK(vqs_coll_config_of(c)->metric == VQS_METRIC_COS);
    CHECK(!vqs_coll_is_trained(c));
    CHECK(vqs_coll_nvectors(c) == 1);
    CHECK(vqs_coll_vector_name(c, 0) == nullptr);
    const char *cities[] = {"Berlin", "Paris", "Rome"};
    std::vector<std::pair<vqs_pid, std::array<float, 4>>> plain;
    std::set<std::string> by_city[3];
    for (int i = 1; i <= 30; i++) {
        INFO("plain, point " << i);
        vqs_pid id = u64((uint64_t)i);
        if (i == 2) {
            REQUIRE_ERR(vqs_coll_lookup(c, &id, nullptr, nullptr), VQS_ENOTFOUND);
            continue;
        }
        plain.push_back({id, G.plain[(size_t)i]});
        by_city[i % 3].insert(key_of(id));
        json_t *p = payload_of(c, id);
        CHECK(std::string(json_string_value(json_object_get(p, "city"))) == cities[i % 3]);
        CHECK(json_integer_value(json_object_get(p, "n")) == i);
        CHECK(json_array_size(json_object_get(p, "tags")) == (size_t)(i % 3));
        json_decref(p);
        float v[4];
        REQUIRE_OK(vqs_coll_get(c, &id, v, nullptr));
        double norm = 0;
        for (float x : G.plain[(size_t)i])
            norm += (double)x * x;
        for (size_t j = 0; j < 4; j++) // cosine collections keep the normalised vector
            CHECK(v[j] == Approx(G.plain[(size_t)i][j] / std::sqrt(norm)).margin(1e-6));
    }
    // exact search (untrained) over the generated vectors: brute force's order
    for (int i = 1; i <= 30; i += 3) {
        INFO("plain, query " << i);
        const float *q = G.plain[(size_t)(31 - i)].data();
        auto want = brute(plain, q, true, 5);
        vqs_coll_hit h[5] = {};
        REQUIRE_OK(vqs_coll_search(c, nullptr, 1, q, 5, h));
        for (size_t j = 0; j < 5; j++)
            CHECK(key_of(h[j].id) == want[j]);
    }
    vqs_db_pindex_info *pi = nullptr;
    size_t npi = 0;
    REQUIRE_OK(vqs_coll_pindex_list(c, &pi, &npi));
    if (layout >= 2) {
        REQUIRE(npi == 1);
        CHECK(std::string(pi[0].field) == "city");
        CHECK(pi[0].type == VQS_PT_KEYWORD);
        CHECK(pi[0].points == 29);
        for (int k = 0; k < 3; k++) {
            INFO("city " << cities[k]);
            CHECK(city_is(c, cities[k]) == by_city[k]);
        }
        CHECK(city_is(c, "Madrid").empty());
    } else {
        CHECK(npi == 0);
    }
    free(pi);
    vqs_coll_close(c);

    REQUIRE_OK(vqs_coll_open(cat, "trained", nullptr, &c));
    CHECK(vqs_coll_count(c) == 57);
    CHECK(vqs_coll_is_trained(c));
    CHECK(std::string(vqs_coll_config_of(c)->spec) == "SQ8");
    CHECK(vqs_coll_config_of(c)->rerank == VQS_RERANK_DISK);
    CHECK(vqs_coll_config_of(c)->metric == VQS_METRIC_L2);
    CHECK(vqs_coll_config_of(c)->train_size == 40);
    std::vector<std::pair<vqs_pid, std::array<float, 8>>> trained;
    std::set<std::string> by_group[5];
    for (int i = 0; i < 60; i++) {
        INFO("trained, point " << i);
        vqs_pid id = trained_id(i);
        if (i == 1 || i == 3 || i == 5) {
            REQUIRE_ERR(vqs_coll_lookup(c, &id, nullptr, nullptr), VQS_ENOTFOUND);
            continue;
        }
        trained.push_back({id, G.trained[(size_t)i]});
        by_group[i % 5].insert(key_of(id));
        json_t *p = payload_of(c, id);
        CHECK(json_integer_value(json_object_get(p, "group")) == i % 5);
        CHECK(std::string(json_string_value(json_object_get(p, "text"))) == "word" + std::to_string(i) + " other");
        json_decref(p);
        float v[8];
        REQUIRE_OK(vqs_coll_get(c, &id, v, nullptr));
        for (size_t j = 0; j < 8; j++) // the vector file holds what was sent, as float32
            CHECK(v[j] == G.trained[(size_t)i][j]);
        vqs_coll_hit h[1] = {};
        vqs_coll_search_params sp{};
        sp.rerank = VQS_RERANK_ON; // re-scored with the stored vector: itself at distance 0
        REQUIRE_OK(vqs_coll_search(c, &sp, 1, v, 1, h));
        CHECK(h[0].dist == 0.0f);
        CHECK(key_of(h[0].id) == key_of(id));
    }
    // every candidate re-scored from the vector file: brute force's order
    for (int i = 0; i < 60; i += 7) {
        INFO("trained, query " << i);
        float q[8];
        for (size_t j = 0; j < 8; j++)
            q[j] = 0.5f * G.trained[(size_t)i][j] - 0.25f * G.trained[(size_t)(59 - i)][j];
        auto want = brute(trained, q, false, 5);
        vqs_coll_hit h[5] = {};
        vqs_coll_search_params sp{};
        sp.rerank = VQS_RERANK_ON;
        sp.oversampling = 100;
        REQUIRE_OK(vqs_coll_search(c, &sp, 1, q, 5, h));
        for (size_t j = 0; j < 5; j++)
            CHECK(key_of(h[j].id) == want[j]);
    }
    REQUIRE_OK(vqs_coll_pindex_list(c, &pi, &npi));
    if (layout >= 2) {
        REQUIRE(npi == 1);
        CHECK(std::string(pi[0].field) == "group");
        CHECK(pi[0].type == VQS_PT_INTEGER);
        CHECK(pi[0].points == 57);
        for (int g = 0; g < 5; g++) {
            INFO("group " << g);
            CHECK(group_in(c, g, g) == by_group[g]);
        }
        std::set<std::string> one_two = by_group[1];
        one_two.insert(by_group[2].begin(), by_group[2].end());
        CHECK(group_in(c, 1, 2) == one_two);
        CHECK(group_in(c, 5, 100).empty());
    } else {
        CHECK(npi == 0);
    }
    free(pi);
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
    check_contents(cat, 1);
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
    check_contents(cat, 1);
    vqs_catalog_close(cat);
    CHECK(read_bytes(dir + "/vqs.mdb") == before);
    vqs_db *db = nullptr;
    REQUIRE_OK(vqs_db_open(dir.c_str(), nullptr, &db)); // then migrated by a writer
    uint32_t from = 0;
    CHECK(vqs_db_layout(db, &from) == VQS_DB_LAYOUT_VERSION);
    CHECK(from == 1);
    vqs_db_close(db);
}

TEST_CASE("migrate: a layout-2 data directory is migrated by a writable open and keeps every point, payload "
          "index and alias",
          "[storage][migrate]")
{
    tmpdir t;
    std::string dir = copy_fixture(t, "layout_v2");
    vqs_db *db = nullptr;
    {
        REQUIRE_OK(vqs_db_open(dir.c_str(), nullptr, &db));
        uint32_t from = 99;
        CHECK(vqs_db_layout(db, &from) == 3);
        CHECK(from == 2);
        vqs_db_close(db);
    }
    // a second open finds it migrated
    REQUIRE_OK(vqs_db_open(dir.c_str(), nullptr, &db));
    uint32_t from = 99;
    CHECK(vqs_db_layout(db, &from) == 3);
    CHECK(from == 0);
    vqs_db_close(db);
    vqs_catalog *cat = nullptr;
    REQUIRE_OK(vqs_catalog_open(dir.c_str(), nullptr, &cat));
    check_contents(cat, 2);
    // it takes writes, and the payload index follows them
    vqs_coll *c = nullptr;
    REQUIRE_OK(vqs_coll_open(cat, "plain", nullptr, &c));
    auto paris = city_is(c, "Paris");
    vqs_pid id = u64(1000), one = u64(1);
    float v[4] = {1, 0, 0, 0};
    const char *pay = "{\"city\":\"Paris\",\"n\":1000}";
    REQUIRE_OK(vqs_coll_upsert(c, 1, &id, v, &pay));
    size_t nd = 0;
    REQUIRE_OK(vqs_coll_delete(c, 1, &one, &nd)); // 1 % 3 == 1: a Paris point
    CHECK(nd == 1);
    CHECK(vqs_coll_count(c) == 29);
    paris.erase("1");
    paris.insert("1000");
    CHECK(city_is(c, "Paris") == paris);
    vqs_coll_close(c);
    // and collections of layout 3 beside the old ones
    vqs_coll_config cfg[2] = {};
    for (auto &x : cfg) {
        x.d = 2;
        x.metric = VQS_METRIC_L2;
        std::snprintf(x.spec, sizeof x.spec, "SQfp32");
    }
    const char *vn[2] = {"x", "y"};
    REQUIRE_OK(vqs_coll_create_named(cat, "named", 2, vn, cfg));
    char **names = nullptr;
    size_t n = 0;
    REQUIRE_OK(vqs_catalog_list(cat, &names, &n));
    REQUIRE(n == 3);
    CHECK(std::string(names[0]) == "named");
    vqs_catalog_list_free(names, n);
    vqs_catalog_close(cat);
}

TEST_CASE("migrate: a layout-2 data directory opened read-only is read as it is, not a byte changed",
          "[storage][migrate]")
{
    tmpdir t;
    std::string dir = copy_fixture(t, "layout_v2");
    const char *files[] = {"vqs.mdb", "plain.vec", "trained.vec"};
    std::vector<std::vector<unsigned char>> before;
    for (const char *f : files)
        before.push_back(read_bytes(dir + "/" + f));
    vqs_db_opts ro{};
    ro.read_only = 1;
    vqs_db *db = nullptr;
    REQUIRE_OK(vqs_db_open(dir.c_str(), &ro, &db));
    uint32_t from = 99;
    CHECK(vqs_db_layout(db, &from) == 2);
    CHECK(from == 0);
    vqs_db_close(db);
    vqs_catalog_opts o{};
    o.read_only = 1;
    vqs_catalog *cat = nullptr;
    REQUIRE_OK(vqs_catalog_open(dir.c_str(), &o, &cat));
    check_contents(cat, 2);
    vqs_catalog_close(cat);
    for (size_t i = 0; i < 3; i++) {
        INFO(files[i]);
        CHECK(read_bytes(dir + "/" + files[i]) == before[i]);
    }
    REQUIRE_OK(vqs_db_open(dir.c_str(), nullptr, &db)); // then migrated by a writer
    CHECK(vqs_db_layout(db, &from) == 3);
    CHECK(from == 2);
    vqs_db_close(db);
}
