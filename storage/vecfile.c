/*
 * vecfile.c: reading and writing vector files.
 *
 * Design decisions:
 * - Files are memory-mapped (MAP_PRIVATE, read-only) and never copied: a
 *   1M x 768 float file is 3 GB and exact search or training reads it once,
 *   block by block. The one exception is an .npy whose data offset is not a
 *   multiple of 4 (legal in old writers): its payload is copied into an
 *   aligned buffer so that the float view is not an unaligned-access UB.
 * - Validation is complete and happens once, at open: every row header
 *   (fvecs/ivecs/bvecs) and every float is checked, so an open handle is a
 *   promise and the hot paths carry no checks. The cost is one sequential
 *   pass (about a second for 3 GB); rejected: lazy checks per read, which
 *   would turn a bad row into an error deep inside a search.
 * - fvecs rows are (int32 d, d floats): the float data is a strided matrix
 *   with leading dimension d + 1, which BLAS takes directly, so fvecs needs
 *   no repacking either.
 * - The .npy header is parsed by a small dedicated parser of the Python dict
 *   literal numpy writes, not a general Python-literal parser: keys 'descr',
 *   'fortran_order', 'shape' exactly once each, nothing else.
 * - The format comes from the npy magic, else from the name. JSON Lines is
 *   recognised by name only (.jsonl, .ndjson): rejected, sniffing a leading
 *   '{', which a raw float32 file may begin with too. Its reader
 *   (vecfile_jsonl.c) parses the mapping into rows in memory, after which
 *   the mapping is dropped, and the handle behaves as a float32 file.
 */
#define _GNU_SOURCE
#include "vecfile_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static size_t dt_size(vqs_dtype dt)
{
    switch (dt) {
    case VQS_DT_F32:
    case VQS_DT_I32:
        return 4;
    case VQS_DT_F16:
        return 2;
    case VQS_DT_U8:
        return 1;
    }
    return 0;
}

static uint32_t rd_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcasecmp(s + a - b, suf) == 0;
}

static vqs_vecfmt fmt_from_name(const char *name)
{
    if (ends_with(name, ".fvecs"))
        return VQS_FMT_FVECS;
    if (ends_with(name, ".ivecs"))
        return VQS_FMT_IVECS;
    if (ends_with(name, ".bvecs"))
        return VQS_FMT_BVECS;
    if (ends_with(name, ".npy"))
        return VQS_FMT_NPY;
    if (ends_with(name, ".f32") || ends_with(name, ".raw") || ends_with(name, ".bin"))
        return VQS_FMT_RAW_F32;
    if (ends_with(name, ".jsonl") || ends_with(name, ".ndjson"))
        return VQS_FMT_JSONL;
    return VQS_FMT_AUTO;
}

/* ---- TEXMEX (fvecs / ivecs / bvecs) ----------------------------------- */

static int parse_texmex(vqs_vecfile *vf, const unsigned char *buf, size_t len, size_t max_dim)
{
    size_t esz = dt_size(vf->dt);
    if (len == 0)
        return vqs_seterr(VQS_EEMPTY, "%s: file is empty", vf->name);
    if (len < 4)
        return vqs_seterr(VQS_ETRUNC, "%s: truncated: %zu bytes, less than one row header",
                          vf->name, len);
    uint32_t d0 = rd_u32(buf);
    if (d0 == 0 || d0 > max_dim || (int32_t)d0 < 0)
        return vqs_seterr(VQS_EBADDIM, "%s: row 0: dimension %d (must be 1..%zu)", vf->name,
                          (int32_t)d0, max_dim);
    size_t d = d0;
    size_t row = 4 + d * esz;
    size_t off = 0, i = 0;
    while (off < len) {
        if (len - off < 4)
            return vqs_seterr(VQS_ETRUNC,
                              "%s: truncated: row %zu: %zu trailing bytes, less than a row header",
                              vf->name, i, len - off);
        uint32_t di = rd_u32(buf + off);
        if (di != d0)
            return vqs_seterr(VQS_EDIMMISMATCH, "%s: row %zu: dimension %d, expected %zu",
                              vf->name, i, (int32_t)di, d);
        if (len - off < row)
            return vqs_seterr(VQS_ETRUNC, "%s: truncated: row %zu has %zu of %zu values", vf->name,
                              i, (len - off - 4) / esz, d);
        off += row;
        i++;
    }
    vf->n = i;
    vf->d = d;
    vf->data = buf + 4;
    vf->stride = row;
    return 0;
}

