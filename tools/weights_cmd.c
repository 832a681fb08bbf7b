/*
 * weights_cmd.c: `vqs weights`, LLM weight compression from the command
 * line.
 *
 *   vqs weights quantize --in M.safetensors --format F [--skip REGEX] [--all]
 *                        [--out Q.safetensors] [--dequantize]
 *   vqs weights quantize --in M.safetensors --budget-bits B [--format F,F2...] ...
 *   vqs weights report   --in M.safetensors --format F[,F2...] [--csv FILE] [--json FILE]
 *   vqs weights eval     --in M.safetensors [--format F[,F2...]] [--quantized Q ...]
 *                        [--sequences N] [--len L] [--seed S]
 *   vqs weights plan     --in M.safetensors --budget-bits B [--format F,F2...]
 *
 * What is quantized: float tensors of two dimensions (the weight matrices,
 * rows = output channels, blocks along the last axis); 1-D tensors (norms,
 * biases) and tensors whose name matches --skip stay as they are. --all
 * adds the 1-D and N-D float tensors (N-D as rows = the product of the
 * leading dimensions); --skip still applies, since it names tensors
 * explicitly. eval and plan see the tensors of the model (vqs_llama.h), 2-D
 * being those with more than one row; they need a checkpoint that
 * vqs_llama_load reads (Llama-2 architecture in llama2.c naming).
 *
 * Measures (report), per tensor W and its decoded W' under a format:
 *   bits/weight   all bytes of the encoding (codes, scales, codebooks) x 8 /
 *                 the number of weights
 *   SQNR dB       10 log10(sum W^2 / sum (W - W')^2); "inf" when exact
 *   rel. Frob.    ||W - W'||_F / ||W||_F
 *   max |err|     max |W - W'|
 *   kurtosis      E[(w - mean)^4] / var^2 of W (Pearson: 3 for a Gaussian)
 *   >6 sigma      share of weights with |w| > 6 x the standard deviation
 * Totals pool every tensor's sums (the SQNR of all weights at once).
 *
 * eval (vqs_llm_compare): N sequences of L tokens sampled (temperature 1,
 * from token 1) from the reference model with the seed, then for each
 * variant (every selected tensor quantized with a format and decoded, or
 * the tensors of a quantized or dequantized file) the mean, 99th percentile
 * of KL(p_ref || p_variant) over predicted positions, the share of positions
 * whose arg-max agrees, and the cross-entropy of the sampled next tokens
 * under both models. bits/weight counts the quantized tensors only.
 *
 * Design decisions:
 * - One command with subcommands and one option table, so `vqs weights
 *   --help` documents every option (each says which subcommands read it)
 *   and the help test covers it as it does every other command.
 * - A format list is split at commas, but a codec:<spec> format keeps the
 *   commas of its spec (codec:PCA32,SQ8): a piece that is not a format on
 *   its own continues the codec before it.
 * - Output files are written only once everything has succeeded (the
 *   checkpoint through vqs_st_writer_save's temporary file and rename; CSV
 *   and JSON the same way), so bad input leaves nothing behind.
 * - plan: the damage of a format on a tensor is measured, not modelled: the
 *   model's mean KL when that tensor alone is quantized, on the first
 *   --plan-sequences sequences; the allocation is an exact knapsack
 *   (tools/weights/plan.c says why not greedy); then the whole planned model
 *   and every single candidate that fits the budget are measured on all
 *   sequences, so the plan is judged end to end, not by its sum of KLs.
 *   Rejected: proxies such as SQNR or Hessian traces: cheap, but they rank
 *   tensors by weight error, not by what the model loses.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "commands.h"
#include "vqs_common.h"
#include "vqs_float.h"
#include "vqs_llama.h"
#include "vqs_store_st.h"
#include "vqs_wfile.h"
#include "vqs_wplan.h"
#include "vqs_wq.h"

#define MAXF 32     /* formats in one list */
#define MAXQ 16     /* --quantized files */
#define BOS 1       /* llama2.c's beginning-of-sequence token */

enum { O_CSV = 1000, O_JSON, O_PLANSEQ };

static const vqs_cli_opt opts[] = {
    {"in", 'i', 1, "M.safetensors", NULL,
     "the checkpoint (required); eval, plan and --budget-bits need one\n"
     "vqs_llama_load reads (Llama-2 architecture, llama2.c names)"},
    {"format", 'f', 1, "F[,F2...]", NULL,
     "weight formats (listed below). quantize: one, or with --budget-bits\n"
     "the candidates; report, eval: one variant each; plan: the candidates\n"
     "(default with a budget: the block formats)"},
    {"out", 'o', 1, "Q.safetensors", "IN's name.FORMAT.safetensors here",
     "quantize: the file written"},
    {"skip", 'x', 1, "REGEX", NULL,
     "tensors whose name matches (POSIX extended, anywhere in the name)\nstay as they are"},
    {"all", 'a', 1, NULL, NULL, "also quantize 1-D and N-D float tensors (norms, biases)"},
    {"dequantize", 'd', 1, NULL, NULL,
     "quantize: write the decoded weights in the input's dtype (F32, F16,\n"
     "BF16; others as F32), same names and shapes, instead of the codes"},
    {"budget-bits", 'b', 1, "B", NULL,
     "quantize, plan: a format per tensor so the average bits per weight\n"
     "is at most B and the measured model KL smallest"},
    {"quantized", 'q', 1, "Q.safetensors", NULL,
     "eval: a quantized (or dequantized) checkpoint of --in as a variant;\nrepeatable"},
    {"sequences", 'n', 1, "N", "16", "eval, plan: token sequences sampled from the model"},
    {"len", 'l', 1, "L", "128, or the model's seq_len if less",
     "eval, plan: tokens per sequence (at most the model's seq_len)"},
    {"plan-sequences", O_PLANSEQ, 0, "N", "4",
     "plan: of those, the sequences each tensor's KL is measured on"},
    {"seed", 'S', 1, "S", "0", "the seed of sampling and of k-means (vq formats)"},
    {"threads", 't', 1, "N", "all cores, or VQS_THREADS", "threads"},
    {"csv", O_CSV, 0, "FILE", NULL, "report, eval, plan: the table also as CSV"},
    {"json", O_JSON, 0, "FILE", NULL, "report, eval, plan: the table (and totals) as JSON"},
    {0}};

static void list_formats(FILE *f)
{
    fprintf(f, "\nFormats (bits per weight for long rows, scales included):\n");
    for (size_t i = 0; i < vqs_wq_format_count(); i++) {
        const vqs_wq_format *w = vqs_wq_format_at(i);
        char blk[32];
        if (w->block > 0)
            snprintf(blk, sizeof blk, "block %d", w->block);
        else
            snprintf(blk, sizeof blk, "%s", w->block < 0 ? "vector" : "row/tensor");
        char bits[16];
        if (w->bits > 0)
            snprintf(bits, sizeof bits, "%.2f", w->bits);
        else
            snprintf(bits, sizeof bits, "varies");
        fprintf(f, "  %-13s %-10s %6s  %s\n", w->name, blk, bits, w->summary);
    }
}

