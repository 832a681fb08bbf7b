/*
 * plan.c: a format per tensor under a budget of bytes (vqs_wplan.h).
 *
 * The problem is a multiple-choice knapsack: each tensor takes exactly one
 * of its formats, a format costs the tensor's bytes in it and brings its
 * measured damage (the model's KL when only that tensor is quantized), the
 * sum of bytes must stay within the budget, the sum of damage is minimised.
 * Adding the per-tensor KLs assumes their effects add up, which holds to
 * first order for small perturbations; the command checks the result end to
 * end instead of trusting it.
 *
 * Design decision: an exact dynamic programme over the budget discretised
 * into at most VQS_WPLAN_UNITS units, every size rounded *up* to whole units,
 * so that whatever the programme picks fits the real budget. It costs
 * nt x units x nc steps (a 7B model's ~220 matrices x 65536 x 10 formats:
 * 1.4e8, well under a second) and nt x units bytes for the back-pointers.
 * The rounding can only lose plans that use the last < nt units' worth of
 * bytes (at most nt / 65536 of the budget).
 * Rejected: the greedy over marginal KL per bit (start every tensor at its
 * cheapest format, repeatedly upgrade the one with the best KL saved per
 * byte). It is optimal only on the convex hull of each tensor's (bytes, KL)
 * points, and the block formats are far from convex: q4_1 costs more than
 * nf4 or nvfp4 and is sometimes worse, MX formats share a bit width with
 * different errors, and a 172-wide row pays a padded block. The greedy then
 * stops short of the budget or upgrades through dominated points, and its
 * answer depends on the order of ties; the programme has none of that and is
 * cheap at this size.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vqs_common.h"
#include "vqs_wplan.h"

int vqs_wplan_solve(size_t nt, size_t nc, const uint64_t *bytes, const double *loss,
                    uint64_t budget, int *choice, double *total_loss, uint64_t *total_bytes)
{
    if (nc == 0 || nc > 255)
        return vqs_seterr(VQS_EINVAL, "plan: %zu choices per tensor (1 to 255)", nc);
    /* the smallest size possible, for the message when nothing fits */
    uint64_t least = 0;
    for (size_t t = 0; t < nt; t++) {
        uint64_t m = UINT64_MAX;
        for (size_t c = 0; c < nc; c++) {
            double l = loss[t * nc + c];
            if (!isnan(l) && !isinf(l) && bytes[t * nc + c] < m)
                m = bytes[t * nc + c];
        }
        if (m == UINT64_MAX)
            return vqs_seterr(VQS_ERANGE, "plan: tensor %zu has no usable format", t);
        least += m;
    }
    if (least > budget)
        return vqs_seterr(VQS_ERANGE, "plan: the budget is %llu bytes but the smallest choice of "
                          "every tensor needs %llu", (unsigned long long)budget,
                          (unsigned long long)least);
    uint64_t unit = budget / VQS_WPLAN_UNITS + (budget % VQS_WPLAN_UNITS != 0);
    if (unit == 0)
        unit = 1;
    size_t nu = (size_t)(budget / unit) + 1; /* units 0 .. budget / unit */
    double *dp = malloc(nu * sizeof *dp), *nx = malloc(nu * sizeof *nx);
    uint8_t *back = nt ? malloc(nt * nu) : NULL;
    if (!dp || !nx || (nt && !back)) {
        free(dp), free(nx), free(back);
        return vqs_seterr(VQS_ENOMEM, "plan: %zu tensors x %zu units", nt, nu);
    }
    /* dp[u]: least loss of the tensors so far using at most u units */
    for (size_t u = 0; u < nu; u++)
        dp[u] = 0;
    for (size_t t = 0; t < nt; t++) {
        uint8_t *bk = back + t * nu;
        for (size_t u = 0; u < nu; u++) {
            nx[u] = INFINITY;
            bk[u] = 0;
        }
        for (size_t c = 0; c < nc; c++) {
            double l = loss[t * nc + c];
            if (isnan(l) || isinf(l))
                continue;
            uint64_t cu = bytes[t * nc + c] / unit + (bytes[t * nc + c] % unit != 0);
            if (cu >= nu)
                continue;
            for (size_t u = (size_t)cu; u < nu; u++) {
                double v = dp[u - cu] + l;
                if (v < nx[u]) {
                    nx[u] = v;
                    bk[u] = (uint8_t)c;
                }
            }
        }
        double *s = dp;
        dp = nx;
        nx = s;
    }
    int rc = 0;
    if (isinf(dp[nu - 1])) {
        rc = vqs_seterr(VQS_ERANGE, "plan: no plan fits %llu bytes once sizes are rounded up to "
                        "units of %llu bytes (the smallest needs %llu)", (unsigned long long)budget,
                        (unsigned long long)unit, (unsigned long long)least);
    } else {
        size_t u = nu - 1;
        double tl = 0;
        uint64_t tb = 0;
        for (size_t t = nt; t-- > 0;) {
            int c = back[t * nu + u];
            choice[t] = c;
            tl += loss[t * nc + (size_t)c];
            tb += bytes[t * nc + (size_t)c];
            u -= (size_t)(bytes[t * nc + (size_t)c] / unit + (bytes[t * nc + (size_t)c] % unit != 0));
        }
        if (total_loss)
            *total_loss = tl;
        if (total_bytes)
            *total_bytes = tb;
    }
    free(dp), free(nx), free(back);
    return rc;
}
