// Tests for collections with named vectors (index/collection/vqs_collection.h, "named vectors";
// storage/db_vectors.c), on real LMDB and vector files. The truth is a model kept by the test
// (the vectors it gave, the payloads it wrote, what it deleted), and every search is compared with
// brute force over that model in double precision, never with what the library computed:
// - three vectors of different d / metric / spec / rerank (an exact float32 spec trained at
//   train_size, an SQ8 one trained at another train_size and re-scored from disk, an untrained
//   one without a vector file): each vector's handle searches its own vectors, returns the
//   collection's point ids and payloads, and gets its own vector back (cosine: normalised);
// - deletes by id and by selection, payload edits by id and by selection, vector replacements and
//   upserts, in one apply and alone: every vector agrees with brute force over the surviving
//   points (also the exact search over payload-index candidates), all counts agree, the payload
//   index follows, and a reopen (writable and read-only) answers the same;
// - atomicity: an apply whose later operation fails changes nothing in any vector (counts,
//   results, internal ids, vector files); an apply replayed when the LMDB map grows is applied
//   once; uncommitted tails of the vector files are cut back at open;
// - refusals: writes that would leave a vector out, writes through a vector's handle, bad
//   create_named arguments (nothing created), NAME@I names, unknown vector names;
// - drop removes every vector file and the name is free again; NAME@I is never listed;
// - one named vector behaves as an unnamed vector but reports its name;
// - records that disagree (written behind the collection's back: a point more, a point less, or
//   as many points but other ones) are refused at open, naming the vector.
#include "vqs_test.hpp"

#include "vqs_store_db.h"

#include <cmath>
#include <dirent.h>
#include <jansson.h>
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

constexpr size_t NV = 3;
const char *const VNAMES[NV] = {"a", "b", "c"};
const uint32_t DIMS[NV] = {8, 5, 3};
const vqs_metric METRICS[NV] = {VQS_METRIC_L2, VQS_METRIC_COS, VQS_METRIC_IP};

// "a": exact float32 codes, trained at 150 points, vectors on disk; "b": SQ8, trained at 250
// points, re-scored from disk; "c": exact (never trained: no train_size), no vector file.
std::vector<vqs_coll_config> three_configs()
{
    std::vector<vqs_coll_config> cfg(NV);
    for (size_t m = 0; m < NV; m++) {
        std::memset(&cfg[m], 0, sizeof cfg[m]);
        cfg[m].d = DIMS[m];
        cfg[m].metric = METRICS[m];
    }
    std::snprintf(cfg[0].spec, sizeof cfg[0].spec, "SQfp32");
    cfg[0].rerank = VQS_RERANK_DISK;
    cfg[0].train_size = 150;
    std::snprintf(cfg[1].spec, sizeof cfg[1].spec, "SQ8");
    cfg[1].rerank = VQS_RERANK_DISK;
    cfg[1].train_size = 250;
    std::snprintf(cfg[2].spec, sizeof cfg[2].spec, "SQfp32");
    cfg[2].rerank = VQS_RERANK_NONE;
    return cfg;
}

std::string key_of(const vqs_pid &p)
{
    char b[40];
    return vqs_pid_format(&p, b);
}

// Point number n's id: every third a UUID, the others integers.
vqs_pid pid_of(int n)
{
    if (n % 3)
        return u64id(1000 + (uint64_t)n);
    char s[40];
    std::snprintf(s, sizeof s, "5a1e0000-0000-4000-8000-%012d", n);
    vqs_pid p{};
    REQUIRE_OK(vqs_pid_parse(s, &p));
    return p;
}

std::string payload_text(int i, int g, const char *extra = "")
{
    return "{\"i\":" + std::to_string(i) + ",\"g\":" + std::to_string(g) + extra + "}";
}

struct point {
    vqs_pid id;
    std::vector<float> v[NV];
    bool has_payload = false;
    std::string payload;
    int g = -1; // the payload's "g" (-1: no payload)
};

// What the collection must hold: the live points by their formatted id.
struct model {
    std::map<std::string, point> live;
    int next_n = 0;      // the next point number to hand out
    uint64_t seed = 500; // for the vectors
    std::string pad;     // appended to every payload make_batch writes (large payloads grow the map)
};

double score(size_t m, const float *q, const std::vector<float> &x)
{
    double s = 0, qn = 0, xn = 0;
    for (size_t j = 0; j < x.size(); j++) {
        if (METRICS[m] == VQS_METRIC_L2) {
            double e = (double)q[j] - x[j];
            s += e * e;
        } else {
            s += (double)q[j] * x[j];
            qn += (double)q[j] * q[j];
            xn += (double)x[j] * x[j];
        }
    }
    return METRICS[m] == VQS_METRIC_COS ? s / std::sqrt(qn * xn) : s;
}

// ascending = best first
double rank_key(size_t m, double s) { return METRICS[m] == VQS_METRIC_L2 ? s : -s; }

std::vector<std::pair<double, std::string>> brute(const model &M, size_t m, const float *q)
{
    std::vector<std::pair<double, std::string>> ex;
    for (auto &kv : M.live)
        ex.push_back({rank_key(m, score(m, q, kv.second.v[m])), kv.first});
    std::sort(ex.begin(), ex.end());
    return ex;
}

// n new vectors for each named vector, as xv arrays
struct batch {
    std::vector<vqs_pid> ids;
    std::vector<float> x[NV];
    std::vector<std::string> pay;
    std::vector<const char *> pp; // NULL entries: no payload
    const float *xv[NV];
};

// A batch of the given point numbers (new or existing), with fresh vectors; every tenth point
// number has no payload. The model is not changed (commit() does that after success).
batch make_batch(model &M, const std::vector<int> &nums, int g_add = 0)
{
    batch b;
    for (size_t m = 0; m < NV; m++)
        b.x[m] = synth(nums.size(), DIMS[m], M.seed++);
    for (int n : nums) {
        b.ids.push_back(pid_of(n));
        b.pay.push_back(n % 10 == 9 ? std::string() : payload_text(n, (n + g_add) % 4, M.pad.c_str()));
    }
    for (size_t i = 0; i < nums.size(); i++)
        b.pp.push_back(nums[i] % 10 == 9 ? nullptr : b.pay[i].c_str());
    for (size_t m = 0; m < NV; m++)
        b.xv[m] = b.x[m].data();
    return b;
}

// the model after an upsert of b (points replaced whole, payload included)
void commit_upsert(model &M, const batch &b)
{
    for (size_t i = 0; i < b.ids.size(); i++) {
        point p;
        p.id = b.ids[i];
        for (size_t m = 0; m < NV; m++)
            p.v[m].assign(b.x[m].begin() + (long)(i * DIMS[m]), b.x[m].begin() + (long)((i + 1) * DIMS[m]));
        p.has_payload = b.pp[i] != nullptr;
        if (p.has_payload) {
            p.payload = b.pay[i];
            json_error_t je;
            json_t *j = json_loads(p.payload.c_str(), 0, &je);
            REQUIRE(j != nullptr);
            p.g = (int)json_integer_value(json_object_get(j, "g"));
            json_decref(j);
        }
        M.live[key_of(p.id)] = p;
    }
}

// the model after the vectors of b's points are replaced (payloads kept)
void commit_vectors(model &M, const batch &b)
{
    for (size_t i = 0; i < b.ids.size(); i++) {
        point &p = M.live.at(key_of(b.ids[i]));
        for (size_t m = 0; m < NV; m++)
            p.v[m].assign(b.x[m].begin() + (long)(i * DIMS[m]), b.x[m].begin() + (long)((i + 1) * DIMS[m]));
    }
}