const vqs_cli_help vqs_weights_help = {
    .cmd = "weights",
    .usage = "quantize --in M.safetensors --format F [--skip REGEX] [--all] [--out Q.safetensors]\n"
             "         [--dequantize] | --budget-bits B [--format F,F2...]\n"
             "report --in M.safetensors --format F[,F2...] [--skip REGEX] [--all] [--csv FILE] [--json FILE]\n"
             "eval --in M.safetensors [--format F[,F2...]] [--quantized Q.safetensors ...]\n"
             "     [--sequences N] [--len L] [--seed S] [--csv FILE] [--json FILE]\n"
             "plan --in M.safetensors --budget-bits B [--format F,F2...] [--plan-sequences N]",
    .about =
        "Quantizes LLM checkpoints (safetensors) with the block formats of llama.cpp, QLoRA,\n"
        "OCP Microscaling and NVFP4, fp8/int8 with scales, or vector quantization, and\n"
        "measures what that costs.\n"
        "  quantize  writes the codes and scales as safetensors tensors NAME.<part> with the\n"
        "            format of each tensor in __metadata__ (vqs.format weights-1), or with\n"
        "            --dequantize a plain checkpoint of the decoded weights. Weight matrices\n"
        "            (2-D float tensors) are quantized, norms and 1-D tensors copied.\n"
        "  report    per tensor and format: shape, bits per weight including scales, SQNR,\n"
        "            relative Frobenius error, max abs error, kurtosis, share of |w| > 6 sigma.\n"
        "  eval      the model's next-token distributions on sampled sequences against each\n"
        "            variant's: mean and p99 KL, top-1 agreement, cross-entropy.\n"
        "  plan      (and quantize --budget-bits) the format of each tensor that keeps the\n"
        "            average bits per weight within B with the least measured KL, why, and\n"
        "            the plan's end-to-end KL against the best single format within B.\n",
    .opts = opts,
    .more = list_formats,
    .notes = "vq<d>x<bits>[r<bits>][o<pct>]: d weights per sub-vector, 2^bits centroids, an optional\n"
             "residual stage and a share of outlier columns kept in fp16; codec:<spec> takes any vqs\n"
             "codec spec (vqs help codec). eval, plan and --budget-bits run the reference forward\n"
             "pass, so they need a Llama-2-architecture checkpoint in llama2.c naming with its\n"
             "config in __metadata__ (or llama2.c's .bin for --in of eval and plan).\n"
             "Exit status: 0, 1 for a failure (a bad or corrupt file), 2 for bad usage.\n",
    .example = "vqs weights quantize --in stories260K.safetensors --format q4_0 --out q4.safetensors\n"
               "vqs weights report --in stories260K.safetensors --format q8_0,q4_0,nf4,mxfp4\n"
               "vqs weights eval --in stories260K.safetensors --format q8_0,q4_0 --quantized q4.safetensors\n"
               "vqs weights plan --in stories260K.safetensors --budget-bits 4.5\n",
};

/* ---- arguments ------------------------------------------------------------ */

typedef struct wargs {
    const char *cmd; /* "weights quantize", for messages */
    const char *in, *formats, *out, *skip, *csv, *json;
    const char *quantized[MAXQ];
    size_t nquantized;
    int all, dequantize, has_budget, has_re, len_given;
    double budget;
    size_t nseq, len, plan_seq, seed, threads;
    regex_t re;
} wargs;

typedef struct flist {
    size_t n;
    vqs_wq_spec s[MAXF];
    char name[MAXF][96];
} flist;

static int parse_budget(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !(v > 0 && v <= 64))
        return vqs_seterr(VQS_EUSAGE, "--budget-bits: '%s' is not a number of bits in (0, 64]", s);
    *out = v;
    return 0;
}

/* "q4_0,nf4,codec:PCA32,SQ8" (see the file's comment) into f */
static int parse_formats(const char *list, uint64_t seed, flist *f)
{
    memset(f, 0, sizeof *f);
    char *dup = strdup(list), *save = NULL;
    if (!dup)
        return vqs_seterr(VQS_ENOMEM, "--format");
    int rc = 0;
    for (char *tok = strtok_r(dup, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        vqs_wq_spec s;
        if (vqs_wq_spec_parse(tok, &s) == 0) {
            if (f->n == MAXF) {
                rc = vqs_seterr(VQS_EUSAGE, "--format: more than %d formats", MAXF);
                break;
            }
            s.seed = seed;
            f->s[f->n] = s;
            vqs_wq_spec_name(&s, f->name[f->n], sizeof f->name[0]);
            f->n++;
            continue;
        }
        vqs_wq_spec *p = f->n ? &f->s[f->n - 1] : NULL;
        if (p && p->kind == VQS_WQ_CODEC && strlen(p->codec) + 1 + strlen(tok) < sizeof p->codec) {
            vqs_clearerr();
            strcat(p->codec, ",");
            strcat(p->codec, tok);
            vqs_wq_spec_name(p, f->name[f->n - 1], sizeof f->name[0]);
            continue;
        }
        rc = vqs_wq_spec_parse(tok, &s); /* its message again */
    }
    free(dup);
    if (!rc && !f->n)
        rc = vqs_seterr(VQS_EUSAGE, "--format: no format given");
    return rc;
}

/* The block formats of the table (plan's default candidates). */
static void block_formats(uint64_t seed, flist *f)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < vqs_wq_format_count() && f->n < MAXF; i++) {
        const vqs_wq_format *w = vqs_wq_format_at(i);
        if (w->block <= 0)
            continue;
        f->s[f->n].kind = w->kind;
        f->s[f->n].seed = seed;
        snprintf(f->name[f->n], sizeof f->name[0], "%s", w->name);
        f->n++;
    }
}

static int is_float(vqs_st_dtype d)
{
    return d == VQS_ST_F32 || d == VQS_ST_F16 || d == VQS_ST_BF16 || d == VQS_ST_F64 ||
           d == VQS_ST_F8_E4M3 || d == VQS_ST_F8_E5M2;
}

/* Whether a tensor is quantized (the file's comment says which are). */
static int selected(const wargs *a, const char *name, int ndim, int isfloat)
{
    if (!isfloat || ndim == 0 || (ndim != 2 && !a->all))
        return 0;
    return !(a->has_re && regexec(&a->re, name, 0, NULL, 0) == 0);
}

