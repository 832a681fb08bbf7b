/*
 * wfile.c: quantized checkpoints, format weights-1 (vqs_wfile.h says what
 * is stored where).
 *
 * Design decisions:
 * - The reader validates a whole file at open (records, parts, dtypes,
 *   shapes) and leaves only the format's own checks (vqs_wq_decode's
 *   wq_need_part, run before any byte is decoded) to read time, so a corrupt
 *   file fails before a long run starts, without decoding every tensor.
 * - Parts are borrowed from the mapping. safetensors promises no alignment
 *   past the data buffer's start, and the decoders read u16/f32 parts as
 *   typed arrays, so a part whose address is not a multiple of its element
 *   size is copied instead (our own writer's files rarely need it: parts of
 *   odd byte counts are u8).
 * - Records are looked up by name in __metadata__: the claimed parts are
 *   found from the record (vqs_st_find), and every other tensor whose name
 *   minus its last ".x" has a record is refused, so a stray or renamed part
 *   cannot pass as a raw tensor.
 */
#define _GNU_SOURCE
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vqs_common.h"
#include "vqs_wfile.h"

vqs_st_dtype vqs_wfile_part_dtype(vqs_wq_type t)
{
    switch (t) {
    case VQS_WQT_I8: return VQS_ST_I8;
    case VQS_WQT_U16: return VQS_ST_U16;
    case VQS_WQT_I32: return VQS_ST_I32;
    case VQS_WQT_F16: return VQS_ST_F16;
    case VQS_WQT_BF16: return VQS_ST_BF16;
    case VQS_WQT_F32: return VQS_ST_F32;
    case VQS_WQT_E4M3: return VQS_ST_F8_E4M3;
    case VQS_WQT_U8: case VQS_WQT_E8M0: default: return VQS_ST_U8;
    }
}

#define NTYPES ((int)VQS_WQT_E8M0 + 1)

static int type_parse(const char *s, vqs_wq_type *out)
{
    for (int i = 0; i < NTYPES; i++)
        if (!strcmp(vqs_wq_type_name((vqs_wq_type)i), s)) {
            *out = (vqs_wq_type)i;
            return 0;
        }
    return -1;
}

/* rows x cols of a shape: the product of the leading dimensions, the last
 * one; 0 on overflow past SIZE_MAX elements */
static int shape_rc(int ndim, const uint64_t *shape, size_t *rows, size_t *cols)
{
    uint64_t r = 1, c = ndim > 0 ? shape[ndim - 1] : 1;
    for (int i = 0; i + 1 < ndim; i++) {
        if (shape[i] && r > UINT64_MAX / shape[i])
            return -1;
        r *= shape[i];
    }
    if (c && r > (uint64_t)SIZE_MAX / c)
        return -1;
    *rows = (size_t)r;
    *cols = (size_t)c;
    return 0;
}

/* ---- writing ------------------------------------------------------------ */

int vqs_wfile_begin(vqs_st_writer *w, const vqs_st_file *src, int quantized)
{
    int rc = 0;
    for (size_t i = 0; src && !rc && i < vqs_st_meta_count(src); i++) {
        const char *k, *v;
        vqs_st_meta_at(src, i, &k, &v);
        if (strncmp(k, "vqs.", 4))
            rc = vqs_st_writer_meta(w, k, v);
    }
    if (!rc && quantized)
        rc = vqs_st_writer_meta(w, VQS_WFILE_KEY, VQS_WFILE_VERSION);
    return rc;
}

