/* libFuzzer target: the HTTP API's request bodies, dispatched as the server
 * dispatches them (api_dispatch, without a socket) to a server on a fresh
 * data directory holding a collection of one unnamed vector ("u", 4-d
 * cosine) and one of two named vectors ("n": "a" 3-d Euclid, "b" 2-d Dot),
 * a few points each. The first byte picks the endpoint, the rest is the
 * body. Every answer must be a status with a message or a result: a crash,
 * a leak or a sanitizer report is a failure. Creates and drops only touch
 * the collection "f"; the others keep their names. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static vqs_server *S;
static char dir[64];

static const struct {
    const char *method, *path;
} eps[] = {
    {"PUT", "/collections/f"},
    {"DELETE", "/collections/f"},
    {"PATCH", "/collections/n"},
    {"PUT", "/collections/u/points"},
    {"PUT", "/collections/n/points"},
    {"PUT", "/collections/n/points/vectors"},
    {"POST", "/collections/n/points/search"},
    {"POST", "/collections/u/points/search"},
    {"POST", "/collections/n/points/search/batch"},
    {"POST", "/collections/n/points/query"},
    {"POST", "/collections/u/points/query"},
    {"POST", "/collections/n/points/query/batch"},
    {"POST", "/collections/n/points/query/groups"},
    {"POST", "/collections/n/points/recommend"},
    {"POST", "/collections/n/points/search/groups"},
    {"POST", "/collections/n/points"},
    {"POST", "/collections/n/points/scroll"},
    {"POST", "/collections/n/points/batch"},
    {"POST", "/collections/n/points/delete"},
    {"POST", "/collections/n/points/payload"},
    {"POST", "/collections/n/points/count"},
    {"PUT", "/collections/n/index"},
    {"POST", "/collections/aliases"},
};
#define NEPS (sizeof eps / sizeof eps[0])

static int call(const char *method, const char *path, const char *body, size_t len)
{
    req q;
    memset(&q, 0, sizeof q);
    /* exact-size copy: ASan sees any read past the body */
    q.body = malloc(len ? len : 1);
    if (!q.body)
        return 500;
    memcpy(q.body, body, len);
    q.len = q.cap = len;
    q.t0 = vqs_now();
    q.deadline = q.t0 + 10;
    q.method = method;
    resp r;
    memset(&r, 0, sizeof r);
    int route;
    int code = api_dispatch(S, NULL, method, path, &q, &r, &route);
    json_decref(r.result);
    free(r.raw);
    free(q.body);
    vqs_clearerr();
    return code;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static void teardown(void)
{
    vqs_server_stop(S, 1);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/vqs_fuzz_api.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    vqs_server_opts o = {.port = 0, .threads = 1, .max_batch = 64, .max_limit = 100, .max_results = 1000,
                         .max_candidates = 1000};
    if (vqs_server_start(dir, &o, &S))
        return -1;
    atexit(teardown);
    static const char *const init[][3] = {
        {"PUT", "/collections/u", "{\"vectors\":{\"size\":4,\"distance\":\"Cosine\"}}"},
        {"PUT", "/collections/n",
         "{\"vectors\":{\"a\":{\"size\":3,\"distance\":\"Euclid\"},\"b\":{\"size\":2,\"distance\":\"Dot\"}}}"},
        {"PUT", "/collections/u/points",
         "{\"points\":[{\"id\":1,\"vector\":[1,0,0,0],\"payload\":{\"g\":1}},{\"id\":2,\"vector\":[0,1,0,0]},"
         "{\"id\":\"8c3f2a1e-0000-4000-8000-000000000001\",\"vector\":[0,0,1,1],\"payload\":{\"g\":\"x\"}}]}"},
        {"PUT", "/collections/n/points",
         "{\"points\":[{\"id\":1,\"vector\":{\"a\":[1,2,3],\"b\":[1,0]},\"payload\":{\"g\":1,\"t\":\"a b\"}},"
         "{\"id\":2,\"vector\":{\"a\":[0,0,0],\"b\":[0,1]},\"payload\":{\"g\":2}},"
         "{\"id\":3,\"vector\":{\"a\":[5,5,5],\"b\":[-1,1]}}]}"},
    };
    for (size_t i = 0; i < sizeof init / sizeof init[0]; i++)
        if (call(init[i][0], init[i][1], init[i][2], strlen(init[i][2])) != 200)
            return -1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (setup()) {
            fprintf(stderr, "fuzz_api: cannot set up a server in %s: %s\n", dir, vqs_errdetail());
            abort();
        }
        ready = 1;
    }
    if (size < 1 || size > 16384)
        return 0;
    call(eps[data[0] % NEPS].method, eps[data[0] % NEPS].path, (const char *)data + 1, size - 1);
    return 0;
}
