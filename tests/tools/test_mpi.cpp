// vqs under mpirun (tools/mpi.c; a build with -DVQS_MPI=ON, which ./run.sh test makes).
// - gt: each rank of `mpirun -n 3 vqs gt` searches a third of the base rows and rank 0 merges;
//   the files are the one process's, byte for byte (ids and distances), on siftsmall (L2,
//   k = 100) and sts15k (cosine, queries from the base: exact self-matches and ties), and on a
//   base of fewer rows than ranks times k (ranks with missing results).
// - build: 3 ranks train together (k-means sums over the ranks): on siftsmall (IVF64,PQ16x8)
//   the coarse objective and the code error on the training sample are within 0.1% of one
//   process's, and both builds' shards find the true neighbours (recall against exact ground
//   truth), and so on sts15k (IVF64,PQ48x8, cosine); on sts15k with VAMANA16,SQ8 (a stage
//   trained on the gathered sample, no k-means) the 3 shards answer
//   every query as the 3 shards one process writes, bit for bit.
// - eval --shards: over 3 ranks, 2 ranks (one with two shards) and one process, the same merged
//   answer and recall.
// A rank that fails is named, the job exits non-zero and writes nothing that looks complete.
// Under AddressSanitizer the ranks run without LeakSanitizer: OpenMPI 4.1 leaves ~120 KB at exit
// in plugins it has already unloaded, whose frames no suppression can name. Every command here
// also runs in one process (vqs gt, vqs build --shards 3, vqs eval --shards), leak-checked. The mpirun options are this test's (a CI machine runs as
// root, may have no ssh: plm isolated starts the ranks locally, and a container may forbid
// the cross-memory attach of the shared-memory transport).
#include "vqs_test.hpp"

#include <cmath>
#include <cstring>
#include <unistd.h>

using namespace vqs_test;

#ifdef VQS_TEST_MPIRUN

namespace {

proc_out mpirun(const tmpdir &t, const std::vector<std::vector<std::string>> &apps)
{
    std::vector<std::string> av = {VQS_TEST_MPIRUN, "--oversubscribe", "--mca", "plm", "isolated",
                                   "--mca", "btl_vader_single_copy_mechanism", "none"};
    if (geteuid() == 0)
        av.push_back("--allow-run-as-root");
    const char *ao = std::getenv("ASAN_OPTIONS");
    av.push_back("-x");
    av.push_back(std::string("ASAN_OPTIONS=") + (ao ? ao : "") + (ao && *ao ? ":" : "") + "detect_leaks=0");
    for (size_t i = 0; i < apps.size(); i++) { // MPMD: "-n N vqs ARGS : -n M vqs ARGS"
        if (i)
            av.push_back(":");
        av.insert(av.end(), apps[i].begin(), apps[i].end());
    }
    return run_program(t, VQS_TEST_MPIRUN, av, 600);
}

std::vector<std::string> app(int n, std::vector<std::string> args)
{
    args.insert(args.begin(), {"-n", std::to_string(n), VQS_CLI_PATH});
    return args;
}

// vqs gt once in one process and once over 3 ranks: the same bytes
void same_files(const tmpdir &t, const std::string &base, const std::string &queries, const std::string &metric,
                const std::string &k)
{
    std::vector<std::string> one = {"gt", "--base", base, "--queries", queries, "--metric", metric, "--k", k,
                                    "-o", t.file("one.ivecs"), "--dist", t.file("one.fvecs")};
    auto a = run_vqs(t, one);
    INFO(a.err);
    REQUIRE(a.code == 0);
    std::vector<std::string> three = one;
    three[10] = t.file("three.ivecs");
    three[12] = t.file("three.fvecs");
    auto b = mpirun(t, {app(3, three)});
    INFO(b.out << b.err);
    REQUIRE(b.code == 0);
    CHECK(b.err.find("3 ranks") != std::string::npos);
    auto i1 = read_bytes(t.file("one.ivecs")), i3 = read_bytes(t.file("three.ivecs"));
    auto f1 = read_bytes(t.file("one.fvecs")), f3 = read_bytes(t.file("three.fvecs"));
    REQUIRE(!i1.empty());
    REQUIRE(i1 == i3);
    REQUIRE(f1 == f3);
}

} // namespace

TEST_CASE("mpi: vqs gt over 3 ranks writes the bytes one process writes", "[mpi][data]")
{
    tmpdir t;
    same_files(t, data_path("siftsmall/siftsmall_base.fvecs"), data_path("siftsmall/siftsmall_query.fvecs"), "l2",
               "100");
    // sts15k: 300 of its rows as queries (each finds itself first: ties at the top)
    std::string sts = data_path("sts15k_bert768/base.fvecs");
    vqs_vecfile *vf = nullptr;
    REQUIRE_OK(vqs_vecfile_open(sts.c_str(), nullptr, &vf));
    size_t d = vqs_vecfile_d(vf), nq = 300;
    std::vector<float> q(nq * d);
    REQUIRE_OK(vqs_vecfile_read_f32(vf, 1000, nq, q.data()));
    vqs_vecfile_close(vf);
    REQUIRE_OK(vqs_write_fvecs(t.file("q.fvecs").c_str(), nq, d, q.data()));
    same_files(t, sts, t.file("q.fvecs"), "cos", "20");
}