/* ---- npy -------------------------------------------------------------- */

typedef struct {
    const char *p, *end;
} cur;

static void skip_ws(cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int eat(cur *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* Python string literal with ' or " (no escapes are needed by numpy). */
static int parse_str(cur *c, char *out, size_t cap)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return 0;
    char q = *c->p++;
    size_t k = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || k + 1 >= cap)
            return 0;
        out[k++] = *c->p++;
    }
    if (c->p >= c->end)
        return 0;
    c->p++;
    out[k] = '\0';
    return 1;
}

static int parse_word(cur *c, const char *w)
{
    skip_ws(c);
    size_t l = strlen(w);
    if ((size_t)(c->end - c->p) >= l && memcmp(c->p, w, l) == 0) {
        c->p += l;
        return 1;
    }
    return 0;
}

/* Non-negative integer (Python may write 10L in old py2 files). */
static int parse_uint(cur *c, uint64_t *v)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return 0;
    uint64_t x = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        unsigned dg = (unsigned)(*c->p - '0');
        if (x > (UINT64_MAX - dg) / 10)
            return -1; /* overflow */
        x = x * 10 + dg;
        c->p++;
    }
    if (c->p < c->end && *c->p == 'L')
        c->p++;
    *v = x;
    return 1;
}

static int parse_npy(vqs_vecfile *vf, const unsigned char *buf, size_t len, size_t max_dim)
{
    const char *nm = vf->name;
    if (len == 0)
        return vqs_seterr(VQS_EEMPTY, "%s: file is empty", nm);
    if (len < 10)
        return vqs_seterr(VQS_ETRUNC, "%s: truncated: %zu bytes, shorter than an npy preamble",
                          nm, len);
    if (memcmp(buf, "\x93NUMPY", 6) != 0)
        return vqs_seterr(VQS_EFORMAT, "%s: not an npy file (bad magic)", nm);
    unsigned major = buf[6], minor = buf[7];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return vqs_seterr(VQS_ETRUNC, "%s: truncated npy %u.%u preamble", nm, major, minor);
        hlen = rd_u32(buf + 8);
        hoff = 12;
    } else {
        return vqs_seterr(VQS_EFORMAT, "%s: npy format version %u.%u is not supported (1, 2, 3)",
                          nm, major, minor);
    }
    if (minor != 0)
        return vqs_seterr(VQS_EFORMAT, "%s: npy format version %u.%u is not supported", nm,
                          major, minor);
    if (hlen > len - hoff)
        return vqs_seterr(VQS_ETRUNC, "%s: truncated: header of %zu bytes, file has %zu after the preamble",
                          nm, hlen, len - hoff);
    cur c = {(const char *)buf + hoff, (const char *)buf + hoff + hlen};
    char descr[32] = "";
    int have_descr = 0, have_fo = 0, have_shape = 0, fortran = 0;
    uint64_t shape[8];
    int ndim = 0;
    if (!eat(&c, '{'))
        return vqs_seterr(VQS_EHEADER, "%s: npy header: expected '{'", nm);
    for (;;) {
        if (eat(&c, '}'))
            break;
        char key[32];
        if (!parse_str(&c, key, sizeof key))
            return vqs_seterr(VQS_EHEADER, "%s: npy header: expected a quoted key", nm);
        if (!eat(&c, ':'))
            return vqs_seterr(VQS_EHEADER, "%s: npy header: expected ':' after '%s'", nm, key);
        if (strcmp(key, "descr") == 0 && !have_descr) {
            if (!parse_str(&c, descr, sizeof descr))
                return vqs_seterr(VQS_EHEADER, "%s: npy header: 'descr' is not a simple type string (structured dtypes are not supported)", nm);
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0 && !have_fo) {
            if (parse_word(&c, "True"))
                fortran = 1;
            else if (parse_word(&c, "False"))
                fortran = 0;
            else
                return vqs_seterr(VQS_EHEADER, "%s: npy header: 'fortran_order' is not True/False", nm);
            have_fo = 1;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            if (!eat(&c, '('))
                return vqs_seterr(VQS_EHEADER, "%s: npy header: 'shape' is not a tuple", nm);
            for (;;) {
                if (eat(&c, ')'))
                    break;
                uint64_t v;
                int r = parse_uint(&c, &v);
                if (r < 0)
                    return vqs_seterr(VQS_ESHAPE, "%s: npy header: shape value overflows", nm);
                if (r == 0)
                    return vqs_seterr(VQS_EHEADER, "%s: npy header: bad number in 'shape'", nm);
                if (ndim == 8)
                    return vqs_seterr(VQS_ESHAPE, "%s: npy header: more than 8 dimensions", nm);
                shape[ndim++] = v;
                if (eat(&c, ','))
                    continue;
                if (eat(&c, ')'))
                    break;
                return vqs_seterr(VQS_EHEADER, "%s: npy header: expected ',' or ')' in 'shape'", nm);
            }
            have_shape = 1;
        } else {
            return vqs_seterr(VQS_EHEADER, "%s: npy header: unexpected or repeated key '%s'", nm, key);
        }
        if (eat(&c, ','))
            continue;
        if (eat(&c, '}'))
            break;
        return vqs_seterr(VQS_EHEADER, "%s: npy header: expected ',' or '}'", nm);
    }
    skip_ws(&c);
    while (c.p < c.end && *c.p == '\0') /* some writers pad with NULs */
        c.p++;
    skip_ws(&c);
    if (c.p != c.end)
        return vqs_seterr(VQS_EHEADER, "%s: npy header: garbage after the dictionary", nm);
    if (!have_descr || !have_fo || !have_shape)
        return vqs_seterr(VQS_EHEADER, "%s: npy header: missing key '%s'", nm,
                          !have_descr ? "descr" : !have_fo ? "fortran_order" : "shape");
    if (strcmp(descr, "<f4") == 0)
        vf->dt = VQS_DT_F32;
    else if (strcmp(descr, "<f2") == 0)
        vf->dt = VQS_DT_F16;
    else
        return vqs_seterr(VQS_EDTYPE, "%s: npy dtype '%s' is not supported (use '<f4' or '<f2')",
                          nm, descr);
    if (fortran)
        return vqs_seterr(VQS_EORDER, "%s: npy array is in Fortran order; save it in C order (np.ascontiguousarray)", nm);
    if (ndim != 2)
        return vqs_seterr(VQS_ESHAPE, "%s: npy shape has %d dimensions, expected 2 (n, d)", nm, ndim);
    uint64_t n = shape[0], d = shape[1];
    if (d == 0 || d > max_dim)
        return vqs_seterr(VQS_EBADDIM, "%s: npy shape (%llu, %llu): dimension must be 1..%zu", nm,
                          (unsigned long long)n, (unsigned long long)d, max_dim);
    size_t esz = dt_size(vf->dt);
    size_t have = len - hoff - hlen;
    if (n > SIZE_MAX / d / esz)
        return vqs_seterr(VQS_ESHAPE, "%s: npy shape (%llu, %llu) overflows", nm,
                          (unsigned long long)n, (unsigned long long)d);
    size_t need = (size_t)n * (size_t)d * esz;
    if (have < need)
        return vqs_seterr(VQS_ETRUNC,
                          "%s: truncated: shape (%llu, %llu) needs %zu data bytes, file has %zu",
                          nm, (unsigned long long)n, (unsigned long long)d, need, have);
    if (have > need)
        return vqs_seterr(VQS_ESHAPE,
                          "%s: header shape (%llu, %llu) accounts for %zu data bytes, file has %zu",
                          nm, (unsigned long long)n, (unsigned long long)d, need, have);
    vf->n = n;
    vf->d = d;
    vf->stride = d * esz;
    vf->data = buf + hoff + hlen;
    if (((uintptr_t)vf->data % esz) != 0 && need > 0) {
        vf->copy = malloc(need);
        if (!vf->copy)
            return vqs_seterr(VQS_ENOMEM, "%s: %zu bytes for an aligned copy", nm, need);
        memcpy(vf->copy, vf->data, need);
        vf->data = vf->copy;
    }
    return 0;
}

