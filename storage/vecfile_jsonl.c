/*
 * vecfile_jsonl.c: the JSON Lines reader of storage/vecfile.c.
 *
 *   {"id": 7, "vector": [0.12, -3, 4e-2], "title": "..."}   one object a line
 *
 * Design decisions:
 * - Line by line: each non-blank line is handed to Jansson on its own
 *   (json_loadb over the line's bytes in the mapping), its numbers copied out
 *   and its tree freed before the next line, so the file's JSON is never in
 *   memory at once. Rejected: json_loadf over the whole file (one tree for
 *   the file) and a hand-written number scanner (a second JSON grammar to get
 *   wrong; Jansson is already a dependency and fuzzed upstream).
 * - Materialised: JSONL has no random access by row, and the handle promises
 *   it (read_f32 of any range, a zero-copy float view), so the rows are parsed
 *   at open into one n x d float32 matrix. A first pass counts the non-blank
 *   lines, so after the first line gives d the matrix is allocated once, at
 *   its final size (no doubling, no 1.5x peak), and the memory bound
 *   (opts.max_bytes, default half the physical memory) is checked before
 *   allocating anything: the refusal says how much was needed and suggests a
 *   memory-mapped format. Rejected: a cap of "file size x k" (the text per
 *   number varies from 2 to 25 bytes, so it bounds nothing useful).
 * - Every check at open, as for the binary formats: after a successful open
 *   every row has d finite float32 values and the ids are distinct. Numbers
 *   that would round to Inf as float32 are refused, whatever
 *   allow_nonfinite says: JSON has no NaN or Inf, so such a value is a writer's
 *   mistake, not data. Jansson parses integers into 64 bits and reals into
 *   doubles and fails the line on overflow (1e999, 2^64); the error then
 *   names the field, found by a small scan of the line up to Jansson's error
 *   position (which the parser accepted, so the scan needs no error checks).
 * - Ids: all lines or none. Integers in [0, 2^63) (Jansson's json_int_t, and
 *   what the HTTP API accepts) or UUID strings, as the collection layer's
 *   point ids (vqs_pid). A real such as 3.0 is refused rather than truncated,
 *   and so is a string of digits (a quoted integer is more likely a name than
 *   a number). Duplicates are found by sorting row numbers by id, after the
 *   parse, and reported as "line B: id X already on line A" for the first
 *   repeat in file order.
 * - "embedding" is an alias of "vector" (OpenAI-style dumps); both in one
 *   object is refused, as one of them would be silently ignored. Other fields
 *   are the user's payload, not fields of our format: the reader ignores
 *   them, or keeps their compact JSON text per row for vqs import
 *   (keep_payload), in one arena of NUL-terminated texts plus n offsets.
 * - The text is read through vecfile.c's mapping and handed back as the
 *   parse moves on (madvise, below); after the parse the mapping is dropped.
 * - Line numbers count every line from 1 (blank lines included), as an
 *   editor shows them; columns are Jansson's (characters, from 1). A UTF-8
 *   byte-order mark at the start of the file is skipped.
 */
#define _GNU_SOURCE
#include "vecfile_internal.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A walk over the lines of a buffer: off is the next line's start, line the
 * number of the last line returned (from 1). */
typedef struct {
    const char *buf;
    size_t len, off, line;
} lines;

/* Returns 0 at the end, else 1 with *p, *len the next line (without its '\n')
 * and *line its number. */
static int next_line(lines *it, const char **p, size_t *len, size_t *line)
{
    if (it->off >= it->len)
        return 0;
    const char *s = it->buf + it->off;
    const char *nl = memchr(s, '\n', it->len - it->off);
    size_t l = nl ? (size_t)(nl - s) : it->len - it->off;
    it->off += l + (nl != NULL);
    *p = s;
    *len = l;
    *line = ++it->line;
    return 1;
}

static int blank(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return 0;
    return 1;
}

