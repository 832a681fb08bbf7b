/*
 * safetensors.c: the safetensors reader and writer (vqs_store_st.h).
 *
 * Design decisions:
 * - The file is memory-mapped read-only and every tensor is a view into the
 *   mapping. A 70B checkpoint is larger than RAM; `vqs weights` converts one
 *   tensor at a time, and the kernel pages the rest in and out. Rejected:
 *   reading the data buffer into memory at open.
 * - The header is parsed with Jansson (JSON_REJECT_DUPLICATES, so a repeated
 *   tensor name is refused, as the format requires) and the parsed tree is
 *   kept until close: tensor names and metadata strings point into it, so
 *   nothing is copied. Rejected: a hand-written JSON scanner (one more
 *   parser to fuzz, for no gain: Jansson is already linked and fuzzed).
 * - Validation is complete at open, in two passes. Per tensor, in header
 *   order: the entry is an object with exactly the fields dtype, shape and
 *   data_offsets, the dtype is known, the shape has at most VQS_ST_MAX_NDIM
 *   non-negative dimensions whose byte size fits 64 bits, the offsets are two
 *   non-negative integers, begin <= end <= the data buffer's length, and
 *   end - begin is the shape's byte size. Then over the tensors sorted by
 *   offsets: each begins where the previous one ended and the last ends at
 *   the end of the file. That is the reference implementation's rule
 *   (huggingface/safetensors `Metadata::validate` and
 *   `MetadataIncompleteBuffer`: "the byte buffer needs to be entirely
 *   indexed, and cannot contain holes", which keeps polyglot files out), so
 *   an overlap, a hole between tensors and trailing bytes are all refused
 *   (VQS_ECORRUPT). Empty tensors (a zero dimension) take no bytes and may
 *   sit at any offset of the tiling, as in the reference.
 * - The header must begin with '{' (the format says MUST) and may be padded
 *   with trailing spaces; the header length must be at least 2 (the
 *   shortest object) and at most VQS_ST_MAX_HEADER (the reference's 100 MB).
 * - Values are checked for NaN/Inf only when converted to float32: integer
 *   tensors have none, and a check at open would read all the data once
 *   more. A finite F64 beyond float32's range counts as non-finite (it would
 *   become Inf), reported as out of range.
 * - The writer keeps copies of the added tensors and writes the whole file
 *   at save: a temporary file beside the target, fsync, rename, fsync of the
 *   directory. The header is compact JSON with __metadata__ first, then the
 *   tensors in the order added with contiguous offsets, padded with spaces
 *   so the data buffer starts at a multiple of 8 (as the reference writes
 *   it). Rejected: streaming the data into the temporary file at add time
 *   (the header, which comes first, is only known at the end; the file would
 *   have to be written twice or the header reserved with a guessed size).
 */
#define _GNU_SOURCE
#include "vqs_store_st.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vqs_common.h"

/* json_int_t is long long (JSON_INTEGER_IS_LONG_LONG): values above
 * INT64_MAX cannot be written to or read from the header. */
_Static_assert(sizeof(json_int_t) == 8, "Jansson with 64-bit integers");

/* ---- dtypes ------------------------------------------------------------ */

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [VQS_ST_BOOL] = {"BOOL", 1},       [VQS_ST_U8] = {"U8", 1},   [VQS_ST_I8] = {"I8", 1},
    [VQS_ST_I16] = {"I16", 2},         [VQS_ST_U16] = {"U16", 2}, [VQS_ST_I32] = {"I32", 4},
    [VQS_ST_U32] = {"U32", 4},         [VQS_ST_I64] = {"I64", 8}, [VQS_ST_U64] = {"U64", 8},
    [VQS_ST_F16] = {"F16", 2},         [VQS_ST_BF16] = {"BF16", 2},
    [VQS_ST_F32] = {"F32", 4},         [VQS_ST_F64] = {"F64", 8},
    [VQS_ST_F8_E4M3] = {"F8_E4M3", 1}, [VQS_ST_F8_E5M2] = {"F8_E5M2", 1},
};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

