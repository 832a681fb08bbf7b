// Helpers of the weight-format tests (tests/codebooks/test_wq_*.cpp): an
// encoded tensor freed on scope exit, encode of a parameterless format,
// decode, and a part's elements.
#ifndef VQS_WQ_TEST_HPP
#define VQS_WQ_TEST_HPP

#include "vqs_test.hpp"

#include <cstring>
#include <vector>

#include "vqs_wq.h"

namespace wq_test {

struct tensor {
    vqs_wq_tensor t{};
    tensor() = default;
    tensor(const tensor &) = delete;
    tensor &operator=(const tensor &) = delete;
    ~tensor() { vqs_wq_tensor_free(&t); }
};

inline void encode(vqs_wq_kind k, const std::vector<float> &w, size_t rows, size_t cols,
                   tensor &out, int nthreads = 1)
{
    vqs_wq_spec s{};
    s.kind = k;
    vqs_wq_opts o{};
    o.nthreads = nthreads;
    REQUIRE(w.size() == rows * cols);
    REQUIRE_OK(vqs_wq_encode(&s, w.data(), rows, cols, &o, &out.t));
}

inline std::vector<float> decode(const vqs_wq_tensor &t)
{
    std::vector<float> y(t.rows * t.cols);
    vqs_wq_opts o{};
    o.nthreads = 1;
    REQUIRE_OK(vqs_wq_decode(&t, y.data(), &o));
    return y;
}

// Part name's elements as T (its bytes when T is uint8_t).
template <class T> std::vector<T> part(const vqs_wq_tensor &t, const char *name)
{
    const vqs_wq_part *p = vqs_wq_part_get(&t, name);
    INFO("part " << name);
    REQUIRE(p != nullptr);
    REQUIRE(p->nbytes % sizeof(T) == 0);
    std::vector<T> v(p->nbytes / sizeof(T));
    if (p->nbytes)
        std::memcpy(v.data(), p->data, p->nbytes);
    return v;
}

} // namespace wq_test

#endif
