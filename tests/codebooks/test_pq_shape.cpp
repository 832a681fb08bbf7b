// vqs_codec_pq_shape: the M and nbits of a codec ending in PQ, before
// training, whatever transforms come first and however the token is written;
// VQS_ENOTFOUND for every other quantizer.
#include "vqs_test.hpp"

using namespace vqs_test;

namespace {

codec_ptr make_codec(const char *spec, size_t d)
{
    vqs_codec *c = nullptr;
    REQUIRE_OK(vqs_codec_create(spec, d, nullptr, &c));
    return codec_ptr(c, vqs_codec_free);
}

} // namespace

TEST_CASE("PQ shape of a codec before training, after transforms", "[pq]")
{
    struct {
        const char *spec;
        size_t M, nbits;
    } ok[] = {{"PQ16x4", 16, 4}, {"PQ16", 16, 8}, {"PQ8x8", 8, 8}, {"OPQ16,PQ16x4", 16, 4},
              {"OPQ16, PQ16x4 ", 16, 4}, {"PCA32,PQ4x6", 4, 6}};
    for (const auto &t : ok) {
        INFO(t.spec);
        codec_ptr c = make_codec(t.spec, 64);
        size_t M = 0, nbits = 0;
        REQUIRE_OK(vqs_codec_pq_shape(c.get(), &M, &nbits));
        CHECK(M == t.M);
        CHECK(nbits == t.nbits);
    }
    for (const char *spec : {"SQ8", "RVQ4x8", "BIN", "PCA32,SQ4"}) {
        INFO(spec);
        codec_ptr c = make_codec(spec, 64);
        size_t M = 0, nbits = 0;
        REQUIRE_ERR(vqs_codec_pq_shape(c.get(), &M, &nbits), VQS_ENOTFOUND);
    }
    codec_ptr c = make_codec("PQ16x4", 64);
    size_t M = 0;
    REQUIRE_ERR(vqs_codec_pq_shape(c.get(), &M, nullptr), VQS_EINVAL);
    REQUIRE_ERR(vqs_codec_pq_shape(nullptr, &M, &M), VQS_EINVAL);
}

TEST_CASE("scalar quantizer table shape of a codec before training, after transforms", "[pq]")
{
    struct {
        const char *spec;
        size_t d, nbits;
    } ok[] = {{"SQ4", 64, 4},     {"SQint4", 64, 4}, {"PCA33,SQ4", 33, 4}, {"ROT,SQ4", 64, 4},
              {"PCA32,ROT,SQint4", 32, 4}, {"SQ8", 64, 8}, {"SQint8", 64, 8}, {"SQ8s", 64, 8},
              {"SQfp8", 64, 8}, {"SQe4m3", 64, 8}, {"SQe5m2", 64, 8}, {"PCA16,SQfp8t", 16, 8}};
    for (const auto &t : ok) {
        INFO(t.spec);
        codec_ptr c = make_codec(t.spec, 64);
        size_t d = 0, nbits = 0;
        REQUIRE_OK(vqs_codec_sq_table_shape(c.get(), &d, &nbits));
        CHECK(d == t.d);
        CHECK(nbits == t.nbits);
    }
    for (const char *spec : {"SQfp16", "SQbf16", "SQfp32", "PCA32,Flat", "PQ16x4", "BIN", "RVQ4x4", "PCA32,PQ8x8"}) {
        INFO(spec);
        codec_ptr c = make_codec(spec, 64);
        size_t d = 0, nbits = 0;
        REQUIRE_ERR(vqs_codec_sq_table_shape(c.get(), &d, &nbits), VQS_ENOTFOUND);
    }
    codec_ptr c = make_codec("SQ4", 64);
    size_t d = 0;
    REQUIRE_ERR(vqs_codec_sq_table_shape(c.get(), &d, nullptr), VQS_EINVAL);
    REQUIRE_ERR(vqs_codec_sq_table_shape(nullptr, &d, &d), VQS_EINVAL);
}