const char *vqs_st_dtype_name(vqs_st_dtype t)
{
    return (unsigned)t < N_DTYPES ? dtypes[t].name : "?";
}

int vqs_st_dtype_parse(const char *s, vqs_st_dtype *out)
{
    for (size_t i = 0; s && i < N_DTYPES; i++)
        if (strcmp(s, dtypes[i].name) == 0) {
            *out = (vqs_st_dtype)i;
            return 0;
        }
    return vqs_seterr(VQS_EDTYPE, "dtype '%s' is not one vqs reads (BOOL, U8, I8, I16, U16, I32, U32, "
                      "I64, U64, F16, BF16, F32, F64, F8_E4M3, F8_E5M2)", s ? s : "(null)");
}

size_t vqs_st_dtype_size(vqs_st_dtype t)
{
    return (unsigned)t < N_DTYPES ? dtypes[t].size : 0;
}

/* ---- the open file ----------------------------------------------------- */

struct vqs_st_file {
    char *path;
    void *map; /* the mapping (vqs_st_open), or NULL (vqs_st_open_mem) */
    size_t map_len;
    json_t *root;           /* the parsed header: names and metadata point into it */
    vqs_st_tensor *tensors; /* n, in offset order */
    size_t n;
    size_t *by_name; /* n indices into tensors, sorted by name (vqs_st_find) */
    const char **meta; /* 2 * nmeta: key, value, in header order */
    size_t nmeta;
};

/* The file, tensor and field prefix of a message is written by each caller;
 * these helpers keep the messages in one shape. */
#define TFMT "%s: tensor '%s': "

static int is_uint(const json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) >= 0;
}

/* "[4, 8]" of a shape, for messages (truncated past buf's size). */
static const char *shape_str(const vqs_st_tensor *t, char *buf, size_t size)
{
    size_t o = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < t->ndim && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%" PRIu64, i ? ", " : "", t->shape[i]);
    if (o < size)
        snprintf(buf + o, size - o, "]");
    return buf;
}

