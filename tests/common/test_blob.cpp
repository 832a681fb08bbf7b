// The blob envelope and byte buffers of common/vqs_blob.h: a known byte
// layout (little-endian whatever the host), every refusal with its code, and
// a checksum that catches a flipped bit anywhere.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "vqs_blob.h"
#include "vqs_common.h"

static std::vector<uint8_t> make_blob(uint32_t version)
{
    vqs_wbuf w = {};
    vqs_blob_begin(&w, "TESTBLOB", version);
    vqs_wbuf_u32(&w, 0x01020304u);
    vqs_wbuf_u64(&w, 0x1122334455667788ull);
    REQUIRE(vqs_blob_end(&w) == 0);
    std::vector<uint8_t> b(w.p, w.p + w.len);
    free(w.p);
    return b;
}

TEST_CASE("blob envelope: layout, round trip", "[common][blob]")
{
    auto b = make_blob(3);
    REQUIRE(b.size() == VQS_BLOB_OVERHEAD + 12);
    CHECK(std::memcmp(b.data(), "TESTBLOB", 8) == 0);
    const uint8_t ver[4] = {3, 0, 0, 0}, u32[4] = {4, 3, 2, 1};
    CHECK(std::memcmp(b.data() + 8, ver, 4) == 0);
    CHECK(std::memcmp(b.data() + 12, u32, 4) == 0);
    CHECK(b[16] == 0x88);
    CHECK(b[23] == 0x11);
    CHECK(vqs_le32_get(b.data() + b.size() - 4) == vqs_crc32c(0, b.data(), b.size() - 4));

    vqs_rbuf r;
    uint32_t v = 0, x = 0;
    uint64_t y = 0;
    REQUIRE(vqs_blob_open(b.data(), b.size(), "TESTBLOB", 3, "test blob", &r, &v) == 0);
    CHECK(v == 3);
    CHECK(r.len == 12);
    REQUIRE(vqs_rbuf_u32(&r, &x) == 0);
    REQUIRE(vqs_rbuf_u64(&r, &y) == 0);
    CHECK(x == 0x01020304u);
    CHECK(y == 0x1122334455667788ull);
    CHECK(vqs_rbuf_u32(&r, &x) == VQS_ECORRUPT);
    CHECK(std::strstr(vqs_errdetail(), "test blob: truncated") != nullptr);
}

TEST_CASE("blob envelope: refusals", "[common][blob]")
{
    auto b = make_blob(2);
    vqs_rbuf r;
    CHECK(vqs_blob_open(b.data(), VQS_BLOB_OVERHEAD - 1, "TESTBLOB", 2, "t", &r, nullptr) == VQS_ECORRUPT);
    CHECK(vqs_blob_open(b.data(), b.size(), "OTHERBLB", 2, "t", &r, nullptr) == VQS_ECORRUPT);
    CHECK(std::strstr(vqs_errdetail(), "bad magic") != nullptr);
    // a newer version is a version error, not damage (checked before the CRC)
    CHECK(vqs_blob_open(b.data(), b.size(), "TESTBLOB", 1, "t", &r, nullptr) == VQS_EVERSION);
    auto z = make_blob(0);
    CHECK(vqs_blob_open(z.data(), z.size(), "TESTBLOB", 5, "t", &r, nullptr) == VQS_EVERSION);
    // any flipped bit after the version fails the checksum
    for (size_t i = 12; i < b.size(); i++)
        for (int bit = 0; bit < 8; bit++) {
            auto c = b;
            c[i] ^= (uint8_t)(1u << bit);
            INFO("byte " << i << " bit " << bit);
            CHECK(vqs_blob_open(c.data(), c.size(), "TESTBLOB", 2, "t", &r, nullptr) == VQS_ECORRUPT);
        }
    // a truncated blob fails too (the CRC is then read from the wrong place)
    CHECK(vqs_blob_open(b.data(), b.size() - 1, "TESTBLOB", 2, "t", &r, nullptr) == VQS_ECORRUPT);
}

TEST_CASE("blob buffers: need, expect, sub, pad", "[common][blob]")
{
    vqs_wbuf w = {};
    vqs_wbuf_u64(&w, 7);
    vqs_wbuf_u32(&w, 9);
    vqs_wbuf_pad(&w, 100);
    REQUIRE(w.err == 0);
    REQUIRE(w.len == 100);
    for (size_t i = 12; i < 100; i++)
        CHECK(w.p[i] == 0);
    vqs_rbuf r = {w.p, w.len, 0, "pad test"};
    CHECK(vqs_rbuf_expect(&r, 8, "count") == VQS_ECORRUPT);
    r.off = 0;
    CHECK(vqs_rbuf_expect(&r, 7, "count") == 0);
    vqs_rbuf s;
    REQUIRE(vqs_rbuf_sub(&r, 4, &s) == 0);
    CHECK(r.off == 12);
    uint32_t v = 0;
    REQUIRE(vqs_rbuf_u32(&s, &v) == 0);
    CHECK(v == 9);
    CHECK(vqs_rbuf_u32(&s, &v) == VQS_ECORRUPT);
    CHECK(vqs_rbuf_need(&r, 89, "tail") == VQS_ECORRUPT);
    CHECK(vqs_rbuf_need(&r, 88, "tail") == 0);
    CHECK(vqs_rbuf_sub(&r, 89, &s) == VQS_ECORRUPT);
    free(w.p);
}