static void shape_str(char *b, size_t n, int ndim, const uint64_t *shape)
{
    size_t o = 0;
    b[0] = 0;
    for (int i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(b + o, n - o, "%s%llu", i ? "x" : "", (unsigned long long)shape[i]);
    if (ndim == 0)
        snprintf(b, n, "scalar");
}

static json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* ---- output files ------------------------------------------------------- */

/* path through path.tmp and a rename; csv: the rows' fields (the keys of
 * the first row, in order) as CSV, else the document as JSON */
struct emit_ctx {
    const json_t *doc, *rows;
    int csv;
};

static int emit(FILE *f, void *c)
{
    const struct emit_ctx *e = c;
    if (!e->csv) {
        if (json_dumpf(e->doc, f, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) ||
            fputc('\n', f) == EOF)
            return -EIO;
        return 0;
    }
    json_t *first = json_array_get(e->rows, 0);
    const char *k;
    json_t *v;
    int i = 0;
    json_object_foreach(first, k, v)
        fprintf(f, "%s%s", i++ ? "," : "", k);
    fputc('\n', f);
    size_t r;
    json_t *row;
    json_array_foreach(e->rows, r, row) {
        i = 0;
        json_object_foreach(first, k, v) {
            json_t *x = json_object_get(row, k);
            fputs(i++ ? "," : "", f);
            if (json_is_string(x))
                fputs(json_string_value(x), f);
            else if (json_is_integer(x))
                fprintf(f, "%lld", (long long)json_integer_value(x));
            else if (json_is_real(x))
                fprintf(f, "%.9g", json_real_value(x));
            else if (json_is_boolean(x))
                fputs(json_is_true(x) ? "1" : "0", f);
            /* null (an infinite SQNR, an unusable format): an empty field */
        }
        fputc('\n', f);
    }
    return 0;
}

static int write_out(const char *path, const json_t *doc, const json_t *rows, int csv)
{
    struct emit_ctx e = {doc, rows, csv};
    return vqs_cli_write_file(path, emit, &e);
}

static int write_outputs(const wargs *a, const json_t *doc, const json_t *rows)
{
    int rc = 0;
    if (a->csv)
        rc = write_out(a->csv, doc, rows, 1);
    if (!rc && a->json)
        rc = write_out(a->json, doc, rows, 0);
    if (!rc && a->csv)
        fprintf(stderr, "vqs %s: wrote %s\n", a->cmd, a->csv);
    if (!rc && a->json)
        fprintf(stderr, "vqs %s: wrote %s\n", a->cmd, a->json);
    return rc;
}

/* ---- the model's tensors -------------------------------------------------- */

/* Tensor ti of ref quantized with s and decoded into q (buf: rows * cols
 * floats); *nbytes is the encoding's size. */
static int quantize_into(vqs_llama *q, const vqs_llama *ref, size_t ti, const vqs_wq_spec *s,
                         int nthreads, float *buf, size_t *nbytes)
{
    const float *w;
    size_t rows, cols;
    const char *name = vqs_llama_tensor(ref, ti, &w, &rows, &cols);
    vqs_wq_opts o = {.nthreads = nthreads};
    vqs_wq_tensor t;
    int rc = vqs_wq_encode(s, w, rows, cols, &o, &t);
    if (!rc)
        rc = vqs_wq_decode(&t, buf, &o);
    if (!rc)
        *nbytes = vqs_wq_nbytes(&t);
    vqs_wq_tensor_free(&t);
    if (!rc)
        rc = vqs_llama_set_weight(q, name, buf, rows * cols);
    if (rc) {
        char d[256], fmt[96];
        snprintf(d, sizeof d, "%s", vqs_errdetail());
        vqs_wq_spec_name(s, fmt, sizeof fmt);
        rc = vqs_seterr(rc, "tensor '%s' in %s: %s", name, fmt, d);
    }
    return rc;
}

static int restore(vqs_llama *q, const vqs_llama *ref, size_t ti)
{
    const float *w;
    size_t rows, cols;
    const char *name = vqs_llama_tensor(ref, ti, &w, &rows, &cols);
    return vqs_llama_set_weight(q, name, w, rows * cols);
}

/* The model tensors a format applies to: indices into *idx (n of them),
 * their weights in *nweights; buf for the largest. */
static int model_tensors(const wargs *a, const vqs_llama *m, size_t **idx, size_t *n,
                         size_t *nweights, size_t *maxn)
{
    size_t nt = vqs_llama_ntensors(m);
    *idx = malloc((nt ? nt : 1) * sizeof **idx);
    if (!*idx)
        return vqs_seterr(VQS_ENOMEM, "%zu tensors", nt);
    *n = *nweights = *maxn = 0;
    for (size_t i = 0; i < nt; i++) {
        const float *w;
        size_t rows, cols;
        const char *name = vqs_llama_tensor(m, i, &w, &rows, &cols);
        if (rows * cols > *maxn)
            *maxn = rows * cols;
        if (!selected(a, name, rows > 1 ? 2 : 1, 1))
            continue;
        (*idx)[(*n)++] = i;
        *nweights += rows * cols;
    }
    if (!*n)
        return vqs_seterr(VQS_EEMPTY, "%s: no tensor to quantize (all skipped)", a->in);
    return 0;
}

/* ---- quantize ------------------------------------------------------------- */

typedef struct plan_result {
    size_t nt;
    char **name;       /* the planned tensors (owned copies) */
    int *choice;       /* index into the candidates */
} plan_result;

static void plan_result_free(plan_result *p)
{
    for (size_t i = 0; p->name && i < p->nt; i++)
        free(p->name[i]);
    free(p->name);
    free(p->choice);
    memset(p, 0, sizeof *p);
}

static int run_plan(const wargs *a, const flist *fl, plan_result *res);

static int default_out(const wargs *a, const char *tag, char **out)
{
    const char *b = strrchr(a->in, '/');
    b = b ? b + 1 : a->in;
    size_t l = strlen(b);
    const char *ext = ".safetensors";
    if (l > strlen(ext) && !strcmp(b + l - strlen(ext), ext))
        l -= strlen(ext);
    if (asprintf(out, "%.*s.%s%s.safetensors", (int)l, b, tag, a->dequantize ? ".dq" : "") < 0)
        return vqs_seterr(VQS_ENOMEM, "--out");
    return 0;
}

static int same_file(const char *p, const char *q)
{
    struct stat a, b;
    return stat(p, &a) == 0 && stat(q, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* float32 values into a tensor of dtype d (F32, F16 or BF16) */
static void *to_dtype(const float *x, size_t n, vqs_st_dtype d, size_t *nbytes)
{
    size_t es = d == VQS_ST_F32 ? 4 : 2;
    unsigned char *b = malloc(n * es + 1);
    if (!b)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (d == VQS_ST_F32) {
            memcpy(b + 4 * i, &x[i], 4);
        } else {
            uint16_t h = d == VQS_ST_F16 ? vqs_f32_to_f16(x[i]) : vqs_f32_to_bf16(x[i]);
            b[2 * i] = (unsigned char)(h & 0xff);
            b[2 * i + 1] = (unsigned char)(h >> 8);
        }
    }
    *nbytes = n * es;
    return b;
}

static int cmd_quantize(wargs *a)
{
    flist fl;
    int rc;
    if (a->has_budget) {
        if (a->formats) {
            if ((rc = parse_formats(a->formats, a->seed, &fl)))
                return rc;
        } else {
            block_formats(a->seed, &fl);
        }
    } else {
        if (!a->formats)
            return vqs_seterr(VQS_EUSAGE, "--format (or --budget-bits) is required");
        if ((rc = parse_formats(a->formats, a->seed, &fl)))
            return rc;
        if (fl.n != 1)
            return vqs_seterr(VQS_EUSAGE, "--format: quantize takes one format (%zu given); several "
                              "are candidates only with --budget-bits", fl.n);
    }
    vqs_st_file *st = NULL;
    vqs_st_writer *w = NULL;
    plan_result plan = {0};
    char *out = NULL;
    float *x = NULL, *y = NULL;
    const vqs_wq_spec **specs = NULL;
    if ((rc = vqs_st_open(a->in, &st)))
        goto done;
    const char *ver = vqs_st_meta_get(st, VQS_WFILE_KEY);
    if (ver) {
        rc = vqs_seterr(VQS_EINVAL, "%s is a quantized checkpoint already (%s %s): quantize the "
                        "original", a->in, VQS_WFILE_KEY, ver);
        goto done;
    }
    if (a->out) {
        out = strdup(a->out);
    } else {
        char tag[112];
        if (a->has_budget)
            snprintf(tag, sizeof tag, "b%g", a->budget);
        else
            snprintf(tag, sizeof tag, "%s", fl.name[0]);
        if ((rc = default_out(a, tag, &out)))
            goto done;
    }
    if (!out) {
        rc = vqs_seterr(VQS_ENOMEM, "--out");
        goto done;
    }
    if (same_file(out, a->in)) {
        rc = vqs_seterr(VQS_EUSAGE, "--out %s is the input", out);
        goto done;
    }
    if (a->has_budget && (rc = run_plan(a, &fl, &plan)))
        goto done;
    if ((rc = vqs_st_writer_new(&w)) || (rc = vqs_wfile_begin(w, st, !a->dequantize)))
        goto done;
    size_t nt = vqs_st_count(st), maxn = 0;
    for (size_t i = 0; i < nt; i++)
        if (vqs_st_tensor_at(st, i)->numel > maxn)
            maxn = vqs_st_tensor_at(st, i)->numel;
    x = malloc(maxn * sizeof *x + 1);
    y = malloc(maxn * sizeof *y + 1);
    specs = calloc(nt ? nt : 1, sizeof *specs);
    if (!x || !y || !specs) {
        rc = vqs_seterr(VQS_ENOMEM, "%zu floats", maxn);
        goto done;
    }
    /* every tensor's format (NULL: kept) */
    for (size_t i = 0; i < nt; i++) {
        const vqs_st_tensor *t = vqs_st_tensor_at(st, i);
        if (!selected(a, t->name, t->ndim, is_float(t->dtype)) || !t->numel)
            continue;
        if (!a->has_budget) {
            specs[i] = &fl.s[0];
            continue;
        }
        for (size_t k = 0; k < plan.nt && !specs[i]; k++)
            if (!strcmp(plan.name[k], t->name))
                specs[i] = &fl.s[plan.choice[k]];
        if (!specs[i]) {
            rc = vqs_seterr(VQS_EINVAL, "tensor '%s' is not a weight matrix of the model, so the "
                            "plan has no format for it (--skip it)", t->name);
            goto done;
        }
    }
    /* a kept tensor named like a part of a quantized one ("W.x" beside W)
     * would make the file ambiguous, and the reader refuses it */
    for (size_t i = 0; !a->dequantize && i < nt; i++) {
        const char *n = vqs_st_tensor_at(st, i)->name, *dot = strrchr(n, '.');
        for (size_t j = 0; !specs[i] && dot && j < nt; j++) {
            const char *qn = vqs_st_tensor_at(st, j)->name;
            if (specs[j] && strlen(qn) == (size_t)(dot - n) && !strncmp(qn, n, (size_t)(dot - n))) {
                rc = vqs_seterr(VQS_EINVAL, "tensor '%s' is kept as it is beside quantized '%s', "
                                "whose parts are named '%s.<part>': --skip '%s' too, or quantize "
                                "both", n, qn, qn, qn);
                goto done;
            }
        }
    }
    vqs_wq_opts wo = {.nthreads = (int)a->threads};
    size_t nq = 0, qweights = 0, qbytes = 0, before = 0, after = 0;
    printf("%-40s %-12s %-12s %8s %12s %12s\n", "tensor", "shape", "format", "bits/w", "bytes",
           "-> bytes");
    for (size_t i = 0; i < nt; i++) {
        const vqs_st_tensor *t = vqs_st_tensor_at(st, i);
        char shp[64];
        shape_str(shp, sizeof shp, t->ndim, t->shape);
        before += (size_t)t->nbytes;
        const vqs_wq_spec *spec = specs[i];
        if (!spec) {
            if ((rc = vqs_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data,
                                        (size_t)t->nbytes)))
                goto done;
            after += (size_t)t->nbytes;
            printf("%-40s %-12s %-12s %8.2f %12llu %12llu\n", t->name, shp, "(kept)",
                   8.0 * (double)vqs_st_dtype_size(t->dtype), (unsigned long long)t->nbytes,
                   (unsigned long long)t->nbytes);
            continue;
        }
        size_t rows = t->ndim >= 2 ? (size_t)(t->numel / t->shape[t->ndim - 1]) : 1;
        size_t cols = (size_t)t->shape[t->ndim - 1];
        vqs_wq_tensor q;
        if ((rc = vqs_st_read_f32(st, t, x, 0)))
            goto done;
        rc = vqs_wq_encode(spec, x, rows, cols, &wo, &q);
        if (rc) {
            char d[256];
            snprintf(d, sizeof d, "%s", vqs_errdetail());
            vqs_wq_tensor_free(&q);
            rc = vqs_seterr(rc, "tensor '%s': %s", t->name, d);
            goto done;
        }
        size_t qb = vqs_wq_nbytes(&q), wb = 0;
        char fmt[96];
        vqs_wq_spec_name(spec, fmt, sizeof fmt);
        if (a->dequantize) {
            rc = vqs_wq_decode(&q, y, &wo);
            vqs_st_dtype od = t->dtype == VQS_ST_F16 || t->dtype == VQS_ST_BF16 ? t->dtype : VQS_ST_F32;
            void *b = rc ? NULL : to_dtype(y, rows * cols, od, &wb);
            if (!rc && !b)
                rc = vqs_seterr(VQS_ENOMEM, "tensor '%s'", t->name);
            if (!rc)
                rc = vqs_st_writer_add(w, t->name, od, t->ndim, t->shape, b, wb);
            free(b);
        } else {
            rc = vqs_wfile_add(w, t->name, t->dtype, t->ndim, t->shape, &q);
            wb = qb;
        }
        vqs_wq_tensor_free(&q);
        if (rc)
            goto done;
        nq++;
        qweights += rows * cols;
        qbytes += qb;
        after += wb;
        printf("%-40s %-12s %-12s %8.3f %12llu %12zu\n", t->name, shp, fmt,
               8.0 * (double)qb / (double)(rows * cols), (unsigned long long)t->nbytes, wb);
    }
    if ((rc = vqs_st_writer_save(w, out)))
        goto done;
    printf("quantized %zu of %zu tensors, %zu weights: %.3f bits/weight (scales included)\n", nq, nt,
           qweights, qweights ? 8.0 * (double)qbytes / (double)qweights : 0.0);
    printf("all tensors: %zu -> %zu bytes (%.2fx)%s\n", before, after,
           after ? (double)before / (double)after : 0.0,
           a->dequantize ? ", dequantized in the input's dtype" : "");
    fprintf(stderr, "vqs %s: wrote %s\n", a->cmd, out);
done:
    plan_result_free(&plan);
    vqs_st_writer_free(w);
    vqs_st_close(st);
    free(out);
    free(x);
    free(y);
    free(specs);
    return rc;
}

/* ---- report --------------------------------------------------------------- */

typedef struct sums {
    double sw2, se2, maxe;
    size_t n, bytes;
} sums;

static double sqnr_db(const sums *s) { return s->se2 > 0 ? 10 * log10(s->sw2 / s->se2) : INFINITY; }
static double rel_fro(const sums *s) { return s->sw2 > 0 ? sqrt(s->se2 / s->sw2) : 0; }

static int cmd_report(wargs *a)
{
    flist fl;
    int rc;
    if (!a->formats)
        return vqs_seterr(VQS_EUSAGE, "--format is required");
    if ((rc = parse_formats(a->formats, a->seed, &fl)))
        return rc;
    vqs_st_file *st = NULL;
    float *x = NULL, *y = NULL;
    json_t *doc = json_object(), *rows = json_array(), *totals = json_array();
    sums tot[MAXF];
    memset(tot, 0, sizeof tot);
    size_t tot_out = 0, tot_n = 0;
    if (!doc || !rows || !totals) {
        rc = vqs_seterr(VQS_ENOMEM, "report");
        goto done;
    }
    if ((rc = vqs_st_open(a->in, &st)))
        goto done;
    if (vqs_st_meta_get(st, VQS_WFILE_KEY)) {
        rc = vqs_seterr(VQS_EINVAL, "%s is a quantized checkpoint; report measures an original",
                        a->in);
        goto done;
    }
    size_t nt = vqs_st_count(st), maxn = 0, nsel = 0;
    for (size_t i = 0; i < nt; i++)
        if (vqs_st_tensor_at(st, i)->numel > maxn)
            maxn = vqs_st_tensor_at(st, i)->numel;
    x = malloc(maxn * sizeof *x + 1);
    y = malloc(maxn * sizeof *y + 1);
    if (!x || !y) {
        rc = vqs_seterr(VQS_ENOMEM, "%zu floats", maxn);
        goto done;
    }
    vqs_wq_opts wo = {.nthreads = (int)a->threads};
    printf("%-40s %-10s %-12s %8s %9s %10s %10s %8s %9s\n", "tensor", "shape", "format", "bits/w",
           "SQNR dB", "rel.Frob", "max|err|", "kurt", ">6sigma");
    for (size_t i = 0; i < nt; i++) {
        const vqs_st_tensor *t = vqs_st_tensor_at(st, i);
        if (!selected(a, t->name, t->ndim, is_float(t->dtype)) || !t->numel)
            continue;
        nsel++;
        size_t n = (size_t)t->numel, cols = (size_t)t->shape[t->ndim - 1], r = n / cols;
        if ((rc = vqs_st_read_f32(st, t, x, 0)))
            goto done;
        /* the tensor's own statistics */
        double mean = 0, m2 = 0, m4 = 0, sw2 = 0;
        for (size_t j = 0; j < n; j++)
            mean += x[j], sw2 += (double)x[j] * x[j];
        mean /= (double)n;
        for (size_t j = 0; j < n; j++) {
            double d = x[j] - mean, d2 = d * d;
            m2 += d2;
            m4 += d2 * d2;
        }
        m2 /= (double)n;
        m4 /= (double)n;
        double kurt = m2 > 0 ? m4 / (m2 * m2) : 0, sd = sqrt(m2);
        size_t outl = 0;
        for (size_t j = 0; j < n; j++)
            outl += fabs(x[j]) > 6 * sd;
        tot_out += outl;
        tot_n += n;
        char shp[64];
        shape_str(shp, sizeof shp, t->ndim, t->shape);
        for (size_t f = 0; f < fl.n; f++) {
            vqs_wq_tensor q;
            rc = vqs_wq_encode(&fl.s[f], x, r, cols, &wo, &q);
            if (!rc)
                rc = vqs_wq_decode(&q, y, &wo);
            size_t qb = vqs_wq_nbytes(&q);
            vqs_wq_tensor_free(&q);
            if (rc) {
                char d[256];
                snprintf(d, sizeof d, "%s", vqs_errdetail());
                rc = vqs_seterr(rc, "tensor '%s' in %s: %s", t->name, fl.name[f], d);
                goto done;
            }
            sums s = {.sw2 = sw2, .n = n, .bytes = qb};
            for (size_t j = 0; j < n; j++) {
                double e = (double)x[j] - y[j];
                s.se2 += e * e;
                if (fabs(e) > s.maxe)
                    s.maxe = fabs(e);
            }
            double bits = 8.0 * (double)qb / (double)n;
            tot[f].sw2 += s.sw2;
            tot[f].se2 += s.se2;
            tot[f].n += n;
            tot[f].bytes += qb;
            if (s.maxe > tot[f].maxe)
                tot[f].maxe = s.maxe;
            json_t *row = json_pack("{s:s,s:s,s:I,s:I,s:o,s:o,s:o,s:o,s:o,s:o}", "tensor", t->name,
                                    "format", fl.name[f], "rows", (json_int_t)r, "cols",
                                    (json_int_t)cols, "bits_per_weight", jnum(bits), "sqnr_db",
                                    jnum(sqnr_db(&s)), "rel_frobenius", jnum(rel_fro(&s)),
                                    "max_abs_error", jnum(s.maxe), "kurtosis", jnum(kurt),
                                    "outlier_share", jnum((double)outl / (double)n));
            if (!row || json_array_append_new(rows, row)) {
                rc = vqs_seterr(VQS_ENOMEM, "report");
                goto done;
            }
            printf("%-40s %-10s %-12s %8.3f %9.2f %10.3e %10.3e %8.2f %9.2e\n", t->name, shp,
                   fl.name[f], bits, sqnr_db(&s), rel_fro(&s), s.maxe, kurt,
                   (double)outl / (double)n);
        }
    }
    if (!nsel) {
        rc = vqs_seterr(VQS_EEMPTY, "%s: no tensor to measure (none 2-D, or all skipped)", a->in);
        goto done;
    }
    printf("\ntotals over %zu tensors, %zu weights (>6sigma: %.2e of them)\n", nsel, tot_n,
           (double)tot_out / (double)tot_n);
    printf("%-12s %8s %9s %10s %10s\n", "format", "bits/w", "SQNR dB", "rel.Frob", "max|err|");
    for (size_t f = 0; f < fl.n; f++) {
        double bits = 8.0 * (double)tot[f].bytes / (double)tot[f].n;
        printf("%-12s %8.3f %9.2f %10.3e %10.3e\n", fl.name[f], bits, sqnr_db(&tot[f]),
               rel_fro(&tot[f]), tot[f].maxe);
        json_t *o = json_pack("{s:s,s:I,s:I,s:o,s:o,s:o,s:o,s:o}", "format", fl.name[f], "tensors",
                              (json_int_t)nsel, "weights", (json_int_t)tot[f].n, "bits_per_weight",
                              jnum(bits), "sqnr_db", jnum(sqnr_db(&tot[f])), "rel_frobenius",
                              jnum(rel_fro(&tot[f])), "max_abs_error", jnum(tot[f].maxe),
                              "outlier_share", jnum((double)tot_out / (double)tot_n));
        if (!o || json_array_append_new(totals, o)) {
            rc = vqs_seterr(VQS_ENOMEM, "report");
            goto done;
        }
    }
    if (json_object_set_new(doc, "input", json_string(a->in)) ||
        json_object_set(doc, "rows", rows) || json_object_set(doc, "totals", totals)) {
        rc = vqs_seterr(VQS_ENOMEM, "report");
        goto done;
    }
    rc = write_outputs(a, doc, rows);
done:
    json_decref(doc);
    json_decref(rows);
    json_decref(totals);
    vqs_st_close(st);
    free(x);
    free(y);
    return rc;
}

/* ---- eval and plan: the model and its sequences ---------------------------- */

typedef struct evalctx {
    vqs_llama *ref;
    int *tokens; /* nseq x len */
    int nseq, len;
    float *buf;  /* the largest tensor */
    size_t *idx, nidx, nweights;
} evalctx;

static void evalctx_free(evalctx *e)
{
    vqs_llama_free(e->ref);
    free(e->tokens);
    free(e->buf);
    free(e->idx);
    memset(e, 0, sizeof *e);
}

static int evalctx_open(const wargs *a, evalctx *e)
{
    memset(e, 0, sizeof *e);
    /* a quantized file as the reference would fail in the loader with a
     * less helpful "missing tensor" */
    vqs_st_file *st = NULL;
    if (vqs_st_open(a->in, &st) == 0) {
        int q = vqs_st_meta_get(st, VQS_WFILE_KEY) != NULL;
        vqs_st_close(st);
        if (q)
            return vqs_seterr(VQS_EINVAL, "%s is a quantized checkpoint: give the original as --in "
                              "(and this one to eval as --quantized)", a->in);
    }
    vqs_clearerr();
    int rc = vqs_llama_load(a->in, &e->ref);
    if (rc)
        return rc;
    const vqs_llama_config *c = vqs_llama_cfg(e->ref);
    size_t len = a->len;
    if (!a->len_given && len > (size_t)c->seq_len)
        len = (size_t)c->seq_len;
    if (len < 2 || len > (size_t)c->seq_len)
        return vqs_seterr(VQS_EUSAGE, "--len %zu: the model takes 2 to %d tokens", len, c->seq_len);
    if (a->nseq < 1 || a->nseq > 1000000)
        return vqs_seterr(VQS_EUSAGE, "--sequences %zu: 1 to 1000000", a->nseq);
    e->nseq = (int)a->nseq;
    e->len = (int)len;
    size_t maxn = 0;
    if ((rc = model_tensors(a, e->ref, &e->idx, &e->nidx, &e->nweights, &maxn)))
        return rc;
    e->buf = malloc(maxn * sizeof *e->buf + 1);
    e->tokens = malloc(a->nseq * len * sizeof *e->tokens);
    if (!e->buf || !e->tokens)
        return vqs_seterr(VQS_ENOMEM, "%zu sequences of %zu tokens", a->nseq, len);
    return vqs_llama_sample(e->ref, e->nseq, e->len, BOS, a->seed, e->tokens);
}

static json_t *quality_json(const char *variant, double bits, const vqs_llm_quality *q)
{
    return json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:I}", "variant", variant, "bits_per_weight",
                     jnum(bits), "kl_mean", jnum(q->kl_mean), "kl_p99", jnum(q->kl_p99), "kl_max",
                     jnum(q->kl_max), "top1", jnum(q->top1), "ce_ref", jnum(q->ce_ref), "ce",
                     jnum(q->ce), "positions", (json_int_t)q->positions);
}