static lines lines_of(const unsigned char *buf, size_t len)
{
    lines it = {(const char *)buf, len, 0, 0};
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        it.off = 3;
    return it;
}

/* The line number of the row-th (0-based) non-blank line. */
static size_t line_of_row(const unsigned char *buf, size_t len, size_t row)
{
    lines it = lines_of(buf, len);
    const char *p;
    size_t l, line, r = 0;
    while (next_line(&it, &p, &l, &line))
        if (!blank(p, l) && r++ == row)
            return line;
    return 0;
}

static const char *type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a JSON value";
}

typedef struct {
    vqs_vecfile *vf;
    const vqs_vecfile_opts *o;
    size_t max_dim, max_bytes;
    size_t rows;     /* non-blank lines: the number of rows */
    size_t n;        /* rows parsed so far */
    size_t d, line0; /* the dimension, from the first row's line */
    int has_ids, all_int;
    size_t fixed;    /* bytes of the matrix, ids and payload offsets */
    size_t pl_len, pl_cap;
} jl;

/* Where in the line offset end falls, for a line Jansson parsed up to end:
 * the top-level member's key (copied into key, cut to kcap - 1 bytes, escapes
 * left as written), the nesting depth, and, when end is inside an array that
 * is a top-level member's value, the element's index (else SIZE_MAX). */
static void path_at(const char *p, size_t end, char *key, size_t kcap, int *depth, size_t *idx)
{
    int dep = 0, want_key = 0, arr = 0;
    size_t elem = 0, i = 0;
    key[0] = 0;
    while (i < end) {
        char c = p[i];
        if (c == '"') {
            size_t st = ++i;
            while (i < end && p[i] != '"')
                i += p[i] == '\\' ? 2 : 1;
            if (dep == 1 && want_key) {
                size_t k = (i < end ? i : end) - st;
                if (k > kcap - 1)
                    k = kcap - 1;
                memcpy(key, p + st, k);
                key[k] = 0;
                want_key = 0;
            }
        } else if (c == '{' || c == '[') {
            dep++;
            if (dep == 1)
                want_key = c == '{';
            if (dep == 2) {
                arr = c == '[';
                elem = 0;
            }
        } else if (c == '}' || c == ']') {
            dep--;
        } else if (c == ',') {
            if (dep == 1)
                want_key = 1;
            else if (dep == 2)
                elem++;
        }
        i++;
    }
    *depth = dep;
    *idx = dep == 2 && arr ? elem : SIZE_MAX;
}

/* A line Jansson refused. A numeric overflow is a value out of range, named
 * by its field; anything else is malformed JSON with Jansson's column. */
static int json_fail(const jl *s, const char *p, size_t len, size_t line, const json_error_t *je)
{
    const char *nm = s->vf->name;
    if (json_error_code(je) != json_error_numeric_overflow || je->position < 1 ||
        (size_t)je->position > len)
        return vqs_seterr(VQS_EFORMAT, "%s: line %zu, column %d: malformed JSON: %s", nm, line,
                          je->column, je->text);
    /* Jansson stops right after the number: walk back over it */
    size_t end = (size_t)je->position, st = end;
    while (st > 0 && p[st - 1] && strchr("0123456789+-.eE", p[st - 1]))
        st--;
    int tl = (int)(end - st > 64 ? 64 : end - st);
    int integer = memchr(p + st, '.', end - st) == NULL && memchr(p + st, 'e', end - st) == NULL &&
                  memchr(p + st, 'E', end - st) == NULL;
    char key[68];
    int depth;
    size_t idx;
    path_at(p, st, key, sizeof key, &depth, &idx);
    const char *why = integer ? "an integer beyond 64 bits" : "beyond a double's range";
    if (idx != SIZE_MAX && (!strcmp(key, "vector") || !strcmp(key, "embedding"))) {
        if (integer)
            return vqs_seterr(VQS_ERANGE, "%s: line %zu, column %d: \"%s\"[%zu]: the integer %.*s has more "
                                          "than 64 bits (the JSON parser's limit); write it as a real, such as 1e20",
                              nm, line, je->column, key, idx, tl, p + st);
        return vqs_seterr(VQS_ERANGE, "%s: line %zu, column %d: \"%s\"[%zu]: %.*s is outside float32's range (|x| <= 3.4028235e38)",
                          nm, line, je->column, key, idx, tl, p + st);
    }
    if (depth == 1 && !strcmp(key, "id"))
        return vqs_seterr(VQS_ERANGE, "%s: line %zu, column %d: \"id\" %.*s is out of range (ids are integers in [0, 2^63) or UUID strings)",
                          nm, line, je->column, tl, p + st);
    if (*key)
        return vqs_seterr(VQS_ERANGE, "%s: line %zu, column %d: field \"%s\": the number %.*s is out of range (%s)",
                          nm, line, je->column, key, tl, p + st, why);
    return vqs_seterr(VQS_ERANGE, "%s: line %zu, column %d: the number %.*s is out of range (%s)", nm,
                      line, je->column, tl, p + st, why);
}

