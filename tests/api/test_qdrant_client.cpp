// The real Qdrant client against vqs: tests/api/qdrant_client/client_test.mjs, run with Node.js
// and @qdrant/js-client-rest (installed from the checked-in lock file by scripts/setup.sh
// --with-tests, or else with `npm ci` into the build tree), drives an in-process server over
// loopback; its results must equal vqs's own in-process search of the same collection. Without
// node/npm (or without the registry) the test prints a SKIP line, unless VQS_REQUIRE_QDRANT_CLIENT=1
// (CI), which makes that a failure.
#include "vqs_test.hpp"

#include "vqs_http.h"

#include <cstdlib>
#include <jansson.h>
#include <set>

using namespace vqs_test;

namespace
{

void skip_or_fail(const std::string &why) { skip_unless_required("VQS_REQUIRE_QDRANT_CLIENT", why); }

std::string client_dir()
{
    std::string src = VQS_SOURCE_DIR "/tests/api/qdrant_client", dst = VQS_BINARY_DIR "/qdrant_client";
    if (std::system("command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1") != 0)
        skip_or_fail("node and npm not found (Debian: apt-get install nodejs npm)");
    if (std::system(("test -f '" + src + "/node_modules/@qdrant/js-client-rest/package.json'").c_str()) == 0)
        return src; // scripts/setup.sh --with-tests ran `npm ci` there
    std::string cp = "mkdir -p '" + dst + "' && cp '" + src + "/package.json' '" + src + "/package-lock.json' '" + src +
                     "/client_test.mjs' '" + dst + "/'";
    REQUIRE(std::system(cp.c_str()) == 0);
    std::string have = "test -f '" + dst + "/node_modules/@qdrant/js-client-rest/package.json'";
    if (std::system(have.c_str()) != 0) {
        std::string ci = "cd '" + dst + "' && npm ci --no-audit --no-fund --loglevel=error >npm-ci.log 2>&1";
        if (std::system(ci.c_str()) != 0)
            skip_or_fail("npm ci of @qdrant/js-client-rest failed (no registry?), see " + dst + "/npm-ci.log");
    }
    return dst;
}

int run_node(const std::string &dir, int port, const std::string &args)
{
    std::string cmd = "cd '" + dir + "' && node client_test.mjs " + std::to_string(port) + " " + args;
    int st = std::system(cmd.c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

} // namespace

TEST_CASE("api: the Qdrant JavaScript client drives vqs serve and gets what the in-process search gives",
          "[api][qdrant_client]")
{
    std::string cdir = client_dir();
    tmpdir t;
    std::string dir = t.file("data"), out = t.file("results.json");
    {
        vqs_server *s = nullptr;
        REQUIRE_OK(vqs_server_start(dir.c_str(), nullptr, &s));
        int rc = run_node(cdir, vqs_server_port(s), "load '" + out + "'");
        vqs_server_stop(s, 10);
        REQUIRE(rc == 0);
    }
    json_error_t je;
    json_t *res = json_load_file(out.c_str(), 0, &je);
    REQUIRE(res != nullptr);
    std::set<int64_t> keep;
    json_t *fids = json_object_get(res, "filter_ids");
    for (size_t i = 0; i < json_array_size(fids); i++)
        keep.insert(json_integer_value(json_array_get(fids, i)));
    REQUIRE(keep.size() > 20);
    {
        vqs_catalog *cat = nullptr;
        REQUIRE_OK(vqs_catalog_open(dir.c_str(), nullptr, &cat));
        vqs_coll *c = nullptr;
        REQUIRE_OK(vqs_coll_open(cat, "qc", nullptr, &c));
        REQUIRE(vqs_coll_is_trained(c)); // 600 points, train_size 300
        json_t *qs = json_object_get(res, "queries");
        REQUIRE(json_array_size(qs) == 12);
        for (size_t qi = 0; qi < json_array_size(qs); qi++) {
            std::vector<float> q;
            json_t *qa = json_array_get(qs, qi);
            for (size_t j = 0; j < json_array_size(qa); j++)
                q.push_back((float)json_number_value(json_array_get(qa, j)));
            REQUIRE(q.size() == 32);
            for (int withf : {0, 1}) {
                std::vector<vqs_pid> ids(10);
                std::vector<float> dist(10);
                vqs_coll_search_params p = {};
                if (withf) {
                    p.filter = [](void *ctx, int64_t iid) { // internal ids = upsert order = ids here
                        return (int)static_cast<std::set<int64_t> *>(ctx)->count(iid);
                    };
                    p.filter_ctx = &keep;
                }
                REQUIRE_OK(coll_search_arrays(c, &p, 1, q.data(), 10, ids.data(), dist.data(), nullptr));
                json_t *got = json_array_get(json_object_get(res, withf ? "filtered" : "plain"), qi);
                REQUIRE(json_array_size(got) == 10);
                for (size_t j = 0; j < 10; j++) {
                    INFO("query " << qi << " filtered " << withf << " rank " << j);
                    json_t *h = json_array_get(got, j);
                    REQUIRE(ids[j].kind == VQS_PID_U64);
                    REQUIRE((json_int_t)ids[j].u64 == json_integer_value(json_object_get(h, "id")));
                    REQUIRE(dist[j] == Approx(json_number_value(json_object_get(h, "score"))).epsilon(1e-6));
                }
            }
        }
        vqs_coll_close(c);
        vqs_catalog_close(cat);
    }
    json_decref(res);
    // restarted: deletes by id and by filter, then the drop, through the client
    vqs_server *s = nullptr;
    REQUIRE_OK(vqs_server_start(dir.c_str(), nullptr, &s));
    int rc = run_node(cdir, vqs_server_port(s), "drop");
    vqs_server_stop(s, 10);
    REQUIRE(rc == 0);
}