/* One tensor entry (the first pass, above). begin/end are its offsets. */
static int parse_tensor(const char *path, const char *name, json_t *e, uint64_t buf_len,
                        vqs_st_tensor *t, uint64_t *begin, uint64_t *end)
{
    if (!json_is_object(e))
        return vqs_seterr(VQS_EHEADER, TFMT "entry is not an object", path, name);
    const char *key;
    json_t *v;
    json_object_foreach(e, key, v)
    {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return vqs_seterr(VQS_EHEADER, TFMT "unknown field '%s' (expected dtype, shape, data_offsets)",
                              path, name, key);
    }
    json_t *jd = json_object_get(e, "dtype"), *js = json_object_get(e, "shape"),
           *jo = json_object_get(e, "data_offsets");
    const char *missing = !jd ? "dtype" : !js ? "shape" : !jo ? "data_offsets" : NULL;
    if (missing)
        return vqs_seterr(VQS_EHEADER, TFMT "field '%s' is missing", path, name, missing);

    t->name = name;
    if (!json_is_string(jd))
        return vqs_seterr(VQS_EHEADER, TFMT "field 'dtype' is not a string", path, name);
    const char *ds = json_string_value(jd);
    if (vqs_st_dtype_parse(ds, &t->dtype) != 0)
        return vqs_seterr(VQS_EDTYPE, TFMT "field 'dtype': '%s' is not a dtype vqs reads (BOOL, U8, I8, I16, "
                          "U16, I32, U32, I64, U64, F16, BF16, F32, F64, F8_E4M3, F8_E5M2)", path, name, ds);

    if (!json_is_array(js))
        return vqs_seterr(VQS_EHEADER, TFMT "field 'shape' is not an array", path, name);
    size_t nd = json_array_size(js);
    if (nd > VQS_ST_MAX_NDIM)
        return vqs_seterr(VQS_ESHAPE, TFMT "field 'shape': %zu dimensions, at most %d are read", path, name, nd,
                          VQS_ST_MAX_NDIM);
    t->ndim = (int)nd;
    uint64_t numel = 1, esz = dtypes[t->dtype].size;
    int overflow = 0;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d))
            return vqs_seterr(VQS_EHEADER, TFMT "field 'shape': dimension %zu is not an integer", path, name, i);
        if (json_integer_value(d) < 0)
            return vqs_seterr(VQS_ESHAPE, TFMT "field 'shape': dimension %zu is %" JSON_INTEGER_FORMAT
                              ", negative", path, name, i, json_integer_value(d));
        t->shape[i] = (uint64_t)json_integer_value(d);
        if (t->shape[i] && numel > UINT64_MAX / t->shape[i])
            overflow = 1;
        else
            numel *= t->shape[i];
    }
    /* an empty tensor (a zero dimension) has no bytes, whatever the others are */
    for (size_t i = 0; i < nd; i++)
        if (t->shape[i] == 0)
            numel = 0, overflow = 0;
    if (overflow || numel > UINT64_MAX / esz)
        return vqs_seterr(VQS_ESHAPE, TFMT "field 'shape': the byte size of the shape overflows 64 bits", path,
                          name);
    t->numel = numel;
    t->nbytes = numel * esz;

    if (!json_is_array(jo) || json_array_size(jo) != 2 || !is_uint(json_array_get(jo, 0)) ||
        !is_uint(json_array_get(jo, 1)))
        return vqs_seterr(VQS_EHEADER, TFMT "field 'data_offsets' is not two non-negative integers [begin, end]",
                          path, name);
    *begin = (uint64_t)json_integer_value(json_array_get(jo, 0));
    *end = (uint64_t)json_integer_value(json_array_get(jo, 1));
    if (*begin > *end)
        return vqs_seterr(VQS_ECORRUPT, TFMT "data_offsets [%" PRIu64 ", %" PRIu64 "]: begin is after end", path,
                          name, *begin, *end);
    if (*end > buf_len)
        return vqs_seterr(VQS_ECORRUPT, TFMT "data_offsets [%" PRIu64 ", %" PRIu64 "]: past the end of the "
                          "data buffer (%" PRIu64 " bytes)", path, name, *begin, *end, buf_len);
    if (*end - *begin != t->nbytes) {
        char sb[160];
        return vqs_seterr(VQS_ESHAPE, TFMT "data_offsets [%" PRIu64 ", %" PRIu64 "]: %" PRIu64 " bytes, shape %s "
                          "of %s needs %" PRIu64, path, name, *begin, *end, *end - *begin,
                          shape_str(t, sb, sizeof sb), dtypes[t->dtype].name, t->nbytes);
    }
    return 0;
}

/* Sorting by offsets: tensors[] is filled with data pointing at the begin
 * offset relative to a NULL base until the sort is done. */
typedef struct {
    uint64_t begin, end;
    vqs_st_tensor t;
} ent;

static int ent_cmp(const void *a, const void *b)
{
    const ent *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->t.name, y->t.name);
}

/* for by_name (qsort has no context argument: the array is a global-free
 * pair of index and name) */
typedef struct {
    const char *name;
    size_t i;
} name_ix;

static int name_cmp(const void *a, const void *b)
{
    return strcmp(((const name_ix *)a)->name, ((const name_ix *)b)->name);
}

static int parse_meta(vqs_st_file *f, json_t *m)
{
    if (!json_is_object(m))
        return vqs_seterr(VQS_EHEADER, "%s: __metadata__ is not an object of strings", f->path);
    size_t n = json_object_size(m);
    f->meta = calloc(n ? 2 * n : 1, sizeof *f->meta);
    if (!f->meta)
        return vqs_seterr(VQS_ENOMEM, "%s: __metadata__", f->path);
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v)
    {
        if (!json_is_string(v))
            return vqs_seterr(VQS_EHEADER, "%s: __metadata__: key '%s': value is not a string", f->path, key);
        f->meta[2 * f->nmeta] = key;
        f->meta[2 * f->nmeta + 1] = json_string_value(v);
        f->nmeta++;
    }
    return 0;
}

