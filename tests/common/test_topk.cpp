// The bounded top-k (common/vqs_topk.h): against a full sort of every
// candidate for many k and push orders, with many tied keys (ties go to the
// lower id), k larger than the stream, the threshold and the admission test.
#include "vqs_test.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "vqs_topk.h"

namespace {

bool before(const vqs_topk_item &a, const vqs_topk_item &b)
{
    return a.key < b.key || (a.key == b.key && a.id < b.id);
}

} // namespace

TEST_CASE("top-k keeps the k best (key, then lower id) in any push order", "[common][topk]")
{
    vqs_rng r;
    vqs_rng_seed(&r, 7);
    for (size_t n : {0, 1, 5, 100, 1000}) {
        std::vector<vqs_topk_item> all(n);
        for (size_t i = 0; i < n; i++) // few distinct keys: many ties
            all[i] = {(double)(vqs_rng_next(&r) % 17) - 8.0, (int64_t)(vqs_rng_next(&r) % 100000)};
        std::sort(all.begin(), all.end(), [](const vqs_topk_item &a, const vqs_topk_item &b) {
            return a.id < b.id;
        });
        all.erase(std::unique(all.begin(), all.end(),
                              [](const vqs_topk_item &a, const vqs_topk_item &b) { return a.id == b.id; }),
                  all.end());
        std::vector<vqs_topk_item> sorted = all;
        std::sort(sorted.begin(), sorted.end(), before);
        for (size_t k : {1, 2, 10, 64, 2000}) {
            for (int order = 0; order < 3; order++) {
                std::vector<vqs_topk_item> in = all;
                if (order == 1)
                    std::reverse(in.begin(), in.end());
                if (order == 2)
                    for (size_t i = in.size(); i > 1; i--)
                        std::swap(in[i - 1], in[vqs_rng_next(&r) % i]);
                std::vector<vqs_topk_item> h(k);
                vqs_topk t = {h.data(), 0, k};
                for (const auto &c : in) {
                    bool admits = vqs_topk_admits(&t, c.key, c.id) != 0;
                    vqs_topk_item worst = t.n ? t.h[0] : vqs_topk_item{};
                    size_t n0 = t.n;
                    vqs_topk_push(&t, c.key, c.id);
                    // admitted exactly when the push kept it
                    bool kept = t.n > n0 || t.h[0].key != worst.key || t.h[0].id != worst.id;
                    REQUIRE(admits == kept);
                }
                size_t m = std::min(k, all.size());
                REQUIRE(t.n == m);
                REQUIRE(vqs_topk_thr(&t) == (m == k ? sorted[k - 1].key : INFINITY));
                vqs_topk_sort(&t);
                INFO("n " << n << " k " << k << " order " << order);
                for (size_t i = 0; i < m; i++) {
                    REQUIRE(t.h[i].id == sorted[i].id);
                    REQUIRE(t.h[i].key == sorted[i].key);
                }
            }
        }
    }
}

TEST_CASE("top-k comparator: key, then id", "[common][topk]")
{
    vqs_topk_item a = {1.0, 5}, b = {1.0, 6}, c = {0.5, 9};
    REQUIRE(vqs_topk_cmp(&a, &b) < 0);
    REQUIRE(vqs_topk_cmp(&b, &a) > 0);
    REQUIRE(vqs_topk_cmp(&a, &a) == 0);
    REQUIRE(vqs_topk_cmp(&c, &a) < 0);
    REQUIRE(vqs_topk_worse(&b, &a));
    REQUIRE_FALSE(vqs_topk_worse(&a, &b));
    // a float key widens exactly: its order and its value come back
    float f = std::nextafter(1.0f, 2.0f);
    vqs_topk_item h[1];
    vqs_topk t = {h, 0, 1};
    vqs_topk_push(&t, f, 3);
    REQUIRE((float)vqs_topk_thr(&t) == f);
    REQUIRE_FALSE(vqs_topk_admits(&t, f, 4));
    REQUIRE(vqs_topk_admits(&t, f, 2));
    REQUIRE(vqs_topk_admits(&t, 1.0f, 9));
}