static size_t mem_limit(const vqs_vecfile_opts *o)
{
    if (o->max_bytes)
        return o->max_bytes;
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psz <= 0)
        return SIZE_MAX / 2;
    return (size_t)pages / 2 * (size_t)psz;
}

/* While parsing a file mapping, the pages read are handed back every
 * DROP_BYTES (MADV_DONTNEED: the mapping is private and never written, so a
 * later read, as the duplicate-id message's line count does, faults the
 * file's bytes back in), so the resident set is the rows plus at most this
 * much text, not the whole file. Never done to open_mem's buffer, which is
 * the caller's. */
#define DROP_BYTES ((size_t)64 << 20)

/* Hands back [dropped, off) rounded down to DROP_BYTES (a multiple of the
 * page size) once that is at least DROP_BYTES; returns the new mark. */
static size_t hand_back(const unsigned char *map, size_t dropped, size_t off)
{
    if (off - dropped < DROP_BYTES)
        return dropped;
    size_t upto = off / DROP_BYTES * DROP_BYTES;
    madvise((void *)(map + dropped), upto - dropped, MADV_DONTNEED);
    return upto;
}

/* The smallest double that rounds to Inf as a float32: FLT_MAX plus half its
 * ulp (a tie rounds to even, which is up: FLT_MAX's significand is odd).
 * Values below it round to a finite float, so %.9g text of FLT_MAX
 * (3.40282347e+38, slightly above FLT_MAX) is read back as FLT_MAX. */
#define F32_ROUNDS_TO_INF 0x1.ffffffp+127

/* Bytes per row besides the matrix, for ids (pids, int64 ids, and the sort
 * of row numbers that finds duplicates) and payload offsets. */
#define ID_BYTES (sizeof(vqs_pid) + sizeof(int64_t) + sizeof(size_t))

/* After the first row: d is known, so is everything but the payload texts. */
static int alloc_rows(jl *s, size_t line)
{
    vqs_vecfile *vf = s->vf;
    size_t per_row = s->has_ids ? ID_BYTES : 0;
    if (s->o->keep_payload)
        per_row += sizeof(size_t);
    int over = s->rows > (SIZE_MAX / 2) / (s->d * sizeof(float) + per_row);
    size_t need = over ? SIZE_MAX : s->rows * (s->d * sizeof(float) + per_row);
    if (need > s->max_bytes)
        return vqs_seterr(VQS_ENOMEM,
                          "%s: %zu rows of %zu numbers (from line %zu) need %.1f MB in memory, above "
                          "the limit of %.1f MB (JSONL is loaded whole; raise max_bytes, or convert "
                          "the file to .npy or .fvecs, which are memory-mapped)",
                          vf->name, s->rows, s->d, line, over ? INFINITY : need / 1e6, s->max_bytes / 1e6);
    s->fixed = need;
    if (!(vf->copy = malloc(s->rows * s->d * sizeof(float))))
        return vqs_seterr(VQS_ENOMEM, "%s: %zu x %zu floats", vf->name, s->rows, s->d);
    if (s->has_ids && (!(vf->pids = calloc(s->rows, sizeof *vf->pids)) ||
                       !(vf->ids = malloc(s->rows * sizeof *vf->ids))))
        return vqs_seterr(VQS_ENOMEM, "%s: ids of %zu rows", vf->name, s->rows);
    if (s->o->keep_payload && !(vf->pl_off = malloc(s->rows * sizeof *vf->pl_off)))
        return vqs_seterr(VQS_ENOMEM, "%s: payloads of %zu rows", vf->name, s->rows);
    return 0;
}

