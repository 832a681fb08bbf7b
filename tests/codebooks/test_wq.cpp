// The front of the weight formats (codebooks/wq.c): every listed name parses
// and names itself back, unknown names are refused, NaN and Inf are refused
// naming the first bad weight whatever the thread count, and the part
// bookkeeping refuses what would make a tensor inconsistent.
#include "vqs_test.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "vqs_wq.h"
#include "wq_test.hpp"

TEST_CASE("wq: every listed format parses and names itself back", "[wq]")
{
    REQUIRE(vqs_wq_format_count() == (size_t)VQS_WQ_NKINDS);
    for (size_t i = 0; i < vqs_wq_format_count(); i++) {
        const vqs_wq_format *f = vqs_wq_format_at(i);
        INFO(f->name);
        vqs_wq_spec s;
        REQUIRE_OK(vqs_wq_spec_parse(f->name, &s));
        CHECK(s.kind == f->kind);
        char buf[96];
        vqs_wq_spec_name(&s, buf, sizeof buf);
        CHECK(std::string(buf) == f->name);
    }
    CHECK(vqs_wq_format_at(vqs_wq_format_count()) == nullptr);
    vqs_wq_spec s;
    REQUIRE_OK(vqs_wq_spec_parse("Q4_0", &s)); // case-insensitive
    CHECK(s.kind == VQS_WQ_Q4_0);
    REQUIRE_ERR(vqs_wq_spec_parse("q4_2", &s), VQS_ESPEC);
    CHECK(std::string(vqs_errdetail()).find("'q4_2'") != std::string::npos);
    REQUIRE_ERR(vqs_wq_spec_parse("", &s), VQS_ESPEC);
    REQUIRE_ERR(vqs_wq_spec_parse("codec:", &s), VQS_ESPEC);
}

TEST_CASE("wq: NaN and Inf weights are refused naming the first one, at any thread count", "[wq]")
{
    const size_t rows = 300, cols = 40; // several row ranges per thread
    std::vector<float> w(rows * cols, 0.5f);
    w[200 * cols + 7] = std::numeric_limits<float>::infinity();
    w[123 * cols + 5] = std::nanf("");
    for (int nthreads : {1, 2, 3}) {
        INFO("threads " << nthreads);
        vqs_wq_spec s{};
        s.kind = VQS_WQ_Q8_0;
        vqs_wq_opts o{};
        o.nthreads = nthreads;
        wq_test::tensor t;
        REQUIRE_ERR(vqs_wq_encode(&s, w.data(), rows, cols, &o, &t.t), VQS_ENONFINITE);
        CHECK(std::string(vqs_errdetail()) == "weight (row 123, column 5) is NaN");
        CHECK(t.t.nparts == 0);
    }
    w[123 * cols + 5] = 1.0f;
    vqs_wq_spec s{};
    s.kind = VQS_WQ_INT8_CH;
    wq_test::tensor t;
    REQUIRE_ERR(vqs_wq_encode(&s, w.data(), rows, cols, nullptr, &t.t), VQS_ENONFINITE);
    CHECK(std::string(vqs_errdetail()) == "weight (row 200, column 7) is Inf");
}

TEST_CASE("wq: parts are refused when their name repeats or their bytes disagree with the shape",
          "[wq]")
{
    vqs_wq_tensor t{};
    uint64_t shape[2] = {3, 4};
    REQUIRE_OK(vqs_wq_part_add(&t, "codes", VQS_WQT_U16, 2, shape, nullptr));
    CHECK(vqs_wq_nbytes(&t) == 24);
    REQUIRE_ERR(vqs_wq_part_add(&t, "codes", VQS_WQT_U8, 1, shape, nullptr), VQS_EINVAL);
    std::vector<uint8_t> buf(11);
    REQUIRE_ERR(vqs_wq_part_borrow(&t, "scales", VQS_WQT_F32, 1, shape, buf.data(), buf.size()),
                VQS_ESHAPE);
    REQUIRE_OK(vqs_wq_part_borrow(&t, "scales", VQS_WQT_F32, 1, shape, buf.data(), 12));
    CHECK(t.nparts == 2);
    REQUIRE_ERR(vqs_wq_part_add(&t, "this-name-is-far-too-long-for-a-part", VQS_WQT_U8, 1, shape,
                                nullptr),
                VQS_EINVAL);
    vqs_wq_tensor_free(&t); // frees the owned part, not the borrowed one
}
