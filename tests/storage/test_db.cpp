// Tests for the storage layer (storage/db_*.c, storage/vecstore.c) on real LMDB files, real
// io_uring reads and real full disks:
// - collections: create / list / info / drop, names and configurations checked;
// - points: integer and UUID ids, upsert replaces, a batch with a repeated id changes nothing,
//   delete, get, iterate, and the stored codes come back byte for byte without the dead ones;
// - a map that fills up grows and the write succeeds; at its limit the write fails and changes
//   nothing;
// - a newer layout version, a foreign file, a truncated file and a second handle are refused;
// - the vector file: every backend returns the bytes appended; torn and uncommitted tails are
//   cut; a damaged header, another dimension, a newer version or a short file are refused; the
//   header holds the documented bytes;
// - disk full (a per-process file size limit, and a real 1 MB tmpfs where the kernel lets us
//   mount one): the upsert fails with an error naming the file, and every batch stored before
//   is intact after reopening.
#include "vqs_test.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <lmdb.h>
#include <map>
#include <random>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace vqs_test;

namespace
{


vqs_db_config config(uint32_t d, const char *spec, uint32_t rerank = 1)
{
    vqs_db_config c;
    std::memset(&c, 0, sizeof c);
    c.d = d;
    c.metric = VQS_METRIC_L2;
    std::snprintf(c.spec, sizeof c.spec, "%s", spec);
    c.rerank = rerank;
    c.nprobe = 8;
    c.oversampling = 4;
    return c;
}

vqs_pid pid(const char *s)
{
    vqs_pid p;
    REQUIRE_OK(vqs_pid_parse(s, &p));
    return p;
}

struct batch {
    std::vector<vqs_pid> ids;
    std::vector<std::string> pay;
    std::vector<const char *> pp;
    std::vector<uint8_t> codes;
    std::vector<uint32_t> lists;
    vqs_db_batch b;
    batch(const std::vector<vqs_pid> &i, size_t cs, uint32_t seed) : ids(i)
    {
        std::mt19937 rng(seed);
        for (size_t k = 0; k < ids.size(); k++) {
            char buf[40];
            pay.push_back(std::string("{\"id\":\"") + vqs_pid_format(&ids[k], buf) + "\",\"s\":" +
                          std::to_string(seed) + "}");
            lists.push_back(rng() % 16);
        }
        for (auto &s : pay)
            pp.push_back(s.c_str());
        codes.resize(ids.size() * cs);
        for (auto &c : codes)
            c = (uint8_t)rng();
        std::memset(&b, 0, sizeof b);
        b.n = ids.size();
        b.ids = ids.data();
        b.payloads = pp.data();
        b.code_size = cs;
        b.codes = codes.data();
        b.lists = lists.data();
    }
};

struct loaded {
    std::map<uint64_t, std::pair<uint32_t, std::vector<uint8_t>>> by_iid;
};

int load_cb(void *ctx, size_t n, const uint64_t *iids, const uint32_t *lists, const uint8_t *codes,
            size_t cs)
{
    auto *L = static_cast<loaded *>(ctx);
    for (size_t i = 0; i < n; i++)
        L->by_iid[iids[i]] = {lists[i], std::vector<uint8_t>(codes + i * cs, codes + (i + 1) * cs)};
    return 0;
}

loaded load(vqs_db *db, const char *name)
{
    loaded L;
    REQUIRE_OK(vqs_db_load_codes(db, name, load_cb, &L));
    return L;
}

off_t file_size(const std::string &p)
{
    struct stat st;
    return stat(p.c_str(), &st) == 0 ? st.st_size : -1;
}

} // namespace

