// Payload indexes in LMDB (storage/db_pindex.c): every index type's lookups equal a brute-force
// scan of the payloads the test keeps itself, through a build over stored points, upserts,
// replacements, deletes, a restart, a type change and a drop; the capped count stops; bad
// fields are refused. The brute force below is written from vqs_store_db.h's contract (a
// keyword by its first VQS_PINDEX_VALUE_MAX bytes, a real in an integer index by its floor,
// words as Qdrant's "word" tokenizer splits them), not from the implementation.
#include "vqs_test.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <jansson.h>
#include <map>
#include <random>
#include <set>

using namespace vqs_test;

namespace
{

const char *const KW[] = {"red", "green", "blue", "Red", "", "gr"};
const char *const UU[] = {"0b3c9f9e-6a2f-4a51-9a43-1f6f2d1e7c01", "7d444840-9dc0-11d1-b245-5ffdce74fad2",
                          "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"};
const char *const WORDS[] = {"Hello", "world", "vector", "SEARCH", "café", "x1", "foo"};

std::string long_kw(int which) { return std::string(450, 'L') + (which ? "tail-b" : "tail-a"); }

// one payload (JSON text) of a seeded mix of types, arrays and values of the wrong type
std::string make_payload(std::mt19937 &rng)
{
    json_t *p = json_object();
    auto pick = [&](size_t n) { return (size_t)(rng() % n); };
    switch (pick(5)) {
    case 0: json_object_set_new(p, "kw", json_string(KW[pick(6)])); break;
    case 1: json_object_set_new(p, "kw", json_pack("[s,s]", KW[pick(6)], KW[pick(6)])); break;
    case 2: json_object_set_new(p, "kw", json_integer(7)); break;
    case 3: json_object_set_new(p, "kw", json_string(KW[pick(3)])); break;
    default: break;
    }
    switch (pick(5)) {
    case 0: json_object_set_new(p, "n", json_integer((json_int_t)pick(21) - 10)); break;
    case 1: json_object_set_new(p, "n", json_pack("[I,I]", (json_int_t)pick(21) - 10, (json_int_t)pick(21) - 10)); break;
    case 2: json_object_set_new(p, "n", json_real((double)pick(41) / 4 - 5)); break;
    case 3: json_object_set_new(p, "n", json_string("5")); break;
    default: break;
    }
    switch (pick(4)) {
    case 0: json_object_set_new(p, "f", json_real((double)pick(2001) / 100 - 10)); break;
    case 1: json_object_set_new(p, "f", json_integer((json_int_t)pick(21) - 10)); break;
    case 2: json_object_set_new(p, "f", json_real(pick(2) ? -0.0 : 0.0)); break;
    default: break;
    }
    switch (pick(4)) {
    case 0: json_object_set_new(p, "b", json_boolean(pick(2))); break;
    case 1: json_object_set_new(p, "b", json_pack("[b,b]", (int)pick(2), (int)pick(2))); break;
    case 2: json_object_set_new(p, "b", json_integer(1)); break;
    default: break;
    }
    switch (pick(5)) {
    case 0: json_object_set_new(p, "u", json_string(UU[pick(4)])); break;
    case 1: { // upper case, and without hyphens: the same UUID
        std::string s = UU[pick(4)];
        for (auto &ch : s)
            ch = (char)toupper(ch);
        json_object_set_new(p, "u", json_string(s.c_str()));
        break;
    }
    case 2: json_object_set_new(p, "u", json_string("not-a-uuid")); break;
    default: break;
    }
    if (pick(4)) {
        std::string t;
        size_t nw = 1 + pick(5);
        const char *sep[] = {" ", ", ", "-", "!? ", "\t"};
        for (size_t i = 0; i < nw; i++)
            t += std::string(i ? sep[pick(5)] : "") + WORDS[pick(7)];
        json_object_set_new(p, "t", json_string(t.c_str()));
    }
    if (pick(3) == 0)
        json_object_set_new(p, "nested", json_pack("{s:s}", "k", KW[pick(3)]));
    if (pick(3) == 0) // an array on the way: not indexed (as the filter finds nothing there)
        json_object_set_new(p, "nested", json_pack("[{s:s}]", "k", KW[pick(3)]));
    if (pick(6) == 0)
        json_object_set_new(p, "long", json_string(long_kw((int)pick(2)).c_str()));
    char *s = json_dumps(p, JSON_COMPACT);
    std::string r(s);
    free(s);
    json_decref(p);
    return r;
}

// ---- the brute force ----------------------------------------------------------------

const json_t *at(const json_t *p, const std::string &path)
{
    size_t s = 0;
    while (p && s <= path.size()) {
        if (json_is_array(p))
            return nullptr;
        size_t e = path.find('.', s);
        if (e == std::string::npos)
            e = path.size();
        p = json_object_get(p, path.substr(s, e - s).c_str());
        s = e + 1;
    }
    return p;
}

std::vector<const json_t *> values(const json_t *p, const std::string &path)
{
    std::vector<const json_t *> v;
    const json_t *x = at(p, path);
    if (json_is_array(x))
        for (size_t i = 0; i < json_array_size(x); i++)
            v.push_back(json_array_get(x, i));
    else if (x)
        v.push_back(x);
    return v;
}

std::string uuid_norm(std::string s)
{
    std::string o;
    for (char c : s)
        if (c != '-')
            o += (char)tolower(c);
    return o;
}

std::set<std::string> words(const std::string &s)
{
    std::set<std::string> w;
    std::string cur;
    for (unsigned char c : s + " ") {
        if (isalnum(c) || c >= 0x80)
            cur += (char)tolower(c);
        else if (!cur.empty())
            w.insert(cur), cur.clear();
    }
    return w;
}

struct query {
    std::string field;
    int type;
    vqs_db_pquery q;
    std::vector<vqs_db_pvalue> v;
    std::vector<std::string> keep; // storage of the strings
};

bool matches(const query &Q, const json_t *p)
{
    for (const json_t *x : values(p, Q.field)) {
        if (Q.q.op == VQS_PQ_RANGE) {
            if (!json_is_number(x))
                continue;
            double d = json_number_value(x);
            if (Q.type == VQS_PT_INTEGER) {
                double f = json_is_integer(x) ? (double)json_integer_value(x) : std::floor(d);
                if (f >= std::floor(Q.q.lo) && f <= std::floor(Q.q.hi))
                    return true;
            } else if (d >= Q.q.lo && d <= Q.q.hi) {
                return true;
            }
            continue;
        }
        for (const auto &v : Q.v) {
            switch (Q.type) {
            case VQS_PT_KEYWORD:
                if (json_is_string(x) &&
                    std::string(json_string_value(x)).substr(0, VQS_PINDEX_VALUE_MAX) ==
                        std::string(v.s, v.len).substr(0, VQS_PINDEX_VALUE_MAX))
                    return true;
                break;
            case VQS_PT_INTEGER:
                if ((json_is_integer(x) && json_integer_value(x) == v.i) ||
                    (json_is_real(x) && std::floor(json_real_value(x)) == (double)v.i))
                    return true;
                break;
            case VQS_PT_BOOL:
                if (json_is_boolean(x) && (int)json_is_true(x) == (int)v.i)
                    return true;
                break;
            case VQS_PT_UUID:
                if (json_is_string(x) && uuid_norm(json_string_value(x)) == uuid_norm(std::string(v.s, v.len)))
                    return true;
                break;
            case VQS_PT_TEXT:
                if (json_is_string(x) && words(json_string_value(x)).count(words(std::string(v.s, v.len)).empty()
                                                                                ? std::string("\x01")
                                                                                : *words(std::string(v.s, v.len)).begin()))
                    return true;
                break;
            }
        }
    }
    return false;
}

query match_q(const std::string &f, int type, std::vector<std::string> strs, std::vector<int64_t> ints, int kind)
{
    query Q;
    Q.field = f;
    Q.type = type;
    Q.keep = std::move(strs);
    for (auto &s : Q.keep)
        Q.v.push_back({VQS_PV_STR, s.c_str(), s.size(), 0});
    for (auto i : ints)
        Q.v.push_back({kind, nullptr, 0, i});
    std::memset(&Q.q, 0, sizeof Q.q);
    Q.q.op = VQS_PQ_MATCH;
    return Q;
}

query range_q(const std::string &f, int type, double lo, double hi)
{
    query Q;
    Q.field = f;
    Q.type = type;
    std::memset(&Q.q, 0, sizeof Q.q);
    Q.q.op = VQS_PQ_RANGE;
    Q.q.lo = lo;
    Q.q.hi = hi;
    return Q;
}

std::vector<query> all_queries()
{
    std::vector<query> qs;
    for (auto *k : KW)
        qs.push_back(match_q("kw", VQS_PT_KEYWORD, {k}, {}, 0));
    qs.push_back(match_q("kw", VQS_PT_KEYWORD, {"red", "blue", "nothing"}, {}, 0));
    qs.push_back(match_q("nested.k", VQS_PT_KEYWORD, {"green"}, {}, 0));
    qs.push_back(match_q("long", VQS_PT_KEYWORD, {long_kw(0)}, {}, 0));
    for (int64_t i = -11; i <= 11; i += 3)
        qs.push_back(match_q("n", VQS_PT_INTEGER, {}, {i}, VQS_PV_INT));
    qs.push_back(match_q("n", VQS_PT_INTEGER, {}, {-10, 0, 10}, VQS_PV_INT));
    qs.push_back(range_q("n", VQS_PT_INTEGER, -3, 4));
    qs.push_back(range_q("n", VQS_PT_INTEGER, -2.5, 2.5));
    qs.push_back(range_q("n", VQS_PT_INTEGER, -INFINITY, 0));
    qs.push_back(range_q("n", VQS_PT_INTEGER, 5, INFINITY));
    qs.push_back(range_q("f", VQS_PT_FLOAT, -2.5, 2.5));
    qs.push_back(range_q("f", VQS_PT_FLOAT, 0, 0));
    qs.push_back(range_q("f", VQS_PT_FLOAT, -INFINITY, -9.99));
    qs.push_back(range_q("f", VQS_PT_FLOAT, 3, 2)); // empty
    qs.push_back(match_q("b", VQS_PT_BOOL, {}, {1}, VQS_PV_BOOL));
    qs.push_back(match_q("b", VQS_PT_BOOL, {}, {0}, VQS_PV_BOOL));
    for (auto *u : UU)
        qs.push_back(match_q("u", VQS_PT_UUID, {u}, {}, 0));
    qs.push_back(match_q("u", VQS_PT_UUID, {uuid_norm(UU[1])}, {}, 0)); // 32 digits
    for (auto *w : WORDS)
        qs.push_back(match_q("t", VQS_PT_TEXT, {w}, {}, 0));
    qs.push_back(match_q("t", VQS_PT_TEXT, {"nope"}, {}, 0));
    return qs;
}

struct model {
    std::map<uint64_t, std::string> pay; // live point id -> payload
};

void check_all(vqs_db *db, const model &M, const std::vector<query> &qs)
{
    // point id -> internal id, read once
    std::map<uint64_t, uint64_t> iid;
    for (auto &kv : M.pay) {
        vqs_pid p = u64id(kv.first);
        uint64_t i;
        REQUIRE_OK(vqs_db_get(db, "c", &p, &i, nullptr));
        iid[kv.first] = i;
    }
    size_t nonempty = 0;
    for (const auto &Q : qs) {
        vqs_db_pquery q = Q.q;
        q.n = Q.v.size();
        q.v = Q.v.data();
        std::vector<uint64_t> want;
        for (auto &kv : M.pay) {
            json_error_t je;
            json_t *p = json_loads(kv.second.c_str(), 0, &je);
            REQUIRE(p);
            if (matches(Q, p))
                want.push_back(iid[kv.first]);
            json_decref(p);
        }
        std::sort(want.begin(), want.end());
        nonempty += !want.empty();
        uint64_t *got = nullptr;
        size_t n = 0;
        int over = -1;
        REQUIRE_OK(vqs_db_pindex_lookup(db, "c", Q.field.c_str(), &q, SIZE_MAX, &got, &n, &over));
        std::vector<uint64_t> g(got, got + n);
        free(got);
        INFO("field " << Q.field << " op " << Q.q.op << " value " << (Q.v.empty() ? std::string("range") : Q.v[0].s ? std::string(Q.v[0].s, std::min<size_t>(Q.v[0].len, 20)) : std::to_string(Q.v[0].i)));
        REQUIRE(over == 0);
        REQUIRE(g == want);
        if (want.size() > 1) { // the capped count stops
            REQUIRE_OK(vqs_db_pindex_lookup(db, "c", Q.field.c_str(), &q, want.size() - 1, &got, &n, &over));
            REQUIRE(over == 1);
            REQUIRE(got == nullptr);
        }
    }
    REQUIRE(nonempty * 4 >= qs.size() * 3); // the queries find something
    // the points of each index: those with at least one indexed value
    vqs_db_pindex_info *ix;
    size_t nix;
    REQUIRE_OK(vqs_db_pindex_list(db, "c", &ix, &nix));
    for (size_t i = 0; i < nix; i++) {
        uint64_t want = 0;
        for (auto &kv : M.pay) {
            json_t *p = json_loads(kv.second.c_str(), 0, nullptr);
            bool any = false;
            for (const json_t *x : values(p, ix[i].field)) {
                switch (ix[i].type) {
                case VQS_PT_KEYWORD: any |= json_is_string(x); break;
                case VQS_PT_INTEGER:
                case VQS_PT_FLOAT: any |= json_is_number(x); break;
                case VQS_PT_BOOL: any |= json_is_boolean(x); break;
                case VQS_PT_UUID: any |= json_is_string(x) && uuid_norm(json_string_value(x)).size() == 32 && uuid_norm(json_string_value(x)).find_first_not_of("0123456789abcdef") == std::string::npos; break;
                case VQS_PT_TEXT: any |= json_is_string(x) && !words(json_string_value(x)).empty(); break;
                }
            }
            want += any;
            json_decref(p);
        }
        INFO("index " << ix[i].field);
        REQUIRE(ix[i].points == want);
    }
    free(ix);
}

vqs_db_config cfg4()
{
    vqs_db_config c;
    std::memset(&c, 0, sizeof c);
    c.d = 1;
    c.metric = VQS_METRIC_L2;
    std::snprintf(c.spec, sizeof c.spec, "Flat");
    c.rerank = 0;
    c.nprobe = 1;
    c.oversampling = 1;
    return c;
}

void upsert(vqs_db *db, model &M, uint64_t from, uint64_t to, std::mt19937 &rng)
{
    std::vector<vqs_pid> ids;
    std::vector<std::string> pay;
    for (uint64_t i = from; i < to; i++) {
        ids.push_back(u64id(i));
        pay.push_back(make_payload(rng));
        M.pay[i] = pay.back();
    }
    std::vector<const char *> pp;
    for (auto &s : pay)
        pp.push_back(s.c_str());
    std::vector<uint8_t> codes(ids.size() * 4);
    vqs_db_batch b;
    std::memset(&b, 0, sizeof b);
    b.n = ids.size();
    b.ids = ids.data();
    b.payloads = pp.data();
    b.code_size = 4;
    b.codes = codes.data();
    REQUIRE_OK(vqs_db_upsert(db, "c", &b, nullptr, nullptr, nullptr, nullptr));
}

} // namespace