/* ---- raw -------------------------------------------------------------- */

static int parse_raw(vqs_vecfile *vf, const unsigned char *buf, size_t len, size_t d,
                     size_t max_dim)
{
    if (d == 0 || d > max_dim)
        return vqs_seterr(d == 0 ? VQS_EINVAL : VQS_EBADDIM,
                          "%s: raw float32 needs a dimension in 1..%zu (got %zu)", vf->name,
                          max_dim, d);
    if (len == 0)
        return vqs_seterr(VQS_EEMPTY, "%s: file is empty", vf->name);
    if (len % (4 * d) != 0)
        return vqs_seterr(VQS_ETRUNC,
                          "%s: truncated: %zu bytes is not a whole number of %zu-float rows "
                          "(row %zu is partial)",
                          vf->name, len, d, len / (4 * d));
    vf->n = len / (4 * d);
    vf->d = d;
    vf->data = buf;
    vf->stride = 4 * d;
    return 0;
}

/* ---- checks ----------------------------------------------------------- */

static int check_finite(const vqs_vecfile *vf)
{
    for (size_t i = 0; i < vf->n; i++) {
        const unsigned char *r = vf->data + i * vf->stride;
        if (vf->dt == VQS_DT_F32) {
            const float *x = (const float *)r;
            for (size_t j = 0; j < vf->d; j++)
                if (!isfinite(x[j]))
                    return vqs_seterr(VQS_ENONFINITE, "%s: row %zu, column %zu: %s", vf->name, i,
                                      j, isnan(x[j]) ? "NaN" : "Inf");
        } else if (vf->dt == VQS_DT_F16) {
            const uint16_t *x = (const uint16_t *)r;
            for (size_t j = 0; j < vf->d; j++)
                if ((x[j] & 0x7c00) == 0x7c00)
                    return vqs_seterr(VQS_ENONFINITE, "%s: row %zu, column %zu: %s", vf->name, i,
                                      j, (x[j] & 0x3ff) ? "NaN" : "Inf");
        }
    }
    return 0;
}