std::vector<int> range(int from, int to)
{
    std::vector<int> v;
    for (int i = from; i < to; i++)
        v.push_back(i);
    return v;
}

// ---- payload edits (depend only on their arguments, as the contract asks) ---------------------

int payload_g(const char *old, size_t len, int *i)
{
    if (!old)
        return -1;
    json_error_t je;
    json_t *j = json_loadb(old, len, 0, &je);
    if (!j)
        return -2;
    int g = (int)json_integer_value(json_object_get(j, "g"));
    if (i)
        *i = (int)json_integer_value(json_object_get(j, "i"));
    json_decref(j);
    return g;
}

// selects the points whose "g" is *(int *)ctx (for a DELETE by selection: *out stays NULL)
int select_g(void *ctx, const vqs_pid *, const char *old, size_t len, char **out)
{
    *out = nullptr;
    return payload_g(old, len, nullptr) == *(const int *)ctx ? 0 : 1;
}

// selects the points whose "g" is 1 and moves them to g = 4 with a mark
int move_g1(void *, const vqs_pid *, const char *old, size_t len, char **out)
{
    int i = 0;
    if (payload_g(old, len, &i) != 1)
        return 1;
    *out = strdup(payload_text(i, 4, ",\"moved\":true").c_str());
    return 0;
}

// every given point gets g = 2 and a mark (points without a payload get i = -1)
int edit_to_g2(void *, const vqs_pid *, const char *old, size_t len, char **out)
{
    int i = -1;
    if (old)
        payload_g(old, len, &i);
    *out = strdup(payload_text(i, 2, ",\"edited\":true").c_str());
    return 0;
}

// an edit that fails (aborting the whole apply)
int edit_fails(void *, const vqs_pid *, const char *, size_t, char **out)
{
    *out = nullptr;
    return vqs_seterr(VQS_EINVAL, "the test's edit refuses");
}

// ---- checks --------------------------------------------------------------------------------

std::vector<float> queries(size_t m, size_t nq, uint64_t seed) { return synth(nq, DIMS[m], seed); }

// One search of vector m's handle per query against brute force over the model: every hit is a
// live point with its true score, the scores are the k best, the ids are brute force's wherever
// no near tie makes the order ambiguous, and each hit carries the collection's payload.
void check_search(vqs_coll *c, const model &M, size_t m, const std::vector<float> &q, size_t k = 10)
{
    vqs_coll *vc = vqs_coll_vector(c, m);
    REQUIRE(vc != nullptr);
    size_t d = DIMS[m], nq = q.size() / d;
    vqs_coll_search_params p = {};
    p.oversampling = 1000; // with a vector file: every candidate re-scored exactly
    p.with_payload = 1;
    std::vector<vqs_coll_hit> h(nq * k);
    REQUIRE_OK(vqs_coll_search(vc, &p, nq, q.data(), k, h.data()));
    for (size_t qi = 0; qi < nq; qi++) {
        auto ex = brute(M, m, q.data() + qi * d);
        std::set<std::string> seen;
        for (size_t j = 0; j < k; j++) {
            const vqs_coll_hit &hit = h[qi * k + j];
            INFO("vector " << VNAMES[m] << ", query " << qi << ", rank " << j);
            if (j >= ex.size()) {
                REQUIRE(hit.id.kind == 0);
                continue;
            }
            REQUIRE(hit.id.kind != 0);
            std::string key = key_of(hit.id);
            INFO("hit " << key << ", brute force " << ex[j].second);
            REQUIRE(M.live.count(key) == 1);
            REQUIRE(seen.insert(key).second);
            const point &pt = M.live.at(key);
            double s = score(m, q.data() + qi * d, pt.v[m]);
            REQUIRE(hit.dist == Approx(s).epsilon(1e-4).margin(1e-4));
            REQUIRE(rank_key(m, s) == Approx(ex[j].first).epsilon(1e-6).margin(1e-6));
            const double tie = 1e-4 * (1 + std::fabs(ex[j].first));
            bool clear = (j == 0 || ex[j].first - ex[j - 1].first > tie) &&
                         (j + 1 == ex.size() || ex[j + 1].first - ex[j].first > tie);
            if (clear)
                REQUIRE(key == ex[j].second);
            uint64_t iid = 0;
            REQUIRE_OK(vqs_coll_lookup(c, &hit.id, &iid, nullptr));
            REQUIRE(hit.iid == (int64_t)iid);
            if (pt.has_payload) {
                REQUIRE(hit.payload != nullptr);
                REQUIRE(std::string(hit.payload) == pt.payload);
            } else {
                REQUIRE(hit.payload == nullptr);
            }
        }
    }
    vqs_coll_hits_free(h.data(), h.size());
}

struct walk {
    std::map<std::string, std::string> pts; // id -> payload ("" for none; none of ours is "")
    std::set<uint64_t> iids;
};

int walk_cb(void *ctx, uint64_t iid, const vqs_pid *id, const char *pay, size_t len)
{
    auto *W = static_cast<walk *>(ctx);
    W->pts[key_of(*id)] = pay ? std::string(pay, len) : std::string();
    W->iids.insert(iid);
    return 0;
}

// The ids of the live points whose "g" is g, through the collection's payload index.
std::set<std::string> pindex_g(vqs_coll *c, int g)
{
    vqs_db_pvalue v = {};
    v.kind = VQS_PV_INT;
    v.i = g;
    vqs_db_pquery q = {};
    q.op = VQS_PQ_MATCH;
    q.n = 1;
    q.v = &v;
    uint64_t *iids = nullptr;
    size_t n = 0;
    int over = 0;
    REQUIRE_OK(vqs_coll_pindex_lookup(c, "g", &q, 100000, &iids, &n, &over));
    REQUIRE(over == 0);
    std::set<std::string> out;
    for (size_t i = 0; i < n; i++) {
        vqs_pid id;
        REQUIRE_OK(vqs_coll_lookup_iid(c, iids[i], &id, nullptr));
        out.insert(key_of(id));
    }
    free(iids);
    return out;
}