/* Parses and validates buf (len bytes, the whole file) into f. */
static int parse(vqs_st_file *f, const unsigned char *buf, size_t len)
{
    const char *path = f->path;
    if (len < 8)
        return vqs_seterr(VQS_ETRUNC, "%s: %zu bytes, shorter than the 8-byte header length", path, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | buf[i];
    if (hlen > VQS_ST_MAX_HEADER)
        return vqs_seterr(VQS_EHEADER, "%s: header length %" PRIu64 " is above the limit of %u bytes", path, hlen,
                          VQS_ST_MAX_HEADER);
    if (hlen > len - 8)
        return vqs_seterr(VQS_ETRUNC, "%s: header length %" PRIu64 " is past the end of the file (%zu bytes after "
                          "the length)", path, hlen, len - 8);
    if (hlen < 2)
        return vqs_seterr(VQS_EHEADER, "%s: header length %" PRIu64 " is too short for a JSON object", path,
                          hlen);
    const char *h = (const char *)buf + 8;
    if (h[0] != '{')
        return vqs_seterr(VQS_EHEADER, "%s: header does not start with '{' (byte 0x%02x)", path,
                          (unsigned char)h[0]);
    json_error_t je;
    f->root = json_loadb(h, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!f->root)
        return vqs_seterr(VQS_EHEADER, "%s: header JSON, line %d, column %d: %s", path, je.line, je.column,
                          je.text);
    if (!json_is_object(f->root)) /* cannot happen after '{', kept for safety */
        return vqs_seterr(VQS_EHEADER, "%s: header is not a JSON object", path);

    uint64_t buf_len = (uint64_t)(len - 8 - hlen);
    const unsigned char *data = buf + 8 + hlen;
    size_t cap = json_object_size(f->root);
    ent *es = calloc(cap ? cap : 1, sizeof *es);
    f->tensors = calloc(cap ? cap : 1, sizeof *f->tensors);
    f->by_name = calloc(cap ? cap : 1, sizeof *f->by_name);
    name_ix *nx = calloc(cap ? cap : 1, sizeof *nx);
    int rc = 0;
    if (!es || !f->tensors || !f->by_name || !nx) {
        rc = vqs_seterr(VQS_ENOMEM, "%s: %zu header entries", path, cap);
        goto done;
    }
    const char *key;
    json_t *v;
    size_t n = 0;
    json_object_foreach(f->root, key, v)
    {
        if (strcmp(key, "__metadata__") == 0) {
            rc = parse_meta(f, v);
        } else {
            rc = parse_tensor(path, key, v, buf_len, &es[n].t, &es[n].begin, &es[n].end);
            n++;
        }
        if (rc)
            goto done;
    }
    qsort(es, n, sizeof *es, ent_cmp);
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (es[i].begin < at) {
            rc = vqs_seterr(VQS_ECORRUPT, TFMT "data_offsets [%" PRIu64 ", %" PRIu64 "] overlap tensor '%s' "
                            "[%" PRIu64 ", %" PRIu64 "]", path, es[i].t.name, es[i].begin, es[i].end,
                            es[i - 1].t.name, es[i - 1].begin, es[i - 1].end);
            goto done;
        }
        if (es[i].begin > at) {
            if (i)
                rc = vqs_seterr(VQS_ECORRUPT, TFMT "data_offsets [%" PRIu64 ", %" PRIu64 "] leave bytes [%" PRIu64
                                ", %" PRIu64 ") of the data buffer to no tensor (after tensor '%s'); the format "
                                "allows no holes", path, es[i].t.name, es[i].begin, es[i].end, at, es[i].begin,
                                es[i - 1].t.name);
            else
                rc = vqs_seterr(VQS_ECORRUPT, TFMT "data_offsets [%" PRIu64 ", %" PRIu64 "] leave bytes [0, %"
                                PRIu64 ") of the data buffer to no tensor; the format allows no holes", path,
                                es[i].t.name, es[i].begin, es[i].end, es[i].begin);
            goto done;
        }
        at = es[i].end;
    }
    if (at != buf_len) {
        if (n)
            rc = vqs_seterr(VQS_ECORRUPT, "%s: the data buffer is %" PRIu64 " bytes but the tensors end at %" PRIu64
                            " (tensor '%s'): %" PRIu64 " trailing bytes belong to no tensor", path, buf_len, at,
                            es[n - 1].t.name, buf_len - at);
        else
            rc = vqs_seterr(VQS_ECORRUPT, "%s: no tensors, but a data buffer of %" PRIu64 " bytes", path,
                            buf_len);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        f->tensors[i] = es[i].t;
        f->tensors[i].data = data + es[i].begin;
        nx[i].name = es[i].t.name;
        nx[i].i = i;
    }
    qsort(nx, n, sizeof *nx, name_cmp);
    for (size_t i = 0; i < n; i++)
        f->by_name[i] = nx[i].i;
    f->n = n;
done:
    free(es);
    free(nx);
    return rc;
}

