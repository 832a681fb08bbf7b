// The RAG frameworks' own Qdrant stores against vqs: tests/api/rag_clients/*.mjs, run with Node.js,
// drive an in-process server over loopback with LangChain's QdrantVectorStore (@langchain/qdrant),
// LlamaIndex's (@llamaindex/qdrant) and the plain @qdrant/js-client-rest, all pinned by the
// project's lock file. Their embedding function returns the real MiniLM vector of each fiori chunk
// (../shared/data/fiori_docs_minilm384), and each script checks every answer against exact cosine
// search it computes itself over the same vectors. Each script records every HTTP request its
// framework makes (a wrapper around globalThis.fetch) and fails on any status >= 400 it did not
// announce; the list of endpoints touched is printed here (api/README.md, "Used by").
//
// node_modules: those of tests/api/rag_clients when scripts/setup.sh --with-tests installed them
// there, otherwise `npm ci` into the build tree. Without node/npm (or the registry) the test prints
// a SKIP line, unless VQS_REQUIRE_QDRANT_CLIENT=1 (CI), which makes that a failure.
//
// The Qdrant client checks the server's version (GET /) on creation and warns on stderr when it
// thinks the server incompatible; stderr must not hold that warning.
#include "vqs_test.hpp"

#include "vqs_http.h"

#include <cstdlib>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <fstream>
#include <sstream>

using namespace vqs_test;

namespace
{

void skip_or_fail(const std::string &why) { skip_unless_required("VQS_REQUIRE_QDRANT_CLIENT", why); }

const char *const PACKAGES[] = {"@qdrant/js-client-rest", "@langchain/qdrant", "@langchain/core", "@llamaindex/qdrant",
                                "@llamaindex/core"};
const char *const FILES[] = {"package.json", "package-lock.json", "common.mjs", "langchain_test.mjs",
                             "llamaindex_test.mjs", "qdrant_new_test.mjs"};

bool has_packages(const std::string &dir)
{
    for (const char *p : PACKAGES)
        if (std::system(("test -f '" + dir + "/node_modules/" + p + "/package.json'").c_str()) != 0)
            return false;
    return true;
}

// The directory to run the scripts in
std::string clients_dir()
{
    std::string src = VQS_SOURCE_DIR "/tests/api/rag_clients", dst = VQS_BINARY_DIR "/rag_clients";
    if (std::system("command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1") != 0)
        skip_or_fail("node and npm not found (Debian: apt-get install nodejs npm)");
    if (has_packages(src))
        return src; // scripts/setup.sh --with-tests ran `npm ci` there
    // CTest runs the cases of this file in parallel: one at a time copies and installs, and a file
    // is only rewritten when it changed (a script another case is running stays whole)
    REQUIRE(std::system(("mkdir -p '" + dst + "'").c_str()) == 0);
    int lock = open((dst + "/.install.lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    REQUIRE(lock >= 0);
    REQUIRE(flock(lock, LOCK_EX) == 0);
    std::string cp = "true";
    for (const char *f : FILES)
        cp += std::string(" && { cmp -s '") + src + "/" + f + "' '" + dst + "/" + f + "' || cp '" + src + "/" + f + "' '" +
              dst + "/'; }";
    int rc = std::system(cp.c_str());
    bool installed = rc == 0 && has_packages(dst);
    if (rc == 0 && !installed) {
        std::string ci = "cd '" + dst + "' && npm ci --no-audit --no-fund --loglevel=error >npm-ci.log 2>&1";
        installed = std::system(ci.c_str()) == 0;
    }
    close(lock); // releases the lock
    REQUIRE(rc == 0);
    if (!installed)
        skip_or_fail("npm ci of the RAG clients failed (no registry?), see " + dst + "/npm-ci.log");
    return dst;
}

std::string slurp(const std::string &path)
{
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// Starts a server on a fresh data directory, runs one script against it, stops the server; the
// script's exit status must be 0 and its stderr free of the client's version warning. Prints the
// endpoints the script recorded.
void run_script(const std::string &script, const std::string &label, const std::string &args = "")
{
    std::string data = data_dir();
    (void)data_path("fiori_docs_minilm384/records.jsonl"); // SKIP (or fail in CI) without the data
    (void)data_path("fiori_docs_minilm384/embeddings.bin");
    std::string cdir = clients_dir();
    tmpdir t;
    std::string dir = t.file("data"), eps = t.file("endpoints.txt"), err = t.file("stderr.txt");
    vqs_server *s = nullptr;
    REQUIRE_OK(vqs_server_start(dir.c_str(), nullptr, &s));
    std::string cmd = "cd '" + cdir + "' && node " + script + " " + std::to_string(vqs_server_port(s)) + " '" + data +
                      "' '" + eps + "' " + args + " 2>'" + err + "'";
    int st = std::system(cmd.c_str());
    vqs_server_stop(s, 10);
    std::string errtext = slurp(err);
    if (!errtext.empty())
        std::printf("%s stderr:\n%s", label.c_str(), errtext.c_str());
    std::printf("%s touched:\n%s", label.c_str(), slurp(eps).c_str());
    std::fflush(stdout);
    INFO(label << " stderr: " << errtext);
    REQUIRE(WIFEXITED(st));
    REQUIRE(WEXITSTATUS(st) == 0);
    CHECK(errtext.find("is incompatible with server version") == std::string::npos);
    CHECK(errtext.find("Unable to check client-server compatibility") == std::string::npos);
}

} // namespace

TEST_CASE("rag clients: LangChain QdrantVectorStore adds, searches (filtered and scored) and deletes exactly",
          "[rag_clients][langchain]")
{
    run_script("langchain_test.mjs", "langchain", "main");
}

// LangChain's maxMarginalRelevanceSearch sends Qdrant's query {nearest, mmr}: its own case
TEST_CASE("rag clients: LangChain maxMarginalRelevanceSearch follows Qdrant's MMR", "[rag_clients][langchain_mmr]")
{
    run_script("langchain_test.mjs", "langchain (MMR)", "mmr");
}

TEST_CASE("rag clients: LlamaIndex QdrantVectorStore adds nodes, queries with metadata filters, deletes by ref doc",
          "[rag_clients][llamaindex]")
{
    run_script("llamaindex_test.mjs", "llamaindex");
}

// The endpoints other engineers add for issue 17, one case per group, so that each passes as
// soon as its group is merged (until then they answer 501). Expectations from Qdrant's docs.
#define QDRANT_NEW_CASE(section, what)                                                             \
    TEST_CASE("rag clients: the Qdrant client on " what, "[rag_clients][qdrant_new]")             \
    {                                                                                              \
        run_script("qdrant_new_test.mjs", "qdrant client (" section ")", section);                \
    }

QDRANT_NEW_CASE("scroll", "scroll with pagination, filters and with_payload keys")
QDRANT_NEW_CASE("payload", "set, overwrite, delete and clear payload")
QDRANT_NEW_CASE("vectors", "update vectors")
QDRANT_NEW_CASE("batch", "points/batch, mixed and atomic")
QDRANT_NEW_CASE("index", "create and delete payload indexes, order_by")
QDRANT_NEW_CASE("recommend", "recommend, average_vector and best_score")
QDRANT_NEW_CASE("fusion", "query with prefetch, rrf fusion and nesting")
QDRANT_NEW_CASE("query_batch", "query/batch")
QDRANT_NEW_CASE("groups", "search/groups and query/groups")
QDRANT_NEW_CASE("patch", "PATCH collection")
QDRANT_NEW_CASE("aliases", "aliases")
QDRANT_NEW_CASE("named", "named vectors")
