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

TEST_CASE("SQ4 dimension of a codec before training, after transforms", "[pq]")
{
    struct {
        const char *spec;
        size_t d;
    } ok[] = {{"SQ4", 64}, {"SQint4", 64}, {"PCA33,SQ4", 33}, {"ROT,SQ4", 64}, {"PCA32,ROT,SQint4", 32}};
    for (const auto &t : ok) {
        INFO(t.spec);
        codec_ptr c = make_codec(t.spec, 64);
        size_t d = 0;
        REQUIRE_OK(vqs_codec_sq4_dim(c.get(), &d));
        CHECK(d == t.d);
    }
    for (const char *spec : {"SQ8", "SQfp8", "PQ16x4", "BIN", "RVQ4x4", "PCA32,SQ8"}) {
        INFO(spec);
        codec_ptr c = make_codec(spec, 64);
        size_t d = 0;
        REQUIRE_ERR(vqs_codec_sq4_dim(c.get(), &d), VQS_ENOTFOUND);
    }
    codec_ptr c = make_codec("SQ4", 64);
    REQUIRE_ERR(vqs_codec_sq4_dim(c.get(), nullptr), VQS_EINVAL);
    size_t d = 0;
    REQUIRE_ERR(vqs_codec_sq4_dim(nullptr, &d), VQS_EINVAL);
}
