// Tests for the collection layer's directory-level operations and its contracts
// (index/collection/vqs_collection.h), on real LMDB and vector files:
// - create is all or nothing: a bad spec, dimension, rerank, clip or oversampling, and a vector
//   file that cannot be created (a directory in its place), leave no record and no file;
// - drop removes the records and the vector file; the name can be created again, empty;
// - describe returns the configuration with the defaults filled in; stat adds the open index's
//   sizes;
// - a search's hits carry the same point ids, internal ids and payloads as per-point lookups,
//   before and after training, and empty slots are marked as such;
// - the rerank name table round-trips and refuses anything else, naming it;
// - a read-only catalog refuses to create or drop;
// - the tools go through the layer: import, info and drop agree with it.
#include "vqs_test.hpp"

#include <cstring>
#include <map>
#include <set>
#include <sys/stat.h>

using namespace vqs_test;

namespace
{

using coll_ptr = std::unique_ptr<vqs_coll, decltype(&vqs_coll_close)>;

coll_ptr open_coll(vqs_catalog *cat, const char *name)
{
    vqs_coll *c = nullptr;
    vqs_coll_opts o = {};
    o.nthreads = 2;
    REQUIRE_OK(vqs_coll_open(cat, name, &o, &c));
    return coll_ptr(c, vqs_coll_close);
}

vqs_coll_config config(uint32_t d, const char *spec, vqs_rerank rerank = VQS_RERANK_DISK)
{
    vqs_coll_config c = {};
    c.d = d;
    c.metric = VQS_METRIC_L2;
    std::snprintf(c.spec, sizeof c.spec, "%s", spec);
    c.rerank = rerank;
    return c;
}

bool exists(const std::string &path)
{
    struct stat st;
    return stat(path.c_str(), &st) == 0;
}

off_t size_of(const std::string &path)
{
    struct stat st;
    return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

std::vector<std::string> names(vqs_catalog *cat)
{
    char **n = nullptr;
    size_t k = 0;
    REQUIRE_OK(vqs_catalog_list(cat, &n, &k));
    std::vector<std::string> v(n, n + k);
    vqs_catalog_list_free(n, k);
    return v;
}

// The collection is absent: no record, not listed, no vector file.
void require_absent(vqs_catalog *cat, const std::string &dir, const char *name)
{
    vqs_coll_info info;
    REQUIRE_ERR(vqs_coll_describe(cat, name, &info), VQS_ENOTFOUND);
    auto n = names(cat);
    REQUIRE(std::find(n.begin(), n.end(), name) == n.end());
    REQUIRE(!exists(dir + "/" + name + ".vec"));
}

vqs_pid uuid_id(uint8_t seed)
{
    vqs_pid p;
    std::memset(&p, 0, sizeof p);
    p.kind = VQS_PID_UUID;
    for (int i = 0; i < 16; i++)
        p.uuid[i] = (uint8_t)(seed * 31 + i);
    return p;
}

bool same_pid(const vqs_pid &a, const vqs_pid &b)
{
    return a.kind == b.kind && (a.kind == VQS_PID_U64 ? a.u64 == b.u64 : std::memcmp(a.uuid, b.uuid, 16) == 0);
}

} // namespace

TEST_CASE("collection: create checks everything first and leaves nothing behind when it fails", "[collection]")
{
    tmpdir t;
    std::string dir = t.file("data");
    catalog_ptr h(dir);
    struct bad {
        vqs_coll_config cfg;
        int code;
        const char *what;
    };
    std::vector<bad> cases;
    cases.push_back({config(16, "NOPE"), VQS_ESPEC, "unknown spec"});
    cases.push_back({config(16, "PQ7x8"), 0, "PQ that does not divide d"}); // the index's own code
    cases.push_back({config(0, "SQ8"), VQS_EINVAL, "d = 0"});
    cases.push_back({config(70000, "SQ8"), VQS_EINVAL, "d too large"});
    cases.push_back({config(16, "SQ8", (vqs_rerank)7), VQS_EINVAL, "rerank 7"});
    auto c = config(16, "SQ8");
    c.sq_clip = 0.3f;
    cases.push_back({c, VQS_EINVAL, "clip 0.3"});
    c = config(16, "SQ8");
    c.oversampling = 0.5f;
    cases.push_back({c, VQS_EINVAL, "oversampling 0.5"});
    c = config(16, "SQ8");
    c.metric = (vqs_metric)5;
    cases.push_back({c, VQS_EINVAL, "metric 5"});
    c = config(16, "SQ8");
    std::memset(c.spec, 'S', sizeof c.spec); // not terminated
    cases.push_back({c, VQS_ESPEC, "spec too long"});
    for (auto &b : cases) {
        INFO(b.what);
        int rc = vqs_coll_create(h.cat, "c", &b.cfg);
        INFO(vqs_err_name(rc) << ": " << vqs_errdetail());
        REQUIRE(rc < 0);
        if (b.code)
            REQUIRE(rc == b.code);
        REQUIRE(std::string(vqs_errdetail()) != "");
        require_absent(h.cat, dir, "c");
    }
    // a bad name is refused before anything is written
    auto ok = config(16, "SQ8");
    for (const char *name : {"", ".hidden", "a/b", "../up"}) {
        INFO("name '" << name << "'");
        REQUIRE_ERR(vqs_coll_create(h.cat, name, &ok), VQS_EINVAL);
    }
    REQUIRE(names(h.cat).empty());
    // the same configuration, fixed, is created; a second create of the name is -EEXIST and
    // leaves the first one (and its vector file) as it was
    REQUIRE_OK(vqs_coll_create(h.cat, "c", &ok));
    REQUIRE(size_of(dir + "/c.vec") == 4096);
    {
        auto cc = open_coll(h.cat, "c");
        std::vector<vqs_pid> ids = {u64id(1), u64id(2)};
        auto x = synth(2, 16, 5);
        REQUIRE_OK(vqs_coll_upsert(cc.get(), 2, ids.data(), x.data(), nullptr));
    }
    auto other = config(8, "SQ4");
    REQUIRE_ERR(vqs_coll_create(h.cat, "c", &other), -EEXIST);
    vqs_coll_info info;
    REQUIRE_OK(vqs_coll_describe(h.cat, "c", &info));
    REQUIRE(info.cfg.d == 16);
    REQUIRE(info.count == 2);
    REQUIRE(size_of(dir + "/c.vec") == 4096 + 2 * 16 * 4);
}

TEST_CASE("collection: a vector file that cannot be created leaves no record, a stale one is replaced",
          "[collection]")
{
    tmpdir t;
    std::string dir = t.file("data");
    catalog_ptr h(dir);
    // a directory where the vector file goes
    REQUIRE(mkdir((dir + "/blocked.vec").c_str(), 0755) == 0);
    for (vqs_rerank r : {VQS_RERANK_DISK, VQS_RERANK_MEMORY}) {
        INFO("rerank " << vqs_rerank_name(r));
        auto cfg = config(8, "SQ8", r);
        int rc = vqs_coll_create(h.cat, "blocked", &cfg);
        INFO(vqs_err_name(rc) << ": " << vqs_errdetail());
        REQUIRE(rc == -EISDIR);
        REQUIRE(std::string(vqs_errdetail()).find("blocked.vec") != std::string::npos);
        vqs_coll_info info;
        REQUIRE_ERR(vqs_coll_describe(h.cat, "blocked", &info), VQS_ENOTFOUND);
        REQUIRE(names(h.cat).empty());
        struct stat st;
        REQUIRE(stat((dir + "/blocked.vec").c_str(), &st) == 0);
        REQUIRE(S_ISDIR(st.st_mode)); // not touched
    }
    // a collection that keeps no vectors needs no vector file
    auto none = config(8, "SQ8", VQS_RERANK_NONE);
    REQUIRE_OK(vqs_coll_create(h.cat, "blocked", &none));
    REQUIRE(rmdir((dir + "/blocked.vec").c_str()) == 0);
    REQUIRE_OK(vqs_coll_drop(h.cat, "blocked"));
    // a stale vector file (a collection of that name dropped by hand) is replaced by an empty one
    {
        std::vector<unsigned char> junk(10000, 0xab);
        write_bytes(dir + "/stale.vec", junk.data(), junk.size());
    }
    auto cfg = config(8, "SQ8");
    REQUIRE_OK(vqs_coll_create(h.cat, "stale", &cfg));
    REQUIRE(size_of(dir + "/stale.vec") == 4096);
    auto c = open_coll(h.cat, "stale");
    REQUIRE(vqs_coll_count(c.get()) == 0);
    REQUIRE(std::string(vqs_coll_vecfile_path(c.get())) == dir + "/stale.vec");
}

TEST_CASE("collection: drop removes the records and the vector file, and the name is free again", "[collection]")
{
    tmpdir t;
    std::string dir = t.file("data");
    catalog_ptr h(dir);
    const size_t d = 8, n = 50;
    auto x = synth(n, d, 3);
    std::vector<vqs_pid> ids;
    for (size_t i = 0; i < n; i++)
        ids.push_back(u64id(i));
    for (vqs_rerank r : {VQS_RERANK_DISK, VQS_RERANK_MEMORY, VQS_RERANK_NONE}) {
        INFO("rerank " << vqs_rerank_name(r));
        auto cfg = config(d, "SQ8", r);
        REQUIRE_OK(vqs_coll_create(h.cat, "d", &cfg));
        {
            auto c = open_coll(h.cat, "d");
            REQUIRE_OK(vqs_coll_upsert(c.get(), n, ids.data(), x.data(), nullptr));
        }
        REQUIRE(exists(dir + "/d.vec") == (r != VQS_RERANK_NONE));
        REQUIRE_OK(vqs_coll_drop(h.cat, "d"));
        require_absent(h.cat, dir, "d");
        REQUIRE_ERR(vqs_coll_drop(h.cat, "d"), VQS_ENOTFOUND);
        // created again: empty, with an empty vector file
        REQUIRE_OK(vqs_coll_create(h.cat, "d", &cfg));
        auto c = open_coll(h.cat, "d");
        REQUIRE(vqs_coll_count(c.get()) == 0);
        vqs_pid p = u64id(3);
        REQUIRE_ERR(vqs_coll_get(c.get(), &p, nullptr, nullptr), VQS_ENOTFOUND);
        if (r != VQS_RERANK_NONE)
            REQUIRE(size_of(dir + "/d.vec") == 4096);
        c.reset();
        REQUIRE_OK(vqs_coll_drop(h.cat, "d"));
    }
}

TEST_CASE("collection: describe returns the configuration with the defaults filled in, stat adds the index's sizes",
          "[collection]")
{
    // the defaults are the values the service has always stored
    REQUIRE(VQS_COLL_DEFAULT_NPROBE == 16);
    REQUIRE(VQS_COLL_DEFAULT_OVERSAMPLING == 4.0f);
    tmpdir t;
    std::string dir = t.file("data");
    catalog_ptr h(dir);
    const uint32_t d = 16;
    auto cfg = config(d, "IVF4,SQ8", VQS_RERANK_MEMORY);
    cfg.metric = VQS_METRIC_COS;
    cfg.train_size = 123;
    cfg.sq_clip = 0.999f;
    // the check alone fills the defaults and writes nothing
    vqs_coll_config filled;
    REQUIRE_OK(vqs_coll_config_check("def", &cfg, &filled));
    REQUIRE(filled.nprobe == VQS_COLL_DEFAULT_NPROBE);
    REQUIRE(filled.oversampling == VQS_COLL_DEFAULT_OVERSAMPLING);
    REQUIRE(cfg.nprobe == 0);
    REQUIRE(names(h.cat).empty());
    auto bad = cfg;
    std::strcpy(bad.spec, "NOPE");
    REQUIRE_ERR(vqs_coll_config_check("def", &bad, &filled), VQS_ESPEC);
    REQUIRE(filled.nprobe == VQS_COLL_DEFAULT_NPROBE); // untouched on failure
    REQUIRE_OK(vqs_coll_create(h.cat, "def", &cfg));
    auto given = config(d, "SQ4", VQS_RERANK_NONE);
    given.nprobe = 3;
    given.oversampling = 2.5f;
    REQUIRE_OK(vqs_coll_create(h.cat, "given", &given));
    vqs_coll_info info;
    REQUIRE_OK(vqs_coll_describe(h.cat, "def", &info));
    REQUIRE(info.cfg.d == d);
    REQUIRE(info.cfg.metric == VQS_METRIC_COS);
    REQUIRE(std::string(info.cfg.spec) == "IVF4,SQ8");
    REQUIRE(info.cfg.rerank == VQS_RERANK_MEMORY);
    REQUIRE(info.cfg.nprobe == VQS_COLL_DEFAULT_NPROBE);
    REQUIRE(info.cfg.oversampling == VQS_COLL_DEFAULT_OVERSAMPLING);
    REQUIRE(info.cfg.train_size == 123);
    REQUIRE(info.cfg.sq_clip == 0.999f);
    REQUIRE(info.count == 0);
    REQUIRE(info.next_iid == 0);
    REQUIRE(info.trained == 0);
    REQUIRE(info.vector_bytes == 4096);
    REQUIRE(info.code_size == 0);
    REQUIRE(std::string(info.rerank_backend) == "none");
    REQUIRE_OK(vqs_coll_describe(h.cat, "given", &info));
    REQUIRE(info.cfg.nprobe == 3);
    REQUIRE(info.cfg.oversampling == 2.5f);
    REQUIRE(info.cfg.rerank == VQS_RERANK_NONE);
    REQUIRE(info.vector_bytes == 0);
    // an open collection: the same, plus the index's sizes (the vectors as they are before
    // training), then the trained index's
    auto c = open_coll(h.cat, "def");
    REQUIRE(vqs_coll_config_of(c.get())->nprobe == VQS_COLL_DEFAULT_NPROBE);
    const size_t n = 100; // below train_size: stays untrained until trained explicitly
    auto x = synth(n, d, 8);
    std::vector<vqs_pid> ids;
    std::vector<const char *> pay;
    for (size_t i = 0; i < n; i++) {
        ids.push_back(u64id(i));
        pay.push_back(i % 2 ? "{\"odd\":true}" : nullptr);
    }
    REQUIRE_OK(vqs_coll_upsert(c.get(), n, ids.data(), x.data(), pay.data()));
    REQUIRE_OK(vqs_coll_stat(c.get(), &info));
    REQUIRE(info.count == n);
    REQUIRE(info.trained == 0);
    REQUIRE(info.code_size == 4 * d);
    REQUIRE(info.bytes_per_vector == 4.0 * d);
    REQUIRE(std::string(info.rerank_backend) == "memory");
    REQUIRE(info.vector_bytes == 4096 + n * d * 4);
    REQUIRE(info.payload_bytes == (n / 2) * std::strlen("{\"odd\":true}"));
    REQUIRE_OK(vqs_coll_train(c.get(), 0, nullptr));
    REQUIRE_OK(vqs_coll_stat(c.get(), &info));
    REQUIRE(info.trained == 1);
    REQUIRE(info.code_size == vqs_index_code_size(vqs_coll_index(c.get())));
    REQUIRE(info.code_size == d); // SQ8: a byte per dimension
    REQUIRE(info.bytes_per_vector == vqs_index_bytes_per_vector(vqs_coll_index(c.get()), nullptr));
    REQUIRE(info.cfg.sq_clip == 0.999f);
    REQUIRE_OK(vqs_coll_describe(h.cat, "def", &info));
    REQUIRE(info.trained == 1);
    REQUIRE(info.count == n);
}

TEST_CASE("collection: search hits carry the ids and payloads per-point lookups give, in one call",
          "[collection]")
{
    tmpdir t;
    std::string dir = t.file("data");
    catalog_ptr h(dir);
    const size_t d = 12, n = 600, nq = 8, k = 20;
    auto x = synth(n, d, 21);
    auto q = synth(nq, d, 22);
    auto cfg = config(d, "IVF4,SQ8");
    REQUIRE_OK(vqs_coll_create(h.cat, "s", &cfg));
    auto c = open_coll(h.cat, "s");
    // integer and UUID ids; payloads on two thirds of the points
    std::vector<vqs_pid> ids;
    std::vector<std::string> ps;
    for (size_t i = 0; i < n; i++) {
        ids.push_back(i % 5 == 0 ? uuid_id((uint8_t)i) : u64id(1000 + i));
        ps.push_back(i % 3 ? "{\"row\":" + std::to_string(i) + "}" : "");
    }
    std::vector<const char *> pp;
    for (auto &s : ps)
        pp.push_back(s.empty() ? nullptr : s.c_str());
    REQUIRE_OK(vqs_coll_upsert(c.get(), n, ids.data(), x.data(), pp.data()));
    // replace some (new internal ids, no payload) and delete some
    std::vector<vqs_pid> rep(ids.begin(), ids.begin() + 40), del(ids.begin() + 40, ids.begin() + 90);
    REQUIRE_OK(vqs_coll_upsert(c.get(), rep.size(), rep.data(), x.data() + 100 * d, nullptr));
    REQUIRE_OK(vqs_coll_delete(c.get(), del.size(), del.data(), nullptr));
    auto check = [&](bool with_payload) {
        std::vector<vqs_coll_hit> hits(nq * k);
        vqs_coll_search_params p = {};
        p.with_payload = with_payload;
        REQUIRE_OK(vqs_coll_search(c.get(), &p, nq, q.data(), k, hits.data()));
        std::vector<float> v(d);
        size_t seen = 0;
        for (size_t i = 0; i < nq * k; i++) {
            INFO("hit " << i << " with_payload " << with_payload);
            const vqs_coll_hit &hh = hits[i];
            REQUIRE(hh.id.kind != 0); // 510 live points, k = 20
            // the truth: the point's own lookup
            uint64_t iid = 0;
            char *pay = nullptr;
            REQUIRE_OK(vqs_coll_lookup(c.get(), &hh.id, &iid, &pay));
            std::string want = pay ? pay : "<none>";
            free(pay);
            REQUIRE((int64_t)iid == hh.iid);
            if (with_payload) {
                REQUIRE((hh.payload ? std::string(hh.payload) : "<none>") == want);
                seen += hh.payload != nullptr;
            } else {
                REQUIRE(hh.payload == nullptr);
            }
            // and the other lookups agree with it
            vqs_pid back;
            pay = nullptr;
            REQUIRE_OK(vqs_coll_lookup_iid(c.get(), iid, &back, &pay));
            REQUIRE(same_pid(back, hh.id));
            REQUIRE((pay ? std::string(pay) : "<none>") == want);
            free(pay);
            pay = nullptr;
            REQUIRE_OK(vqs_coll_get(c.get(), &hh.id, v.data(), &pay));
            REQUIRE((pay ? std::string(pay) : "<none>") == want);
            free(pay);
            for (size_t j = 0; j < del.size(); j++)
                REQUIRE(!same_pid(del[j], hh.id));
        }
        if (with_payload)
            REQUIRE(seen > 0);
        vqs_coll_hits_free(hits.data(), hits.size());
        for (auto &hh : hits)
            REQUIRE(hh.payload == nullptr);
    };
    for (int trained : {0, 1}) {
        INFO("trained " << trained);
        if (trained)
            REQUIRE_OK(vqs_coll_train(c.get(), 0, nullptr));
        REQUIRE(vqs_coll_is_trained(c.get()) == trained);
        check(true);
        check(false);
    }
    // fewer points than k: the empty slots say so
    auto small = config(d, "SQ8");
    REQUIRE_OK(vqs_coll_create(h.cat, "small", &small));
    auto s = open_coll(h.cat, "small");
    REQUIRE_OK(vqs_coll_upsert(s.get(), 3, ids.data() + 100, x.data(), pp.data() + 100));
    std::vector<vqs_coll_hit> hits(10);
    vqs_coll_search_params p = {};
    p.with_payload = 1;
    REQUIRE_OK(vqs_coll_search(s.get(), &p, 1, q.data(), 10, hits.data()));
    for (size_t i = 0; i < 10; i++) {
        INFO("slot " << i);
        REQUIRE((hits[i].id.kind != 0) == (i < 3));
        if (i >= 3) {
            REQUIRE(hits[i].iid == -1);
            REQUIRE(hits[i].payload == nullptr);
        }
    }
    vqs_coll_hits_free(hits.data(), hits.size());
    // every live point is walked once, with its payload
    std::map<uint64_t, std::string> walked;
    REQUIRE_OK(vqs_coll_iterate(
        c.get(),
        [](void *ctx, uint64_t iid, const vqs_pid *, const char *payload, size_t len) {
            (*static_cast<std::map<uint64_t, std::string> *>(ctx))[iid] = payload ? std::string(payload, len) : "";
            return 0;
        },
        &walked));
    REQUIRE(walked.size() == vqs_coll_count(c.get()));
    for (auto &kv : walked) {
        char *pay = nullptr;
        REQUIRE_OK(vqs_coll_lookup_iid(c.get(), kv.first, nullptr, &pay));
        REQUIRE((pay ? std::string(pay) : "") == kv.second);
        free(pay);
    }
    // a query that is not finite is refused, naming it; nothing is allocated in the hits
    std::vector<float> bad(2 * d, 0.5f);
    bad[d + 1] = NAN;
    std::vector<vqs_coll_hit> bh(2 * 5);
    REQUIRE_ERR(vqs_coll_search(c.get(), &p, 2, bad.data(), 5, bh.data()), VQS_ENONFINITE);
    REQUIRE(std::string(vqs_errdetail()).find("query 1") != std::string::npos);
    for (auto &hh : bh)
        REQUIRE(hh.payload == nullptr);
}

TEST_CASE("collection: the rerank name table round-trips and refuses anything else", "[collection]")
{
    const std::map<vqs_rerank, std::string> want = {
        {VQS_RERANK_NONE, "none"}, {VQS_RERANK_DISK, "disk"}, {VQS_RERANK_MEMORY, "memory"}};
    // the stored numbers never change
    REQUIRE((int)VQS_RERANK_NONE == 0);
    REQUIRE((int)VQS_RERANK_DISK == 1);
    REQUIRE((int)VQS_RERANK_MEMORY == 2);
    for (auto &kv : want) {
        REQUIRE(vqs_rerank_name(kv.first) == kv.second);
        vqs_rerank r = (vqs_rerank)99;
        REQUIRE_OK(vqs_rerank_parse(kv.second.c_str(), &r));
        REQUIRE(r == kv.first);
    }
    REQUIRE(std::string(vqs_rerank_name((vqs_rerank)3)) == "?");
    REQUIRE(std::string(vqs_rerank_name((vqs_rerank)-1)) == "?");
    for (const char *bad : {"Disk", "DISK", "", "on", "disk ", "mem"}) {
        INFO("'" << bad << "'");
        vqs_rerank r = VQS_RERANK_MEMORY;
        REQUIRE_ERR(vqs_rerank_parse(bad, &r), VQS_EINVAL);
        REQUIRE(r == VQS_RERANK_MEMORY); // untouched
        std::string e = vqs_errdetail();
        REQUIRE(e.find(std::string("'") + bad + "'") != std::string::npos);
        REQUIRE(e.find("disk, memory or none") != std::string::npos);
    }
    vqs_rerank r;
    REQUIRE_ERR(vqs_rerank_parse(nullptr, &r), VQS_EINVAL);
}

TEST_CASE("collection: a read-only catalog lists and opens, and refuses to create or drop", "[collection]")
{
    tmpdir t;
    std::string dir = t.file("data");
    {
        catalog_ptr h(dir);
        auto cfg = config(8, "SQ8");
        REQUIRE_OK(vqs_coll_create(h.cat, "a", &cfg));
        REQUIRE(!vqs_catalog_is_read_only(h.cat));
        REQUIRE(std::string(vqs_catalog_dir(h.cat)) == dir);
    }
    {
        vqs_catalog_opts o = {};
        o.read_only = 1;
        catalog_ptr h(dir, &o);
        REQUIRE(vqs_catalog_is_read_only(h.cat));
        REQUIRE(names(h.cat) == std::vector<std::string>{"a"});
        auto cfg = config(8, "SQ8");
        REQUIRE_ERR(vqs_coll_create(h.cat, "b", &cfg), VQS_EINVAL);
        REQUIRE_ERR(vqs_coll_drop(h.cat, "a"), VQS_EINVAL);
        auto c = open_coll(h.cat, "a");
        REQUIRE(vqs_coll_count(c.get()) == 0);
    }
    catalog_ptr h(dir);
    REQUIRE(names(h.cat) == std::vector<std::string>{"a"});
    REQUIRE(!exists(dir + "/b.vec"));
    REQUIRE(exists(dir + "/a.vec"));
}

TEST_CASE("collection: the tools go through the layer (import, info, drop)", "[collection][cli]")
{
    tmpdir t;
    std::string dir = t.file("data"), vecs = t.file("v.fvecs");
    const size_t d = 8, n = 300;
    auto x = synth(n, d, 13);
    REQUIRE_OK(vqs_write_fvecs(vecs.c_str(), n, d, x.data()));
    // a rerank name outside the table is a usage error naming it, before anything is written
    auto bad = run_vqs(t, {"import", "--data", dir, "--collection", "c", "--spec", "SQ8", "--vectors", vecs,
                           "--rerank", "Disk"});
    REQUIRE(bad.code == 2);
    REQUIRE(bad.err.find("--rerank 'Disk': want disk, memory or none") != std::string::npos);
    REQUIRE(!exists(dir + "/c.vec"));
    // a bad spec: nothing created
    auto bs = run_vqs(t, {"import", "--data", dir, "--collection", "c", "--spec", "NOPE", "--vectors", vecs});
    REQUIRE(bs.code != 0);
    REQUIRE(!exists(dir + "/c.vec"));
    for (const char *rr : {"memory", "none", "disk"}) {
        INFO("--rerank " << rr);
        auto im = run_vqs(t, {"import", "--data", dir, "--collection", "c", "--spec", "SQ8", "--vectors", vecs,
                              "--rerank", rr});
        INFO(im.err);
        REQUIRE(im.code == 0);
        {
            catalog_ptr h(dir);
            vqs_coll_info info;
            REQUIRE_OK(vqs_coll_describe(h.cat, "c", &info));
            REQUIRE(vqs_rerank_name(info.cfg.rerank) == std::string(rr));
            REQUIRE(info.cfg.nprobe == VQS_COLL_DEFAULT_NPROBE);
            REQUIRE(info.cfg.oversampling == VQS_COLL_DEFAULT_OVERSAMPLING);
            REQUIRE(info.count == n);
            REQUIRE(info.vector_bytes == (std::string(rr) == "none" ? 0 : 4096 + n * d * 4));
        }
        auto in = run_vqs(t, {"info", "--data", dir, "--collection", "c"});
        REQUIRE(in.code == 0);
        REQUIRE(in.out.find(std::string("rerank ") + rr + ", trained") != std::string::npos);
        auto dr = run_vqs(t, {"drop", "--data", dir, "--collection", "c"});
        REQUIRE(dr.code == 0);
        REQUIRE(dr.out == "dropped c\n");
        REQUIRE(!exists(dir + "/c.vec"));
        catalog_ptr h(dir);
        require_absent(h.cat, dir, "c");
    }
}