static int open_common(const void *buf, size_t len, const char *name, void *map, vqs_st_file **out)
{
    *out = NULL;
    vqs_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(name ? name : "(memory)"))) {
        free(f);
        if (map)
            munmap(map, len);
        return vqs_seterr(VQS_ENOMEM, "%s", name ? name : "(memory)");
    }
    f->map = map;
    f->map_len = len;
    int rc = parse(f, buf, len);
    if (rc) {
        vqs_st_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

int vqs_st_open(const char *path, vqs_st_file **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return vqs_seterr(-e, "%s: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return vqs_seterr(-e, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return vqs_seterr(VQS_EINVAL, "%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    if (len < 8) {
        close(fd);
        return vqs_seterr(VQS_ETRUNC, "%s: %zu bytes, shorter than the 8-byte header length", path, len);
    }
    void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED)
        return vqs_seterr(-e, "%s: mmap: %s", path, strerror(e));
    return open_common(m, len, path, m, out);
}

int vqs_st_open_mem(const void *buf, size_t len, const char *name, vqs_st_file **out)
{
    if (!buf && len)
        return vqs_seterr(VQS_EINVAL, "%s: no buffer", name ? name : "(memory)");
    return open_common(buf ? buf : "", len, name, NULL, out);
}

void vqs_st_close(vqs_st_file *f)
{
    if (!f)
        return;
    if (f->map)
        munmap(f->map, f->map_len);
    json_decref(f->root);
    free(f->tensors);
    free(f->by_name);
    free(f->meta);
    free(f->path);
    free(f);
}

size_t vqs_st_count(const vqs_st_file *f)
{
    return f->n;
}

const vqs_st_tensor *vqs_st_tensor_at(const vqs_st_file *f, size_t i)
{
    return i < f->n ? &f->tensors[i] : NULL;
}

const vqs_st_tensor *vqs_st_find(const vqs_st_file *f, const char *name)
{
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const vqs_st_tensor *t = &f->tensors[f->by_name[mid]];
        int c = strcmp(name, t->name);
        if (c == 0)
            return t;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *vqs_st_path(const vqs_st_file *f)
{
    return f->path;
}

size_t vqs_st_meta_count(const vqs_st_file *f)
{
    return f->nmeta;
}

void vqs_st_meta_at(const vqs_st_file *f, size_t i, const char **key, const char **value)
{
    int ok = i < f->nmeta;
    if (key)
        *key = ok ? f->meta[2 * i] : NULL;
    if (value)
        *value = ok ? f->meta[2 * i + 1] : NULL;
}

const char *vqs_st_meta_get(const vqs_st_file *f, const char *key)
{
    for (size_t i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta[2 * i], key) == 0)
            return f->meta[2 * i + 1];
    return NULL;
}

/* ---- conversion to float32 --------------------------------------------- */

static uint64_t rd_le(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

/* Element i of t as float32; *big is set (and *src to the value) when a
 * finite F64 is beyond float32's range (it converts to Inf). */
static float elem_f32(const vqs_st_tensor *t, uint64_t i, int *big, double *src)
{
    const unsigned char *p = (const unsigned char *)t->data + i * dtypes[t->dtype].size;
    switch (t->dtype) {
    case VQS_ST_U8:
        return (float)p[0];
    case VQS_ST_I8:
        return (float)(int8_t)p[0];
    case VQS_ST_I16:
        return (float)(int16_t)(uint16_t)rd_le(p, 2);
    case VQS_ST_U16:
        return (float)(uint16_t)rd_le(p, 2);
    case VQS_ST_I32:
        return (float)(int32_t)(uint32_t)rd_le(p, 4);
    case VQS_ST_U32:
        return (float)(uint32_t)rd_le(p, 4);
    case VQS_ST_I64:
        return (float)(int64_t)rd_le(p, 8);
    case VQS_ST_U64:
        return (float)rd_le(p, 8);
    case VQS_ST_F16:
        return vqs_f16_to_f32((uint16_t)rd_le(p, 2));
    case VQS_ST_BF16:
        return vqs_bf16_to_f32((uint16_t)rd_le(p, 2));
    case VQS_ST_F32: {
        uint32_t u = (uint32_t)rd_le(p, 4);
        float v;
        memcpy(&v, &u, 4);
        return v;
    }
    case VQS_ST_F64: {
        uint64_t u = rd_le(p, 8);
        double d;
        memcpy(&d, &u, 8);
        float v = (float)d; /* FLT_MAX up to FLT_MAX + half an ulp, then Inf */
        if (isfinite(d) && isinf(v)) {
            *big = 1;
            *src = d;
        }
        return v;
    }
    case VQS_ST_F8_E4M3:
        return vqs_e4m3_to_f32(p[0]);
    case VQS_ST_F8_E5M2:
        return vqs_e5m2_to_f32(p[0]);
    case VQS_ST_BOOL:
        break;
    }
    return 0;
}

/* src: the F64 value when big, else unused */
static int nonfinite_err(const vqs_st_file *f, const vqs_st_tensor *t, uint64_t i, float v, int big, double src)
{
    char where[40 + 22 * VQS_ST_MAX_NDIM] = "";
    if (t->ndim == 2) {
        snprintf(where, sizeof where, " (row %" PRIu64 ", column %" PRIu64 ")", i / t->shape[1], i % t->shape[1]);
    } else if (t->ndim > 2) {
        uint64_t ix[VQS_ST_MAX_NDIM], r = i;
        for (int d = t->ndim - 1; d >= 0; d--) {
            ix[d] = r % t->shape[d];
            r /= t->shape[d];
        }
        size_t o = (size_t)snprintf(where, sizeof where, " (index [");
        for (int d = 0; d < t->ndim && o < sizeof where; d++)
            o += (size_t)snprintf(where + o, sizeof where - o, "%s%" PRIu64, d ? ", " : "", ix[d]);
        if (o < sizeof where)
            snprintf(where + o, sizeof where - o, "])");
    }
    if (big)
        return vqs_seterr(VQS_ERANGE, TFMT "element %" PRIu64 "%s is %g, beyond float32's range", f->path,
                          t->name, i, where, src);
    return vqs_seterr(VQS_ENONFINITE, TFMT "element %" PRIu64 "%s is %s", f->path, t->name, i, where,
                      isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
}

int vqs_st_read_f32(const vqs_st_file *f, const vqs_st_tensor *t, float *out, int allow_nonfinite)
{
    if (t->dtype == VQS_ST_BOOL)
        return vqs_seterr(VQS_EDTYPE, TFMT "dtype BOOL cannot be read as float32", f->path, t->name);
    if ((unsigned)t->dtype >= N_DTYPES)
        return vqs_seterr(VQS_EDTYPE, TFMT "unknown dtype %d", f->path, t->name, (int)t->dtype);
    if (t->numel == 0)
        return 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (t->dtype == VQS_ST_F32) {
        memcpy(out, t->data, t->numel * 4);
        if (!allow_nonfinite)
            for (uint64_t i = 0; i < t->numel; i++)
                if (!isfinite(out[i]))
                    return nonfinite_err(f, t, i, out[i], 0, 0);
        return 0;
    }
#endif
    for (uint64_t i = 0; i < t->numel; i++) {
        int big = 0;
        double src = 0;
        out[i] = elem_f32(t, i, &big, &src);
        if (!allow_nonfinite && !isfinite(out[i]))
            return nonfinite_err(f, t, i, out[i], big, src);
    }
    return 0;
}

/* ---- writer ------------------------------------------------------------ */

typedef struct {
    char *name;
    vqs_st_dtype dtype;
    int ndim;
    uint64_t shape[VQS_ST_MAX_NDIM];
    void *data;
    size_t nbytes;
} w_tensor;

struct vqs_st_writer {
    w_tensor *t;
    size_t n, cap;
    json_t *meta;  /* object of strings, in the order set */
    json_t *names; /* the tensor names, for the duplicate check */
};

int vqs_st_writer_new(vqs_st_writer **out)
{
    *out = NULL;
    vqs_st_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->meta = json_object()) || !(w->names = json_object())) {
        vqs_st_writer_free(w);
        return vqs_seterr(VQS_ENOMEM, "safetensors writer");
    }
    *out = w;
    return 0;
}

void vqs_st_writer_free(vqs_st_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->t);
    json_decref(w->meta);
    json_decref(w->names);
    free(w);
}