TEST_CASE("db: create, list, info and drop collections, names and configurations checked", "[db]")
{
    tmpdir t;
    std::string dir = t.file("data");
    {
        db_ptr h(dir);
        auto c = config(16, "PQ4x8");
        REQUIRE_OK(vqs_db_create(h.db, "b_coll", &c));
        REQUIRE_OK(vqs_db_create(h.db, "a.coll-2", &c));
        REQUIRE_ERR(vqs_db_create(h.db, "b_coll", &c), -EEXIST);
        for (const char *bad : {"", ".hidden", "has/slash", "sp ace", "x123456789012345678901234567890123456789012345678901234567890123"})
            REQUIRE_ERR(vqs_db_create(h.db, bad, &c), VQS_EINVAL);
        auto z = config(0, "PQ4x8");
        REQUIRE_ERR(vqs_db_create(h.db, "zero", &z), VQS_EINVAL);
        auto e = config(16, "");
        REQUIRE_ERR(vqs_db_create(h.db, "nospec", &e), VQS_EINVAL);
        auto r = config(16, "SQ8", 7);
        REQUIRE_ERR(vqs_db_create(h.db, "rerank7", &r), VQS_EINVAL);
        for (float bad : {0.5f, 0.3f, 1.5f, -1.0f, NAN}) {
            auto cl = config(16, "SQ4");
            cl.sq_clip = bad;
            REQUIRE_ERR(vqs_db_create(h.db, "clip", &cl), VQS_EINVAL);
            REQUIRE(std::string(vqs_errdetail()).find("sq_clip") != std::string::npos);
        }
        auto cl = config(16, "SQ4");
        cl.sq_clip = 0.995f;
        REQUIRE_OK(vqs_db_create(h.db, "clip", &cl));
        REQUIRE_ERR(vqs_db_info(h.db, "missing", nullptr), VQS_EINVAL);
        vqs_db_stats in;
        REQUIRE_ERR(vqs_db_info(h.db, "missing", &in), VQS_ENOTFOUND);
        REQUIRE(std::string(vqs_errdetail()).find("missing") != std::string::npos);
        // search defaults change, the rest does not
        auto c2 = c;
        c2.nprobe = 32;
        REQUIRE_OK(vqs_db_set_config(h.db, "b_coll", &c2));
        c2.d = 8;
        REQUIRE_ERR(vqs_db_set_config(h.db, "b_coll", &c2), VQS_EINVAL);
        auto cl2 = cl; // the clip is a training option: fixed at creation
        cl2.sq_clip = 0.99f;
        REQUIRE_ERR(vqs_db_set_config(h.db, "clip", &cl2), VQS_EINVAL);
        REQUIRE(std::string(vqs_errdetail()).find("sq_clip") != std::string::npos);
    }
    {
        db_ptr h(dir); // reopened: everything persisted
        char **names = nullptr;
        size_t n = 0;
        REQUIRE_OK(vqs_db_list(h.db, &names, &n));
        REQUIRE(n == 3);
        REQUIRE(std::string(names[0]) == "a.coll-2");
        REQUIRE(std::string(names[1]) == "b_coll");
        REQUIRE(std::string(names[2]) == "clip");
        vqs_db_list_free(names, n);
        vqs_db_stats in;
        REQUIRE_OK(vqs_db_info(h.db, "clip", &in)); // the clip survives the reopen
        REQUIRE(in.cfg.sq_clip == 0.995f);
        REQUIRE_OK(vqs_db_info(h.db, "a.coll-2", &in));
        REQUIRE(in.cfg.sq_clip == 0.0f);
        REQUIRE_OK(vqs_db_info(h.db, "b_coll", &in));
        REQUIRE(in.cfg.d == 16);
        REQUIRE(in.cfg.nprobe == 32);
        REQUIRE(std::string(in.cfg.spec) == "PQ4x8");
        REQUIRE(in.count == 0);
        REQUIRE(!in.trained);
        REQUIRE(in.layout_version == VQS_DB_LAYOUT_VERSION);
        // trained state: set once, read back
        const char blob[] = "trained-state-bytes";
        REQUIRE_OK(vqs_db_set_trained(h.db, "b_coll", blob, sizeof blob));
        REQUIRE_ERR(vqs_db_set_trained(h.db, "b_coll", blob, sizeof blob), VQS_EINVAL);
        void *got = nullptr;
        size_t len = 0;
        REQUIRE_OK(vqs_db_get_trained(h.db, "b_coll", &got, &len));
        REQUIRE(len == sizeof blob);
        REQUIRE(std::memcmp(got, blob, len) == 0);
        free(got);
        REQUIRE_ERR(vqs_db_get_trained(h.db, "a.coll-2", &got, &len), VQS_ENOTFOUND);
        // drop: gone, and the name is free again (with none of the old records)
        batch b({u64id(1), u64id(2)}, 8, 1);
        REQUIRE_OK(vqs_db_upsert(h.db, "b_coll", &b.b, nullptr, nullptr, nullptr, nullptr));
        REQUIRE_OK(vqs_db_drop(h.db, "b_coll"));
        REQUIRE_ERR(vqs_db_drop(h.db, "b_coll"), VQS_ENOTFOUND);
        REQUIRE_ERR(vqs_db_info(h.db, "b_coll", &in), VQS_ENOTFOUND);
        auto c = config(16, "SQ8");
        REQUIRE_OK(vqs_db_create(h.db, "b_coll", &c));
        REQUIRE_OK(vqs_db_info(h.db, "b_coll", &in));
        REQUIRE(in.count == 0);
        REQUIRE(in.next_iid == 0);
        REQUIRE(load(h.db, "b_coll").by_iid.empty());
        REQUIRE_ERR(vqs_db_get(h.db, "b_coll", &b.ids[0], nullptr, nullptr), VQS_ENOTFOUND);
    }
    {
        vqs_db_opts ro = {};
        ro.read_only = 1;
        db_ptr h(dir, &ro);
        auto c = config(16, "SQ8");
        REQUIRE_ERR(vqs_db_create(h.db, "nope", &c), VQS_EINVAL);
        vqs_db_stats in;
        REQUIRE_OK(vqs_db_info(h.db, "a.coll-2", &in));
    }
}

