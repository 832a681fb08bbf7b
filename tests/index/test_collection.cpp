// Tests for persistent collections (index/collection.c over storage/): real LMDB files, real
// vector files read through io_uring, a real `vqs import` process killed with SIGKILL.
// - upsert / replace / delete / reopen: the reopened collection answers exactly as before;
// - re-scoring from disk (io_uring), pread and memory give the same results, and with every
//   candidate re-scored they equal exact search over the live points;
// - the crash test: every batch `vqs import` acknowledged is present and searchable after a
//   SIGKILL, no partial batch is visible, and the vector file agrees with LMDB.
#include "vqs_test.hpp"

#include <cmath>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <random>
#include <set>
#include <sys/wait.h>

using namespace vqs_test;

namespace
{

struct db_handle {
    vqs_db *db = nullptr;
    explicit db_handle(const std::string &dir, const vqs_db_opts *o = nullptr)
    {
        REQUIRE_OK(vqs_db_open(dir.c_str(), o, &db));
    }
    ~db_handle() { vqs_db_close(db); }
};
using coll_ptr = std::unique_ptr<vqs_coll, decltype(&vqs_coll_close)>;

coll_ptr open_coll(vqs_db *db, const char *name, vqs_vs_backend be = VQS_VS_AUTO)
{
    vqs_coll *c = nullptr;
    vqs_coll_opts o = {};
    o.nthreads = 2;
    o.backend = be;
    REQUIRE_OK(vqs_coll_open(db, name, &o, &c));
    return coll_ptr(c, vqs_coll_close);
}

vqs_pid u64id(uint64_t v)
{
    vqs_pid p;
    std::memset(&p, 0, sizeof p);
    p.kind = VQS_PID_U64;
    p.u64 = v;
    return p;
}

struct result {
    std::vector<vqs_pid> ids;
    std::vector<float> dist;
};

result search(vqs_coll *c, const std::vector<float> &q, size_t d, size_t k, float os, int rerank = 0)
{
    size_t nq = q.size() / d;
    result r;
    r.ids.resize(nq * k);
    r.dist.resize(nq * k);
    vqs_coll_search_params p = {};
    p.nprobe = 16;
    p.oversampling = os;
    p.rerank = rerank;
    REQUIRE_OK(vqs_coll_search(c, &p, nq, q.data(), k, r.ids.data(), r.dist.data(), nullptr));
    return r;
}

void require_same(const result &a, const result &b)
{
    REQUIRE(a.ids.size() == b.ids.size());
    for (size_t i = 0; i < a.ids.size(); i++) {
        INFO("result " << i);
        REQUIRE(a.ids[i].kind == b.ids[i].kind);
        REQUIRE(a.ids[i].u64 == b.ids[i].u64);
        REQUIRE(a.dist[i] == b.dist[i]);
    }
}

} // namespace

