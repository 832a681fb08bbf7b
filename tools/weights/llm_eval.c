/*
 * llm_eval.c: the end-to-end quality of a model variant against the
 * original (vqs_llm_compare, vqs_llama.h), the numbers llama.cpp's
 * perplexity tool reports with --kl-divergence.
 *
 * Design decisions:
 * - Every position of a sequence that has a next token counts: positions
 *   0 .. len-2 of each sequence (len - 1 per sequence). The logits of the
 *   last position predict nothing in the sequence and are not used.
 * - Log-softmax in double with the maximum subtracted; KL(p_ref || p_q) =
 *   sum_i p_ref,i (log p_ref,i - log p_q,i), not clamped at 0, so a model
 *   compared with itself gives exactly 0 (every term is p * 0) and rounding
 *   shows as it is.
 * - Sequences run in parallel; each writes only its own slots (KL per
 *   position, agreement and cross-entropy sums per sequence), and the
 *   totals are summed afterwards in sequence order, so the result is the
 *   same for every thread count.
 * - The 99th percentile is the nearest-rank one: the ceil(0.99 N)-th
 *   smallest KL.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vqs_common.h"
#include "vqs_llama.h"

typedef struct cmp_ctx {
    const vqs_llama *ref, *q;
    const int *tokens;
    int len, vocab;
    double *kl;              /* nseq x (len - 1) */
    double *agree, *ce_ref, *ce; /* per sequence: count, sums */
} cmp_ctx;

/* log-softmax of n logits into o, in double */
static void log_softmax(const float *x, int n, double *o)
{
    double mx = x[0], z = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > mx)
            mx = x[i];
    for (int i = 0; i < n; i++)
        z += exp((double)x[i] - mx);
    double lz = mx + log(z);
    for (int i = 0; i < n; i++)
        o[i] = (double)x[i] - lz;
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return b;
}

static int compare_one(void *vctx, size_t s, int thread_id)
{
    (void)thread_id;
    const cmp_ctx *x = vctx;
    size_t len = (size_t)x->len, v = (size_t)x->vocab;
    const int *tok = x->tokens + s * len;
    float *lr = malloc(len * v * sizeof(float)), *lq = malloc(len * v * sizeof(float));
    double *pr = malloc(v * sizeof(double)), *pq = malloc(v * sizeof(double));
    int rc = 0;
    if (!lr || !lq || !pr || !pq) {
        rc = vqs_seterr(VQS_ENOMEM, "compare: logits of %zu positions", len);
        goto out;
    }
    if ((rc = vqs_llama_forward(x->ref, tok, x->len, lr)) || (rc = vqs_llama_forward(x->q, tok, x->len, lq)))
        goto out;
    double agree = 0, ce_ref = 0, ce = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        const float *a = lr + i * v, *b = lq + i * v;
        log_softmax(a, x->vocab, pr);
        log_softmax(b, x->vocab, pq);
        double kl = 0;
        for (size_t j = 0; j < v; j++)
            kl += exp(pr[j]) * (pr[j] - pq[j]);
        x->kl[s * (len - 1) + i] = kl;
        agree += argmax(a, x->vocab) == argmax(b, x->vocab);
        int next = tok[i + 1];
        ce_ref -= pr[next];
        ce -= pq[next];
    }
    x->agree[s] = agree;
    x->ce_ref[s] = ce_ref;
    x->ce[s] = ce;
out:
    free(lr);
    free(lq);
    free(pr);
    free(pq);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int vqs_llm_compare(const vqs_llama *ref, const vqs_llama *q, const int *tokens, int nseq, int len, int nthreads,
                    vqs_llm_quality *out)
{
    memset(out, 0, sizeof *out);
    const vqs_llama_config *a = vqs_llama_cfg(ref), *b = vqs_llama_cfg(q);
    if (memcmp(a, b, sizeof *a) != 0)
        return vqs_seterr(VQS_EINVAL, "compare: the two models' configs differ (dim %d/%d, layers %d/%d, vocab %d/%d)",
                          a->dim, b->dim, a->n_layers, b->n_layers, a->vocab_size, b->vocab_size);
    if (nseq < 1 || len < 2 || len > a->seq_len)
        return vqs_seterr(VQS_EINVAL, "compare: %d sequences of %d tokens (expected >= 1 of 2..%d)", nseq, len,
                          a->seq_len);
    for (size_t i = 0; i < (size_t)nseq * (size_t)len; i++)
        if (tokens[i] < 0 || tokens[i] >= a->vocab_size)
            return vqs_seterr(VQS_EINVAL, "compare: sequence %zu, position %zu: token %d is outside [0, %d)",
                              i / (size_t)len, i % (size_t)len, tokens[i], a->vocab_size);
    size_t npos = (size_t)nseq * (size_t)(len - 1);
    cmp_ctx x = {ref, q, tokens, len, a->vocab_size, malloc(npos * sizeof(double)),
                 malloc((size_t)nseq * sizeof(double)), malloc((size_t)nseq * sizeof(double)),
                 malloc((size_t)nseq * sizeof(double))};
    int rc = 0;
    if (!x.kl || !x.agree || !x.ce_ref || !x.ce) {
        rc = vqs_seterr(VQS_ENOMEM, "compare: %zu positions", npos);
        goto out;
    }
    if ((rc = vqs_parallel_for(nthreads, (size_t)nseq, compare_one, &x))) {
        /* a task's detail stays on its worker thread; the arguments were
         * checked above, so the tasks fail only for memory */
        rc = vqs_seterr(rc, "compare: %d sequences of %d tokens: %s", nseq, len, vqs_strerror(rc));
        goto out;
    }
    double kl = 0, agree = 0, ce_ref = 0, ce = 0;
    for (size_t i = 0; i < npos; i++)
        kl += x.kl[i];
    for (int s = 0; s < nseq; s++) {
        agree += x.agree[s];
        ce_ref += x.ce_ref[s];
        ce += x.ce[s];
    }
    qsort(x.kl, npos, sizeof *x.kl, cmp_double);
    size_t rank = (size_t)ceil(0.99 * (double)npos); /* 1-based, >= 1 since npos >= 1 */
    out->positions = npos;
    out->kl_mean = kl / (double)npos;
    out->kl_p99 = x.kl[rank - 1];
    out->kl_max = x.kl[npos - 1];
    out->top1 = agree / (double)npos;
    out->ce_ref = ce_ref / (double)npos;
    out->ce = ce / (double)npos;
out:
    free(x.kl);
    free(x.agree);
    free(x.ce_ref);
    free(x.ce);
    return rc;
}