TEST_CASE("pindex: lookups of every index type equal a brute force over the payloads, across upserts, "
          "replacements, deletes and a restart",
          "[pindex][storage]")
{
    tmpdir t;
    std::string dir = t.file("data");
    std::mt19937 rng(17);
    model M;
    auto qs = all_queries();
    const struct {
        const char *f;
        int type;
    } fields[] = {{"kw", VQS_PT_KEYWORD}, {"nested.k", VQS_PT_KEYWORD}, {"long", VQS_PT_KEYWORD},
                  {"n", VQS_PT_INTEGER}, {"f", VQS_PT_FLOAT},           {"b", VQS_PT_BOOL},
                  {"u", VQS_PT_UUID},    {"t", VQS_PT_TEXT}};
    {
        db_ptr D(dir);
        vqs_db_config c = cfg4();
        REQUIRE_OK(vqs_db_create(D.db, "c", &c));
        upsert(D.db, M, 0, 300, rng);
        // built over the stored points, in one transaction each
        for (auto &f : fields) {
            int created = -1;
            REQUIRE_OK(vqs_db_pindex_create(D.db, "c", f.f, f.type, &created));
            REQUIRE(created == 1);
        }
        int created = -1; // the same again: nothing changes
        REQUIRE_OK(vqs_db_pindex_create(D.db, "c", "kw", VQS_PT_KEYWORD, &created));
        REQUIRE(created == 0);
        check_all(D.db, M, qs);
        // kept by the hooks: new points, replaced points, deleted points
        upsert(D.db, M, 200, 500, rng);
        std::vector<vqs_pid> del;
        for (uint64_t i = 0; i < 500; i += 7)
            del.push_back(u64id(i)), M.pay.erase(i);
        del.push_back(u64id(100000)); // unknown: ignored
        REQUIRE_OK(vqs_db_delete(D.db, "c", del.size(), del.data(), nullptr, nullptr));
        check_all(D.db, M, qs);
        // a point without a payload, and a replacement by one without
        vqs_pid p = u64id(3);
        vqs_db_batch b;
        std::memset(&b, 0, sizeof b);
        uint8_t code[4] = {0};
        b.n = 1;
        b.ids = &p;
        b.code_size = 4;
        b.codes = code;
        REQUIRE_OK(vqs_db_upsert(D.db, "c", &b, nullptr, nullptr, nullptr, nullptr));
        M.pay[3] = "{}";
        check_all(D.db, M, qs);
    }
    {
        db_ptr D(dir); // a restart
        check_all(D.db, M, qs);
        upsert(D.db, M, 450, 520, rng);
        check_all(D.db, M, qs);
        // another type for a field: rebuilt with it
        REQUIRE_OK(vqs_db_pindex_create(D.db, "c", "f", VQS_PT_INTEGER, nullptr));
        std::vector<query> fq = {range_q("f", VQS_PT_INTEGER, -3, 4), match_q("f", VQS_PT_INTEGER, {}, {0}, VQS_PV_INT)};
        check_all(D.db, M, fq);
        // deleted: not found, and a lookup says so
        REQUIRE_OK(vqs_db_pindex_delete(D.db, "c", "f"));
        REQUIRE(vqs_db_pindex_delete(D.db, "c", "f") == VQS_ENOTFOUND);
        uint64_t *got;
        size_t n;
        vqs_db_pquery q = fq[0].q;
        REQUIRE(vqs_db_pindex_lookup(D.db, "c", "f", &q, 10, &got, &n, nullptr) == VQS_ENOTFOUND);
        vqs_db_pindex_info *ix;
        size_t nix;
        REQUIRE_OK(vqs_db_pindex_list(D.db, "c", &ix, &nix));
        REQUIRE(nix == 7);
        for (size_t i = 0; i < nix; i++)
            REQUIRE(std::string(ix[i].field) != "f");
        free(ix);
        // a lookup the type cannot answer is refused, not answered wrong
        vqs_db_pvalue sv = {VQS_PV_STR, "5", 1, 0};
        vqs_db_pquery bad = {VQS_PQ_MATCH, 1, &sv, 0, 0};
        REQUIRE(vqs_db_pindex_lookup(D.db, "c", "n", &bad, 10, &got, &n, nullptr) == VQS_EINVAL);
        vqs_db_pvalue nu = {VQS_PV_STR, "not-a-uuid", 10, 0};
        bad.v = &nu;
        REQUIRE(vqs_db_pindex_lookup(D.db, "c", "u", &bad, 10, &got, &n, nullptr) == VQS_EINVAL);
        vqs_db_pquery r = range_q("kw", VQS_PT_KEYWORD, 0, 1).q;
        REQUIRE(vqs_db_pindex_lookup(D.db, "c", "kw", &r, 10, &got, &n, nullptr) == VQS_EINVAL);
        // bad fields and types
        REQUIRE(vqs_db_pindex_create(D.db, "c", "", VQS_PT_KEYWORD, nullptr) == VQS_EINVAL);
        REQUIRE(vqs_db_pindex_create(D.db, "c", "a[].b", VQS_PT_KEYWORD, nullptr) == VQS_EINVAL);
        REQUIRE(vqs_db_pindex_create(D.db, "c", "a..b", VQS_PT_KEYWORD, nullptr) == VQS_EINVAL);
        REQUIRE(vqs_db_pindex_create(D.db, "c", std::string(300, 'a').c_str(), VQS_PT_KEYWORD, nullptr) == VQS_EINVAL);
        REQUIRE(vqs_db_pindex_create(D.db, "c", "x", 99, nullptr) == VQS_EINVAL);
        REQUIRE(vqs_db_pindex_create(D.db, "nope", "x", VQS_PT_KEYWORD, nullptr) == VQS_ENOTFOUND);
        // dropped with the collection: a new one of the same name has none
        REQUIRE_OK(vqs_db_drop(D.db, "c"));
        vqs_db_config c = cfg4();
        REQUIRE_OK(vqs_db_create(D.db, "c", &c));
        REQUIRE_OK(vqs_db_pindex_list(D.db, "c", &ix, &nix));
        REQUIRE(nix == 0);
        REQUIRE(ix == nullptr);
    }
}