static void quality_head(void)
{
    printf("%-24s %8s %11s %11s %8s %9s %9s\n", "variant", "bits/w", "KL mean", "KL p99", "top-1",
           "CE ref", "CE");
}

static void quality_line(const char *variant, double bits, const vqs_llm_quality *q)
{
    printf("%-24s %8.3f %11.4e %11.4e %8.4f %9.4f %9.4f\n", variant, bits, q->kl_mean, q->kl_p99,
           q->top1, q->ce_ref, q->ce);
}

/* A --quantized file's tensors into q; *bits over its quantized ones. */
static int load_variant(const wargs *a, const evalctx *e, const char *path, vqs_llama *q, double *bits)
{
    vqs_wfile *wf = NULL;
    int rc = vqs_wfile_open(path, &wf);
    if (rc)
        return rc;
    size_t qb = 0, qn = 0, nt = vqs_llama_ntensors(e->ref);
    for (size_t i = 0; !rc && i < nt; i++) {
        const float *w;
        size_t rows, cols;
        const char *name = vqs_llama_tensor(e->ref, i, &w, &rows, &cols);
        const vqs_wfile_tensor *t = vqs_wfile_find(wf, name);
        if (!t) {
            rc = vqs_seterr(VQS_ENOTFOUND, "%s: tensor '%s' of the model is missing", path, name);
            break;
        }
        if (t->rows * t->cols != rows * cols) {
            rc = vqs_seterr(VQS_ESHAPE, "%s: tensor '%s' has %zu x %zu values, the model %zu x %zu",
                            path, name, t->rows, t->cols, rows, cols);
            break;
        }
        if ((rc = vqs_wfile_read_f32(wf, t, (int)a->threads, e->buf)))
            break;
        rc = vqs_llama_set_weight(q, name, e->buf, rows * cols);
        if (t->quantized)
            qb += t->nbytes, qn += rows * cols;
    }
    *bits = qn ? 8.0 * (double)qb / (double)qn : 32;
    vqs_wfile_close(wf);
    return rc;
}