namespace {

// vqs search of shard dir/shard-s: the ids and distances files' bytes
std::pair<std::vector<unsigned char>, std::vector<unsigned char>> search_bytes(const tmpdir &t, const std::string &dir,
                                                                              const std::string &q, const char *extra)
{
    std::vector<std::string> a = {"search", "--data", dir, "--collection", "vectors", "--queries", q, "--k", "10",
                                  "-o", t.file("s.ivecs"), "--dist", t.file("s.fvecs")};
    if (*extra) {
        a.push_back(extra);
        a.push_back("8");
    }
    auto r = run_vqs(t, a);
    INFO(dir << ": " << r.err);
    REQUIRE(r.code == 0);
    return {read_bytes(t.file("s.ivecs")), read_bytes(t.file("s.fvecs"))};
}

} // namespace

TEST_CASE("mpi: vqs build over 3 ranks writes the shards one process writes and eval --shards merges them alike",
          "[mpi][data]")
{
    tmpdir t;
    struct set {
        std::string base, queries, metric, spec, knob;
        bool same_bits;
        double min_recall; // recall@10 against exact ground truth, knob 8
    } sets[] = {
        {data_path("siftsmall/siftsmall_base.fvecs"), data_path("siftsmall/siftsmall_query.fvecs"), "l2",
         "IVF64,PQ16x8", "--nprobe", false, 0.9},
        {data_path("sts15k_bert768/base.fvecs"), "", "cos", "VAMANA16,SQ8", "--ef", true, 0.95},
        {data_path("sts15k_bert768/base.fvecs"), "", "cos", "IVF64,PQ48x8", "--nprobe", false, 0.95},
    };
    { // sts15k: 200 of its rows as queries
        vqs_vecfile *vf = nullptr;
        REQUIRE_OK(vqs_vecfile_open(sets[1].base.c_str(), nullptr, &vf));
        size_t d = vqs_vecfile_d(vf);
        std::vector<float> q(200 * d);
        REQUIRE_OK(vqs_vecfile_read_f32(vf, 5000, 200, q.data()));
        vqs_vecfile_close(vf);
        sets[1].queries = sets[2].queries = t.file("stsq.fvecs");
        REQUIRE_OK(vqs_write_fvecs(sets[1].queries.c_str(), 200, d, q.data()));
    }
    for (auto &st : sets) {
        INFO(st.base << " " << st.spec);
        // one thread: a graph built on two is not a function of its input alone
        std::vector<std::string> b = {"build", "--base", st.base, "--spec", st.spec, "--metric", st.metric,
                                      "--threads", "1", "--shards", "3", "--out", t.file("one")};
        auto r1 = run_vqs(t, b);
        INFO(r1.err);
        REQUIRE(r1.code == 0);
        b.back() = t.file("three");
        b.erase(b.begin() + 9, b.begin() + 11); // the shards: one a rank
        auto r3 = mpirun(t, {app(3, b)});
        INFO(r3.out << r3.err);
        REQUIRE(r3.code == 0);
        CHECK(r3.err.find("over 3 ranks") != std::string::npos);
        for (const char *what : {"coarse objective ", "code error "}) {
            size_t a = r1.err.find(what), b = r3.err.find(what);
            if (std::string(what) == "coarse objective " && st.spec[0] != 'I') {
                CHECK((a == std::string::npos && b == std::string::npos));
                continue;
            }
            REQUIRE((a != std::string::npos && b != std::string::npos));
            double v1 = std::stod(r1.err.substr(a + std::strlen(what))), v3 = std::stod(r3.err.substr(b + std::strlen(what)));
            INFO(what << v1 << " / " << v3);
            CHECK(v1 > 0);
            CHECK(std::fabs(v3 - v1) <= 1e-3 * v1);
        }
        for (int s = 0; s < 3 && st.same_bits; s++) {
            auto one = t.file("one/shard-" + std::to_string(s)), three = t.file("three/shard-" + std::to_string(s));
            REQUIRE(search_bytes(t, one, st.queries, st.knob.c_str()) ==
                    search_bytes(t, three, st.queries, st.knob.c_str()));
        }
        // eval --shards: one process, 3 ranks, 2 ranks: the same answer and recall
        std::vector<std::string> g = {"gt", "--base", st.base, "--queries", st.queries, "--metric", st.metric, "--k",
                                      "10", "-o", t.file("gt.ivecs")};
        REQUIRE(run_vqs(t, g).code == 0);
        std::vector<std::string> e = {"eval", "--shards", t.file("three"), "--queries", st.queries, "--gt",
                                      t.file("gt.ivecs"), st.knob, "8", "-o", t.file("e1.ivecs")};
        auto e1 = run_vqs(t, e);
        INFO(e1.err);
        REQUIRE(e1.code == 0);
        REQUIRE(e1.out.find("recall@10 ") != std::string::npos);
        std::string rec = e1.out.substr(e1.out.find("recall@10 "), 16);
        e.back() = t.file("e3.ivecs");
        auto e3 = mpirun(t, {app(3, e)});
        e.back() = t.file("e2.ivecs");
        auto e2 = mpirun(t, {app(2, e)});
        INFO(e3.out << e3.err << e2.out << e2.err);
        REQUIRE((e3.code == 0 && e2.code == 0));
        REQUIRE(read_bytes(t.file("e1.ivecs")) == read_bytes(t.file("e3.ivecs")));
        REQUIRE(read_bytes(t.file("e1.ivecs")) == read_bytes(t.file("e2.ivecs")));
        CHECK(e3.out.find(rec) != std::string::npos);
        CHECK(e2.out.find(rec) != std::string::npos);
        double recall = std::stod(rec.substr(10));
        INFO(e1.out);
        CHECK(recall >= st.min_recall);
        // the one process's shards find them as well
        e[2] = t.file("one");
        e.back() = t.file("e0.ivecs");
        auto e0 = run_vqs(t, e);
        INFO(e0.err);
        REQUIRE(e0.code == 0);
        REQUIRE(e0.out.find("recall@10 ") != std::string::npos);
        CHECK(std::stod(e0.out.substr(e0.out.find("recall@10 ") + 10)) >= st.min_recall);
        std::system(("rm -rf '" + t.file("one") + "' '" + t.file("three") + "'").c_str());
    }
}