static int open_buf(vqs_vecfile *vf, const unsigned char *buf, size_t len,
                    const vqs_vecfile_opts *o)
{
    size_t max_dim = o->max_dim ? o->max_dim : VQS_MAX_DIM_DEFAULT;
    vqs_vecfmt f = o->format;
    if (f == VQS_FMT_AUTO) {
        if (len >= 6 && memcmp(buf, "\x93NUMPY", 6) == 0)
            f = VQS_FMT_NPY;
        else
            f = fmt_from_name(vf->name);
        if (f == VQS_FMT_RAW_F32 && o->raw_dim == 0)
            return vqs_seterr(VQS_EINVAL, "%s: raw float32 file: give its dimension", vf->name);
        if (f == VQS_FMT_AUTO)
            return vqs_seterr(VQS_EFORMAT,
                              "%s: cannot tell the format from the name (.fvecs, .ivecs, "
                              ".bvecs, .npy, .jsonl, .ndjson; raw float32 needs a dimension)",
                              vf->name);
    }
    vf->fmt = f;
    int rc;
    switch (f) {
    case VQS_FMT_FVECS:
        vf->dt = VQS_DT_F32;
        rc = parse_texmex(vf, buf, len, max_dim);
        break;
    case VQS_FMT_IVECS:
        vf->dt = VQS_DT_I32;
        rc = parse_texmex(vf, buf, len, max_dim);
        break;
    case VQS_FMT_BVECS:
        vf->dt = VQS_DT_U8;
        rc = parse_texmex(vf, buf, len, max_dim);
        break;
    case VQS_FMT_NPY:
        rc = parse_npy(vf, buf, len, max_dim);
        break;
    case VQS_FMT_RAW_F32:
        vf->dt = VQS_DT_F32;
        rc = parse_raw(vf, buf, len, o->raw_dim, max_dim);
        break;
    case VQS_FMT_JSONL:
        /* every value was range-checked while parsing: check_finite has
         * nothing to find */
        return vqs_jsonl_parse(vf, buf, len, o);
    default:
        rc = vqs_seterr(VQS_EINVAL, "%s: unknown format %d", vf->name, (int)f);
    }
    if (rc == 0 && !o->allow_nonfinite)
        rc = check_finite(vf);
    return rc;
}