static int cmd_eval(wargs *a)
{
    flist fl = {0};
    int rc;
    if (!a->formats && !a->nquantized)
        return vqs_seterr(VQS_EUSAGE, "--format or --quantized is required");
    if (a->formats && (rc = parse_formats(a->formats, a->seed, &fl)))
        return rc;
    evalctx e = {0};
    vqs_llama *q = NULL;
    json_t *doc = json_object(), *rows = json_array();
    if (!doc || !rows) {
        rc = vqs_seterr(VQS_ENOMEM, "eval");
        goto done;
    }
    if ((rc = evalctx_open(a, &e)))
        goto done;
    printf("reference %s: %d sequences of %d tokens sampled with seed %zu; %zu tensors quantized "
           "(%zu weights)\n\n", a->in, e.nseq, e.len, a->seed, e.nidx, e.nweights);
    quality_head();
    for (size_t v = 0; v < fl.n + a->nquantized; v++) {
        if ((rc = vqs_llama_clone(e.ref, &q)))
            goto done;
        double bits = 0;
        const char *label;
        if (v < fl.n) {
            size_t qb = 0;
            for (size_t k = 0; !rc && k < e.nidx; k++) {
                size_t nb = 0;
                rc = quantize_into(q, e.ref, e.idx[k], &fl.s[v], (int)a->threads, e.buf, &nb);
                qb += nb;
            }
            bits = 8.0 * (double)qb / (double)e.nweights;
            label = fl.name[v];
        } else {
            label = a->quantized[v - fl.n];
            rc = load_variant(a, &e, label, q, &bits);
        }
        vqs_llm_quality ql;
        if (!rc)
            rc = vqs_llm_compare(e.ref, q, e.tokens, e.nseq, e.len, (int)a->threads, &ql);
        vqs_llama_free(q);
        q = NULL;
        if (rc)
            goto done;
        quality_line(label, bits, &ql);
        json_t *row = quality_json(label, bits, &ql);
        if (!row || json_array_append_new(rows, row)) {
            rc = vqs_seterr(VQS_ENOMEM, "eval");
            goto done;
        }
    }
    if (json_object_set_new(doc, "input", json_string(a->in)) ||
        json_object_set_new(doc, "sequences", json_integer(e.nseq)) ||
        json_object_set_new(doc, "len", json_integer(e.len)) ||
        json_object_set_new(doc, "seed", json_integer((json_int_t)a->seed)) ||
        json_object_set(doc, "rows", rows)) {
        rc = vqs_seterr(VQS_ENOMEM, "eval");
        goto done;
    }
    rc = write_outputs(a, doc, rows);
done:
    vqs_llama_free(q);
    evalctx_free(&e);
    json_decref(doc);
    json_decref(rows);
    return rc;
}

