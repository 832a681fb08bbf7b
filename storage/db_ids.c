/*
 * db_ids.c: point ids (vqs_store_db.h: parse and format) and the keys that
 * carry them in the LMDB store (db_internal.h). Layout: storage/README.md.
 *
 * Design decisions:
 * - A point id is what Qdrant accepts: an unsigned 64-bit integer or a
 *   UUID (with or without dashes on input, the canonical lower-case form on
 *   output). Decimal digits only for integers: "0x10" or "-1" is neither
 *   kind and is refused rather than guessed at.
 * - Integers in keys are big-endian, so LMDB's byte order is numeric order
 *   (a collection's internal ids walk in upsert order). The ext key carries
 *   the id's kind before the id, so an integer and a UUID never share a key.
 */
#define _GNU_SOURCE /* pthread_rwlock_t in db_internal.h */
#include "db_internal.h"

#include <lmdb.h>
#include <stdio.h>
#include <string.h>

/* ---- point ids ----------------------------------------------------------- */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int vqs_pid_parse(const char *s, vqs_pid *p)
{
    if (!s || !p)
        return vqs_seterr(VQS_EINVAL, "pid_parse: NULL argument");
    memset(p, 0, sizeof *p);
    size_t n = strlen(s);
    int digits = n > 0 && n <= 20;
    for (size_t i = 0; digits && i < n; i++)
        digits = s[i] >= '0' && s[i] <= '9';
    if (digits) {
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned dgt = (unsigned)(s[i] - '0');
            if (v > (UINT64_MAX - dgt) / 10)
                return vqs_seterr(VQS_EINVAL, "point id '%s' exceeds 2^64 - 1", s);
            v = v * 10 + dgt;
        }
        p->kind = VQS_PID_U64;
        p->u64 = v;
        return 0;
    }
    int dashed = n == 36;
    if (n != 32 && !dashed)
        return vqs_seterr(VQS_EINVAL, "point id '%.64s' is neither an unsigned integer nor a UUID", s);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (dashed && (i == 8 || i == 13 || i == 18 || i == 23)) {
            if (s[i] != '-')
                return vqs_seterr(VQS_EINVAL, "point id '%s': a UUID has '-' at position %zu", s, i + 1);
            continue;
        }
        int h = hexval(s[i]);
        if (h < 0)
            return vqs_seterr(VQS_EINVAL, "point id '%s': '%c' at position %zu is not a hex digit", s, s[i], i + 1);
        p->uuid[j / 2] = (uint8_t)(p->uuid[j / 2] << 4 | h);
        j++;
    }
    p->kind = VQS_PID_UUID;
    return 0;
}

char *vqs_pid_format(const vqs_pid *p, char buf[40])
{
    if (p->kind == VQS_PID_U64) {
        snprintf(buf, 40, "%llu", (unsigned long long)p->u64);
    } else if (p->kind == VQS_PID_UUID) {
        static const char hx[] = "0123456789abcdef";
        size_t j = 0;
        for (int i = 0; i < 16; i++) {
            if (i == 4 || i == 6 || i == 8 || i == 10)
                buf[j++] = '-';
            buf[j++] = hx[p->uuid[i] >> 4];
            buf[j++] = hx[p->uuid[i] & 15];
        }
        buf[j] = 0;
    } else {
        snprintf(buf, 40, "(none)");
    }
    return buf;
}

/* ---- keys ---------------------------------------------------------------- */

/* ext key: coll(4 BE) kind(1) id (8 BE | 16) */
int db_ext_key(uint32_t coll, const vqs_pid *p, uint8_t buf[21], MDB_val *k)
{
    put32be(buf, coll);
    buf[4] = p->kind;
    if (p->kind == VQS_PID_U64) {
        put64be(buf + 5, p->u64);
        *k = (MDB_val){13, buf};
    } else if (p->kind == VQS_PID_UUID) {
        memcpy(buf + 5, p->uuid, 16);
        *k = (MDB_val){21, buf};
    } else {
        return vqs_seterr(VQS_EINVAL, "point id of kind %u (neither an integer nor a UUID)", p->kind);
    }
    return 0;
}

MDB_val db_iid_key(uint32_t coll, uint64_t iid, uint8_t buf[12])
{
    put32be(buf, coll);
    put64be(buf + 4, iid);
    return (MDB_val){12, buf};
}