// Everything the model says, through every vector's handle.
void check_all(vqs_coll *c, const model &M, bool with_pindex = true)
{
    REQUIRE(vqs_coll_nvectors(c) == NV);
    vqs_coll_info i0;
    REQUIRE_OK(vqs_coll_stat(c, &i0));
    for (size_t m = 0; m < NV; m++) {
        INFO("vector " << VNAMES[m]);
        vqs_coll *vc = vqs_coll_vector(c, m);
        REQUIRE(vc != nullptr);
        REQUIRE(std::string(vqs_coll_vector_name(c, m)) == VNAMES[m]);
        REQUIRE(vqs_coll_count(vc) == M.live.size());
        REQUIRE(vqs_coll_d(vc) == DIMS[m]);
        REQUIRE(vqs_coll_config_of(vc)->metric == METRICS[m]);
        vqs_coll_info im;
        REQUIRE_OK(vqs_coll_stat(vc, &im));
        REQUIRE(im.count == M.live.size());
        REQUIRE(im.next_iid == i0.next_iid); // the same internal ids handed out
        // the walk through a vector's handle is the collection's: ids and payloads
        walk W;
        REQUIRE_OK(vqs_coll_iterate(vc, walk_cb, &W));
        REQUIRE(W.pts.size() == M.live.size());
        for (auto &kv : M.live) {
            INFO("point " << kv.first);
            REQUIRE(W.pts.count(kv.first) == 1);
            REQUIRE(W.pts[kv.first] == (kv.second.has_payload ? kv.second.payload : std::string()));
        }
        // every point's own vector of this name, and its payload, through the vector's handle
        std::vector<float> v(DIMS[m]);
        for (auto &kv : M.live) {
            INFO("point " << kv.first);
            char *pay = nullptr;
            REQUIRE_OK(vqs_coll_get(vc, &kv.second.id, v.data(), &pay));
            REQUIRE((pay != nullptr) == kv.second.has_payload);
            if (pay)
                REQUIRE(std::string(pay) == kv.second.payload);
            free(pay);
            const std::vector<float> &x = kv.second.v[m];
            if (METRICS[m] == VQS_METRIC_COS) {
                double nn = 0;
                for (float e : x)
                    nn += (double)e * e;
                for (size_t j = 0; j < DIMS[m]; j++)
                    REQUIRE(v[j] == Approx(x[j] / std::sqrt(nn)).margin(1e-6));
            } else {
                REQUIRE(v == x); // stored as given, bit for bit
            }
        }
        check_search(c, M, m, queries(m, 12, 900 + m));
    }
    if (!with_pindex)
        return;
    for (int g = 0; g <= 4; g++) {
        INFO("payload index g = " << g);
        std::set<std::string> want;
        for (auto &kv : M.live)
            if (kv.second.g == g)
                want.insert(kv.first);
        REQUIRE(pindex_g(c, g) == want);
    }
    // the exact search over the candidates of the index (the planner's filtered path), per vector
    vqs_db_pvalue pv = {};
    pv.kind = VQS_PV_INT;
    pv.i = 0;
    vqs_db_pquery pq = {};
    pq.op = VQS_PQ_MATCH;
    pq.n = 1;
    pq.v = &pv;
    uint64_t *iids = nullptr;
    size_t ni = 0;
    int over = 0;
    REQUIRE_OK(vqs_coll_pindex_lookup(c, "g", &pq, 100000, &iids, &ni, &over));
    model sub; // the points with g = 0
    for (auto &kv : M.live)
        if (kv.second.g == 0)
            sub.live.insert(kv);
    REQUIRE(ni == sub.live.size());
    for (size_t m = 0; m < NV; m++) {
        auto q = queries(m, 5, 970 + m);
        const size_t k = 7;
        for (size_t qi = 0; qi < 5; qi++) {
            INFO("vector " << VNAMES[m] << ", search over ids, query " << qi);
            std::vector<vqs_coll_hit> h(k);
            vqs_coll_search_params p = {};
            REQUIRE_OK(vqs_coll_search_ids(vqs_coll_vector(c, m), &p, q.data() + qi * DIMS[m], k, ni, iids, h.data()));
            auto ex = brute(sub, m, q.data() + qi * DIMS[m]);
            for (size_t j = 0; j < k && j < ex.size(); j++) {
                INFO("rank " << j);
                REQUIRE(h[j].id.kind != 0);
                std::string key = key_of(h[j].id);
                REQUIRE(sub.live.count(key) == 1);
                double s = score(m, q.data() + qi * DIMS[m], sub.live.at(key).v[m]);
                REQUIRE(h[j].dist == Approx(s).epsilon(1e-4).margin(1e-4));
                REQUIRE(rank_key(m, s) == Approx(ex[j].first).epsilon(1e-6).margin(1e-6));
            }
            vqs_coll_hits_free(h.data(), h.size());
        }
    }
    free(iids);
}

// The result ids and distances of every vector for fixed queries (for "nothing changed").
std::vector<std::pair<std::string, float>> snapshot(vqs_coll *c)
{
    std::vector<std::pair<std::string, float>> s;
    for (size_t m = 0; m < NV; m++) {
        auto q = queries(m, 8, 950 + m);
        size_t k = 10, nq = q.size() / DIMS[m];
        std::vector<vqs_coll_hit> h(nq * k);
        vqs_coll_search_params p = {};
        REQUIRE_OK(vqs_coll_search(vqs_coll_vector(c, m), &p, nq, q.data(), k, h.data()));
        for (auto &x : h)
            s.push_back({x.id.kind ? key_of(x.id) : std::string("-"), x.dist});
        vqs_coll_hits_free(h.data(), h.size());
    }
    return s;
}

off_t size_of(const std::string &path)
{
    struct stat st;
    return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

// the files of dir whose names start with prefix
std::set<std::string> files_with(const std::string &dir, const std::string &prefix)
{
    std::set<std::string> out;
    DIR *d = opendir(dir.c_str());
    REQUIRE(d != nullptr);
    while (struct dirent *e = readdir(d))
        if (std::string(e->d_name).compare(0, prefix.size(), prefix) == 0)
            out.insert(e->d_name);
    closedir(d);
    return out;
}

std::vector<std::string> listed(vqs_catalog *cat)
{
    char **n = nullptr;
    size_t k = 0;
    REQUIRE_OK(vqs_catalog_list(cat, &n, &k));
    std::vector<std::string> v(n, n + k);
    vqs_catalog_list_free(n, k);
    return v;
}

// the ops of one apply that touches every kind of write (the model follows in apply_all_model)
struct all_ops {
    std::vector<vqs_pid> pe;
    batch vb, ub;
    int three = 3;
    size_t nsel = 99;
    vqs_coll_op ops[5];
};

void apply_all_prepare(model &M, all_ops &A)
{
    for (int n : {1, 2, 9, 19, 50, 51, 77}) { // 9 and 19 have no payload
        A.pe.push_back(pid_of(n));
        point &p = M.live.at(key_of(pid_of(n)));
        p.payload = payload_text(p.has_payload ? n : -1, 2, ",\"edited\":true");
        p.has_payload = true;
        p.g = 2;
    }
    std::vector<int> vnum;
    for (int n = 5; n < 300; n += 15)
        if (M.live.count(key_of(pid_of(n))))
            vnum.push_back(n);
    A.vb = make_batch(M, vnum);
    std::vector<int> unum = range(300, 320);
    for (int n : {3, 4, 5, 7})
        unum.push_back(n);
    A.ub = make_batch(M, unum, 1);
    std::memset(A.ops, 0, sizeof A.ops);
    A.ops[0].kind = VQS_COLL_OP_PAYLOAD;
    A.ops[0].n = A.pe.size();
    A.ops[0].ids = A.pe.data();
    A.ops[0].edit = edit_to_g2;
    A.ops[1].kind = VQS_COLL_OP_VECTORS;
    A.ops[1].n = A.vb.ids.size();
    A.ops[1].ids = A.vb.ids.data();
    A.ops[1].xv = A.vb.xv;
    A.ops[2].kind = VQS_COLL_OP_PAYLOAD;
    A.ops[2].edit = move_g1;
    A.ops[3].kind = VQS_COLL_OP_DELETE;
    A.ops[3].edit = select_g;
    A.ops[3].edit_ctx = &A.three;
    A.ops[3].ndeleted = &A.nsel;
    A.ops[4].kind = VQS_COLL_OP_UPSERT;
    A.ops[4].n = A.ub.ids.size();
    A.ops[4].ids = A.ub.ids.data();
    A.ops[4].xv = A.ub.xv;
    A.ops[4].payloads = A.ub.pp.data();
}

// the model after A's ops, in their order; returns how many the delete by selection takes
size_t apply_all_model(model &M, const all_ops &A)
{
    commit_vectors(M, A.vb);
    for (auto &kv : M.live)
        if (kv.second.g == 1) {
            int i = 0;
            payload_g(kv.second.payload.c_str(), kv.second.payload.size(), &i);
            kv.second.payload = payload_text(i, 4, ",\"moved\":true");
            kv.second.g = 4;
        }
    size_t want_sel = 0;
    for (auto it = M.live.begin(); it != M.live.end();)
        if (it->second.g == 3) {
            it = M.live.erase(it);
            want_sel++;
        } else {
            ++it;
        }
    commit_upsert(M, A.ub);
    return want_sel;
}

// Creates "nv" with the three vectors and upserts points 0..299 in three batches of 100 (vector
// "a" trains at the second, "b" at the third); a payload index on "g" is made after the first.
void build(vqs_catalog *cat, model &M)
{
    auto cfg = three_configs();
    REQUIRE_OK(vqs_coll_create_named(cat, "nv", NV, VNAMES, cfg.data()));
    auto c = open_coll(cat, "nv");
    for (int b0 = 0; b0 < 300; b0 += 100) {
        batch b = make_batch(M, range(b0, b0 + 100));
        REQUIRE_OK(vqs_coll_upsert_vectors(c.get(), b.ids.size(), b.ids.data(), b.xv, b.pp.data()));
        commit_upsert(M, b);
        if (b0 == 0) {
            int created = 0;
            REQUIRE_OK(vqs_coll_pindex_create(c.get(), "g", VQS_PT_INTEGER, &created));
            REQUIRE(created == 1);
        }
        INFO("after the batch at " << b0);
        REQUIRE(vqs_coll_is_trained(vqs_coll_vector(c.get(), 0)) == (b0 >= 100));
        REQUIRE(vqs_coll_is_trained(vqs_coll_vector(c.get(), 1)) == (b0 >= 200));
        REQUIRE(!vqs_coll_is_trained(vqs_coll_vector(c.get(), 2)));
    }
    M.next_n = 300;
}

} // namespace