static int take_id(jl *s, const json_t *id, size_t line)
{
    const char *nm = s->vf->name;
    vqs_pid *pid = &s->vf->pids[s->n];
    if (json_is_integer(id)) {
        json_int_t v = json_integer_value(id);
        if (v < 0)
            return vqs_seterr(VQS_ERANGE, "%s: line %zu: \"id\" %lld is negative (ids are integers in [0, 2^63) or UUID strings)",
                              nm, line, (long long)v);
        pid->kind = VQS_PID_U64;
        pid->u64 = (uint64_t)v;
        s->vf->ids[s->n] = (int64_t)v;
        return 0;
    }
    if (json_is_real(id)) {
        double r = json_real_value(id);
        /* 3.0 as written, not as %g would print it (3) */
        const char *f = r == floor(r) && fabs(r) < 1e15 ? "%s: line %zu: \"id\" %.1f is not an integer (write ids without a fraction or exponent)"
                                                        : "%s: line %zu: \"id\" %.17g is not an integer (write ids without a fraction or exponent)";
        return vqs_seterr(VQS_EFORMAT, f, nm, line, r);
    }
    if (json_is_string(id)) {
        const char *t = json_string_value(id);
        if (vqs_pid_parse(t, pid) != 0 || pid->kind != VQS_PID_UUID)
            return vqs_seterr(VQS_EFORMAT, "%s: line %zu: \"id\" \"%.64s\" is a string but not a UUID "
                                           "(string ids must be UUIDs; write integer ids without quotes)",
                              nm, line, t);
        s->all_int = 0;
        return 0;
    }
    return vqs_seterr(VQS_EFORMAT, "%s: line %zu: \"id\" is %s, expected a non-negative integer or a UUID string",
                      nm, line, type_name(id));
}

static int take_payload(jl *s, json_t *obj, const char *vkey, size_t line)
{
    vqs_vecfile *vf = s->vf;
    json_object_del(obj, vkey);
    json_object_del(obj, "id");
    vf->pl_off[s->n] = SIZE_MAX;
    if (json_object_size(obj) == 0)
        return 0;
    char *t = json_dumps(obj, JSON_COMPACT);
    if (!t)
        return vqs_seterr(VQS_ENOMEM, "%s: payload of row %zu", vf->name, s->n);
    size_t tl = strlen(t) + 1;
    if (s->pl_cap - s->pl_len < tl) {
        size_t room = s->max_bytes - s->fixed; /* alloc_rows checked fixed <= max_bytes */
        if (tl > room - s->pl_len) {
            free(t);
            return vqs_seterr(VQS_ENOMEM, "%s: line %zu: the payloads need %zu bytes so far, which with the "
                                          "rows (%.1f MB) is above the memory limit of %.1f MB",
                              vf->name, line, s->pl_len + tl, s->fixed / 1e6, s->max_bytes / 1e6);
        }
        /* double, but never past the limit */
        size_t cap = s->pl_cap ? s->pl_cap : 4096;
        while (cap - s->pl_len < tl && cap <= SIZE_MAX / 2)
            cap *= 2;
        if (cap > room)
            cap = room;
        char *np = realloc(vf->pl, cap);
        if (!np) {
            free(t);
            return vqs_seterr(VQS_ENOMEM, "%s: line %zu: %zu bytes of payloads", vf->name, line, cap);
        }
        vf->pl = np;
        s->pl_cap = cap;
    }
    memcpy(vf->pl + s->pl_len, t, tl);
    vf->pl_off[s->n] = s->pl_len;
    s->pl_len += tl;
    free(t);
    return 0;
}