int vqs_vecfile_open_mem(const void *buf, size_t len, const char *name,
                         const vqs_vecfile_opts *o, vqs_vecfile **out)
{
    vqs_vecfile_opts def = {0};
    if (!out || (!buf && len))
        return vqs_seterr(VQS_EINVAL, "vecfile_open_mem: NULL argument");
    if ((uintptr_t)buf % 4 != 0)
        return vqs_seterr(VQS_EINVAL, "vecfile_open_mem: buffer must be 4-byte aligned");
    *out = NULL;
    vqs_vecfile *vf = calloc(1, sizeof *vf);
    if (!vf || !(vf->name = strdup(name ? name : "(memory)"))) {
        free(vf);
        return vqs_seterr(VQS_ENOMEM, "vecfile_open_mem");
    }
    int rc = open_buf(vf, buf, len, o ? o : &def);
    if (rc) {
        vqs_vecfile_close(vf);
        return rc;
    }
    *out = vf;
    return 0;
}

int vqs_vecfile_open(const char *path, const vqs_vecfile_opts *o, vqs_vecfile **out)
{
    vqs_vecfile_opts def = {0};
    if (!path || !out)
        return vqs_seterr(VQS_EINVAL, "vecfile_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vqs_seterr(-errno, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return vqs_seterr(-e, "%s: stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return vqs_seterr(VQS_EINVAL, "%s: not a regular file", path);
    }
    vqs_vecfile *vf = calloc(1, sizeof *vf);
    if (!vf || !(vf->name = strdup(path))) {
        free(vf);
        close(fd);
        return vqs_seterr(VQS_ENOMEM, "%s", path);
    }
    size_t len = (size_t)st.st_size;
    const unsigned char *buf = (const unsigned char *)"";
    if (len > 0) {
        void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            vqs_vecfile_close(vf);
            return vqs_seterr(-e, "%s: mmap: %s", path, strerror(e));
        }
        madvise(m, len, MADV_SEQUENTIAL);
        vf->map = m;
        vf->map_len = len;
        buf = m;
    }
    close(fd);
    int rc = open_buf(vf, buf, len, o ? o : &def);
    if (rc) {
        vqs_vecfile_close(vf);
        return rc;
    }
    if (vf->map && vf->fmt == VQS_FMT_JSONL) {
        /* the rows are parsed into vf->copy: the text is not needed again */
        munmap((void *)vf->map, vf->map_len);
        vf->map = NULL;
    } else if (vf->map) {
        madvise((void *)vf->map, len, MADV_NORMAL);
    }
    *out = vf;
    return 0;
}

void vqs_vecfile_close(vqs_vecfile *vf)
{
    if (!vf)
        return;
    if (vf->map)
        munmap((void *)vf->map, vf->map_len);
    free(vf->copy);
    free(vf->pids);
    free(vf->ids);
    free(vf->pl);
    free(vf->pl_off);
    free(vf->name);
    free(vf);
}

size_t vqs_vecfile_n(const vqs_vecfile *vf) { return vf->n; }
size_t vqs_vecfile_d(const vqs_vecfile *vf) { return vf->d; }
vqs_dtype vqs_vecfile_dtype(const vqs_vecfile *vf) { return vf->dt; }
vqs_vecfmt vqs_vecfile_format(const vqs_vecfile *vf) { return vf->fmt; }
const char *vqs_vecfile_name(const vqs_vecfile *vf) { return vf->name; }