TEST_CASE("collection: named vectors are searched, read and edited each against brute force, and a reopen "
          "answers the same",
          "[collection][named]")
{
    tmpdir t;
    std::string dir = t.file("data");
    model M;
    std::vector<std::pair<std::string, float>> before;
    {
        catalog_ptr h(dir);
        build(h.cat, M);
        REQUIRE(listed(h.cat) == std::vector<std::string>{"nv"});
        char **vn = nullptr;
        size_t nvn = 0;
        REQUIRE_OK(vqs_coll_describe_vectors(h.cat, "nv", &vn, &nvn));
        REQUIRE(nvn == NV);
        for (size_t m = 0; m < NV; m++)
            REQUIRE(std::string(vn[m]) == VNAMES[m]);
        vqs_db_vectors_free(vn, nvn);
        // the collection describes as its first vector, with the collection's points
        vqs_coll_info info;
        REQUIRE_OK(vqs_coll_describe(h.cat, "nv", &info));
        REQUIRE(info.cfg.d == DIMS[0]);
        REQUIRE(info.count == 300);
        // one vector file per vector that keeps vectors: a header and d floats per point
        REQUIRE(size_of(dir + "/nv.vec") == 4096 + 300 * 8 * 4);
        REQUIRE(size_of(dir + "/nv@1.vec") == 4096 + 300 * 5 * 4);
        REQUIRE(size_of(dir + "/nv@2.vec") == -1);

        auto c = open_coll(h.cat, "nv");
        for (size_t m = 0; m < NV; m++) {
            size_t i = 99;
            REQUIRE_OK(vqs_coll_vector_find(c.get(), VNAMES[m], &i));
            REQUIRE(i == m);
        }
        REQUIRE(vqs_coll_vector(c.get(), 0) == c.get());
        REQUIRE(vqs_coll_vector(c.get(), NV) == nullptr);
        REQUIRE(vqs_coll_vector_name(c.get(), NV) == nullptr);
        // the SQ8 vector's codes are its own (1 byte a dimension), not another vector's
        vqs_coll_info ib;
        REQUIRE_OK(vqs_coll_stat(vqs_coll_vector(c.get(), 1), &ib));
        REQUIRE(ib.code_size == 5);
        REQUIRE(ib.trained == 1);
        check_all(c.get(), M);

        // the SQ8 vector's codes alone (no re-scoring) still find the true neighbours
        {
            auto q = queries(1, 40, 77);
            size_t k = 10, found = 0;
            std::vector<vqs_coll_hit> hh(40 * k);
            vqs_coll_search_params p = {};
            p.rerank = VQS_RERANK_OFF;
            REQUIRE_OK(vqs_coll_search(vqs_coll_vector(c.get(), 1), &p, 40, q.data(), k, hh.data()));
            for (size_t qi = 0; qi < 40; qi++) {
                auto ex = brute(M, 1, q.data() + qi * 5);
                std::set<std::string> want;
                for (size_t j = 0; j < k; j++)
                    want.insert(ex[j].second);
                for (size_t j = 0; j < k; j++)
                    found += hh[qi * k + j].id.kind && want.count(key_of(hh[qi * k + j].id));
            }
            vqs_coll_hits_free(hh.data(), hh.size());
            INFO("recall@10 of SQ8 without re-scoring: " << (double)found / (40.0 * k));
            REQUIRE(found >= 40 * k * 9 / 10);
        }

        // delete by ids (two unknown, one twice)
        std::vector<vqs_pid> del;
        for (int n = 0; n < 300; n += 12) {
            del.push_back(pid_of(n));
            M.live.erase(key_of(pid_of(n)));
        }
        del.push_back(pid_of(0));
        del.push_back(pid_of(100000));
        del.push_back(pid_of(100002));
        size_t nd = 99;
        REQUIRE_OK(vqs_coll_delete(c.get(), del.size(), del.data(), &nd));
        REQUIRE(nd == 25);
        check_all(c.get(), M);

        // one apply, in order: payload edits by id, vector replacements, payload edits by selection,
        // delete by selection, an upsert of new and existing points
        {
            all_ops A;
            apply_all_prepare(M, A);
            size_t want_sel = apply_all_model(M, A);
            REQUIRE(want_sel > 10);
            REQUIRE_OK(vqs_coll_apply(c.get(), 5, A.ops, nullptr, nullptr));
            REQUIRE(A.nsel == want_sel);
        }
        check_all(c.get(), M);

        // a delete by selection alone, then an upsert that brings back some of the deleted
        int two = 2;
        vqs_coll_op op = {};
        op.kind = VQS_COLL_OP_DELETE;
        op.edit = select_g;
        op.edit_ctx = &two;
        size_t nsel = 99, want_sel = 0;
        op.ndeleted = &nsel;
        for (auto it = M.live.begin(); it != M.live.end();)
            if (it->second.g == 2) {
                it = M.live.erase(it);
                want_sel++;
            } else {
                ++it;
            }
        REQUIRE_OK(vqs_coll_apply(c.get(), 1, &op, nullptr, nullptr));
        REQUIRE(nsel == want_sel);
        batch back = make_batch(M, {1, 2, 50, 320, 321});
        REQUIRE_OK(vqs_coll_upsert_vectors(c.get(), back.ids.size(), back.ids.data(), back.xv, back.pp.data()));
        commit_upsert(M, back);
        check_all(c.get(), M);
        before = snapshot(c.get());
    }
    // reopened (the open compares the vectors' records): the same points, answers and files
    batch more = make_batch(M, range(400, 430));
    {
        catalog_ptr h(dir);
        auto c = open_coll(h.cat, "nv");
        check_all(c.get(), M);
        REQUIRE(snapshot(c.get()) == before);
        vqs_coll_info info;
        REQUIRE_OK(vqs_coll_stat(c.get(), &info));
        REQUIRE(size_of(dir + "/nv.vec") == (off_t)(4096 + info.next_iid * 8 * 4));
        REQUIRE(size_of(dir + "/nv@1.vec") == (off_t)(4096 + info.next_iid * 5 * 4));
        // and writes go on from there
        REQUIRE_OK(vqs_coll_upsert_vectors(c.get(), more.ids.size(), more.ids.data(), more.xv, more.pp.data()));
        commit_upsert(M, more);
        check_all(c.get(), M);
        // a vector's search defaults are its own
        REQUIRE_OK(vqs_coll_set_defaults(vqs_coll_vector(c.get(), 1), 7, 3.0f, 250));
        before = snapshot(c.get());
    }
    // read-only (no writer beside it): the same answers
    vqs_catalog_opts ro = {};
    ro.read_only = 1;
    catalog_ptr h(dir, &ro);
    auto c = open_coll(h.cat, "nv");
    REQUIRE(vqs_coll_config_of(vqs_coll_vector(c.get(), 1))->nprobe == 7);
    REQUIRE(vqs_coll_config_of(vqs_coll_vector(c.get(), 1))->oversampling == 3.0f);
    REQUIRE(vqs_coll_config_of(c.get())->nprobe == VQS_COLL_DEFAULT_NPROBE);
    REQUIRE(vqs_coll_config_of(vqs_coll_vector(c.get(), 2))->nprobe == VQS_COLL_DEFAULT_NPROBE);
    check_all(c.get(), M);
    REQUIRE(snapshot(c.get()) == before);
    REQUIRE_ERR(vqs_coll_upsert_vectors(c.get(), more.ids.size(), more.ids.data(), more.xv, more.pp.data()),
                VQS_EINVAL);
}