TEST_CASE("collection: upsert, replace, delete and reopen, every rerank path agrees", "[collection]")
{
    tmpdir t;
    const size_t d = 24, n = 3000, nq = 20, k = 10;
    auto x = synth(n, d, 81);
    auto q = synth(nq, d, 82);
    std::string dir = t.file("data");
    result before;
    std::map<uint64_t, std::vector<float>> live; // id -> vector, the truth
    {
        db_handle h(dir);
        vqs_coll_config cfg = {};
        cfg.d = d;
        cfg.metric = VQS_METRIC_L2;
        std::strcpy(cfg.spec, "IVF16,PQ8x4");
        cfg.rerank = 1;
        cfg.nprobe = 16;
        cfg.oversampling = 4;
        REQUIRE_OK(vqs_db_create(h.db, "c1", &cfg));
        auto c = open_coll(h.db, "c1");
        REQUIRE(!vqs_coll_is_trained(c.get()));
        REQUIRE_ERR(vqs_coll_upsert(c.get(), 1, std::vector<vqs_pid>{u64id(0)}.data(), x.data(), nullptr),
                    VQS_EINVAL);
        REQUIRE_OK(vqs_coll_train(c.get(), n, x.data()));
        for (size_t b0 = 0; b0 < n; b0 += 500) {
            std::vector<vqs_pid> ids;
            std::vector<std::string> ps;
            std::vector<const char *> pp;
            for (size_t i = b0; i < b0 + 500; i++) {
                ids.push_back(u64id(i * 10));
                ps.push_back("{\"row\":" + std::to_string(i) + "}");
                live[i * 10] = std::vector<float>(x.begin() + (long)(i * d), x.begin() + (long)((i + 1) * d));
            }
            for (auto &s : ps)
                pp.push_back(s.c_str());
            REQUIRE_OK(vqs_coll_upsert(c.get(), ids.size(), ids.data(), x.data() + b0 * d, pp.data()));
        }
        REQUIRE(vqs_coll_count(c.get()) == n);
        // replace 100 points with new vectors (the queries' neighbours move), delete 200
        std::vector<vqs_pid> rep, del;
        std::vector<float> nv;
        auto y = synth(100, d, 83);
        for (size_t i = 0; i < 100; i++) {
            rep.push_back(u64id(i * 30));
            live[i * 30] = std::vector<float>(y.begin() + (long)(i * d), y.begin() + (long)((i + 1) * d));
        }
        REQUIRE_OK(vqs_coll_upsert(c.get(), rep.size(), rep.data(), y.data(), nullptr));
        for (size_t i = 0; i < 200; i++) {
            del.push_back(u64id(i * 10 + 5000));
            live.erase(i * 10 + 5000);
        }
        del.push_back(u64id(999999)); // unknown: ignored
        size_t nd = 0;
        REQUIRE_OK(vqs_coll_delete(c.get(), del.size(), del.data(), &nd));
        REQUIRE(nd == 200);
        REQUIRE(vqs_coll_count(c.get()) == live.size());
        // get: the stored vector and payload
        std::vector<float> v(d);
        char *pay = nullptr;
        vqs_pid g = u64id(40); // not replaced: payload of row 4
        REQUIRE_OK(vqs_coll_get(c.get(), &g, v.data(), &pay));
        REQUIRE(v == live[40]);
        REQUIRE(pay != nullptr);
        REQUIRE(std::string(pay) == "{\"row\":4}");
        free(pay);
        pay = nullptr;
        g = u64id(30); // replaced without a payload: an upsert replaces the whole point (as Qdrant's)
        REQUIRE_OK(vqs_coll_get(c.get(), &g, v.data(), &pay));
        REQUIRE(v == live[30]);
        REQUIRE(pay == nullptr);
        vqs_pid gone = u64id(5000);
        REQUIRE_ERR(vqs_coll_get(c.get(), &gone, v.data(), nullptr), VQS_ENOTFOUND);
        before = search(c.get(), q, d, k, 4);
    }
    // reopen: same answers, bit for bit, through every re-scoring path
    db_handle h(dir);
    for (vqs_vs_backend be : {VQS_VS_AUTO, VQS_VS_PREAD, VQS_VS_MEMORY, VQS_VS_MMAP}) {
        INFO("backend " << (int)be);
        auto c = open_coll(h.db, "c1", be);
        REQUIRE(vqs_coll_count(c.get()) == live.size());
        require_same(before, search(c.get(), q, d, k, 4));
        // every candidate re-scored: exact search over the live points
        auto all = search(c.get(), q, d, k, (float)n, 0);
        for (size_t qi = 0; qi < nq; qi++) {
            std::vector<std::pair<float, uint64_t>> ex;
            for (auto &kv : live) {
                double s = 0;
                for (size_t j = 0; j < d; j++) {
                    double e = (double)q[qi * d + j] - kv.second[j];
                    s += e * e;
                }
                ex.push_back({(float)s, kv.first});
            }
            std::sort(ex.begin(), ex.end());
            for (size_t j = 0; j < k; j++) {
                INFO("query " << qi << " rank " << j);
                REQUIRE(all.ids[qi * k + j].kind == VQS_PID_U64);
                REQUIRE(live.count(all.ids[qi * k + j].u64) == 1);
                REQUIRE(all.dist[qi * k + j] == Approx(ex[j].first).epsilon(1e-5).margin(1e-4));
            }
        }
    }
}

// ---- the crash test -------------------------------------------------------------------------

