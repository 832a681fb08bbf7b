// vqs_test.hpp: Catch2 support for tests over the vqs C API.
//
// REQUIRE_OK(expr): requires expr == 0 and, on failure, prints the symbolic
// code, vqs_strerror and the thread-local detail.
// REQUIRE_ERR(expr, code): requires that expr fails with exactly that code.
// Owned handles: RAII wrappers (unique_ptr with the matching free function).
// Shared data: vqs_test::data_path("siftsmall/siftsmall_base.fvecs") returns
// the path, or prints one SKIP line and ends the test as skipped (exit code
// 77, which CTest reports as "Skipped") when ../shared/data is absent. With
// VQS_REQUIRE_DATA=1 (CI) a missing data file is a failure instead.
#pragma once

#include <catch2/catch.hpp>

#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sstream>
#include <fstream>
#include <fcntl.h>
#include <unistd.h>
#include <vector>

#include "vqs_codebook.h"
#include "vqs_collection.h"
#include "vqs_common.h"
#include "vqs_index.h"
#include "vqs_store.h"

#define REQUIRE_OK(expr)                                                                       \
    do {                                                                                       \
        int vqs_rc_ = (expr);                                                                  \
        INFO(#expr << " -> " << vqs_err_name(vqs_rc_) << " (" << vqs_strerror(vqs_rc_)       \
                   << "): " << vqs_errdetail());                                               \
        REQUIRE(vqs_rc_ == 0);                                                                 \
    } while (0)

#define REQUIRE_ERR(expr, code)                                                                \
    do {                                                                                       \
        int vqs_rc_ = (expr);                                                                  \
        INFO(#expr << " -> " << vqs_err_name(vqs_rc_) << ": " << vqs_errdetail()              \
                   << " (expected " << vqs_err_name(code) << ")");                            \
        REQUIRE(vqs_rc_ == (code));                                                            \
    } while (0)