TEST_CASE("db: integer and UUID point ids, upsert, replace, delete, get, iterate, stored codes", "[db]")
{
    // parse / format
    vqs_pid p;
    REQUIRE_OK(vqs_pid_parse("18446744073709551615", &p));
    REQUIRE((p.kind == VQS_PID_U64 && p.u64 == UINT64_MAX));
    REQUIRE_ERR(vqs_pid_parse("18446744073709551616", &p), VQS_EINVAL);
    REQUIRE_OK(vqs_pid_parse("550E8400-e29b-41d4-a716-446655440000", &p));
    char buf[40];
    REQUIRE(std::string(vqs_pid_format(&p, buf)) == "550e8400-e29b-41d4-a716-446655440000");
    vqs_pid q;
    REQUIRE_OK(vqs_pid_parse("550e8400e29b41d4a716446655440000", &q));
    REQUIRE(std::memcmp(p.uuid, q.uuid, 16) == 0);
    for (const char *bad : {"", "-1", "12a", "550e8400-e29b-41d4-a716-44665544000g", "550e8400e29b-41d4-a716-4466554400000",
                            "1.5"})
        REQUIRE_ERR(vqs_pid_parse(bad, &p), VQS_EINVAL);

    tmpdir t;
    db_ptr h(t.file("data"));
    auto c = config(8, "PQ2x8");
    REQUIRE_OK(vqs_db_create(h.db, "c", &c));
    REQUIRE_OK(vqs_db_create(h.db, "other", &c));
    const size_t cs = 6;
    std::vector<vqs_pid> ids;
    for (uint64_t i = 0; i < 300; i++)
        ids.push_back(u64id(i * 1000003ull));
    ids.push_back(pid("00000000-0000-0000-0000-000000000001"));
    ids.push_back(pid("ffffffff-ffff-ffff-ffff-ffffffffffff"));
    batch b1(ids, cs, 11);
    std::vector<uint64_t> iids(ids.size()), old(ids.size());
    REQUIRE_OK(vqs_db_upsert(h.db, "c", &b1.b, iids.data(), old.data(), nullptr, nullptr));
    for (size_t i = 0; i < ids.size(); i++) {
        REQUIRE(iids[i] == i);
        REQUIRE(old[i] == UINT64_MAX);
    }
    // the other collection is untouched by the same ids
    uint64_t cnt = 0;
    REQUIRE_OK(vqs_db_count(h.db, "other", &cnt));
    REQUIRE(cnt == 0);
    batch bo({ids[0]}, cs, 12);
    REQUIRE_OK(vqs_db_upsert(h.db, "other", &bo.b, nullptr, nullptr, nullptr, nullptr));

    // a batch repeating an id, a bad id kind, or a different code size: refused, nothing changes
    batch dup({u64id(5), pid("00000000-0000-0000-0000-000000000009"), u64id(5)}, cs, 13);
    REQUIRE_ERR(vqs_db_upsert(h.db, "c", &dup.b, nullptr, nullptr, nullptr, nullptr), VQS_EINVAL);
    REQUIRE(std::string(vqs_errdetail()).find("5 appears twice") != std::string::npos);
    batch badcs({u64id(7)}, cs + 1, 14);
    REQUIRE_ERR(vqs_db_upsert(h.db, "c", &badcs.b, nullptr, nullptr, nullptr, nullptr), VQS_EINVAL);
    vqs_pid none;
    std::memset(&none, 0, sizeof none);
    batch badk({none}, cs, 15);
    REQUIRE_ERR(vqs_db_upsert(h.db, "c", &badk.b, nullptr, nullptr, nullptr, nullptr), VQS_EINVAL);
    // before_commit failing aborts the batch
    batch ab({u64id(77)}, cs, 16);
    auto fail_hook = [](void *, uint64_t, size_t) { return vqs_seterr(-EIO, "hook says no"); };
    REQUIRE_ERR(vqs_db_upsert(h.db, "c", &ab.b, nullptr, nullptr, fail_hook, nullptr), -EIO);
    vqs_db_stats in;
    REQUIRE_OK(vqs_db_info(h.db, "c", &in));
    REQUIRE(in.count == ids.size());
    REQUIRE(in.next_iid == ids.size());

    // replace 3 points (one UUID), add 2 new ones
    std::vector<vqs_pid> ids2 = {ids[10], ids[20], ids[301], u64id(42), pid("12345678-1234-1234-1234-123456789abc")};
    batch b2(ids2, cs, 21);
    b2.pp[3] = nullptr; // no payload
    std::vector<uint64_t> iids2(5), old2(5);
    int hook_calls = 0;
    uint64_t hook_first = 0;
    struct hk {
        int *calls;
        uint64_t *first;
    } H = {&hook_calls, &hook_first};
    auto hook = [](void *ctx, uint64_t first, size_t n) {
        auto *x = static_cast<hk *>(ctx);
        (*x->calls)++;
        *x->first = first;
        return n == 5 ? 0 : -1;
    };
    REQUIRE_OK(vqs_db_upsert(h.db, "c", &b2.b, iids2.data(), old2.data(), hook, &H));
    REQUIRE(hook_calls == 1);
    REQUIRE(hook_first == ids.size());
    REQUIRE(old2[0] == 10);
    REQUIRE(old2[1] == 20);
    REQUIRE(old2[2] == 301);
    REQUIRE(old2[3] == UINT64_MAX);
    REQUIRE(iids2[4] == ids.size() + 4);
    // delete 2 of the original and 1 unknown
    std::vector<vqs_pid> del = {ids[0], ids[300], u64id(999)};
    std::vector<uint64_t> diids(3);
    size_t nd = 0;
    REQUIRE_OK(vqs_db_delete(h.db, "c", del.size(), del.data(), diids.data(), &nd));
    REQUIRE(nd == 2);
    REQUIRE(diids[0] == 0);
    REQUIRE(diids[1] == 300);
    REQUIRE(diids[2] == UINT64_MAX);

    REQUIRE_OK(vqs_db_info(h.db, "c", &in));
    REQUIRE(in.count == ids.size() + 2 - 2);
    REQUIRE(in.next_iid == ids.size() + 5);
    REQUIRE(in.deleted == 5); // 3 replaced + 2 deleted
    REQUIRE(in.code_bytes == (ids.size() + 5) * cs);

    // get: payload of a replaced point is the new one; a point without payload has none
    uint64_t iid = 0;
    char *pay = nullptr;
    REQUIRE_OK(vqs_db_get(h.db, "c", &ids[10], &iid, &pay));
    REQUIRE(iid == ids.size());
    REQUIRE(std::string(pay) == b2.pay[0]);
    free(pay);
    REQUIRE_OK(vqs_db_get(h.db, "c", &ids2[3], &iid, &pay));
    REQUIRE(pay == nullptr);
    REQUIRE_ERR(vqs_db_get(h.db, "c", &ids[0], &iid, &pay), VQS_ENOTFOUND);
    vqs_pid back;
    REQUIRE_OK(vqs_db_get_iid(h.db, "c", ids.size() + 4, &back, &pay));
    REQUIRE(std::memcmp(back.uuid, ids2[4].uuid, 16) == 0);
    REQUIRE(std::string(pay) == b2.pay[4]);
    free(pay);
    REQUIRE_ERR(vqs_db_get_iid(h.db, "c", 10, &back, nullptr), VQS_ENOTFOUND); // replaced
    REQUIRE_ERR(vqs_db_get_iid(h.db, "c", 1u << 30, &back, nullptr), VQS_ENOTFOUND);

    // the model: iid -> (id, codes, list, payload) of live points
    std::map<uint64_t, size_t> live; // iid -> (batch 1 row) or (1000 + batch 2 row)
    for (size_t i = 0; i < ids.size(); i++)
        live[i] = i;
    for (uint64_t gone : {0ull, 10ull, 20ull, 300ull, 301ull})
        live.erase(gone);
    for (size_t i = 0; i < 5; i++)
        live[ids.size() + i] = 1000 + i;
    // iterate: live points in iid order, with their payloads
    struct it_ctx {
        std::vector<uint64_t> iids;
        std::vector<std::string> pays;
    } I;
    auto it = [](void *ctx, uint64_t i, const vqs_pid *, const char *p, size_t pl) {
        auto *x = static_cast<it_ctx *>(ctx);
        x->iids.push_back(i);
        x->pays.push_back(p ? std::string(p, pl) : std::string("<none>"));
        return 0;
    };
    REQUIRE_OK(vqs_db_iterate(h.db, "c", it, &I));
    REQUIRE(I.iids.size() == live.size());
    size_t k = 0;
    for (auto &kv : live) {
        REQUIRE(I.iids[k] == kv.first);
        size_t r = kv.second;
        std::string want = r >= 1000 ? (b2.pp[r - 1000] ? b2.pay[r - 1000] : "<none>") : b1.pay[r];
        REQUIRE(I.pays[k] == want);
        k++;
    }
    // stored codes: exactly the live ones, byte for byte, with their lists
    auto L = load(h.db, "c");
    REQUIRE(L.by_iid.size() == live.size());
    for (auto &kv : live) {
        size_t r = kv.second;
        const batch &b = r >= 1000 ? b2 : b1;
        size_t row = r >= 1000 ? r - 1000 : r;
        auto f = L.by_iid.find(kv.first);
        REQUIRE(f != L.by_iid.end());
        REQUIRE(f->second.first == b.lists[row]);
        REQUIRE(f->second.second == std::vector<uint8_t>(b.codes.begin() + (long)(row * cs),
                                                          b.codes.begin() + (long)((row + 1) * cs)));
    }
    // a callback's error stops the walk and is returned
    auto stop = [](void *, size_t, const uint64_t *, const uint32_t *, const uint8_t *, size_t) {
        return vqs_seterr(VQS_ERANGE, "stop");
    };
    REQUIRE_ERR(vqs_db_load_codes(h.db, "c", stop, nullptr), VQS_ERANGE);
}