/* Jansson refuses strings that are not UTF-8 (the header is UTF-8 JSON). */
static int utf8_ok(const char *s)
{
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

int vqs_st_writer_add(vqs_st_writer *w, const char *name, vqs_st_dtype dtype, int ndim,
                      const uint64_t *shape, const void *data, size_t nbytes)
{
    if (!name || !*name)
        return vqs_seterr(VQS_EINVAL, "safetensors writer: a tensor needs a name");
    if (strcmp(name, "__metadata__") == 0)
        return vqs_seterr(VQS_EINVAL, "safetensors writer: '__metadata__' cannot name a tensor");
    if (!utf8_ok(name))
        return vqs_seterr(VQS_EINVAL, "safetensors writer: tensor name '%s' is not UTF-8", name);
    if (json_object_get(w->names, name))
        return vqs_seterr(VQS_EINVAL, "safetensors writer: tensor '%s' was added already", name);
    if ((unsigned)dtype >= N_DTYPES)
        return vqs_seterr(VQS_EINVAL, "safetensors writer: tensor '%s': unknown dtype %d", name, (int)dtype);
    if (ndim < 0 || ndim > VQS_ST_MAX_NDIM || (ndim && !shape))
        return vqs_seterr(VQS_EINVAL, "safetensors writer: tensor '%s': %d dimensions (0 to %d)", name, ndim,
                          VQS_ST_MAX_NDIM);
    uint64_t numel = 1;
    int overflow = 0, zero = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] > (uint64_t)INT64_MAX) /* not representable in the header */
            overflow = 1;
        else if (shape[i] == 0)
            zero = 1;
        else if (numel > UINT64_MAX / shape[i])
            overflow = 1;
        else
            numel *= shape[i];
    }
    if (zero && !overflow)
        numel = 0;
    if (overflow || numel > SIZE_MAX / dtypes[dtype].size)
        return vqs_seterr(VQS_EINVAL, "safetensors writer: tensor '%s': shape too large", name);
    if (nbytes != numel * dtypes[dtype].size)
        return vqs_seterr(VQS_EINVAL, "safetensors writer: tensor '%s': %zu bytes, shape of %" PRIu64
                          " %s elements needs %" PRIu64, name, nbytes, numel, dtypes[dtype].name,
                          numel * dtypes[dtype].size);
    if (nbytes && !data)
        return vqs_seterr(VQS_EINVAL, "safetensors writer: tensor '%s': no data", name);
    if (w->n == w->cap) {
        size_t c = w->cap ? 2 * w->cap : 16;
        w_tensor *nt = realloc(w->t, c * sizeof *nt);
        if (!nt)
            return vqs_seterr(VQS_ENOMEM, "safetensors writer: tensor '%s'", name);
        w->t = nt;
        w->cap = c;
    }
    w_tensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->data = malloc(nbytes ? nbytes : 1);
    if (!t->name || !t->data || json_object_set_new(w->names, name, json_true()) != 0) {
        free(t->name);
        free(t->data);
        return vqs_seterr(VQS_ENOMEM, "safetensors writer: tensor '%s' (%zu bytes)", name, nbytes);
    }
    if (nbytes)
        memcpy(t->data, data, nbytes);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->nbytes = nbytes;
    w->n++;
    return 0;
}

