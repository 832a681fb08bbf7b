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

using vqs_test::proc_out;
using vqs_test::run;
using vqs_test::run_vqs;
using vqs_test::slurp;

} // namespace vqs_tools_test