TEST_CASE("db: the ids and payloads of many internal ids in one call agree with one lookup each", "[db]")
{
    tmpdir t;
    db_ptr h(t.file("data"));
    auto c = config(8, "SQ8");
    REQUIRE_OK(vqs_db_create(h.db, "c", &c));
    std::vector<vqs_pid> ids;
    for (uint64_t i = 0; i < 40; i++)
        ids.push_back(i % 7 == 3 ? pid(("00000000-0000-0000-0000-0000000000" + std::string(i < 10 ? "0" : "") +
                                        std::to_string(i))
                                           .c_str())
                                 : u64id(i * 11));
    batch b1(ids, 8, 21);
    b1.pp[5] = nullptr; // a point without a payload
    REQUIRE_OK(vqs_db_upsert(h.db, "c", &b1.b, nullptr, nullptr, nullptr, nullptr));
    batch b2({ids[0], ids[1]}, 8, 22); // replaced: internal ids 0 and 1 die, 40 and 41 are born
    REQUIRE_OK(vqs_db_upsert(h.db, "c", &b2.b, nullptr, nullptr, nullptr, nullptr));
    REQUIRE_OK(vqs_db_delete(h.db, "c", 1, &ids[9], nullptr, nullptr));
    // live, dead (replaced, deleted), none (-1), never handed out, and repeats, in no order
    std::vector<int64_t> q = {41, 0, -1, 9, 5, 17, 1000, 40, 2, 2, 39, -7, 1};
    std::vector<vqs_pid> got(q.size());
    std::vector<char *> pay(q.size());
    REQUIRE_OK(vqs_db_get_iids(h.db, "c", q.size(), q.data(), got.data(), pay.data()));
    for (size_t i = 0; i < q.size(); i++) {
        INFO("internal id " << q[i]);
        vqs_pid one;
        char *p1 = nullptr;
        int rc = q[i] < 0 ? VQS_ENOTFOUND : vqs_db_get_iid(h.db, "c", (uint64_t)q[i], &one, &p1);
        vqs_clearerr();
        if (rc == VQS_ENOTFOUND) {
            REQUIRE(got[i].kind == 0);
            REQUIRE(pay[i] == nullptr);
        } else {
            REQUIRE(rc == 0);
            REQUIRE(got[i].kind == one.kind);
            REQUIRE(std::memcmp(&got[i], &one, sizeof one) == 0);
            REQUIRE((p1 ? std::string(p1) : "-") == (pay[i] ? std::string(pay[i]) : "-"));
        }
        free(p1);
        free(pay[i]);
    }
    REQUIRE(got[0].kind == VQS_PID_U64); // 41: ids[1] again
    REQUIRE(got[0].u64 == 11);
    REQUIRE(got[4].kind != 0); // 5: live, without a payload
    REQUIRE(got[1].kind == 0); // 0: replaced
    REQUIRE(got[3].kind == 0); // 9: deleted
    // payloads are optional
    REQUIRE_OK(vqs_db_get_iids(h.db, "c", q.size(), q.data(), got.data(), nullptr));
    REQUIRE(got[7].kind == VQS_PID_U64);
    REQUIRE(got[7].u64 == 0); // 40: ids[0] again
    REQUIRE_OK(vqs_db_get_iids(h.db, "c", 0, nullptr, nullptr, nullptr));
    // an unknown collection is an error, and leaves nothing allocated
    std::fill(got.begin(), got.end(), u64id(1));
    REQUIRE_ERR(vqs_db_get_iids(h.db, "nope", q.size(), q.data(), got.data(), pay.data()), VQS_ENOTFOUND);
    for (size_t i = 0; i < q.size(); i++) {
        REQUIRE(got[i].kind == 0);
        REQUIRE(pay[i] == nullptr);
    }
}