static int take_line(jl *s, const char *p, size_t len, size_t line)
{
    const char *nm = s->vf->name;
    json_error_t je;
    json_t *j = json_loadb(p, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return json_fail(s, p, len, line, &je);
    int rc = 0;
    if (!json_is_object(j)) {
        rc = vqs_seterr(VQS_EFORMAT, "%s: line %zu: %s, expected an object with a \"vector\" array",
                        nm, line, type_name(j));
        goto out;
    }
    json_t *v = json_object_get(j, "vector"), *e = json_object_get(j, "embedding");
    const char *vk = v ? "vector" : "embedding";
    if (v && e) {
        rc = vqs_seterr(VQS_EFORMAT, "%s: line %zu: both \"vector\" and \"embedding\" (its alias); give one",
                        nm, line);
        goto out;
    }
    if (!v && !(v = e)) {
        rc = vqs_seterr(VQS_EFORMAT, "%s: line %zu: no \"vector\" (or \"embedding\") field", nm, line);
        goto out;
    }
    if (!json_is_array(v)) {
        rc = vqs_seterr(VQS_EFORMAT, "%s: line %zu: \"%s\" is %s, expected an array of numbers", nm,
                        line, vk, type_name(v));
        goto out;
    }
    size_t dl = json_array_size(v);
    json_t *id = json_object_get(j, "id");
    if (s->n == 0) {
        if (dl == 0 || dl > s->max_dim) {
            rc = vqs_seterr(VQS_EBADDIM, "%s: line %zu: \"%s\" has %zu numbers (must be 1..%zu)", nm,
                            line, vk, dl, s->max_dim);
            goto out;
        }
        s->d = dl;
        s->line0 = line;
        s->has_ids = id != NULL;
        if ((rc = alloc_rows(s, line)))
            goto out;
    } else if (dl != s->d) {
        rc = vqs_seterr(VQS_EDIMMISMATCH, "%s: line %zu: \"%s\" has %zu numbers, expected %zu (from line %zu)",
                        nm, line, vk, dl, s->d, s->line0);
        goto out;
    }
    float *x = (float *)s->vf->copy + s->n * s->d;
    for (size_t k = 0; k < dl; k++) {
        const json_t *a = json_array_get(v, k);
        if (json_is_integer(a)) {
            x[k] = (float)json_integer_value(a); /* |int64| < FLT_MAX: always in range */
        } else if (json_is_real(a)) {
            double r = json_real_value(a);
            if (!(fabs(r) < F32_ROUNDS_TO_INF)) {
                rc = vqs_seterr(VQS_ERANGE, "%s: line %zu: \"%s\"[%zu]: %.9g is outside float32's range (|x| <= 3.4028235e38)",
                                nm, line, vk, k, r);
                goto out;
            }
            x[k] = (float)r;
        } else {
            rc = vqs_seterr(VQS_EFORMAT, "%s: line %zu: \"%s\"[%zu] is %s, expected a number", nm, line,
                            vk, k, type_name(a));
            goto out;
        }
    }
    if ((id != NULL) != s->has_ids) {
        rc = vqs_seterr(VQS_EFORMAT, s->has_ids ? "%s: line %zu: no \"id\", but line %zu has one (give every line an id, or none)"
                                                : "%s: line %zu: \"id\" given, but line %zu has none (give every line an id, or none)",
                        nm, line, s->line0);
        goto out;
    }
    if (id && (rc = take_id(s, id, line)))
        goto out;
    if (s->o->keep_payload && (rc = take_payload(s, j, vk, line)))
        goto out;
    s->n++;
out:
    json_decref(j);
    return rc;
}

static int pid_cmp(const vqs_pid *a, const vqs_pid *b)
{
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if (a->kind == VQS_PID_U64)
        return a->u64 < b->u64 ? -1 : a->u64 > b->u64;
    return memcmp(a->uuid, b->uuid, sizeof a->uuid);
}

/* qsort_r order of row numbers: by id, then by row */
static int row_cmp(const void *a, const void *b, void *ctx)
{
    const vqs_pid *p = ctx;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = pid_cmp(&p[i], &p[j]);
    return c ? c : i < j ? -1 : i > j;
}

static int check_distinct(const jl *s, const unsigned char *buf, size_t len)
{
    vqs_vecfile *vf = s->vf;
    size_t n = s->n;
    if (n < 2)
        return 0;
    size_t *ord = malloc(n * sizeof *ord);
    if (!ord)
        return vqs_seterr(VQS_ENOMEM, "%s: sorting %zu ids", vf->name, n);
    for (size_t i = 0; i < n; i++)
        ord[i] = i;
    qsort_r(ord, n, sizeof *ord, row_cmp, vf->pids);
    /* the first repeat in file order: the smallest row that is not first of its id */
    size_t first = SIZE_MAX, rep = SIZE_MAX;
    for (size_t i = 1, g = 0; i < n; i++) {
        if (pid_cmp(&vf->pids[ord[i]], &vf->pids[ord[g]]) != 0) {
            g = i;
        } else if (ord[i] < rep) {
            rep = ord[i];
            first = ord[g];
        }
    }
    free(ord);
    if (rep == SIZE_MAX)
        return 0;
    char b[40];
    return vqs_seterr(VQS_EINVAL, "%s: line %zu: \"id\" %s already on line %zu (ids must be distinct)",
                      vf->name, line_of_row(buf, len, rep), vqs_pid_format(&vf->pids[rep], b),
                      line_of_row(buf, len, first));
}

int vqs_jsonl_parse(vqs_vecfile *vf, const unsigned char *buf, size_t len, const vqs_vecfile_opts *o)
{
    jl s = {.vf = vf, .o = o, .all_int = 1};
    s.max_dim = o->max_dim ? o->max_dim : VQS_MAX_DIM_DEFAULT;
    s.max_bytes = mem_limit(o);
    vf->dt = VQS_DT_F32;
    const char *p;
    size_t l, line = 0;
    lines it = lines_of(buf, len);
    int own = buf == vf->map;
    size_t dropped = 0; /* bytes of our own mapping handed back so far */
    while (next_line(&it, &p, &l, &line)) {
        s.rows += !blank(p, l);
        if (own)
            dropped = hand_back(buf, dropped, it.off);
    }
    if (own)
        madvise((void *)buf, len, MADV_DONTNEED);
    dropped = 0;
    if (s.rows == 0)
        return it.line == 0 ? vqs_seterr(VQS_EEMPTY, "%s: file is empty", vf->name)
                            : vqs_seterr(VQS_EEMPTY, "%s: no vectors: all %zu lines are blank", vf->name, it.line);
    it = lines_of(buf, len);
    int rc = 0;
    while (rc == 0 && next_line(&it, &p, &l, &line)) {
        if (!blank(p, l))
            rc = take_line(&s, p, l, line);
        if (own)
            dropped = hand_back(buf, dropped, it.off);
    }
    if (rc == 0 && s.has_ids)
        rc = check_distinct(&s, buf, len);
    if (rc)
        return rc;
    if (!s.all_int) {
        free(vf->ids);
        vf->ids = NULL;
    }
    vf->n = s.n;
    vf->d = s.d;
    vf->data = vf->copy;
    vf->stride = s.d * sizeof(float);
    return 0;
}