int vqs_st_writer_meta(vqs_st_writer *w, const char *key, const char *value)
{
    if (!key || !value)
        return vqs_seterr(VQS_EINVAL, "safetensors writer: __metadata__ needs a key and a value");
    if (!utf8_ok(key) || !utf8_ok(value))
        return vqs_seterr(VQS_EINVAL, "safetensors writer: __metadata__ key '%s': key or value is not UTF-8",
                          key);
    if (json_object_set_new(w->meta, key, json_string(value)) != 0)
        return vqs_seterr(VQS_ENOMEM, "safetensors writer: __metadata__ key '%s'", key);
    return 0;
}

/* The header JSON (compact, __metadata__ first if any), not yet padded. */
static char *build_header(const vqs_st_writer *w)
{
    json_t *root = json_object();
    int bad = !root;
    if (!bad && json_object_size(w->meta))
        bad = json_object_set(root, "__metadata__", w->meta) != 0;
    uint64_t at = 0;
    for (size_t i = 0; !bad && i < w->n; i++) {
        const w_tensor *t = &w->t[i];
        json_t *shape = json_array();
        for (int d = 0; shape && d < t->ndim; d++)
            if (json_array_append_new(shape, json_integer((json_int_t)t->shape[d])) != 0)
                bad = 1;
        json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", dtypes[t->dtype].name, "shape", shape,
                              "data_offsets", (json_int_t)at, (json_int_t)(at + t->nbytes));
        bad = bad || !e || json_object_set_new(root, t->name, e) != 0;
        at += t->nbytes;
    }
    char *s = bad ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* fsync of the directory holding path, so that the rename is durable */