int vqs_vecfile_ids(const vqs_vecfile *vf, const int64_t **ids)
{
    *ids = vf->ids;
    if (!vf->ids && vf->pids)
        return vqs_seterr(VQS_EDTYPE, "%s: some ids are UUID strings, not integers (use vqs_vecfile_pids)",
                          vf->name);
    return 0;
}

const vqs_pid *vqs_vecfile_pids(const vqs_vecfile *vf) { return vf->pids; }

const char *vqs_vecfile_payload(const vqs_vecfile *vf, size_t i)
{
    if (!vf->pl_off || i >= vf->n || vf->pl_off[i] == SIZE_MAX)
        return NULL;
    return vf->pl + vf->pl_off[i];
}

int vqs_vecfile_f32_view(const vqs_vecfile *vf, const float **x, size_t *ld)
{
    if (vf->dt != VQS_DT_F32)
        return vqs_seterr(VQS_EDTYPE, "%s: elements are not float32", vf->name);
    *x = (const float *)vf->data;
    *ld = vf->stride / 4;
    return 0;
}

int vqs_vecfile_i32_view(const vqs_vecfile *vf, const int32_t **x, size_t *ld)
{
    if (vf->dt != VQS_DT_I32)
        return vqs_seterr(VQS_EDTYPE, "%s: elements are not int32", vf->name);
    *x = (const int32_t *)vf->data;
    *ld = vf->stride / 4;
    return 0;
}

int vqs_vecfile_read_f32(const vqs_vecfile *vf, size_t i0, size_t n, float *out)
{
    if (i0 > vf->n || n > vf->n - i0)
        return vqs_seterr(VQS_ERANGE, "%s: rows [%zu, %zu) out of %zu", vf->name, i0, i0 + n,
                          vf->n);
    size_t d = vf->d;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *r = vf->data + (i0 + i) * vf->stride;
        float *o = out + i * d;
        switch (vf->dt) {
        case VQS_DT_F32:
            memcpy(o, r, d * 4);
            break;
        case VQS_DT_F16:
            for (size_t j = 0; j < d; j++)
                o[j] = vqs_f16_to_f32(((const uint16_t *)r)[j]);
            break;
        case VQS_DT_I32:
            for (size_t j = 0; j < d; j++)
                o[j] = (float)((const int32_t *)r)[j];
            break;
        case VQS_DT_U8:
            for (size_t j = 0; j < d; j++)
                o[j] = (float)r[j];
            break;
        }
    }
    return 0;
}

int vqs_vecfile_read_i64(const vqs_vecfile *vf, size_t i0, size_t n, int64_t *out)
{
    if (vf->dt != VQS_DT_I32 && vf->dt != VQS_DT_U8)
        return vqs_seterr(VQS_EDTYPE, "%s: elements are not integers", vf->name);
    if (i0 > vf->n || n > vf->n - i0)
        return vqs_seterr(VQS_ERANGE, "%s: rows [%zu, %zu) out of %zu", vf->name, i0, i0 + n,
                          vf->n);
    for (size_t i = 0; i < n; i++) {
        const unsigned char *r = vf->data + (i0 + i) * vf->stride;
        for (size_t j = 0; j < vf->d; j++)
            out[i * vf->d + j] =
                vf->dt == VQS_DT_I32 ? (int64_t)((const int32_t *)r)[j] : (int64_t)r[j];
    }
    return 0;
}

int vqs_vecfile_load_f32(const char *path, const vqs_vecfile_opts *o, float **x, size_t *n,
                         size_t *d)
{
    vqs_vecfile *vf;
    int rc = vqs_vecfile_open(path, o, &vf);
    if (rc)
        return rc;
    size_t nn = vf->n, dd = vf->d;
    float *buf = malloc(nn * dd * sizeof(float) + 1);
    if (!buf) {
        vqs_vecfile_close(vf);
        return vqs_seterr(VQS_ENOMEM, "%s: %zu x %zu floats", path, nn, dd);
    }
    rc = vqs_vecfile_read_f32(vf, 0, nn, buf);
    vqs_vecfile_close(vf);
    if (rc) {
        free(buf);
        return rc;
    }
    *x = buf;
    *n = nn;
    *d = dd;
    return 0;
}