namespace vqs_test {

using vecfile_ptr = std::unique_ptr<vqs_vecfile, decltype(&vqs_vecfile_close)>;
using codec_ptr = std::unique_ptr<vqs_codec, decltype(&vqs_codec_free)>;

inline vecfile_ptr open_vecfile(const std::string &path, const vqs_vecfile_opts *o = nullptr)
{
    vqs_vecfile *vf = nullptr;
    int rc = vqs_vecfile_open(path.c_str(), o, &vf);
    INFO("open " << path << " -> " << vqs_err_name(rc) << ": " << vqs_errdetail());
    REQUIRE(rc == 0);
    return vecfile_ptr(vf, vqs_vecfile_close);
}

// An LMDB data directory opened for the scope (storage/vqs_store_db.h).
struct db_ptr {
    vqs_db *db = nullptr;
    explicit db_ptr(const std::string &dir, const vqs_db_opts *o = nullptr)
    {
        REQUIRE_OK(vqs_db_open(dir.c_str(), o, &db));
    }
    ~db_ptr() { vqs_db_close(db); }
    db_ptr(const db_ptr &) = delete;
    db_ptr &operator=(const db_ptr &) = delete;
};

// The collections of a data directory opened for the scope (index/collection/vqs_collection.h).
struct catalog_ptr {
    vqs_catalog *cat = nullptr;
    explicit catalog_ptr(const std::string &dir, const vqs_catalog_opts *o = nullptr)
    {
        REQUIRE_OK(vqs_catalog_open(dir.c_str(), o, &cat));
    }
    ~catalog_ptr() { vqs_catalog_close(cat); }
    catalog_ptr(const catalog_ptr &) = delete;
    catalog_ptr &operator=(const catalog_ptr &) = delete;
};

// vqs_coll_search with its hits spread into parallel arrays, as tests compare them: nq * k
// point ids, and distances and internal ids (dist, iids may be null). Returns its code.
inline int coll_search_arrays(vqs_coll *c, const vqs_coll_search_params *p, size_t nq, const float *q, size_t k,
                              vqs_pid *ids, float *dist, int64_t *iids)
{
    std::vector<vqs_coll_hit> h(nq * k);
    int rc = vqs_coll_search(c, p, nq, q, k, h.data());
    for (size_t i = 0; rc == 0 && i < h.size(); i++) {
        ids[i] = h[i].id;
        if (dist)
            dist[i] = h[i].dist;
        if (iids)
            iids[i] = h[i].iid;
    }
    vqs_coll_hits_free(h.data(), h.size());
    return rc;
}

// An unsigned-integer point id.
inline vqs_pid u64id(uint64_t v)
{
    vqs_pid p;
    std::memset(&p, 0, sizeof p);
    p.kind = VQS_PID_U64;
    p.u64 = v;
    return p;
}

// Forks; the child runs fn and reports through a pipe. Returns the child's report, or
// "SKIP:..." when the child could not set up its file system (the caller's convention).
template <class F> std::string in_child(F fn)
{
    int pfd[2];
    REQUIRE(pipe(pfd) == 0);
    fflush(nullptr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        std::string r = fn();
        if (write(pfd[1], r.data(), r.size()) < 0)
            _exit(3);
        _exit(0);
    }
    close(pfd[1]);
    std::string out;
    char buf[512];
    ssize_t k;
    while ((k = read(pfd[0], buf, sizeof buf)) > 0)
        out.append(buf, (size_t)k);
    close(pfd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        out += " (child exit status " + std::to_string(st) + ")";
    return out;
}

// A temporary directory removed (with its files) at scope exit.
struct tmpdir {
    std::string path;
    tmpdir()
    {
        char t[] = "/tmp/vqs-test-XXXXXX";
        REQUIRE(mkdtemp(t) != nullptr);
        path = t;
    }
    ~tmpdir()
    {
        std::string cmd = "rm -rf '" + path + "'";
        if (std::system(cmd.c_str()) != 0)
            std::fprintf(stderr, "warning: could not remove %s\n", path.c_str());
    }
    std::string file(const std::string &name) const { return path + "/" + name; }
};

inline void write_bytes(const std::string &path, const void *p, size_t n)
{
    FILE *f = std::fopen(path.c_str(), "wb");
    REQUIRE(f != nullptr);
    if (n) // fwrite(NULL, ...) is UB even for 0 bytes
        REQUIRE(std::fwrite(p, 1, n, f) == n);
    std::fclose(f);
}

inline std::vector<unsigned char> read_bytes(const std::string &path)
{
    std::vector<unsigned char> v;
    FILE *f = std::fopen(path.c_str(), "rb");
    if (!f)
        return v;
    int c;
    while ((c = std::fgetc(f)) != EOF)
        v.push_back((unsigned char)c);
    std::fclose(f);
    return v;
}

inline std::string data_dir()
{
    const char *e = std::getenv("VQS_DATA_DIR");
    return e && *e ? std::string(e) : std::string(VQS_SOURCE_DIR "/../shared/data");
}

// Ends the test as skipped (one SKIP line, exit code 77: CTest's "Skipped"),
// or, when the environment variable env is "1" (CI), fails it: what the
// test needs (why it cannot run) is then required.
[[noreturn]] inline void skip_unless_required(const char *env, const std::string &why)
{
    const char *req = std::getenv(env);
    if (req && *req == '1')
        FAIL(why << " (" << env << "=1)");
    std::printf("SKIP: %s\n", why.c_str());
    std::fflush(stdout);
    std::_Exit(77);
}

// Path of a file under the shared data directory; skips the test if absent.
inline std::string data_path(const std::string &rel)
{
    std::string p = data_dir() + "/" + rel;
    struct stat st;
    if (stat(p.c_str(), &st) == 0)
        return p;
    skip_unless_required("VQS_REQUIRE_DATA", p + " not found (shared data absent; set VQS_DATA_DIR to run this test)");
}

// The first nmax rows of a vector file as float32 (*d set).
inline std::vector<float> load_rows(const std::string &path, size_t nmax, size_t *d)
{
    auto vf = open_vecfile(path);
    size_t n = std::min(nmax, vqs_vecfile_n(vf.get()));
    *d = vqs_vecfile_d(vf.get());
    std::vector<float> x(n * *d);
    REQUIRE_OK(vqs_vecfile_read_f32(vf.get(), 0, n, x.data()));
    return x;
}

// Mean over the n vectors of a and b of their squared L2 distance.
inline double mse(const std::vector<float> &a, const std::vector<float> &b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < a.size(); i++) {
        double v = (double)a[i] - b[i];
        s += v * v;
    }
    return s / (double)n;
}

// Synthetic data (seeded Gaussian mixture).
inline std::vector<float> synth(size_t n, size_t d, uint64_t seed, bool unit = false)
{
    std::vector<float> x(n * d);
    vqs_synth_opts o = {};
    o.seed = seed;
    o.unit_norm = unit;
    int rc = vqs_synth_gmm(&o, n, d, x.data());
    REQUIRE(rc == 0);
    return x;
}

// The per-dimension grid (a_j, step_j) of a trained codec that is one SQ8/SQ4
// stage: the last 2 d floats of its blob, before the CRC.
inline std::vector<float> sq_grid(const vqs_codec *c, size_t d)
{
    void *blob = nullptr;
    size_t len = 0;
    REQUIRE(vqs_codec_save(c, &blob, &len) == 0);
    std::vector<float> g(2 * d);
    std::memcpy(g.data(), (const uint8_t *)blob + len - 4 - 8 * d, 8 * d);
    free(blob);
    return g;
}

// The same grid of the trained state stored for collection `name` in the
// data directory `dir`.
inline std::vector<float> stored_sq_grid(const std::string &dir, const char *name, size_t d)
{
    vqs_db *db = nullptr;
    REQUIRE(vqs_db_open(dir.c_str(), nullptr, &db) == 0);
    void *tb = nullptr;
    size_t tl = 0;
    int rc = vqs_db_get_trained(db, name, &tb, &tl);
    vqs_index *ix = nullptr;
    if (rc == 0)
        rc = vqs_index_load_trained(tb, tl, nullptr, &ix);
    free(tb);
    vqs_db_close(db);
    REQUIRE(rc == 0);
    auto g = sq_grid(vqs_index_codec(ix), d);
    vqs_index_free(ix);
    return g;
}

// The grid of an SQ4 codec trained in-process on x (n rows) with sq_clip.
inline std::vector<float> trained_sq4_grid(const float *x, size_t n, size_t d, float clip)
{
    vqs_codec_opts o = {};
    o.sq_clip = clip;
    vqs_codec *c = nullptr;
    REQUIRE(vqs_codec_create("SQ4", d, &o, &c) == 0);
    int rc = vqs_codec_train(c, n, x);
    std::vector<float> g;
    if (rc == 0)
        g = sq_grid(c, d);
    vqs_codec_free(c);
    REQUIRE(rc == 0);
    return g;
}

// ---- running programs (the vqs tool, chromium) -------------------------------

struct proc_out {
    int code = -1; // exit status, or -1 if it did not exit normally
    std::string out, err;
};

inline std::string slurp(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Runs the program at path (searched in PATH when it has no '/') with argv
// (argv[0] included), stdin from /dev/null, stdout and stderr captured in
// files of t, and a time limit in seconds (SIGALRM ends it past the limit:
// code -1).
inline proc_out run_program(const tmpdir &t, const std::string &path, const std::vector<std::string> &argv,
                            int limit_s = 120)
{
    std::string o = t.file("run.out"), e = t.file("run.err");
    fflush(nullptr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int fo = open(o.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644),
            fe = open(e.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fo, 1);
        dup2(fe, 2);
        int dn = open("/dev/null", O_RDONLY);
        dup2(dn, 0);
        alarm((unsigned)limit_s);
        std::vector<char *> av;
        for (auto &a : argv)
            av.push_back((char *)a.c_str());
        av.push_back(nullptr);
        execvp(path.c_str(), av.data());
        _exit(127);
    }
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    proc_out r;
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r.out = slurp(o);
    r.err = slurp(e);
    return r;
}

// A program whose argv[0] is its path.
inline proc_out run(const tmpdir &t, const std::vector<std::string> &argv, int limit_s = 120)
{
    return run_program(t, argv.at(0), argv, limit_s);
}

// The built vqs tool with args (argv[0] "vqs", as a user's shell gives it).
inline proc_out run_vqs(const tmpdir &t, std::vector<std::string> args)
{
    args.insert(args.begin(), "vqs");
    return run_program(t, VQS_CLI_PATH, args);
}

} // namespace vqs_test