TEST_CASE("collection: named vectors, an apply whose later operation fails changes nothing in any vector",
          "[collection][named]")
{
    tmpdir t;
    std::string dir = t.file("data");
    model M;
    catalog_ptr h(dir);
    build(h.cat, M);
    auto c = open_coll(h.cat, "nv");
    auto before = snapshot(c.get());
    off_t va = size_of(dir + "/nv.vec"), vb = size_of(dir + "/nv@1.vec");
    vqs_coll_info info0;
    REQUIRE_OK(vqs_coll_stat(c.get(), &info0));

    batch nb = make_batch(M, range(500, 520));     // new points
    batch rb = make_batch(M, {1, 2, 4});           // replacements of existing ones
    batch missing = make_batch(M, {2, 100001, 4}); // the second does not exist
    std::vector<vqs_pid> del = {pid_of(10), pid_of(11)};
    int zero = 0;
    auto unchanged = [&](const char *what) {
        INFO(what);
        for (size_t m = 0; m < NV; m++) {
            vqs_coll_info im;
            REQUIRE_OK(vqs_coll_stat(vqs_coll_vector(c.get(), m), &im));
            REQUIRE(im.count == 300);
            REQUIRE(im.next_iid == info0.next_iid);
        }
        REQUIRE(size_of(dir + "/nv.vec") == va);
        REQUIRE(size_of(dir + "/nv@1.vec") == vb);
        REQUIRE(snapshot(c.get()) == before);
        vqs_pid gone = pid_of(500);
        REQUIRE_ERR(vqs_coll_lookup(c.get(), &gone, nullptr, nullptr), VQS_ENOTFOUND);
        check_all(c.get(), M);
    };
    SECTION("vectors of an id that does not exist, after an upsert, a replacement, payload edits and deletes")
    {
        vqs_coll_op ops[6];
        std::memset(ops, 0, sizeof ops);
        ops[0].kind = VQS_COLL_OP_UPSERT;
        ops[0].n = nb.ids.size();
        ops[0].ids = nb.ids.data();
        ops[0].xv = nb.xv;
        ops[0].payloads = nb.pp.data();
        ops[1].kind = VQS_COLL_OP_VECTORS;
        ops[1].n = rb.ids.size();
        ops[1].ids = rb.ids.data();
        ops[1].xv = rb.xv;
        ops[2].kind = VQS_COLL_OP_DELETE;
        ops[2].n = del.size();
        ops[2].ids = del.data();
        ops[3].kind = VQS_COLL_OP_PAYLOAD;
        ops[3].edit = move_g1;
        ops[4].kind = VQS_COLL_OP_DELETE;
        ops[4].edit = select_g;
        ops[4].edit_ctx = &zero;
        ops[5].kind = VQS_COLL_OP_VECTORS;
        ops[5].n = missing.ids.size();
        ops[5].ids = missing.ids.data();
        ops[5].xv = missing.xv;
        REQUIRE_ERR(vqs_coll_apply(c.get(), 6, ops, nullptr, nullptr), VQS_ENOTFOUND);
        unchanged("after the failed apply");
    }
    SECTION("an edit that fails after an upsert")
    {
        vqs_coll_op ops[2];
        std::memset(ops, 0, sizeof ops);
        ops[0].kind = VQS_COLL_OP_UPSERT;
        ops[0].n = nb.ids.size();
        ops[0].ids = nb.ids.data();
        ops[0].xv = nb.xv;
        ops[1].kind = VQS_COLL_OP_PAYLOAD;
        ops[1].edit = edit_fails;
        REQUIRE_ERR(vqs_coll_apply(c.get(), 2, ops, nullptr, nullptr), VQS_EINVAL);
        unchanged("after the failed edit");
    }
    SECTION("a vector of the last named vector that is not finite")
    {
        nb.x[2][3 * 3 + 1] = NAN;
        REQUIRE_ERR(vqs_coll_upsert_vectors(c.get(), nb.ids.size(), nb.ids.data(), nb.xv, nb.pp.data()),
                    VQS_ENONFINITE);
        unchanged("after the refused upsert");
    }
    SECTION("ids given twice in one upsert")
    {
        nb.ids[7] = nb.ids[3];
        REQUIRE_ERR(vqs_coll_upsert_vectors(c.get(), nb.ids.size(), nb.ids.data(), nb.xv, nb.pp.data()),
                    VQS_EINVAL);
        unchanged("after the refused upsert");
    }
    // and what failed is not there after a reopen either
    c.reset();
    c = open_coll(h.cat, "nv");
    REQUIRE(snapshot(c.get()) == before);
    check_all(c.get(), M);
}

TEST_CASE("collection: named vectors, writes replayed when the LMDB map grows are applied once",
          "[collection][named]")
{
    tmpdir t;
    std::string dir = t.file("data");
    model M;
    M.pad = ",\"pad\":\"" + std::string(3000, 'p') + "\"";
    vqs_catalog_opts o = {};
    o.map_size = 1 << 20; // 1 MiB: 300 payloads of 3 KB grow it during the writes
    size_t grown = 0;
    {
        catalog_ptr h(dir, &o);
        size_t m0 = vqs_catalog_map_size(h.cat);
        build(h.cat, M);
        REQUIRE(vqs_catalog_map_size(h.cat) > m0);
        auto c = open_coll(h.cat, "nv");
        check_all(c.get(), M);
        // one apply of every kind of write, large enough to grow the map again in its session
        size_t m1 = vqs_catalog_map_size(h.cat);
        M.pad = ",\"pad\":\"" + std::string(60000, 'q') + "\"";
        all_ops A;
        apply_all_prepare(M, A);
        size_t want_sel = apply_all_model(M, A);
        REQUIRE_OK(vqs_coll_apply(c.get(), 5, A.ops, nullptr, nullptr));
        grown = vqs_catalog_map_size(h.cat);
        INFO("map " << m1 << " -> " << grown);
        REQUIRE(grown > m1);
        REQUIRE(A.nsel == want_sel);
        check_all(c.get(), M);
    }
    catalog_ptr h(dir, &o);
    auto c = open_coll(h.cat, "nv");
    check_all(c.get(), M);
    vqs_coll_info info;
    REQUIRE_OK(vqs_coll_stat(c.get(), &info));
    REQUIRE(size_of(dir + "/nv.vec") == (off_t)(4096 + info.next_iid * 8 * 4));
    REQUIRE(size_of(dir + "/nv@1.vec") == (off_t)(4096 + info.next_iid * 5 * 4));
}