TEST_CASE("db: a full LMDB map grows and the write succeeds, at its limit nothing changes", "[db]")
{
    tmpdir t;
    std::string dir = t.file("data");
    const size_t cs = 64, nb = 40, per = 1000;
    {
        vqs_db_opts o = {};
        o.map_size = 256 << 10; // 256 KiB: the first batch (~90 KB) fits, the rest does not
        db_ptr h(dir, &o);
        size_t m0 = vqs_db_map_size(h.db);
        auto c = config(16, "PQ64x8");
        REQUIRE_OK(vqs_db_create(h.db, "g", &c));
        for (size_t b = 0; b < nb; b++) {
            std::vector<vqs_pid> ids;
            for (size_t i = 0; i < per; i++)
                ids.push_back(u64id(b * per + i));
            batch bt(ids, cs, (uint32_t)b);
            int calls = 0;
            auto hook = [](void *ctx, uint64_t, size_t) {
                (*static_cast<int *>(ctx))++;
                return 0;
            };
            REQUIRE_OK(vqs_db_upsert(h.db, "g", &bt.b, nullptr, nullptr, hook, &calls));
            REQUIRE(calls >= 1); // more than once when the map grew (the batch is replayed)
        }
        INFO("map " << m0 << " -> " << vqs_db_map_size(h.db));
        REQUIRE(vqs_db_map_size(h.db) > 16 * m0);
    }
    {
        db_ptr h(dir);
        vqs_db_stats in;
        REQUIRE_OK(vqs_db_info(h.db, "g", &in));
        REQUIRE(in.count == nb * per);
        REQUIRE(load(h.db, "g").by_iid.size() == nb * per);
    }
    {
        // a map limit the data cannot grow past: the write fails with ENOMEM, nothing changes
        vqs_db_opts o = {};
        o.max_map_size = (size_t)file_size(dir + "/vqs.mdb") + (64 << 10);
        db_ptr h(dir, &o);
        std::vector<vqs_pid> ids;
        for (size_t i = 0; i < 20000; i++)
            ids.push_back(u64id(1000000 + i));
        batch bt(ids, cs, 99);
        REQUIRE_ERR(vqs_db_upsert(h.db, "g", &bt.b, nullptr, nullptr, nullptr, nullptr), VQS_ENOMEM);
        REQUIRE(std::string(vqs_errdetail()).find("map is full") != std::string::npos);
        vqs_db_stats in;
        REQUIRE_OK(vqs_db_info(h.db, "g", &in));
        REQUIRE(in.count == nb * per);
    }
}

TEST_CASE("db: a newer layout, a foreign, damaged or truncated file and a second handle are refused", "[db]")
{
    tmpdir t;
    std::string dir = t.file("data");
    {
        db_ptr h(dir);
        auto c = config(16, "SQ8");
        REQUIRE_OK(vqs_db_create(h.db, "c", &c));
        for (int b = 0; b < 30; b++) {
            std::vector<vqs_pid> ids;
            for (int i = 0; i < 500; i++)
                ids.push_back(u64id((uint64_t)(b * 500 + i)));
            batch bt(ids, 16, (uint32_t)b);
            REQUIRE_OK(vqs_db_upsert(h.db, "c", &bt.b, nullptr, nullptr, nullptr, nullptr));
        }
        // LMDB allows one handle per environment and process
        vqs_db *second = nullptr;
        REQUIRE_ERR(vqs_db_open(dir.c_str(), nullptr, &second), -EBUSY);
        REQUIRE(second == nullptr);
    }
    std::string mdb = dir + "/vqs.mdb";
    auto good = read_bytes(mdb);
    REQUIRE(good.size() > 100000);
    vqs_db *db = nullptr;
    // a layout version from the future (written with LMDB directly)
    {
        MDB_env *env;
        REQUIRE(mdb_env_create(&env) == 0);
        mdb_env_set_maxdbs(env, 8);
        REQUIRE(mdb_env_open(env, mdb.c_str(), MDB_NOSUBDIR, 0644) == 0);
        MDB_txn *txn;
        MDB_dbi meta;
        REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
        REQUIRE(mdb_dbi_open(txn, "meta", 0, &meta) == 0);
        uint32_t v2 = VQS_DB_LAYOUT_VERSION + 1;
        MDB_val k = {6, (void *)"layout"}, v = {4, &v2};
        REQUIRE(mdb_put(txn, meta, &k, &v, 0) == 0);
        REQUIRE(mdb_txn_commit(txn) == 0);
        mdb_env_close(env);
        REQUIRE_ERR(vqs_db_open(dir.c_str(), nullptr, &db), VQS_EVERSION);
        REQUIRE(std::string(vqs_errdetail()).find("layout version " + std::to_string(VQS_DB_LAYOUT_VERSION + 1)) != std::string::npos);
        REQUIRE(db == nullptr);
    }
    // a file that is not LMDB at all
    std::vector<unsigned char> junk(1 << 16);
    std::mt19937 rng(3);
    for (auto &b : junk)
        b = (unsigned char)rng();
    write_bytes(mdb, junk.data(), junk.size());
    REQUIRE_ERR(vqs_db_open(dir.c_str(), nullptr, &db), VQS_ECORRUPT);
    REQUIRE(std::string(vqs_errdetail()).find("vqs.mdb") != std::string::npos);
    // both header (meta) pages damaged
    auto dmg = good;
    for (size_t i = 16; i < 64; i++)
        dmg[i] ^= 0x5a, dmg[4096 + i] ^= 0x5a;
    write_bytes(mdb, dmg.data(), dmg.size());
    REQUIRE(vqs_db_open(dir.c_str(), nullptr, &db) < 0);
    REQUIRE(db == nullptr);
    // truncated to every few pages: a clear error, never SIGBUS
    for (size_t cut : {(size_t)0, (size_t)100, (size_t)8192, good.size() / 4, good.size() / 2, good.size() - 4096}) {
        INFO("cut to " << cut << " bytes of " << good.size());
        write_bytes(mdb, good.data(), cut);
        int rc = vqs_db_open(dir.c_str(), nullptr, &db);
        if (cut == 0) { // an empty file is a fresh environment
            REQUIRE(rc == 0);
            vqs_db_close(db);
            db = nullptr;
            continue;
        }
        REQUIRE(rc == VQS_ECORRUPT);
        REQUIRE(db == nullptr);
    }
    // read-only open of a directory without an environment
    vqs_db_opts ro = {};
    ro.read_only = 1;
    REQUIRE(vqs_db_open(t.file("nothing").c_str(), &ro, &db) == -ENOENT);
}