static json_t *shape_json(int ndim, const uint64_t *shape)
{
    json_t *a = json_array();
    for (int i = 0; a && i < ndim; i++)
        if (json_array_append_new(a, json_integer((json_int_t)shape[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *record_json(const char *fmt, vqs_st_dtype dtype, int ndim, const uint64_t *shape,
                           const vqs_wq_tensor *t)
{
    json_t *r = json_object(), *parts = json_array();
    int bad = !r || !parts;
    bad = bad || json_object_set_new(r, "format", json_string(fmt));
    bad = bad || json_object_set_new(r, "dtype", json_string(vqs_st_dtype_name(dtype)));
    bad = bad || json_object_set_new(r, "shape", shape_json(ndim, shape));
    for (int i = 0; !bad && i < t->nparts; i++) {
        const vqs_wq_part *p = &t->part[i];
        json_t *o = json_object();
        bad = !o || json_object_set_new(o, "name", json_string(p->name)) ||
              json_object_set_new(o, "type", json_string(vqs_wq_type_name(p->type))) ||
              json_object_set_new(o, "shape", shape_json(p->ndim, p->shape)) ||
              json_array_append_new(parts, o);
    }
    if (bad || json_object_set_new(r, "parts", parts)) {
        json_decref(r);
        return NULL;
    }
    return r;
}

int vqs_wfile_add(vqs_st_writer *w, const char *name, vqs_st_dtype dtype, int ndim,
                  const uint64_t *shape, const vqs_wq_tensor *t)
{
    size_t rows, cols;
    if (ndim < 0 || ndim > VQS_ST_MAX_NDIM || shape_rc(ndim, shape, &rows, &cols) ||
        rows != t->rows || cols != t->cols)
        return vqs_seterr(VQS_ESHAPE, "tensor '%s': encoded as %zu x %zu, which is not its shape",
                          name, t->rows, t->cols);
    char fmt[96];
    vqs_wq_spec_name(&t->spec, fmt, sizeof fmt);
    size_t nl = strlen(name);
    char *key = malloc(nl + VQS_WQ_PART_NAME + sizeof VQS_WFILE_RECORD);
    json_t *rec = record_json(fmt, dtype, ndim, shape, t);
    char *js = rec ? json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    int rc = 0;
    if (!key || !js) {
        rc = vqs_seterr(VQS_ENOMEM, "tensor '%s': its record", name);
        goto done;
    }
    for (int i = 0; !rc && i < t->nparts; i++) {
        const vqs_wq_part *p = &t->part[i];
        sprintf(key, "%s.%s", name, p->name);
        rc = vqs_st_writer_add(w, key, vqs_wfile_part_dtype(p->type), p->ndim, p->shape, p->data,
                               p->nbytes);
        if (rc) {
            char d[256];
            snprintf(d, sizeof d, "%s", vqs_errdetail());
            rc = vqs_seterr(rc, "tensor '%s': part '%s': %s", name, p->name, d);
        }
    }
    if (!rc) {
        sprintf(key, "%s%s", VQS_WFILE_RECORD, name);
        rc = vqs_st_writer_meta(w, key, js);
    }
done:
    free(js);
    json_decref(rec);
    free(key);
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

struct vqs_wfile {
    vqs_st_file *st;
    int quantized;
    size_t n;
    vqs_wfile_tensor *t;
    char **names; /* owned names of the quantized tensors (n of them, NULL for raw ones) */
};

int vqs_wfile_is_quantized(const vqs_wfile *f) { return f->quantized; }
const vqs_st_file *vqs_wfile_st(const vqs_wfile *f) { return f->st; }
size_t vqs_wfile_count(const vqs_wfile *f) { return f->n; }
const vqs_wfile_tensor *vqs_wfile_at(const vqs_wfile *f, size_t i) { return i < f->n ? &f->t[i] : NULL; }

const vqs_wfile_tensor *vqs_wfile_find(const vqs_wfile *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name))
            return &f->t[i];
    return NULL;
}

void vqs_wfile_close(vqs_wfile *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        vqs_wq_tensor_free(&f->t[i].q);
        free(f->names[i]);
    }
    free(f->t);
    free(f->names);
    vqs_st_close(f->st);
    free(f);
}

/* A JSON shape into ndim/shape; -1 if it is not an array of at most max
 * non-negative integers. */
static int shape_from(json_t *a, int max, int *ndim, uint64_t *shape)
{
    if (!json_is_array(a) || json_array_size(a) > (size_t)max)
        return -1;
    *ndim = (int)json_array_size(a);
    for (int i = 0; i < *ndim; i++) {
        json_t *v = json_array_get(a, (size_t)i);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return -1;
        shape[i] = (uint64_t)json_integer_value(v);
    }
    return 0;
}

static const char *str_field(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The record of tensor name (value js) into t, its parts borrowed from f. */
static int load_record(vqs_wfile *f, const char *name, const char *js, vqs_wfile_tensor *t)
{
    const char *path = vqs_st_path(f->st);
    json_error_t je;
    json_t *r = json_loads(js, 0, &je);
    int rc = 0;
    char *pn = NULL;
    if (!json_is_object(r)) {
        rc = vqs_seterr(VQS_ECORRUPT, "%s: tensor '%s': record is not a JSON object (%s)", path,
                        name, r ? "another JSON value" : je.text);
        goto done;
    }
    const char *fmt = str_field(r, "format"), *dt = str_field(r, "dtype");
    json_t *parts = json_object_get(r, "parts");
    if (!fmt || !dt || !json_is_array(parts) ||
        shape_from(json_object_get(r, "shape"), VQS_ST_MAX_NDIM, &t->ndim, t->shape)) {
        rc = vqs_seterr(VQS_ECORRUPT, "%s: tensor '%s': record lacks or mistypes a field (format, "
                        "dtype, shape, parts): %.200s", path, name, js);
        goto done;
    }
    if (vqs_wq_spec_parse(fmt, &t->q.spec)) {
        rc = vqs_seterr(VQS_ECORRUPT, "%s: tensor '%s': record: unknown format '%s'", path, name, fmt);
        goto done;
    }
    if (vqs_st_dtype_parse(dt, &t->dtype)) {
        rc = vqs_seterr(VQS_ECORRUPT, "%s: tensor '%s': record: unknown dtype '%s'", path, name, dt);
        goto done;
    }
    if (shape_rc(t->ndim, t->shape, &t->rows, &t->cols) || !t->rows || !t->cols) {
        rc = vqs_seterr(VQS_ESHAPE, "%s: tensor '%s': record: shape is empty or too large", path, name);
        goto done;
    }
    t->q.rows = t->rows;
    t->q.cols = t->cols;
    size_t np = json_array_size(parts);
    if (np == 0 || np > VQS_WQ_MAX_PARTS) {
        rc = vqs_seterr(VQS_ECORRUPT, "%s: tensor '%s': record has %zu parts (1 to %d)", path, name,
                        np, VQS_WQ_MAX_PARTS);
        goto done;
    }
    pn = malloc(strlen(name) + VQS_WQ_PART_NAME + 2);
    if (!pn) {
        rc = vqs_seterr(VQS_ENOMEM, "%s: tensor '%s'", path, name);
        goto done;
    }
    for (size_t i = 0; i < np; i++) {
        json_t *p = json_array_get(parts, i);
        const char *nm = str_field(p, "name"), *ty = str_field(p, "type");
        int nd;
        uint64_t sh[2] = {0, 1};
        vqs_wq_type type;
        if (!json_is_object(p) || !nm || !ty || shape_from(json_object_get(p, "shape"), 2, &nd, sh) ||
            nd < 1 || !*nm || strlen(nm) >= VQS_WQ_PART_NAME || strchr(nm, '.')) {
            rc = vqs_seterr(VQS_ECORRUPT, "%s: tensor '%s': record: part %zu lacks or mistypes a "
                            "field (name, type, shape of 1 or 2 dimensions)", path, name, i);
            goto done;
        }
        if (type_parse(ty, &type)) {
            rc = vqs_seterr(VQS_ECORRUPT, "%s: tensor '%s': part '%s': unknown type '%s'", path,
                            name, nm, ty);
            goto done;
        }
        sprintf(pn, "%s.%s", name, nm);
        const vqs_st_tensor *s = vqs_st_find(f->st, pn);
        if (!s) {
            rc = vqs_seterr(VQS_ECORRUPT, "%s: tensor '%s': part '%s' (tensor '%s') is missing from "
                            "the file", path, name, nm, pn);
            goto done;
        }
        vqs_st_dtype want = vqs_wfile_part_dtype(type);
        if (s->dtype != want) {
            rc = vqs_seterr(VQS_ESHAPE, "%s: tensor '%s': part '%s' is stored as %s, its record says "
                            "%s (%s)", path, name, nm, vqs_st_dtype_name(s->dtype), ty,
                            vqs_st_dtype_name(want));
            goto done;
        }
        if (s->ndim != nd || s->shape[0] != sh[0] || (nd == 2 && s->shape[1] != sh[1])) {
            rc = vqs_seterr(VQS_ESHAPE, "%s: tensor '%s': part '%s' is stored with %d dimensions "
                            "[%llu%s%llu], its record says [%llu, %llu]", path, name, nm, s->ndim,
                            s->ndim ? (unsigned long long)s->shape[0] : 0ull, s->ndim > 1 ? ", " : " ",
                            s->ndim > 1 ? (unsigned long long)s->shape[1] : 0ull,
                            (unsigned long long)sh[0], (unsigned long long)sh[1]);
            goto done;
        }
        size_t es = vqs_wq_type_size(type);
        if ((uintptr_t)s->data % es == 0) {
            rc = vqs_wq_part_borrow(&t->q, nm, type, nd, sh, s->data, (size_t)s->nbytes);
        } else {
            vqs_wq_part *q = NULL;
            rc = vqs_wq_part_add(&t->q, nm, type, nd, sh, &q);
            if (!rc && q->nbytes != s->nbytes)
                rc = vqs_seterr(VQS_ESHAPE, "%zu bytes, its shape needs %zu", (size_t)s->nbytes,
                                q->nbytes);
            if (!rc)
                memcpy(q->data, s->data, q->nbytes);
        }
        if (rc) {
            char d[256];
            snprintf(d, sizeof d, "%s", vqs_errdetail());
            rc = vqs_seterr(rc, "%s: tensor '%s': part '%s': %s", path, name, nm, d);
            goto done;
        }
        t->nbytes += (size_t)s->nbytes;
    }
    t->quantized = 1;
done:
    free(pn);
    json_decref(r);
    return rc;
}

/* The quantized tensor whose part tensor name is, or NULL. */
static vqs_wfile_tensor *owner_of(vqs_wfile *f, const char *name, size_t nq)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return NULL;
    size_t l = (size_t)(dot - name);
    for (size_t i = 0; i < nq; i++)
        if (strlen(f->t[i].name) == l && !strncmp(f->t[i].name, name, l))
            return &f->t[i];
    return NULL;
}

int vqs_wfile_open(const char *path, vqs_wfile **out)
{
    *out = NULL;
    vqs_wfile *f = calloc(1, sizeof *f);
    if (!f)
        return vqs_seterr(VQS_ENOMEM, "%s", path);
    int rc = vqs_st_open(path, &f->st);
    if (rc)
        goto fail;
    const char *ver = vqs_st_meta_get(f->st, VQS_WFILE_KEY);
    size_t nrec = 0, pl = strlen(VQS_WFILE_RECORD);
    for (size_t i = 0; i < vqs_st_meta_count(f->st); i++) {
        const char *k, *v;
        vqs_st_meta_at(f->st, i, &k, &v);
        nrec += !strncmp(k, VQS_WFILE_RECORD, pl);
    }
    if (ver && strcmp(ver, VQS_WFILE_VERSION)) {
        rc = vqs_seterr(VQS_EVERSION, "%s: %s is '%s'; this vqs reads '%s'", path, VQS_WFILE_KEY,
                        ver, VQS_WFILE_VERSION);
        goto fail;
    }
    if (!ver && nrec) {
        rc = vqs_seterr(VQS_ECORRUPT, "%s: %zu vqs.tensor records but no %s in __metadata__", path,
                        nrec, VQS_WFILE_KEY);
        goto fail;
    }
    f->quantized = ver != NULL;
    size_t cap = nrec + vqs_st_count(f->st);
    f->t = calloc(cap ? cap : 1, sizeof *f->t);
    f->names = calloc(cap ? cap : 1, sizeof *f->names);
    if (!f->t || !f->names) {
        rc = vqs_seterr(VQS_ENOMEM, "%s: %zu tensors", path, cap);
        goto fail;
    }
    /* the quantized tensors first, at [0, nrec); put in file order below */
    for (size_t i = 0; i < vqs_st_meta_count(f->st); i++) {
        const char *k, *v;
        vqs_st_meta_at(f->st, i, &k, &v);
        if (strncmp(k, VQS_WFILE_RECORD, pl))
            continue;
        vqs_wfile_tensor *t = &f->t[f->n];
        if (!(f->names[f->n] = strdup(k + pl))) {
            rc = vqs_seterr(VQS_ENOMEM, "%s", path);
            goto fail;
        }
        t->name = f->names[f->n++];
        if (!*t->name) {
            rc = vqs_seterr(VQS_ECORRUPT, "%s: a record with an empty tensor name", path);
            goto fail;
        }
        if (vqs_st_find(f->st, t->name)) {
            rc = vqs_seterr(VQS_ECORRUPT, "%s: tensor '%s' is stored both quantized and as is", path,
                            t->name);
            goto fail;
        }
        if ((rc = load_record(f, t->name, v, t)))
            goto fail;
    }
    /* the raw tensors, and the file order: each quantized tensor where its
     * first part lies. Every tensor beside a quantized one must be a part
     * its record lists. */
    size_t nq = f->n, no = 0;
    size_t *order = malloc((cap ? cap : 1) * sizeof *order);
    char *placed = calloc(nq ? nq : 1, 1);
    if (!order || !placed) {
        free(order), free(placed);
        rc = vqs_seterr(VQS_ENOMEM, "%s", path);
        goto fail;
    }
    for (size_t i = 0; !rc && i < vqs_st_count(f->st); i++) {
        const vqs_st_tensor *s = vqs_st_tensor_at(f->st, i);
        vqs_wfile_tensor *o = owner_of(f, s->name, nq);
        if (o) {
            const char *pname = strrchr(s->name, '.') + 1;
            size_t j = (size_t)(o - f->t);
            if (!vqs_wq_part_get(&o->q, pname))
                rc = vqs_seterr(VQS_ECORRUPT, "%s: tensor '%s' lies beside quantized tensor '%s' "
                                "but part '%s' is not in its record", path, s->name, o->name, pname);
            else if (!placed[j])
                placed[j] = 1, order[no++] = j;
            continue;
        }
        vqs_wfile_tensor *t = &f->t[f->n];
        t->name = s->name;
        t->dtype = s->dtype;
        t->ndim = s->ndim;
        memcpy(t->shape, s->shape, sizeof t->shape);
        t->raw = s;
        t->nbytes = (size_t)s->nbytes;
        if (shape_rc(s->ndim, s->shape, &t->rows, &t->cols))
            rc = vqs_seterr(VQS_ESHAPE, "%s: tensor '%s': shape too large", path, s->name);
        order[no++] = f->n++;
    }
    free(placed);
    vqs_wfile_tensor *sorted = rc ? NULL : malloc((f->n ? f->n : 1) * sizeof *sorted);
    char **sn = sorted ? malloc((f->n ? f->n : 1) * sizeof *sn) : NULL;
    if (!rc && (!sorted || !sn))
        rc = vqs_seterr(VQS_ENOMEM, "%s", path);
    if (rc) {
        free(order), free(sorted), free(sn);
        goto fail;
    }
    assert(no == f->n); /* every record has at least one part, each found in the file */
    for (size_t i = 0; i < no; i++) {
        sorted[i] = f->t[order[i]];
        sn[i] = f->names[order[i]];
    }
    free(order);
    free(f->t);
    free(f->names);
    f->t = sorted;
    f->names = sn;
    *out = f;
    return 0;
fail:
    vqs_wfile_close(f);
    return rc;
}

int vqs_wfile_read_f32(const vqs_wfile *f, const vqs_wfile_tensor *t, int nthreads, float *out)
{
    int rc;
    if (t->quantized) {
        vqs_wq_opts o = {.nthreads = nthreads};
        rc = vqs_wq_decode(&t->q, out, &o);
    } else {
        rc = vqs_st_read_f32(f->st, t->raw, out, 0);
    }
    if (rc) {
        char d[384];
        snprintf(d, sizeof d, "%s", vqs_errdetail());
        /* the reader's messages already name file and tensor */
        if (t->quantized || !strstr(d, t->name))
            rc = vqs_seterr(rc, "%s: tensor '%s': %s", vqs_st_path(f->st), t->name, d);
    }
    return rc;
}