TEST_CASE("pindex: a layout-1 directory read-only has no indexes, and once migrated it builds them from its payloads",
          "[pindex][storage][migrate]")
{
    tmpdir t;
    std::string dir = t.file("v1");
    std::string cmd = "mkdir -p '" + dir + "' && cp '" VQS_SOURCE_DIR "/tests/fixtures/layout_v1/vqs.mdb' '" + dir +
                      "/' && chmod u+w '" + dir + "'/*";
    REQUIRE(std::system(cmd.c_str()) == 0);
    vqs_db_pindex_info *ix = nullptr;
    size_t nix = 1;
    {
        vqs_db_opts o{};
        o.read_only = 1;
        db_ptr D(dir, &o);
        REQUIRE_OK(vqs_db_pindex_list(D.db, "plain", &ix, &nix));
        REQUIRE(nix == 0);
        REQUIRE(vqs_db_pindex_create(D.db, "plain", "city", VQS_PT_KEYWORD, nullptr) == VQS_EINVAL);
        vqs_db_pvalue v = {VQS_PV_STR, "Berlin", 6, 0};
        vqs_db_pquery q = {VQS_PQ_MATCH, 1, &v, 0, 0};
        uint64_t *got;
        size_t n;
        REQUIRE(vqs_db_pindex_lookup(D.db, "plain", "city", &q, 100, &got, &n, nullptr) == VQS_ENOTFOUND);
    }
    db_ptr D(dir); // migrated
    REQUIRE_OK(vqs_db_pindex_create(D.db, "plain", "city", VQS_PT_KEYWORD, nullptr));
    std::vector<uint64_t> want;
    auto fn = [](void *ctx, uint64_t iid, const vqs_pid *, const char *p, size_t len) -> int {
        json_t *j = json_loadb(p, len, 0, nullptr);
        const char *c = json_string_value(json_object_get(j, "city"));
        if (c && std::string(c) == "Berlin")
            static_cast<std::vector<uint64_t> *>(ctx)->push_back(iid);
        json_decref(j);
        return 0;
    };
    REQUIRE_OK(vqs_db_iterate(D.db, "plain", fn, &want));
    REQUIRE(!want.empty());
    vqs_db_pvalue v = {VQS_PV_STR, "Berlin", 6, 0};
    vqs_db_pquery q = {VQS_PQ_MATCH, 1, &v, 0, 0};
    uint64_t *got;
    size_t n;
    REQUIRE_OK(vqs_db_pindex_lookup(D.db, "plain", "city", &q, 100, &got, &n, nullptr));
    REQUIRE(std::vector<uint64_t>(got, got + n) == want);
    free(got);
}