namespace
{

// Runs `vqs import` on vecs into dir; kills it with SIGKILL once `after` batches are
// acknowledged plus a random delay; returns the acknowledged total (the last "total T").
uint64_t import_and_kill(const std::string &dir, const std::string &vecs, size_t batch, int after,
                         unsigned delay_us)
{
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        std::string b = std::to_string(batch);
        execl(VQS_CLI_PATH, "vqs", "import", "--data", dir.c_str(), "--collection", "crash", "--spec",
              "IVF8,SQ8", "--metric", "l2", "--vectors", vecs.c_str(), "--batch", b.c_str(), "--threads",
              "1", (char *)nullptr);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[256];
    uint64_t total = 0;
    int seen = 0;
    bool killed = false;
    while (std::fgets(line, sizeof line, f)) {
        unsigned long long nn = 0, tt = 0;
        REQUIRE(std::sscanf(line, "committed %llu points, total %llu", &nn, &tt) == 2);
        REQUIRE(nn == batch);
        total = tt;
        if (++seen == after) {
            usleep(delay_us);
            kill(pid, SIGKILL);
            killed = true;
            break;
        }
    }
    // lines already written before the kill are acknowledged too
    if (killed)
        while (std::fgets(line, sizeof line, f)) {
            unsigned long long nn = 0, tt = 0;
            if (std::sscanf(line, "committed %llu points, total %llu", &nn, &tt) == 2)
                total = tt;
        }
    std::fclose(f);
    int st = 0;
    waitpid(pid, &st, 0);
    INFO("import exit status " << st);
    REQUIRE(killed);
    REQUIRE(WIFSIGNALED(st));
    return total;
}

} // namespace

TEST_CASE("crash: SIGKILL during a stream of upserts loses no acknowledged batch", "[collection]")
{
    tmpdir t;
    const size_t d = 32, n = 40000, batch = 250;
    auto x = synth(n, d, 91);
    std::string vecs = t.file("v.fvecs");
    REQUIRE_OK(vqs_write_fvecs(vecs.c_str(), n, d, x.data()));
    std::mt19937 rng(7);
    for (int round = 0; round < 4; round++) {
        std::string dir = t.file("data" + std::to_string(round));
        int after = 3 + (int)(rng() % 20);
        unsigned delay = (unsigned)(rng() % 20000);
        uint64_t acked = import_and_kill(dir, vecs, batch, after, delay);
        INFO("round " << round << ": acknowledged " << acked << " (kill after " << after << " lines + "
                      << delay << " us)");
        db_handle h(dir);
        vqs_coll_info info;
        REQUIRE_OK(vqs_db_info(h.db, "crash", &info));
        // every acknowledged batch is there, no partial batch is visible
        REQUIRE(info.count >= acked);
        REQUIRE(info.count % batch == 0);
        REQUIRE(info.next_iid == info.count);
        auto c = open_coll(h.db, "crash");
        REQUIRE(vqs_coll_count(c.get()) == info.count);
        // the vector file agrees with LMDB: its torn tail was cut back at open
        struct stat st;
        REQUIRE(stat(vqs_coll_vecfile_path(c.get()), &st) == 0);
        REQUIRE((uint64_t)st.st_size == 4096 + info.count * d * sizeof(float));
        // every stored point is the file's row, and nothing beyond
        std::vector<float> v(d);
        for (uint64_t i = 0; i < info.count; i += 97) {
            vqs_pid id = u64id(i);
            REQUIRE_OK(vqs_coll_get(c.get(), &id, v.data(), nullptr));
            REQUIRE(std::memcmp(v.data(), &x[i * d], sizeof(float) * d) == 0);
        }
        vqs_pid beyond = u64id(info.count);
        REQUIRE_ERR(vqs_coll_get(c.get(), &beyond, v.data(), nullptr), VQS_ENOTFOUND);
        // searchable: stored points find themselves (exact re-scoring from the vector file)
        std::vector<float> q;
        std::vector<uint64_t> want;
        for (uint64_t i = 0; i < info.count; i += info.count / 16 + 1) {
            q.insert(q.end(), x.begin() + (long)(i * d), x.begin() + (long)((i + 1) * d));
            want.push_back(i);
        }
        auto r = search(c.get(), q, d, 1, 50);
        for (size_t i = 0; i < want.size(); i++) {
            INFO("point " << want[i]);
            REQUIRE(r.ids[i].u64 == want[i]);
            REQUIRE(r.dist[i] == 0.0f);
        }
        // and the import can continue where it stopped (ids are rows: a rerun replaces)
    }
}