TEST_CASE("vecstore: every backend returns the appended bytes, tails are cut, damage is refused", "[vecstore]")
{
    tmpdir t;
    const size_t d = 37, n = 3000; // 148-byte records: most straddle a 4096-byte block
    std::string p = t.file("v.vec");
    auto x = synth(n, d, 5);
    std::vector<int64_t> ids;
    std::mt19937 rng(9);
    for (int i = 0; i < 500; i++)
        ids.push_back((int64_t)(rng() % n));
    ids.push_back(0);
    ids.push_back((int64_t)n - 1);
    {
        vqs_vecstore *vs = nullptr;
        REQUIRE_OK(vqs_vecstore_open(p.c_str(), d, 0, nullptr, &vs));
        REQUIRE_ERR(vqs_vecstore_append(vs, 5, 1, x.data()), VQS_EINVAL);
        for (size_t b = 0; b < n; b += 1000)
            REQUIRE_OK(vqs_vecstore_append(vs, b, 1000, x.data() + b * d));
        REQUIRE(vqs_vecstore_count(vs) == n);
        vqs_vecstore_close(vs);
    }
    REQUIRE(file_size(p) == (off_t)(4096 + n * d * 4));
    struct be {
        vqs_vs_backend b;
        int buffered;
        unsigned qd;
    };
    for (be B : {be{VQS_VS_URING, 0, 128}, be{VQS_VS_URING, 0, 3}, be{VQS_VS_URING, 1, 16},
                 be{VQS_VS_PREAD, 0, 0}, be{VQS_VS_PREAD, 1, 0}, be{VQS_VS_MMAP, 0, 0}, be{VQS_VS_MEMORY, 0, 0}}) {
        vqs_vecstore_opts o = {};
        o.backend = B.b;
        o.buffered = B.buffered;
        o.queue_depth = B.qd;
        o.nthreads = 2;
        vqs_vecstore *vs = nullptr;
        REQUIRE_OK(vqs_vecstore_open(p.c_str(), d, n, &o, &vs));
        INFO("backend " << vqs_vecstore_backend_name(vs) << " buffered " << B.buffered << " qd " << B.qd);
        if (B.b == VQS_VS_URING)
            REQUIRE(std::string(vqs_vecstore_backend_name(vs)) == "io_uring");
        std::vector<float> out(ids.size() * d);
        REQUIRE_OK(vqs_vecstore_fetch(vs, 1, ids.size(), ids.data(), out.data()));
        for (size_t i = 0; i < ids.size(); i++)
            REQUIRE(std::memcmp(&out[i * d], &x[(size_t)ids[i] * d], d * 4) == 0);
        int64_t bad[2] = {3, (int64_t)n};
        REQUIRE_ERR(vqs_vecstore_fetch(vs, 0, 2, bad, out.data()), VQS_EINVAL);
        REQUIRE_ERR(vqs_vecstore_fetch(vs, 2, 1, bad, out.data()), VQS_EINVAL); // slot out of range
        // an append is visible to the next fetch
        REQUIRE_OK(vqs_vecstore_append(vs, n, 1, x.data() + 7 * d));
        int64_t last = (int64_t)n;
        REQUIRE_OK(vqs_vecstore_fetch(vs, 0, 1, &last, out.data()));
        REQUIRE(std::memcmp(out.data(), &x[7 * d], d * 4) == 0);
        REQUIRE_OK(vqs_vecstore_truncate(vs, n));
        vqs_vecstore_close(vs);
    }
    auto good = read_bytes(p);
    vqs_vecstore *vs = nullptr;
    // an uncommitted tail (records past what LMDB committed) and a torn record are cut
    {
        auto torn = good;
        torn.insert(torn.end(), 60, 0xab);
        write_bytes(p, torn.data(), torn.size());
        REQUIRE_OK(vqs_vecstore_open(p.c_str(), d, n - 10, nullptr, &vs));
        REQUIRE(vqs_vecstore_count(vs) == n - 10);
        vqs_vecstore_close(vs);
        REQUIRE(file_size(p) == (off_t)(4096 + (n - 10) * d * 4));
    }
    // fewer records than committed, a missing file, a damaged header, another dimension, a newer
    // version, a file shorter than its header
    write_bytes(p, good.data(), good.size() - 100);
    REQUIRE_ERR(vqs_vecstore_open(p.c_str(), d, n, nullptr, &vs), VQS_ECORRUPT);
    REQUIRE(std::string(vqs_errdetail()).find("v.vec") != std::string::npos);
    REQUIRE_ERR(vqs_vecstore_open(t.file("absent.vec").c_str(), d, 5, nullptr, &vs), VQS_ECORRUPT);
    auto h = good;
    h[20] ^= 1;
    write_bytes(p, h.data(), h.size());
    REQUIRE_ERR(vqs_vecstore_open(p.c_str(), d, n, nullptr, &vs), VQS_ECORRUPT);
    REQUIRE(std::string(vqs_errdetail()).find("checksum") != std::string::npos);
    write_bytes(p, good.data(), good.size());
    REQUIRE_ERR(vqs_vecstore_open(p.c_str(), d + 1, 0, nullptr, &vs), VQS_ECORRUPT);
    h = good;
    h[8] = 2; // version 2, with a valid checksum
    uint32_t crc = vqs_crc32c(0, h.data(), 60);
    std::memcpy(&h[60], &crc, 4);
    write_bytes(p, h.data(), h.size());
    REQUIRE_ERR(vqs_vecstore_open(p.c_str(), d, n, nullptr, &vs), VQS_EVERSION);
    write_bytes(p, good.data(), 1000);
    REQUIRE_ERR(vqs_vecstore_open(p.c_str(), d, 0, nullptr, &vs), VQS_ECORRUPT);
    REQUIRE(vs == nullptr);
}