TEST_CASE("collection: named vectors, an uncommitted tail in any vector file is cut back at open",
          "[collection][named]")
{
    tmpdir t;
    std::string dir = t.file("data");
    model M;
    {
        catalog_ptr h(dir);
        build(h.cat, M);
    }
    // what a crash between the vector files' append and the commit leaves: a whole record in one
    // file, half of one in the other
    off_t va = size_of(dir + "/nv.vec"), vb = size_of(dir + "/nv@1.vec");
    std::vector<float> junk(8, 1e3f);
    const std::pair<const char *, size_t> tails[] = {{"/nv.vec", 8}, {"/nv@1.vec", 2}};
    for (auto &f : tails) {
        FILE *fp = std::fopen((dir + f.first).c_str(), "ab");
        REQUIRE(fp != nullptr);
        REQUIRE(std::fwrite(junk.data(), sizeof(float), f.second, fp) == f.second);
        REQUIRE(std::fclose(fp) == 0);
    }
    catalog_ptr h(dir);
    auto c = open_coll(h.cat, "nv");
    REQUIRE(size_of(dir + "/nv.vec") == va);
    REQUIRE(size_of(dir + "/nv@1.vec") == vb);
    check_all(c.get(), M);
    // the next write's vectors land where they belong
    batch b = make_batch(M, range(300, 310));
    REQUIRE_OK(vqs_coll_upsert_vectors(c.get(), b.ids.size(), b.ids.data(), b.xv, b.pp.data()));
    commit_upsert(M, b);
    check_all(c.get(), M);
}

TEST_CASE("collection: named vectors, writes that would leave a vector out and bad names are refused",
          "[collection][named]")
{
    tmpdir t;
    std::string dir = t.file("data");
    model M;
    catalog_ptr h(dir);
    build(h.cat, M);
    auto c = open_coll(h.cat, "nv");
    batch b = make_batch(M, range(600, 610));
    // an upsert of one vector, and x instead of xv
    REQUIRE_ERR(vqs_coll_upsert(c.get(), b.ids.size(), b.ids.data(), b.x[0].data(), b.pp.data()), VQS_EINVAL);
    for (vqs_coll_op_kind kind : {VQS_COLL_OP_UPSERT, VQS_COLL_OP_VECTORS}) {
        vqs_coll_op op = {};
        op.kind = kind;
        op.n = 3;
        op.ids = b.ids.data();
        op.x = b.x[0].data();
        REQUIRE_ERR(vqs_coll_apply(c.get(), 1, &op, nullptr, nullptr), VQS_EINVAL);
        const float *part[NV] = {b.xv[0], b.xv[1], nullptr}; // one vector missing
        op.x = nullptr;
        op.xv = part;
        REQUIRE_ERR(vqs_coll_apply(c.get(), 1, &op, nullptr, nullptr), VQS_EINVAL);
    }
    // writes through a vector's handle
    for (size_t m = 1; m < NV; m++) {
        vqs_coll *vc = vqs_coll_vector(c.get(), m);
        REQUIRE_ERR(vqs_coll_upsert(vc, 1, b.ids.data(), b.x[m].data(), nullptr), VQS_EINVAL);
        REQUIRE_ERR(vqs_coll_upsert_vectors(vc, 1, b.ids.data(), b.xv, nullptr), VQS_EINVAL);
        vqs_pid one = pid_of(1);
        REQUIRE_ERR(vqs_coll_delete(vc, 1, &one, nullptr), VQS_EINVAL);
        vqs_coll_op op = {};
        op.kind = VQS_COLL_OP_DELETE;
        op.n = 1;
        op.ids = &one;
        REQUIRE_ERR(vqs_coll_apply(vc, 1, &op, nullptr, nullptr), VQS_EINVAL);
    }
    REQUIRE(snapshot(c.get()).size() == 3 * 8 * 10);
    check_all(c.get(), M);
    // unknown vector names
    size_t i = 99;
    REQUIRE_ERR(vqs_coll_vector_find(c.get(), "d", &i), VQS_ENOTFOUND);
    REQUIRE_ERR(vqs_coll_vector_find(c.get(), "", &i), VQS_ENOTFOUND); // no unnamed vector here
    REQUIRE_ERR(vqs_coll_vector_find(c.get(), nullptr, &i), VQS_ENOTFOUND);
    REQUIRE_ERR(vqs_coll_vector_find(c.get(), "A", &i), VQS_ENOTFOUND);
    REQUIRE(i == 99);
    // the records of further vectors are not collections of their own
    for (const char *rn : {"nv@1", "nv@2", "nv@0", "nv@3", "nv@"}) {
        INFO(rn);
        vqs_coll *raw = nullptr;
        vqs_coll_info info;
        REQUIRE_ERR(vqs_coll_open(h.cat, rn, nullptr, &raw), VQS_EINVAL);
        REQUIRE(raw == nullptr);
        REQUIRE_ERR(vqs_coll_describe(h.cat, rn, &info), VQS_EINVAL);
        REQUIRE_ERR(vqs_coll_drop(h.cat, rn), VQS_EINVAL);
        vqs_db_alias_op al = {VQS_DB_ALIAS_CREATE, "al", rn};
        size_t failed = 99;
        REQUIRE_ERR(vqs_catalog_alias_update(h.cat, 1, &al, &failed), VQS_EINVAL);
    }
    REQUIRE(size_of(dir + "/nv@1.vec") > 4096);
    c.reset();

    // create_named: bad arguments create nothing
    auto cfg3 = three_configs();
    auto nothing_made = [&](const char *name) {
        vqs_coll_info info;
        REQUIRE_ERR(vqs_coll_describe(h.cat, name, &info), std::strchr(name, '@') ? VQS_EINVAL : VQS_ENOTFOUND);
        REQUIRE(listed(h.cat) == std::vector<std::string>{"nv"});
        REQUIRE(files_with(dir, name).empty());
    };
    {
        const char *dup[NV] = {"a", "b", "a"};
        REQUIRE_ERR(vqs_coll_create_named(h.cat, "x", NV, dup, cfg3.data()), VQS_EINVAL);
        nothing_made("x");
        const char *empty[NV] = {"a", "", "c"};
        REQUIRE_ERR(vqs_coll_create_named(h.cat, "x", NV, empty, cfg3.data()), VQS_EINVAL);
        nothing_made("x");
        const char *ctl[NV] = {"a", "b\n", "c"};
        REQUIRE_ERR(vqs_coll_create_named(h.cat, "x", NV, ctl, cfg3.data()), VQS_EINVAL);
        nothing_made("x");
        std::string longname(64, 'v');
        const char *lng[NV] = {"a", "b", longname.c_str()};
        REQUIRE_ERR(vqs_coll_create_named(h.cat, "x", NV, lng, cfg3.data()), VQS_EINVAL);
        nothing_made("x");
        REQUIRE_ERR(vqs_coll_create_named(h.cat, "x", 0, VNAMES, cfg3.data()), VQS_EINVAL);
        nothing_made("x");
        std::vector<std::string> n17;
        std::vector<const char *> p17;
        std::vector<vqs_coll_config> c17;
        for (int k = 0; k < 17; k++)
            n17.push_back("v" + std::to_string(k));
        for (int k = 0; k < 17; k++) {
            p17.push_back(n17[(size_t)k].c_str());
            c17.push_back(cfg3[(size_t)k % NV]);
        }
        REQUIRE_ERR(vqs_coll_create_named(h.cat, "x", 17, p17.data(), c17.data()), VQS_EINVAL);
        nothing_made("x");
        // a bad configuration of the last vector: nothing of the first two is left either
        auto bad = cfg3;
        bad[2].d = 0;
        REQUIRE_ERR(vqs_coll_create_named(h.cat, "x", NV, VNAMES, bad.data()), VQS_EINVAL);
        nothing_made("x");
        bad = cfg3;
        std::snprintf(bad[1].spec, sizeof bad[1].spec, "NOPE");
        REQUIRE_ERR(vqs_coll_create_named(h.cat, "x", NV, VNAMES, bad.data()), VQS_ESPEC);
        nothing_made("x");
        // a bad collection name
        REQUIRE_ERR(vqs_coll_create_named(h.cat, "x@1", NV, VNAMES, cfg3.data()), VQS_EINVAL);
        nothing_made("x@1");
        // 16 vectors are fine
        REQUIRE_OK(vqs_coll_create_named(h.cat, "x", 16, p17.data(), c17.data()));
        auto x = open_coll(h.cat, "x");
        REQUIRE(vqs_coll_nvectors(x.get()) == 16);
        REQUIRE(std::string(vqs_coll_vector_name(x.get(), 15)) == "v15");
        REQUIRE(vqs_coll_d(vqs_coll_vector(x.get(), 15)) == DIMS[0]);
        x.reset();
        REQUIRE(listed(h.cat) == (std::vector<std::string>{"nv", "x"}));
        REQUIRE_OK(vqs_coll_drop(h.cat, "x"));
        nothing_made("x");
    }
    // a vector file that cannot be created (a directory in the place of the second): nothing is
    // left but that directory
    REQUIRE(mkdir((dir + "/y@1.vec").c_str(), 0755) == 0);
    REQUIRE(vqs_coll_create_named(h.cat, "y", NV, VNAMES, cfg3.data()) != 0);
    vqs_coll_info info;
    REQUIRE_ERR(vqs_coll_describe(h.cat, "y", &info), VQS_ENOTFOUND);
    REQUIRE(listed(h.cat) == std::vector<std::string>{"nv"});
    REQUIRE(files_with(dir, "y") == std::set<std::string>{"y@1.vec"});
    // an existing name
    REQUIRE_ERR(vqs_coll_create_named(h.cat, "nv", NV, VNAMES, cfg3.data()), -EEXIST);
    c = open_coll(h.cat, "nv");
    check_all(c.get(), M);
}