static int sync_dir(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return -ENOMEM;
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = 0;
    else if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) != 0 ? -errno : 0;
    close(fd);
    return rc;
}

int vqs_st_writer_save(vqs_st_writer *w, const char *path)
{
    uint64_t data_len = 0;
    for (size_t i = 0; i < w->n; i++)
        data_len += w->t[i].nbytes;
    if (data_len > (uint64_t)INT64_MAX)
        return vqs_seterr(VQS_EINVAL, "%s: %" PRIu64 " bytes of tensors do not fit the header's integers", path,
                          data_len);
    char *h = build_header(w);
    if (!h)
        return vqs_seterr(VQS_ENOMEM, "%s: building the header", path);
    size_t hl = strlen(h), padded = (hl + 7) / 8 * 8;
    if (padded > VQS_ST_MAX_HEADER) {
        free(h);
        return vqs_seterr(VQS_EINVAL, "%s: header of %zu bytes is above the limit of %u", path, padded,
                          VQS_ST_MAX_HEADER);
    }
    unsigned char pre[8 + 8];
    for (int i = 0; i < 8; i++)
        pre[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memset(pre + 8, ' ', 8);

    size_t l = strlen(path);
    char *tmp = malloc(l + 16);
    if (!tmp) {
        free(h);
        return vqs_seterr(VQS_ENOMEM, "%s", path);
    }
    snprintf(tmp, l + 16, "%s.tmp.XXXXXX", path);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        free(h);
        return vqs_seterr(-e, "%s: cannot create a temporary file beside it: %s", path, strerror(e));
    }
    int rc = fchmod(fd, 0644) != 0 ? -errno : 0;
    if (rc == 0)
        rc = write_all(fd, pre, 8);
    if (rc == 0)
        rc = write_all(fd, h, hl);
    if (rc == 0)
        rc = write_all(fd, pre + 8, padded - hl);
    for (size_t i = 0; rc == 0 && i < w->n; i++)
        rc = write_all(fd, w->t[i].data, w->t[i].nbytes);
    free(h);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc) {
        unlink(tmp);
        free(tmp);
        return vqs_seterr(rc, "%s: write failed: %s (the file was not changed)", path, strerror(-rc));
    }
    free(tmp);
    rc = sync_dir(path);
    if (rc)
        return vqs_seterr(rc, "%s: written, but syncing its directory failed: %s", path, strerror(-rc));
    return 0;
}