TEST_CASE("vecstore: the header's bytes are the documented ones, and a file laid out by hand opens", "[vecstore]")
{
    tmpdir t;
    for (uint32_t d : {1u, 3u, 96u, 1024u}) {
        INFO("d " << d);
        // storage/README.md: magic, u32 version 1, u32 d, u32 d * 4, u32 type 1, zeros, CRC-32C of
        // bytes 0..59 at byte 60, zeros to 4096; all little-endian
        std::vector<uint8_t> h(4096, 0);
        std::memcpy(h.data(), "VQSVEC\0\0", 8);
        const uint32_t f[4] = {1, d, d * 4, 1};
        for (int i = 0; i < 4; i++)
            for (int b = 0; b < 4; b++)
                h[8 + 4 * i + b] = (uint8_t)(f[i] >> (8 * b));
        uint32_t crc = vqs_crc32c(0, h.data(), 60);
        for (int b = 0; b < 4; b++)
            h[60 + b] = (uint8_t)(crc >> (8 * b));
        std::string p = t.file("h" + std::to_string(d) + ".vec");
        vqs_vecstore *vs = nullptr;
        REQUIRE_OK(vqs_vecstore_open(p.c_str(), d, 0, nullptr, &vs));
        vqs_vecstore_close(vs);
        REQUIRE(read_bytes(p) == h);
        // the same header by hand, then two records: opens, and the records read back
        auto x = synth(2, d, 3);
        auto file = h;
        file.insert(file.end(), (const uint8_t *)x.data(), (const uint8_t *)(x.data() + x.size()));
        write_bytes(p, file.data(), file.size());
        REQUIRE_OK(vqs_vecstore_open(p.c_str(), d, 2, nullptr, &vs));
        std::vector<float> out(2 * d);
        int64_t ids[2] = {1, 0};
        REQUIRE_OK(vqs_vecstore_fetch(vs, 0, 2, ids, out.data()));
        vqs_vecstore_close(vs);
        REQUIRE(std::memcmp(out.data(), x.data() + d, d * 4) == 0);
        REQUIRE(std::memcmp(out.data() + d, x.data(), d * 4) == 0);
    }
}

namespace
{

// Runs in a forked child on a file system that fills up: upserts batches until one fails, then
// checks the failure and reopens. Returns "" on success or what went wrong.
std::string fill_until_full(const std::string &dir, size_t d, size_t batch_n, size_t pay_bytes,
                            const std::vector<float> &x, bool lift_fsize_limit)
{
    char msg[512];
    vqs_catalog *cat = nullptr;
    vqs_coll *c = nullptr;
    int rc;
    if ((rc = vqs_catalog_open(dir.c_str(), nullptr, &cat)) || (rc = vqs_coll_open(cat, "full", nullptr, &c)))
        return std::string("open: ") + vqs_errdetail();
    size_t n = x.size() / d, acked = (size_t)vqs_coll_count(c);
    std::string pay = "{\"pad\":\"" + std::string(pay_bytes, 'p') + "\"}";
    int last = 0;
    std::string detail;
    for (size_t b0 = acked; b0 + batch_n <= n; b0 += batch_n) {
        std::vector<vqs_pid> ids;
        std::vector<const char *> pp;
        for (size_t i = b0; i < b0 + batch_n; i++) {
            ids.push_back(u64id(i));
            pp.push_back(pay.c_str());
        }
        last = vqs_coll_upsert(c, ids.size(), ids.data(), x.data() + b0 * d, pp.data());
        if (last) {
            detail = vqs_errdetail();
            break;
        }
        acked = b0 + batch_n;
    }
    std::string vs = dir + "/full.vec";
    if (!last) {
        snprintf(msg, sizeof msg, "never failed (%zu points stored)", acked);
        return msg;
    }
    // out of space is reported as such (HTTP 507), never as a bare I/O error (500)
    if (last != -ENOSPC && last != -EFBIG) {
        snprintf(msg, sizeof msg, "failed with %s: %s", vqs_err_name(last), detail.c_str());
        return msg;
    }
    if (detail.find(dir) == std::string::npos) {
        snprintf(msg, sizeof msg, "error detail does not name the file: %s", detail.c_str());
        return msg;
    }
    if (vqs_coll_count(c) != acked || file_size(vs) != (off_t)(4096 + acked * d * 4)) {
        snprintf(msg, sizeof msg, "after the failure: count %llu, vector file %lld bytes, %zu acknowledged",
                 (unsigned long long)vqs_coll_count(c), (long long)file_size(vs), acked);
        return msg;
    }
    vqs_coll_close(c);
    vqs_catalog_close(cat);
    if (lift_fsize_limit) {
        struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
        setrlimit(RLIMIT_FSIZE, &rl);
    }
    // reopen: every acknowledged point is there with its vector; the search answers
    if ((rc = vqs_catalog_open(dir.c_str(), nullptr, &cat)) || (rc = vqs_coll_open(cat, "full", nullptr, &c)))
        return std::string("reopen: ") + vqs_errdetail();
    std::string err;
    if (vqs_coll_count(c) != acked)
        err = "reopened count " + std::to_string(vqs_coll_count(c)) + ", acknowledged " + std::to_string(acked);
    std::vector<float> v(d);
    for (size_t i = 0; err.empty() && i < acked; i += 7) {
        vqs_pid id = u64id(i);
        char *p = nullptr;
        if ((rc = vqs_coll_get(c, &id, v.data(), &p)) || !p || pay != p ||
            std::memcmp(v.data(), &x[i * d], d * 4) != 0)
            err = "point " + std::to_string(i) + " lost or changed: " + vqs_errdetail();
        free(p);
    }
    for (size_t i = 0; err.empty() && i < acked; i += acked / 10 + 1) {
        vqs_coll_hit got;
        vqs_coll_search_params sp = {};
        sp.rerank = 1;
        if ((rc = vqs_coll_search(c, &sp, 1, &x[i * d], 1, &got)) || got.id.u64 != i)
            err = "self-search of point " + std::to_string(i) + " failed";
    }
    vqs_pid beyond = u64id(acked);
    if (err.empty() && vqs_coll_get(c, &beyond, v.data(), nullptr) != VQS_ENOTFOUND)
        err = "a point of the failed batch is visible";
    vqs_coll_close(c);
    vqs_catalog_close(cat);
    return err;
}

// The collection the disk-full test fills (through the collection layer, which writes both files).
vqs_coll_config full_config(size_t d)
{
    vqs_coll_config c = {};
    c.d = (uint32_t)d;
    c.metric = VQS_METRIC_L2;
    std::snprintf(c.spec, sizeof c.spec, "SQ8"); // trains without BLAS threads (the rest runs after fork)
    c.rerank = VQS_RERANK_DISK;
    c.nprobe = 8;
    c.oversampling = 4;
    return c;
}

void prepare(const std::string &dir, size_t d, const std::vector<float> &x)
{
    catalog_ptr h(dir);
    auto cfg = full_config(d);
    REQUIRE_OK(vqs_coll_create(h.cat, "full", &cfg));
    vqs_coll *c = nullptr;
    REQUIRE_OK(vqs_coll_open(h.cat, "full", nullptr, &c));
    REQUIRE_OK(vqs_coll_train(c, 2000, x.data()));
    vqs_coll_close(c);
}

} // namespace