/* ---- plan ------------------------------------------------------------------ */

/* The model with tensor idx[k] in format choice[k] (choice NULL: all in c)
 * measured on every sequence. */
static int measure_model(const wargs *a, const evalctx *e, const flist *fl, const int *choice,
                         size_t c, vqs_llm_quality *ql, double *bits)
{
    vqs_llama *q = NULL;
    int rc = vqs_llama_clone(e->ref, &q);
    size_t qb = 0;
    for (size_t k = 0; !rc && k < e->nidx; k++) {
        size_t nb = 0;
        rc = quantize_into(q, e->ref, e->idx[k], &fl->s[choice ? (size_t)choice[k] : c],
                           (int)a->threads, e->buf, &nb);
        qb += nb;
    }
    if (!rc)
        rc = vqs_llm_compare(e->ref, q, e->tokens, e->nseq, e->len, (int)a->threads, ql);
    *bits = 8.0 * (double)qb / (double)e->nweights;
    vqs_llama_free(q);
    return rc;
}

static int run_plan(const wargs *a, const flist *fl, plan_result *res)
{
    evalctx e = {0};
    vqs_llama *q = NULL;
    uint64_t *bytes = NULL;
    double *kl = NULL;
    int *choice = NULL;
    json_t *doc = json_object(), *rows = json_array(), *singles = json_array();
    int rc = 0, tty = isatty(2);
    if (!doc || !rows || !singles) {
        rc = vqs_seterr(VQS_ENOMEM, "plan");
        goto done;
    }
    if ((rc = evalctx_open(a, &e)))
        goto done;
    int pseq = a->plan_seq < (size_t)e.nseq ? (int)a->plan_seq : e.nseq;
    size_t nt = e.nidx, nc = fl->n;
    bytes = calloc(nt * nc, sizeof *bytes);
    kl = calloc(nt * nc, sizeof *kl);
    choice = calloc(nt, sizeof *choice);
    res->name = calloc(nt, sizeof *res->name);
    res->choice = calloc(nt, sizeof *res->choice);
    if (!bytes || !kl || !choice || !res->name || !res->choice) {
        rc = vqs_seterr(VQS_ENOMEM, "plan: %zu tensors x %zu formats", nt, nc);
        goto done;
    }
    if ((rc = vqs_llama_clone(e.ref, &q)))
        goto done;
    /* damage of each format on each tensor alone */
    for (size_t k = 0; k < nt; k++) {
        const float *w;
        size_t r, c;
        const char *name = vqs_llama_tensor(e.ref, e.idx[k], &w, &r, &c);
        if (tty)
            fprintf(stderr, "\rvqs %s: measuring %zu/%zu %-40s", a->cmd, k + 1, nt, name);
        for (size_t f = 0; f < nc; f++) {
            size_t nb = 0;
            vqs_llm_quality ql;
            rc = quantize_into(q, e.ref, e.idx[k], &fl->s[f], (int)a->threads, e.buf, &nb);
            if (rc == VQS_ENONFINITE || rc == VQS_ESPEC || rc == VQS_EINVAL) {
                /* a format that cannot take this tensor (a codebook larger
                 * than its sub-vectors, say) is no choice for it */
                fprintf(stderr, "%svqs %s: %s: left out (%s)\n", tty ? "\n" : "", a->cmd, fl->name[f],
                        vqs_errdetail());
                kl[k * nc + f] = INFINITY;
                rc = restore(q, e.ref, e.idx[k]);
                if (rc)
                    goto done;
                continue;
            }
            if (!rc)
                rc = vqs_llm_compare(e.ref, q, e.tokens, pseq, e.len, (int)a->threads, &ql);
            if (rc)
                goto done;
            bytes[k * nc + f] = nb;
            kl[k * nc + f] = ql.kl_mean > 0 ? ql.kl_mean : 0;
        }
        if ((rc = restore(q, e.ref, e.idx[k])))
            goto done;
    }
    if (tty)
        fprintf(stderr, "\r%*s\r", 60 + (int)strlen(a->cmd), "");
    uint64_t budget = (uint64_t)floor(a->budget * (double)e.nweights / 8.0), pbytes = 0;
    double ploss = 0;
    if ((rc = vqs_wplan_solve(nt, nc, bytes, kl, budget, choice, &ploss, &pbytes))) {
        char d[256];
        snprintf(d, sizeof d, "%s", vqs_errdetail());
        rc = vqs_seterr(rc, "--budget-bits %g over %zu weights (%llu bytes): %s", a->budget,
                        e.nweights, (unsigned long long)budget, d);
        goto done;
    }
    printf("plan for %s: %zu tensors, %zu weights, budget %g bits/weight; damage = model KL with "
           "the tensor alone quantized (mean over %d sequences of %d tokens)\n\n", a->in, nt,
           e.nweights, a->budget, pseq, e.len);
    printf("%-36s %-8s %-12s %7s %10s  %s\n", "tensor", "shape", "format", "bits/w", "KL",
           "alternatives (format bits/w KL; * chosen)");
    for (size_t k = 0; k < nt; k++) {
        const float *w;
        size_t r, c;
        const char *name = vqs_llama_tensor(e.ref, e.idx[k], &w, &r, &c);
        if (!(res->name[k] = strdup(name))) {
            rc = vqs_seterr(VQS_ENOMEM, "plan");
            goto done;
        }
        res->nt = k + 1;
        res->choice[k] = choice[k];
        size_t ch = (size_t)choice[k];
        char shp[32];
        snprintf(shp, sizeof shp, "%zux%zu", r, c);
        double n = (double)(r * c);
        printf("%-36s %-8s %-12s %7.3f %10.3e ", name, shp, fl->name[ch],
               8.0 * (double)bytes[k * nc + ch] / n, kl[k * nc + ch]);
        for (size_t f = 0; f < nc; f++) {
            double l = kl[k * nc + f], b = 8.0 * (double)bytes[k * nc + f] / n;
            if (isinf(l))
                printf(" %s -", fl->name[f]);
            else
                printf(" %s%s %.2f %.1e", fl->name[f], f == ch ? "*" : "", b, l);
            json_t *row = json_pack("{s:s,s:I,s:I,s:s,s:o,s:o,s:b}", "tensor", name, "rows",
                                    (json_int_t)r, "cols", (json_int_t)c, "format", fl->name[f],
                                    "bits_per_weight", isinf(l) ? json_null() : jnum(b), "kl",
                                    jnum(l), "chosen", f == ch);
            if (!row || json_array_append_new(rows, row)) {
                rc = vqs_seterr(VQS_ENOMEM, "plan");
                goto done;
            }
        }
        printf("\n");
    }
    double pbits = 8.0 * (double)pbytes / (double)e.nweights;
    printf("\nplan: %.4f bits/weight (budget %g), sum of the per-tensor KLs %.4e\n", pbits, a->budget,
           ploss);
    printf("why: of all assignments of one format per tensor within the budget, this one has the\n"
           "smallest sum of the measured KLs (an exact knapsack over the tensors' bytes).\n\n");
    /* end to end: the plan and every single format within the budget */
    printf("end to end, %d sequences of %d tokens:\n", e.nseq, e.len);
    quality_head();
    vqs_llm_quality pq, best = {0};
    double bits, best_bits = 0;
    if ((rc = measure_model(a, &e, fl, choice, 0, &pq, &bits)))
        goto done;
    quality_line("plan", bits, &pq);
    json_t *pj = quality_json("plan", bits, &pq);
    long bestf = -1;
    for (size_t f = 0; f < nc; f++) {
        uint64_t tb = 0;
        int usable = 1;
        for (size_t k = 0; k < nt; k++) {
            tb += bytes[k * nc + f];
            usable &= !isinf(kl[k * nc + f]);
        }
        double fb = 8.0 * (double)tb / (double)e.nweights;
        if (!usable || tb > budget) {
            printf("%-24s %8.3f %s\n", fl->name[f], fb, usable ? "  over the budget" : "  not usable");
            continue;
        }
        vqs_llm_quality sq;
        if ((rc = measure_model(a, &e, fl, NULL, f, &sq, &bits))) {
            json_decref(pj);
            goto done;
        }
        quality_line(fl->name[f], bits, &sq);
        json_array_append_new(singles, quality_json(fl->name[f], bits, &sq));
        if (bestf < 0 || sq.kl_mean < best.kl_mean)
            bestf = (long)f, best = sq, best_bits = bits;
    }
    if (bestf < 0)
        printf("\nno single candidate fits %g bits/weight: the plan mixes formats to get there "
               "(KL %.4e)\n", a->budget, pq.kl_mean);
    else
        printf("\nplan: KL %.4e at %.3f bits/weight; best single format within the budget: %s, KL "
               "%.4e at %.3f bits/weight (%s)\n", pq.kl_mean, pbits, fl->name[bestf], best.kl_mean,
               best_bits, pq.kl_mean <= best.kl_mean ? "the plan is better" : "the plan is worse");
    if (json_object_set_new(doc, "input", json_string(a->in)) ||
        json_object_set_new(doc, "budget_bits", json_real(a->budget)) ||
        json_object_set_new(doc, "plan_bits_per_weight", json_real(pbits)) ||
        json_object_set_new(doc, "plan_kl_sum", jnum(ploss)) ||
        json_object_set_new(doc, "plan", pj ? pj : json_null()) ||
        json_object_set_new(doc, "best_single", bestf < 0 ? json_null() : json_string(fl->name[bestf])) ||
        json_object_set(doc, "singles", singles) || json_object_set(doc, "tensors", rows)) {
        rc = vqs_seterr(VQS_ENOMEM, "plan");
        goto done;
    }
    rc = write_outputs(a, doc, rows);
done:
    if (rc)
        plan_result_free(res);
    vqs_llama_free(q);
    evalctx_free(&e);
    free(bytes);
    free(kl);
    free(choice);
    json_decref(doc);
    json_decref(rows);
    json_decref(singles);
    return rc;
}