TEST_CASE("mpi: vqs gt with fewer rows than ranks times k and a failing rank named", "[mpi]")
{
    tmpdir t;
    auto x = synth(7 + 4, 8, 5);
    REQUIRE_OK(vqs_write_fvecs(t.file("b.fvecs").c_str(), 7, 8, x.data()));
    REQUIRE_OK(vqs_write_fvecs(t.file("q.fvecs").c_str(), 4, 8, x.data() + 7 * 8));
    // 7 rows over 3 ranks (3, 2, 2) and k = 9: every rank and the whole base fall short
    same_files(t, t.file("b.fvecs"), t.file("q.fvecs"), "ip", "9");
    auto ids = read_bytes(t.file("three.ivecs"));
    REQUIRE(ids.size() == 4 * (4 + 9 * 4));
    // 2 rows over 3 ranks: one rank has none
    REQUIRE_OK(vqs_write_fvecs(t.file("b2.fvecs").c_str(), 2, 8, x.data()));
    same_files(t, t.file("b2.fvecs"), t.file("q.fvecs"), "l2", "3");
    // rank 2 alone is given a base it cannot read: every rank stops, the job fails naming rank 2
    // and its cause, and no output is written
    std::vector<std::string> good = {"gt", "--base", t.file("b.fvecs"), "--queries", t.file("q.fvecs"),
                                     "-o", t.file("bad.ivecs")};
    auto bad = good;
    bad[2] = t.file("missing.fvecs");
    auto r = mpirun(t, {app(2, good), app(1, bad)});
    INFO(r.out << r.err);
    REQUIRE(r.code != 0);
    REQUIRE(r.err.find("rank 2 of 3") != std::string::npos);
    REQUIRE(r.err.find("missing.fvecs") != std::string::npos);
    REQUIRE(read_bytes(t.file("bad.ivecs")).empty());
    // vqs build: the same; no shard directory appears, none is left half written
    std::vector<std::string> gb = {"build", "--base", t.file("b.fvecs"), "--spec", "SQ8", "--out", t.file("sh")};
    auto bb = gb;
    bb[2] = t.file("missing.fvecs");
    r = mpirun(t, {app(2, gb), app(1, bb)});
    INFO(r.out << r.err);
    REQUIRE(r.code != 0);
    REQUIRE(r.err.find("rank 2 of 3") != std::string::npos);
    std::string ls = run(t, {"/bin/ls", "-A", t.file("sh")}).out;
    REQUIRE(ls == "");
    // built once; a second build into the same place is refused and changes nothing
    r = mpirun(t, {app(3, gb)});
    INFO(r.err);
    REQUIRE(r.code == 0);
    REQUIRE(run(t, {"/bin/ls", "-A", t.file("sh")}).out == "shard-0\nshard-1\nshard-2\n");
    r = mpirun(t, {app(3, gb)});
    REQUIRE(r.code != 0);
    REQUIRE(r.err.find("exists") != std::string::npos);
    REQUIRE(run(t, {"/bin/ls", "-A", t.file("sh")}).out == "shard-0\nshard-1\nshard-2\n");
}

#endif