TEST_CASE("collection: named vectors, drop removes every vector file and the name is free at once",
          "[collection][named]")
{
    tmpdir t;
    std::string dir = t.file("data");
    model M;
    catalog_ptr h(dir);
    build(h.cat, M);
    auto cfg = three_configs();
    cfg[2].rerank = VQS_RERANK_MEMORY; // all three keep vector files
    const char *other[NV] = {"p", "q", "r"};
    REQUIRE_OK(vqs_coll_create_named(h.cat, "nw", NV, other, cfg.data()));
    REQUIRE(files_with(dir, "nw") == (std::set<std::string>{"nw.vec", "nw@1.vec", "nw@2.vec"}));
    REQUIRE(listed(h.cat) == (std::vector<std::string>{"nv", "nw"}));
    vqs_db_alias_op al = {VQS_DB_ALIAS_CREATE, "docs", "nw"};
    REQUIRE_OK(vqs_catalog_alias_update(h.cat, 1, &al, nullptr));
    {
        auto c = open_coll(h.cat, "nw");
        model W;
        batch b = make_batch(W, range(0, 40));
        REQUIRE_OK(vqs_coll_upsert_vectors(c.get(), b.ids.size(), b.ids.data(), b.xv, b.pp.data()));
    }
    REQUIRE_OK(vqs_coll_drop(h.cat, "nw"));
    REQUIRE(files_with(dir, "nw").empty());
    REQUIRE(listed(h.cat) == std::vector<std::string>{"nv"});
    vqs_db_alias *aliases = nullptr;
    size_t na = 99;
    REQUIRE_OK(vqs_catalog_aliases(h.cat, &aliases, &na));
    REQUIRE(na == 0);
    free(aliases);
    REQUIRE_ERR(vqs_coll_drop(h.cat, "nw"), VQS_ENOTFOUND);
    // the name again at once: with two other vectors, empty
    const char *two[2] = {"r", "p"};
    std::vector<vqs_coll_config> cfg2 = {cfg[2], cfg[0]};
    REQUIRE_OK(vqs_coll_create_named(h.cat, "nw", 2, two, cfg2.data()));
    {
        auto c = open_coll(h.cat, "nw");
        REQUIRE(vqs_coll_nvectors(c.get()) == 2);
        REQUIRE(std::string(vqs_coll_vector_name(c.get(), 0)) == "r");
        REQUIRE(vqs_coll_d(c.get()) == DIMS[2]);
        REQUIRE(vqs_coll_d(vqs_coll_vector(c.get(), 1)) == DIMS[0]);
        for (size_t m = 0; m < 2; m++) {
            REQUIRE(vqs_coll_count(vqs_coll_vector(c.get(), m)) == 0);
            REQUIRE(!vqs_coll_is_trained(vqs_coll_vector(c.get(), m)));
        }
        REQUIRE(files_with(dir, "nw") == (std::set<std::string>{"nw.vec", "nw@1.vec"}));
        REQUIRE(size_of(dir + "/nw.vec") == 4096);
        REQUIRE(size_of(dir + "/nw@1.vec") == 4096);
    }
    REQUIRE_OK(vqs_coll_drop(h.cat, "nw"));
    // and as an unnamed collection: no vector names are left of the old ones
    vqs_coll_config one = cfg[0];
    one.train_size = 0;
    REQUIRE_OK(vqs_coll_create(h.cat, "nw", &one));
    char **vn = nullptr;
    size_t nvn = 99;
    REQUIRE_OK(vqs_coll_describe_vectors(h.cat, "nw", &vn, &nvn));
    REQUIRE(nvn == 0);
    REQUIRE(vn == nullptr);
    {
        auto c = open_coll(h.cat, "nw");
        REQUIRE(vqs_coll_nvectors(c.get()) == 1);
        REQUIRE(vqs_coll_vector_name(c.get(), 0) == nullptr);
        size_t i = 99;
        REQUIRE_OK(vqs_coll_vector_find(c.get(), "", &i));
        REQUIRE(i == 0);
        REQUIRE_ERR(vqs_coll_vector_find(c.get(), "p", &i), VQS_ENOTFOUND);
    }
    REQUIRE(files_with(dir, "nw") == std::set<std::string>{"nw.vec"});
    REQUIRE(listed(h.cat) == (std::vector<std::string>{"nv", "nw"}));
    // the other collection is untouched by all this
    auto c = open_coll(h.cat, "nv");
    check_all(c.get(), M);
}