static int cmd_plan(wargs *a)
{
    if (!a->has_budget)
        return vqs_seterr(VQS_EUSAGE, "--budget-bits is required");
    flist fl;
    int rc;
    if (a->formats) {
        if ((rc = parse_formats(a->formats, a->seed, &fl)))
            return rc;
    } else {
        block_formats(a->seed, &fl);
    }
    plan_result p = {0};
    rc = run_plan(a, &fl, &p);
    plan_result_free(&p);
    return rc;
}

/* ---- the command ------------------------------------------------------------ */

int vqs_cmd_weights(int argc, char **argv)
{
    wargs a = {.nseq = 16, .len = 128, .plan_seq = 4};
    int c, rc = 0;
    optind = 1;
    while ((c = vqs_cli_getopt(argc, argv, &vqs_weights_help)) != -1) {
        switch (c) {
        case 'i': a.in = optarg; break;
        case 'f': a.formats = optarg; break;
        case 'o': a.out = optarg; break;
        case 'x': a.skip = optarg; break;
        case 'a': a.all = 1; break;
        case 'd': a.dequantize = 1; break;
        case 'b': rc = parse_budget(optarg, &a.budget), a.has_budget = 1; break;
        case 'q':
            if (a.nquantized == MAXQ)
                rc = vqs_seterr(VQS_EUSAGE, "--quantized: at most %d files", MAXQ);
            else
                a.quantized[a.nquantized++] = optarg;
            break;
        case 'n': rc = vqs_cli_parse_positive(optarg, &a.nseq, "--sequences"); break;
        case 'l': rc = vqs_cli_parse_positive(optarg, &a.len, "--len"), a.len_given = 1; break;
        case O_PLANSEQ: rc = vqs_cli_parse_positive(optarg, &a.plan_seq, "--plan-sequences"); break;
        case 'S': rc = vqs_cli_parse_size(optarg, &a.seed, "--seed"); break;
        case 't': rc = vqs_cli_parse_size(optarg, &a.threads, "--threads"); break;
        case O_CSV: a.csv = optarg; break;
        case O_JSON: a.json = optarg; break;
        case 'h': vqs_cli_help_print(stdout, &vqs_weights_help); return 0;
        default: return vqs_cli_bad_option(&vqs_weights_help);
        }
        if (rc)
            return vqs_cli_fail("weights", rc);
    }
    if (optind >= argc) {
        vqs_cli_usage(stderr, &vqs_weights_help);
        return vqs_cli_fail("weights", vqs_seterr(VQS_EUSAGE, "a subcommand is required: quantize, "
                                                  "report, eval or plan"));
    }
    const char *sub = argv[optind];
    int (*run)(wargs *) = !strcmp(sub, "quantize") ? cmd_quantize
                          : !strcmp(sub, "report") ? cmd_report
                          : !strcmp(sub, "eval")   ? cmd_eval
                          : !strcmp(sub, "plan")   ? cmd_plan
                                                   : NULL;
    if (!run) {
        vqs_cli_usage(stderr, &vqs_weights_help);
        return vqs_cli_fail("weights", vqs_seterr(VQS_EUSAGE, "unknown subcommand '%s' (quantize, "
                                                  "report, eval or plan)", sub));
    }
    char cmd[32];
    snprintf(cmd, sizeof cmd, "weights %s", sub);
    a.cmd = cmd;
    if (optind + 1 < argc)
        return vqs_cli_fail(cmd, vqs_seterr(VQS_EUSAGE, "unexpected argument '%s'", argv[optind + 1]));
    if (!a.in) {
        vqs_cli_usage(stderr, &vqs_weights_help);
        return vqs_cli_fail(cmd, vqs_seterr(VQS_EUSAGE, "--in is required"));
    }
    if (a.dequantize && run != cmd_quantize)
        return vqs_cli_fail(cmd, vqs_seterr(VQS_EUSAGE, "--dequantize goes with quantize"));
    if (a.nquantized && run != cmd_eval)
        return vqs_cli_fail(cmd, vqs_seterr(VQS_EUSAGE, "--quantized goes with eval"));
    if (a.has_budget && run != cmd_quantize && run != cmd_plan)
        return vqs_cli_fail(cmd, vqs_seterr(VQS_EUSAGE, "--budget-bits goes with quantize or plan"));
    if (a.out && run != cmd_quantize)
        return vqs_cli_fail(cmd, vqs_seterr(VQS_EUSAGE, "--out goes with quantize (report and eval "
                                            "take --csv and --json)"));
    if (a.skip) {
        int e = regcomp(&a.re, a.skip, REG_EXTENDED | REG_NOSUB);
        if (e) {
            char m[128];
            regerror(e, &a.re, m, sizeof m);
            return vqs_cli_fail(cmd, vqs_seterr(VQS_EUSAGE, "--skip '%s': %s", a.skip, m));
        }
        a.has_re = 1;
    }
    rc = run(&a);
    if (a.has_re)
        regfree(&a.re);
    return rc ? vqs_cli_fail(cmd, rc) : 0;
}
