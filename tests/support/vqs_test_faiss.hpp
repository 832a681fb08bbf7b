// vqs_test_faiss.hpp: FAISS (through its C API) as a test oracle.
// REQUIRE_FAISS(expr): requires a FAISS C API call to succeed and prints
// faiss_get_last_error() when it does not. faiss_ptr owns a FaissIndex.
#pragma once

#include "vqs_test.hpp"

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
} // namespace vqs_test
