/*
 * vqs_wplan.h: the allocation step of `vqs weights plan` / `quantize
 * --budget-bits` (tools/weights/plan.c): one format per tensor so the
 * weights' bytes stay within a budget and the summed measured damage is
 * smallest (a multiple-choice knapsack). The measuring (model KL with one
 * tensor quantized at a time) is done by the command (tools/weights_cmd.c).
 */
#ifndef VQS_WPLAN_H
#define VQS_WPLAN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest number of budget units the dynamic programme uses (see plan.c). */
#define VQS_WPLAN_UNITS 65536

/* nt tensors, nc choices each. bytes[t * nc + c]: the size of tensor t in
 * format c; loss[t * nc + c]: its damage (>= 0; INFINITY or NaN: not
 * allowed). Picks choice[t] for each t with sum of bytes <= budget and the
 * smallest sum of loss, exactly up to rounding each size up to a unit of
 * ceil(budget / VQS_WPLAN_UNITS) bytes (so the budget always holds). Ties go
 * to the lower choice index. *total_loss and *total_bytes (either may be
 * NULL) are the plan's. VQS_ERANGE when no plan fits, the detail giving the
 * smallest size possible; VQS_EINVAL for nc == 0 or nc > 255; VQS_ENOMEM. */
int vqs_wplan_solve(size_t nt, size_t nc, const uint64_t *bytes, const double *loss,
                    uint64_t budget, int *choice, double *total_loss, uint64_t *total_bytes);

#ifdef __cplusplus
}
#endif
#endif