/* ---- writers ---------------------------------------------------------- */

typedef struct {
    FILE *f;
    char *tmp;
    const char *path;
} wfile;

static int w_open(wfile *w, const char *path)
{
    w->path = path;
    w->f = NULL;
    size_t l = strlen(path);
    w->tmp = malloc(l + 16);
    if (!w->tmp)
        return vqs_seterr(VQS_ENOMEM, "%s", path);
    snprintf(w->tmp, l + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(w->tmp);
    if (fd < 0) {
        int e = errno;
        free(w->tmp);
        return vqs_seterr(-e, "%s: cannot create a temporary file beside it: %s", path,
                          strerror(e));
    }
    fchmod(fd, 0644);
    w->f = fdopen(fd, "wb");
    if (!w->f) {
        int e = errno;
        close(fd);
        unlink(w->tmp);
        free(w->tmp);
        return vqs_seterr(-e, "%s: %s", path, strerror(e));
    }
    return 0;
}

static int w_put(wfile *w, const void *p, size_t len)
{
    if (len && fwrite(p, 1, len, w->f) != len)
        return -(errno ? errno : EIO);
    return 0;
}

/* rc: the first write error, or 0. Commits (fsync + rename) or discards. */
static int w_close(wfile *w, int rc)
{
    if (rc == 0 && fflush(w->f) != 0)
        rc = -errno;
    if (rc == 0 && fsync(fileno(w->f)) != 0)
        rc = -errno;
    if (fclose(w->f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(w->tmp, w->path) != 0)
        rc = -errno;
    if (rc) {
        unlink(w->tmp);
        vqs_seterr(rc, "%s: write failed: %s (the file was not changed)", w->path,
                   strerror(-rc));
    }
    free(w->tmp);
    return rc;
}

static int write_texmex(const char *path, size_t n, size_t d, const void *x, size_t esz)
{
    if (d == 0 || d > INT32_MAX || (n && !x))
        return vqs_seterr(VQS_EINVAL, "%s: cannot write dimension %zu", path, d);
    wfile w;
    int rc = w_open(&w, path);
    if (rc)
        return rc;
    int32_t dd = (int32_t)d;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = w_put(&w, &dd, 4);
        if (rc == 0)
            rc = w_put(&w, (const char *)x + i * d * esz, d * esz);
    }
    return w_close(&w, rc);
}

int vqs_write_fvecs(const char *path, size_t n, size_t d, const float *x)
{
    return write_texmex(path, n, d, x, 4);
}

int vqs_write_ivecs(const char *path, size_t n, size_t d, const int32_t *x)
{
    return write_texmex(path, n, d, x, 4);
}

int vqs_write_npy(const char *path, size_t n, size_t d, vqs_dtype dtype, const void *x)
{
    if (d == 0 || (n && !x) || (dtype != VQS_DT_F32 && dtype != VQS_DT_F16))
        return vqs_seterr(VQS_EINVAL, "%s: npy writer takes float32 or float16 with d >= 1",
                          path);
    char hdr[256];
    int hl = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (%zu, %zu), }",
                      dtype == VQS_DT_F32 ? "<f4" : "<f2", n, d);
    /* pad with spaces so that preamble + header (ending in \n) is a
     * multiple of 64, as numpy does */
    size_t total = 10 + (size_t)hl + 1;
    size_t pad = (64 - total % 64) % 64;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    size_t hlen = (size_t)hl + pad + 1;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    wfile w;
    int rc = w_open(&w, path);
    if (rc)
        return rc;
    rc = w_put(&w, pre, 10);
    if (!rc)
        rc = w_put(&w, hdr, (size_t)hl);
    for (size_t i = 0; i < pad && !rc; i++)
        rc = w_put(&w, " ", 1);
    if (!rc)
        rc = w_put(&w, "\n", 1);
    if (!rc)
        rc = w_put(&w, x, n * d * (dtype == VQS_DT_F32 ? 4 : 2));
    return w_close(&w, rc);
}