TEST_CASE("collection: named vectors, a collection of one named vector works as an unnamed one and reports its "
          "name",
          "[collection][named]")
{
    tmpdir t;
    std::string dir = t.file("data");
    const size_t d = 6, n = 200;
    vqs_coll_config cfg = {};
    cfg.d = d;
    cfg.metric = VQS_METRIC_L2;
    std::snprintf(cfg.spec, sizeof cfg.spec, "SQfp32");
    cfg.rerank = VQS_RERANK_MEMORY;
    const char *vn[1] = {"only"};
    auto x = synth(n, d, 31), y = synth(50, d, 32), q = synth(10, d, 33);
    std::map<uint64_t, std::vector<float>> live;
    auto check = [&](vqs_coll *c) {
        REQUIRE(vqs_coll_count(c) == live.size());
        for (size_t qi = 0; qi < 10; qi++) {
            std::vector<std::pair<double, uint64_t>> ex;
            for (auto &kv : live) {
                double s = 0;
                for (size_t j = 0; j < d; j++)
                    s += ((double)q[qi * d + j] - kv.second[j]) * ((double)q[qi * d + j] - kv.second[j]);
                ex.push_back({s, kv.first});
            }
            std::sort(ex.begin(), ex.end());
            std::vector<vqs_pid> ids(5);
            std::vector<float> dist(5);
            REQUIRE_OK(coll_search_arrays(c, nullptr, 1, q.data() + qi * d, 5, ids.data(), dist.data(), nullptr));
            for (size_t j = 0; j < 5; j++) {
                INFO("query " << qi << " rank " << j);
                REQUIRE(ids[j].u64 == ex[j].second);
                REQUIRE(dist[j] == Approx(ex[j].first).epsilon(1e-5).margin(1e-5));
            }
        }
    };
    {
        catalog_ptr h(dir);
        REQUIRE_OK(vqs_coll_create_named(h.cat, "one", 1, vn, &cfg));
        REQUIRE(files_with(dir, "one") == std::set<std::string>{"one.vec"});
        auto c = open_coll(h.cat, "one");
        REQUIRE(vqs_coll_nvectors(c.get()) == 1);
        REQUIRE(std::string(vqs_coll_vector_name(c.get(), 0)) == "only");
        REQUIRE(vqs_coll_vector(c.get(), 0) == c.get());
        REQUIRE(vqs_coll_vector(c.get(), 1) == nullptr);
        size_t i = 99;
        REQUIRE_OK(vqs_coll_vector_find(c.get(), "only", &i));
        REQUIRE(i == 0);
        REQUIRE_ERR(vqs_coll_vector_find(c.get(), "", &i), VQS_ENOTFOUND);
        // the plain calls: upsert, delete, apply with x
        std::vector<vqs_pid> ids;
        for (size_t k = 0; k < n; k++) {
            ids.push_back(u64id(k));
            live[k].assign(x.begin() + (long)(k * d), x.begin() + (long)((k + 1) * d));
        }
        REQUIRE_OK(vqs_coll_upsert(c.get(), 100, ids.data(), x.data(), nullptr));
        const float *xv[1] = {x.data() + 100 * d};
        REQUIRE_OK(vqs_coll_upsert_vectors(c.get(), 100, ids.data() + 100, xv, nullptr));
        size_t nd = 0;
        std::vector<vqs_pid> del = {u64id(3), u64id(4), u64id(5000)};
        REQUIRE_OK(vqs_coll_delete(c.get(), del.size(), del.data(), &nd));
        REQUIRE(nd == 2);
        live.erase(3);
        live.erase(4);
        vqs_coll_op op = {};
        op.kind = VQS_COLL_OP_VECTORS;
        op.n = 50;
        op.ids = ids.data() + 10;
        op.x = y.data();
        REQUIRE_OK(vqs_coll_apply(c.get(), 1, &op, nullptr, nullptr));
        for (size_t k = 0; k < 50; k++)
            live[10 + k].assign(y.begin() + (long)(k * d), y.begin() + (long)((k + 1) * d));
        check(c.get());
        std::vector<float> v(d);
        vqs_pid g = u64id(12);
        REQUIRE_OK(vqs_coll_get(c.get(), &g, v.data(), nullptr));
        REQUIRE(v == live[12]);
        char **names = nullptr;
        size_t nn = 0;
        REQUIRE_OK(vqs_coll_describe_vectors(h.cat, "one", &names, &nn));
        REQUIRE(nn == 1);
        REQUIRE(std::string(names[0]) == "only");
        vqs_db_vectors_free(names, nn);
    }
    catalog_ptr h(dir);
    auto c = open_coll(h.cat, "one");
    REQUIRE(std::string(vqs_coll_vector_name(c.get(), 0)) == "only");
    check(c.get());
    c.reset();
    REQUIRE_OK(vqs_coll_drop(h.cat, "one"));
    REQUIRE(files_with(dir, "one").empty());
}

TEST_CASE("collection: named vectors, records that disagree are refused at open naming the vector",
          "[collection][named]")
{
    tmpdir t;
    std::string dir = t.file("data");
    auto cfg = three_configs();
    for (auto &c : cfg)
        c.train_size = 0; // untrained: every record stores the vectors (4 d bytes) as its codes
    model M;
    {
        catalog_ptr h(dir);
        REQUIRE_OK(vqs_coll_create_named(h.cat, "cc", NV, VNAMES, cfg.data()));
        auto c = open_coll(h.cat, "cc");
        batch b = make_batch(M, range(0, 20));
        REQUIRE_OK(vqs_coll_upsert_vectors(c.get(), b.ids.size(), b.ids.data(), b.xv, b.pp.data()));
        commit_upsert(M, b);
    }
    size_t bad = 0;
    SECTION("a point only in vector b's record")
    {
        bad = 1;
        db_ptr db(dir);
        vqs_pid id = pid_of(777);
        std::vector<uint8_t> codes(4 * DIMS[1], 0);
        vqs_db_batch b = {};
        b.n = 1;
        b.ids = &id;
        b.code_size = codes.size();
        b.codes = codes.data();
        REQUIRE_OK(vqs_db_upsert(db.db, "cc@1", &b, nullptr, nullptr, nullptr, nullptr));
    }
    SECTION("a point deleted only from vector c's record")
    {
        bad = 2;
        db_ptr db(dir);
        vqs_pid id = pid_of(4);
        size_t nd = 0;
        REQUIRE_OK(vqs_db_delete(db.db, "cc@2", 1, &id, nullptr, &nd));
        REQUIRE(nd == 1);
    }
    SECTION("as many points in every record, but not the same ones")
    {
        bad = 1;
        db_ptr db(dir);
        vqs_pid four = pid_of(4), five = pid_of(5);
        size_t nd = 0;
        REQUIRE_OK(vqs_db_delete(db.db, "cc", 1, &five, nullptr, &nd));
        REQUIRE_OK(vqs_db_delete(db.db, "cc@1", 1, &four, nullptr, &nd));
        REQUIRE_OK(vqs_db_delete(db.db, "cc@2", 1, &four, nullptr, &nd));
        REQUIRE(nd == 1);
    }
    catalog_ptr h(dir);
    vqs_coll *raw = nullptr;
    REQUIRE_ERR(vqs_coll_open(h.cat, "cc", nullptr, &raw), VQS_ECORRUPT);
    REQUIRE(raw == nullptr);
    std::string detail = vqs_errdetail();
    INFO(detail);
    REQUIRE(detail.find(std::string("vector '") + VNAMES[bad] + "'") != std::string::npos);
    // the collection can still be described and dropped (every record and file)
    vqs_coll_info info;
    REQUIRE_OK(vqs_coll_describe(h.cat, "cc", &info));
    REQUIRE(info.count >= 19);
    REQUIRE_OK(vqs_coll_drop(h.cat, "cc"));
    REQUIRE(files_with(dir, "cc").empty());
    REQUIRE(listed(h.cat).empty());
}