TEST_CASE("disk full: the upsert fails naming the file, and everything stored before is intact", "[db][vecstore]")
{
    const size_t d = 64, n = 60000;
    auto x = synth(n, d, 17);
    // 1. a per-process file size limit (RLIMIT_FSIZE): runs anywhere. Two shapes: big vectors
    //    (the vector file hits the limit first) and big payloads (LMDB's commit hits it).
    for (int shape = 0; shape < 2; shape++) {
        INFO("file size limit, shape " << shape);
        tmpdir t;
        std::string dir = t.file("data");
        prepare(dir, d, x);
        off_t limit = shape == 0 ? (off_t)(4096 + 6000 * d * 4 + 100) : file_size(dir + "/vqs.mdb") + (4 << 20);
        std::string r = in_child([&] {
            signal(SIGXFSZ, SIG_IGN);
            struct rlimit rl;
            getrlimit(RLIMIT_FSIZE, &rl);
            rl.rlim_cur = (rlim_t)limit;
            setrlimit(RLIMIT_FSIZE, &rl);
            return fill_until_full(dir, d, 500, shape == 0 ? 10 : 1000, x, true);
        });
        REQUIRE(r == "");
        // and in this (unlimited) process, the collection takes new batches again
        catalog_ptr h(dir);
        vqs_coll *c = nullptr;
        REQUIRE_OK(vqs_coll_open(h.cat, "full", nullptr, &c));
        uint64_t before = vqs_coll_count(c);
        REQUIRE(before > 0);
        std::vector<vqs_pid> ids;
        for (size_t i = 0; i < 100; i++)
            ids.push_back(u64id(before + i));
        REQUIRE_OK(vqs_coll_upsert(c, ids.size(), ids.data(), &x[before * d], nullptr));
        REQUIRE(vqs_coll_count(c) == before + 100);
        vqs_coll_close(c);
    }
    // 2. a real full file system: a 1 MB tmpfs in a private mount namespace
    tmpdir t;
    std::string mnt = t.file("mnt");
    REQUIRE(mkdir(mnt.c_str(), 0755) == 0);
    std::string r = in_child([&]() -> std::string {
        uid_t uid = getuid();
        gid_t gid = getgid();
        if (unshare(CLONE_NEWNS) != 0) {
            if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
                return std::string("SKIP: no mount namespace: ") + strerror(errno);
            auto put = [](const char *f, const std::string &s) {
                int fd = open(f, O_WRONLY);
                bool ok = fd >= 0 && write(fd, s.data(), s.size()) == (ssize_t)s.size();
                if (fd >= 0)
                    close(fd);
                return ok;
            };
            put("/proc/self/setgroups", "deny");
            if (!put("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n") ||
                !put("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n"))
                return std::string("SKIP: cannot map ids in a user namespace");
        }
        if (mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m") != 0)
            return std::string("SKIP: cannot mount a tmpfs: ") + strerror(errno);
        std::string dir = mnt + "/data";
        {
            vqs_catalog *cat = nullptr;
            if (vqs_catalog_open(dir.c_str(), nullptr, &cat))
                return std::string("open: ") + vqs_errdetail();
            auto cfg = full_config(d);
            vqs_coll *c = nullptr;
            int rc = vqs_coll_create(cat, "full", &cfg);
            if (!rc)
                rc = vqs_coll_open(cat, "full", nullptr, &c);
            if (!rc)
                rc = vqs_coll_train(c, 2000, x.data());
            vqs_coll_close(c);
            vqs_catalog_close(cat);
            if (rc)
                return std::string("prepare: ") + vqs_errdetail();
        }
        return fill_until_full(dir, d, 100, 200, x, false);
    });
    if (r.rfind("SKIP", 0) == 0) {
        WARN("tmpfs part skipped: " << r);
    } else {
        REQUIRE(r == "");
    }
}
