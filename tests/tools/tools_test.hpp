// tools_test.hpp: support of the tests of tools/ (results, report, recommend):
// the checked-in eval results fixture, edits of it, and running the vqs tool.
#pragma once
#include "vqs_test.hpp"

#include "report.h"
#include "results.h"

#include <fcntl.h>
#include <fstream>
#include <functional>
#include <jansson.h>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

namespace vqs_tools_test
{

// A hand-written vqs-eval/2 file shaped like the paper grid on sts15k (its
// figures come from a real run of vqs eval on the data set): 22 ok rows, one
// error row, 3 rows without timing, an RFlat, a Refine(SQfp16) and an IVF row.
inline std::string fixture_path() { return VQS_SOURCE_DIR "/tests/fixtures/eval_sts_paper.json"; }

inline std::string slurp(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The fixture parsed (new reference), to be edited and dumped by a test.
inline json_t *fixture_json()
{
    json_error_t e;
    json_t *j = json_load_file(fixture_path().c_str(), 0, &e);
    INFO(fixture_path() << ": " << e.text);
    REQUIRE(j != nullptr);
    return j;
}

inline std::string dump(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    REQUIRE(s != nullptr);
    std::string r(s);
    free(s);
    return r;
}

// The row of the fixture (or an edit of it) whose spec is spec (borrowed).
inline json_t *row_of(json_t *doc, const std::string &spec)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(doc, "rows"), i, r)
    {
        if (spec == json_string_value(json_object_get(r, "spec")))
            return r;
    }
    FAIL("no row with spec " << spec);
    return nullptr;
}

struct results_ptr {
    vqs_results *r = nullptr;
    results_ptr() = default;
    explicit results_ptr(vqs_results *p) : r(p) {}
    results_ptr(const results_ptr &) = delete;
    results_ptr &operator=(const results_ptr &) = delete;
    ~results_ptr() { vqs_results_free(r); }
    vqs_results *operator->() const { return r; }
};

inline results_ptr load_fixture()
{
    vqs_results *r = nullptr;
    REQUIRE_OK(vqs_results_load(fixture_path().c_str(), &r));
    return results_ptr(r);
}

inline results_ptr parse_doc(const json_t *doc, const char *name = "edit.json")
{
    std::string s = dump(doc);
    vqs_results *r = nullptr;
    REQUIRE_OK(vqs_results_parse(s.data(), s.size(), name, &r));
    return results_ptr(r);
}

// The row index of spec in loaded results.
inline size_t index_of(const vqs_results *r, const std::string &spec)
{
    for (size_t i = 0; i < r->nrows; i++)
        if (spec == r->rows[i].spec)
            return i;
    FAIL("no row with spec " << spec);
    return 0;
}

struct proc_out {
    int code = -1; // exit status, or -1 if it did not exit normally
    std::string out, err;
};

// Runs a program (argv[0] is its path) with stdout and stderr captured in
// files of t, and a time limit in seconds (SIGKILL past it: code -1).
inline proc_out run(const vqs_test::tmpdir &t, const std::vector<std::string> &argv, int limit_s = 120)
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
        alarm((unsigned)limit_s); // SIGALRM ends the program past the limit
        std::vector<char *> av;
        for (auto &a : argv)
            av.push_back((char *)a.c_str());
        av.push_back(nullptr);
        execvp(av[0], av.data());
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

// The vqs tool with args.
inline proc_out run_vqs(const vqs_test::tmpdir &t, std::vector<std::string> args)
{
    args.insert(args.begin(), VQS_CLI_PATH);
    return run(t, args);
}

} // namespace vqs_tools_test
