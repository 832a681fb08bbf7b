// vqs_test_faiss.hpp: FAISS (through its C API) as a test oracle.
// REQUIRE_FAISS(expr): requires a FAISS C API call to succeed and prints
// faiss_get_last_error() when it does not. faiss_ptr owns a FaissIndex.
// Quality tests compare the means of several runs of either side (one run is
// one draw, and FAISS's draws move with the OpenBLAS kernel): spread_of
// summarises the runs, permuted_rows gives FAISS another draw.
#pragma once

#include "vqs_test.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>

#include "faiss_c_extra.h"

#define REQUIRE_FAISS(expr)                                                                    \
    do {                                                                                       \
        int frc_ = (expr);                                                                     \
        INFO(#expr << " -> " << frc_ << ": " << (frc_ ? faiss_get_last_error() : ""));        \
        REQUIRE(frc_ == 0);                                                                    \
    } while (0)

namespace vqs_test {
using faiss_ptr = std::unique_ptr<FaissIndex, decltype(&faiss_Index_free)>;

// Mean, sample standard deviation and range of a few runs' results.
struct spread {
    double mean = 0, sd = 0, lo = INFINITY, hi = -INFINITY;
};

inline spread spread_of(const std::vector<double> &v)
{
    spread s;
    for (double x : v) {
        s.mean += x;
        s.lo = std::min(s.lo, x);
        s.hi = std::max(s.hi, x);
    }
    s.mean /= (double)v.size();
    for (double x : v)
        s.sd += (x - s.mean) * (x - s.mean);
    s.sd = v.size() > 1 ? std::sqrt(s.sd / (double)(v.size() - 1)) : 0;
    return s;
}

// FAISS's k-means seed is fixed inside index_factory's indexes and the C API does not reach it;
// its k-means starts from a seeded random choice of training rows, so the same index trained on
// the rows in another order is another draw of the same training. Row permutation number s.
inline std::vector<float> permuted_rows(const std::vector<float> &x, size_t d, uint64_t s)
{
    const size_t n = x.size() / d;
    std::vector<size_t> perm(n);
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    vqs_rng r;
    vqs_rng_seed(&r, 1000 + s);
    for (size_t i = n - 1; i > 0; i--)
        std::swap(perm[i], perm[vqs_rng_next(&r) % (i + 1)]);
    std::vector<float> y(x.size());
    for (size_t i = 0; i < n; i++)
        std::memcpy(&y[i * d], &x[perm[i] * d], d * sizeof(float));
    return y;
}
} // namespace vqs_test
