/*
 * db.c: collections in LMDB (vqs_store_db.h). Layout: storage/README.md.
 *
 * Design decisions:
 * - One environment per data directory (DIR/vqs.mdb, MDB_NOSUBDIR), five
 *   named databases shared by all collections; every key of a collection
 *   starts with its 4-byte collection number (big-endian), so a collection
 *   is one contiguous key range per database and dropping it is a range
 *   delete. Collection names live only in the meta record, so a name is
 *   reusable at once after a drop.
 * - Codes are stored one record per upsert batch ("segment": the batch's
 *   codes and coarse lists in one value, keyed by its first internal id).
 *   Opening a collection is then a walk over a few large values (LMDB keeps
 *   them on contiguous overflow pages), 1M codes in ~1k reads, and a batch
 *   is written with one put. Deletions and replacements do not rewrite the
 *   segment: the old internal id goes into the dead set, which the loader
 *   merges out. Rejected: one record per IVF list (every batch would
 *   rewrite the lists it touches: O(list size) per upsert), one record per
 *   vector (1M B-tree entries to walk at open, 16+ bytes of key per 16-byte
 *   code).
 * - Internal ids are dense and never reused, so they address the vector
 *   file directly; the maps ext -> iid and iid -> (ext, payload) make both
 *   directions one lookup.
 * - Durability: LMDB's default flags (no MDB_NOSYNC / MDB_NOMETASYNC): a
 *   commit returns after the data and meta pages are fsynced.
 * - Map full: the write transaction is aborted, the map doubled (under an
 *   exclusive lock that no transaction of this process holds) and the batch
 *   replayed. Another process growing the map shows up as MDB_MAP_RESIZED
 *   at txn begin and is adopted the same way.
 * - LMDB forbids opening one environment twice in a process; a registry of
 *   open files (device, inode) turns that into -EBUSY instead of broken
 *   locks.
 * - A truncated file would fault (SIGBUS) on the first access to a page
 *   past its end, so open compares the file size with the last page the
 *   meta page claims and refuses a short file.
 * - One writer per data directory, across processes: a writable open takes
 *   flock(LOCK_EX | LOCK_NB) on DIR/vqs.lock and writes its pid and command
 *   line there; a second writer (a `vqs import` beside `vqs serve`, or a
 *   second server) is refused with VQS_ELOCKED naming the holder. LMDB
 *   itself would let two processes write, but each keeps an in-memory index
 *   and appends to the vector file on its own, so the second writer would
 *   leave the first one serving stale answers and refusing appends. The
 *   kernel drops the lock when the holder dies (a SIGKILLed import leaves
 *   nothing to clean up), which a pid file alone would not. Read-only opens
 *   take no lock: LMDB gives them a consistent snapshot beside the writer.
 *   Rejected: fcntl (POSIX) record locks, which a process loses when it
 *   closes any descriptor of the file, and a lock on vqs.mdb itself, which
 *   LMDB opens and closes on its own.
 */
#define _GNU_SOURCE
#include "db_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the registry of open environments ---------------------------------- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct reg_ent {
    dev_t dev;
    ino_t ino;
} reg[64];
static int nreg;

static int reg_add(dev_t dev, ino_t ino, const char *path)
{
    pthread_mutex_lock(&reg_lock);
    int rc = 0;
    for (int i = 0; i < nreg; i++)
        if (reg[i].dev == dev && reg[i].ino == ino)
            rc = vqs_seterr(-EBUSY, "%s: already open in this process (LMDB allows one handle per process)", path);
    if (!rc && nreg == (int)(sizeof reg / sizeof reg[0]))
        rc = vqs_seterr(-EMFILE, "%s: too many data directories open", path);
    if (!rc)
        reg[nreg++] = (struct reg_ent){dev, ino};
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

static void reg_del(dev_t dev, ino_t ino)
{
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < nreg; i++)
        if (reg[i].dev == dev && reg[i].ino == ino) {
            reg[i] = reg[--nreg];
            break;
        }
    pthread_mutex_unlock(&reg_lock);
}

/* ---- one writer per directory ------------------------------------------- */

/* "pid 123 (vqs serve --data d)": this process, for the lock file */
static void holder_text(char *buf, size_t n)
{
    char cmd[256] = "";
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t m = read(fd, cmd, sizeof cmd - 1);
        close(fd);
        if (m > 0) {
            cmd[m] = 0;
            for (ssize_t i = 0; i + 1 < m; i++)
                if (cmd[i] == 0)
                    cmd[i] = ' ';
        }
    }
    /* the program's base name, then its arguments */
    const char *c = cmd, *sp = strchr(cmd, ' '), *sl = NULL;
    for (const char *p = cmd; *p && (!sp || p < sp); p++)
        if (*p == '/')
            sl = p;
    if (sl)
        c = sl + 1;
    snprintf(buf, n, "pid %ld (%.200s)", (long)getpid(), *c ? c : "?");
}

static int dir_lock(const char *dir, int *out)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/vqs.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return vqs_seterr(-errno, "%s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char who[300] = "";
        ssize_t m = pread(fd, who, sizeof who - 1, 0);
        close(fd);
        if (e != EWOULDBLOCK)
            return vqs_seterr(-e, "%s: lock: %s", path, strerror(e));
        while (m > 0 && (who[m - 1] == '\n' || who[m - 1] == 0))
            m--;
        who[m > 0 ? m : 0] = 0;
        for (char *p = who; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = '?';
        return vqs_seterr(VQS_ELOCKED,
                          "%s: in use by %s, which holds %s: one writer per data directory (stop it, "
                          "or use read-only commands such as vqs info and vqs search beside it)",
                          dir, *who ? who : "another process", path);
    }
    char me[300];
    holder_text(me, sizeof me);
    size_t len = strlen(me);
    me[len++] = '\n';
    /* informational only: a failure to write it does not weaken the lock */
    if (ftruncate(fd, 0) == 0 && pwrite(fd, me, len, 0) < 0) {
        /* nothing to do */
    }
    *out = fd;
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

int db_lmdb_err(int rc, const char *what, const char *name)
{
    int code;
    if (rc > 0)
        code = -rc; /* errno */
    else if (rc == MDB_VERSION_MISMATCH)
        code = VQS_EVERSION;
    else if (rc == MDB_MAP_FULL)
        code = VQS_ENOMEM;
    else if (rc == MDB_READERS_FULL || rc == MDB_TXN_FULL || rc == MDB_CURSOR_FULL || rc == MDB_DBS_FULL)
        code = VQS_ENOMEM;
    else
        code = VQS_ECORRUPT; /* MDB_CORRUPTED, MDB_INVALID, MDB_PAGE_NOTFOUND, MDB_PANIC, ... */
    return vqs_seterr(code, "%s%s%s%s: LMDB: %s", name ? "collection '" : "", name ? name : "",
                      name ? "': " : "", what, mdb_strerror(rc));
}

/* ---- the collection record ("c:" NAME in meta) -------------------------- *
 * Little-endian fields, REC_BYTES in all:
 *   0 u32 record version (1)       4 u32 collection number
 *   8 u32 d   12 u32 metric   16 u32 rerank   20 u32 nprobe
 *  24 f32 oversampling   28 u32 code_size (0 until the first batch)
 *  32 u64 train_size  40 u64 count  48 u64 next_iid  56 u64 deleted
 *  64 u64 code_bytes  72 u64 payload_bytes  80 u32 trained
 *  84 f32 sq_clip (SQ8/SQ4 training ranges; 0, the default, is what records
 *     written before it held there: no new record version)
 *  88 char spec[128] */
#define REC_BYTES 216

static void rec_put(uint8_t *p, const db_rec *r)
{
    memset(p, 0, REC_BYTES);
    put32le(p, 1);
    put32le(p + 4, r->id);
    put32le(p + 8, r->cfg.d);
    put32le(p + 12, r->cfg.metric);
    put32le(p + 16, r->cfg.rerank);
    put32le(p + 20, r->cfg.nprobe);
    uint32_t f;
    memcpy(&f, &r->cfg.oversampling, 4);
    put32le(p + 24, f);
    put32le(p + 28, r->code_size);
    put64le(p + 32, r->cfg.train_size);
    put64le(p + 40, r->count);
    put64le(p + 48, r->next_iid);
    put64le(p + 56, r->deleted);
    put64le(p + 64, r->code_bytes);
    put64le(p + 72, r->payload_bytes);
    put32le(p + 80, r->trained);
    memcpy(&f, &r->cfg.sq_clip, 4);
    put32le(p + 84, f);
    memcpy(p + 88, r->cfg.spec, sizeof r->cfg.spec);
    p[88 + sizeof r->cfg.spec - 1] = 0;
}

/* sq_clip: 0 (default) or a quantile in (0.5, 1] (vqs_codec_opts.sq_clip) */
static int clip_ok(float c) { return c == 0 || (c > 0.5f && c <= 1.0f); }

static int rec_get(const MDB_val *v, db_rec *r, const char *name)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size != REC_BYTES || get32le(p) != 1)
        return vqs_seterr(VQS_ECORRUPT, "collection '%s': configuration record of %zu bytes, version %u (expected %d bytes, version 1)",
                          name, v->mv_size, v->mv_size >= 4 ? get32le(p) : 0, REC_BYTES);
    memset(r, 0, sizeof *r);
    r->id = get32le(p + 4);
    r->cfg.d = get32le(p + 8);
    r->cfg.metric = get32le(p + 12);
    r->cfg.rerank = get32le(p + 16);
    r->cfg.nprobe = get32le(p + 20);
    uint32_t f = get32le(p + 24);
    memcpy(&r->cfg.oversampling, &f, 4);
    r->code_size = get32le(p + 28);
    r->cfg.train_size = get64le(p + 32);
    r->count = get64le(p + 40);
    r->next_iid = get64le(p + 48);
    r->deleted = get64le(p + 56);
    r->code_bytes = get64le(p + 64);
    r->payload_bytes = get64le(p + 72);
    r->trained = get32le(p + 80);
    f = get32le(p + 84);
    memcpy(&r->cfg.sq_clip, &f, 4);
    memcpy(r->cfg.spec, p + 88, sizeof r->cfg.spec);
    r->cfg.spec[sizeof r->cfg.spec - 1] = 0;
    if (r->cfg.d == 0 || r->cfg.metric > 2 || r->cfg.rerank > 2 || !clip_ok(r->cfg.sq_clip))
        return vqs_seterr(VQS_ECORRUPT, "collection '%s': configuration record holds d %u, metric %u, rerank %u, "
                          "sq_clip %g", name, r->cfg.d, r->cfg.metric, r->cfg.rerank, (double)r->cfg.sq_clip);
    return 0;
}

static int check_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 63 || name[0] == '.')
        return vqs_seterr(VQS_EINVAL, "collection name '%s': 1 to 63 characters, not starting with '.'",
                          name ? name : "(null)");
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.'))
            return vqs_seterr(VQS_EINVAL, "collection name '%s': character %zu ('%c') is not one of A-Z a-z 0-9 _ - .",
                              name, i + 1, c);
    }
    return 0;
}

static MDB_val name_key(const char *name, char buf[72])
{
    int len = snprintf(buf, 72, "c:%s", name);
    return (MDB_val){(size_t)len, buf};
}

/* A read or write transaction under the shared grow lock. */
int db_txn_begin(vqs_db *db, int write, MDB_txn **t)
{
    for (;;) {
        pthread_rwlock_rdlock(&db->grow);
        int rc = mdb_txn_begin(db->env, NULL, write ? 0 : MDB_RDONLY, t);
        if (rc == 0)
            return 0;
        pthread_rwlock_unlock(&db->grow);
        if (rc != MDB_MAP_RESIZED)
            return db_lmdb_err(rc, "begin transaction", NULL);
        pthread_rwlock_wrlock(&db->grow); /* another process grew the map: adopt its size */
        rc = mdb_env_set_mapsize(db->env, 0);
        MDB_envinfo ei;
        if (!rc && !mdb_env_info(db->env, &ei))
            db->map_size = ei.me_mapsize;
        pthread_rwlock_unlock(&db->grow);
        if (rc)
            return db_lmdb_err(rc, "adopt the grown map", NULL);
    }
}

void db_txn_abort(vqs_db *db, MDB_txn *t)
{
    mdb_txn_abort(t);
    pthread_rwlock_unlock(&db->grow);
}

int db_txn_commit(vqs_db *db, MDB_txn *t)
{
    int rc = mdb_txn_commit(t);
    pthread_rwlock_unlock(&db->grow);
    return rc;
}

/* Doubles the map (no transaction of ours may be open). */
int db_grow_map(vqs_db *db)
{
    pthread_rwlock_wrlock(&db->grow);
    int rc = 0;
    if (db->map_size >= db->max_map_size) {
        rc = vqs_seterr(VQS_ENOMEM, "%s/vqs.mdb: the LMDB map is full at its limit of %zu bytes", db->dir,
                        db->max_map_size);
    } else {
        size_t ns = db->map_size * 2 > db->max_map_size ? db->max_map_size : db->map_size * 2;
        int r = mdb_env_set_mapsize(db->env, ns);
        if (r)
            rc = db_lmdb_err(r, "grow the map", NULL);
        else
            db->map_size = ns;
    }
    pthread_rwlock_unlock(&db->grow);
    return rc;
}

int db_get_rec(vqs_db *db, MDB_txn *t, const char *name, db_rec *r)
{
    char kb[72];
    int rc = check_name(name);
    if (rc)
        return rc;
    MDB_val k = name_key(name, kb), v;
    rc = mdb_get(t, db->meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return vqs_seterr(VQS_ENOTFOUND, "collection '%s' does not exist in %s", name, db->dir);
    if (rc)
        return db_lmdb_err(rc, "read the configuration", name);
    return rec_get(&v, r, name);
}

int db_put_rec(vqs_db *db, MDB_txn *t, const char *name, const db_rec *r)
{
    char kb[72];
    uint8_t buf[REC_BYTES];
    rec_put(buf, r);
    MDB_val k = name_key(name, kb), v = {REC_BYTES, buf};
    return mdb_put(t, db->meta, &k, &v, 0);
}

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

/* pt value: kind(1) id(16: u64 BE in the first 8 bytes, or the UUID) payload */
#define PT_HDR 17

static int pt_decode(const MDB_val *v, vqs_pid *id, const char **pay, size_t *plen)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size < PT_HDR || (p[0] != VQS_PID_U64 && p[0] != VQS_PID_UUID))
        return vqs_seterr(VQS_ECORRUPT, "point record of %zu bytes, id kind %u", v->mv_size,
                          v->mv_size ? p[0] : 0);
    if (id) {
        memset(id, 0, sizeof *id);
        id->kind = p[0];
        if (p[0] == VQS_PID_U64)
            id->u64 = get64be(p + 1);
        else
            memcpy(id->uuid, p + 1, 16);
    }
    if (pay) {
        *plen = v->mv_size - PT_HDR;
        *pay = *plen ? (const char *)p + PT_HDR : NULL;
    }
    return 0;
}

char *db_dup_payload(const char *p, size_t n)
{
    if (!p)
        return NULL;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

/* ---- open / close -------------------------------------------------------- */

int vqs_db_open(const char *dir, const vqs_db_opts *o, vqs_db **out)
{
    if (!dir || !out)
        return vqs_seterr(VQS_EINVAL, "db_open: NULL argument");
    *out = NULL;
    vqs_db_opts def = {0};
    if (!o)
        o = &def;
    if (strlen(dir) > 4000)
        return vqs_seterr(VQS_EINVAL, "db_open: directory name too long");
    if (!o->read_only && mkdir(dir, 0755) != 0 && errno != EEXIST)
        return vqs_seterr(-errno, "%s: cannot create the data directory: %s", dir, strerror(errno));
    char path[4200];
    snprintf(path, sizeof path, "%s/vqs.mdb", dir);
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT || o->read_only)
            return vqs_seterr(-errno, "%s: %s", path, strerror(errno));
        int fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
        if (fd < 0 || fstat(fd, &st) != 0) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            return vqs_seterr(-e, "%s: cannot create: %s", path, strerror(e));
        }
        close(fd);
    }
    if (!S_ISREG(st.st_mode))
        return vqs_seterr(VQS_EINVAL, "%s: not a regular file", path);
    int rc = reg_add(st.st_dev, st.st_ino, path);
    if (rc)
        return rc;
    vqs_db *db = calloc(1, sizeof *db);
    if (!db) {
        reg_del(st.st_dev, st.st_ino);
        return vqs_seterr(VQS_ENOMEM, "db_open");
    }
    db->lockfd = -1;
    if (!o->read_only && (rc = dir_lock(dir, &db->lockfd))) {
        reg_del(st.st_dev, st.st_ino);
        free(db);
        return rc;
    }
    db->dev = st.st_dev;
    db->ino = st.st_ino;
    snprintf(db->dir, sizeof db->dir, "%s", dir);
    pthread_rwlock_init(&db->grow, NULL);
    db->read_only = o->read_only;
    db->max_map_size = o->max_map_size ? o->max_map_size : (size_t)1 << 40;
    size_t want = o->map_size ? o->map_size : (size_t)64 << 20;
    MDB_txn *t = NULL;
    int r;
    if ((r = mdb_env_create(&db->env))) {
        rc = db_lmdb_err(r, "create the environment", NULL);
        goto fail;
    }
    mdb_env_set_maxdbs(db->env, 8);
    mdb_env_set_maxreaders(db->env, 1024);
    /* A file bigger than the requested map keeps its size (LMDB would
     * otherwise refuse: the map must cover the file). */
    if (want > db->max_map_size)
        want = db->max_map_size;
    if ((size_t)st.st_size > want)
        want = (size_t)st.st_size;
    mdb_env_set_mapsize(db->env, want);
    r = mdb_env_open(db->env, path, MDB_NOSUBDIR | MDB_NOTLS | (o->read_only ? MDB_RDONLY : 0), 0644);
    if (r) {
        rc = r == MDB_INVALID ? vqs_seterr(VQS_ECORRUPT, "%s: not an LMDB file, or its header pages are damaged", path)
             : r == MDB_VERSION_MISMATCH
                 ? vqs_seterr(VQS_EVERSION, "%s: written by an incompatible LMDB version", path)
                 : vqs_seterr(r > 0 ? -r : VQS_ECORRUPT, "%s: %s", path, mdb_strerror(r));
        goto fail;
    }
    MDB_envinfo ei;
    MDB_stat ms;
    mdb_env_info(db->env, &ei);
    mdb_env_stat(db->env, &ms);
    db->map_size = ei.me_mapsize;
    if (stat(path, &st) == 0 && (uint64_t)st.st_size < ((uint64_t)ei.me_last_pgno + 1) * ms.ms_psize) {
        rc = vqs_seterr(VQS_ECORRUPT, "%s: truncated: %lld bytes, its last committed page ends at byte %llu",
                        path, (long long)st.st_size,
                        (unsigned long long)(((uint64_t)ei.me_last_pgno + 1) * ms.ms_psize));
        goto fail;
    }
    if ((rc = db_txn_begin(db, !o->read_only, &t)))
        goto fail;
    unsigned fl = o->read_only ? 0 : MDB_CREATE;
    const char *names[] = {"meta", "seg", "ext", "pt", "dead"};
    MDB_dbi *dbis[] = {&db->meta, &db->seg, &db->ext, &db->pt, &db->dead};
    for (int i = 0; i < 5; i++) {
        r = mdb_dbi_open(t, names[i], fl, dbis[i]);
        if (r == MDB_NOTFOUND && o->read_only) {
            rc = vqs_seterr(VQS_ENOTFOUND, "%s: holds no vqs collections (database '%s' missing)", path, names[i]);
            goto fail_txn;
        }
        if (r) {
            rc = r == MDB_INCOMPATIBLE ? vqs_seterr(VQS_ECORRUPT, "%s: '%s' is not a vqs database", path, names[i])
                                       : db_lmdb_err(r, names[i], NULL);
            goto fail_txn;
        }
    }
    MDB_val k = {6, "layout"}, v;
    r = mdb_get(t, db->meta, &k, &v);
    if (r == MDB_NOTFOUND && !o->read_only) {
        uint8_t b[4];
        put32le(b, VQS_DB_LAYOUT_VERSION);
        v = (MDB_val){4, b};
        if ((r = mdb_put(t, db->meta, &k, &v, 0))) {
            rc = db_lmdb_err(r, "write the layout version", NULL);
            goto fail_txn;
        }
    } else if (r) {
        rc = r == MDB_NOTFOUND ? vqs_seterr(VQS_ECORRUPT, "%s: no layout version record", path)
                               : db_lmdb_err(r, "read the layout version", NULL);
        goto fail_txn;
    } else if (v.mv_size != 4 || get32le(v.mv_data) != VQS_DB_LAYOUT_VERSION) {
        rc = vqs_seterr(VQS_EVERSION, "%s: storage layout version %u; this vqs reads version %d only",
                        path, v.mv_size == 4 ? get32le(v.mv_data) : 0, VQS_DB_LAYOUT_VERSION);
        goto fail_txn;
    }
    /* commit even a read-only transaction: aborting it would close the
     * database handles it opened */
    if ((r = db_txn_commit(db, t))) {
        t = NULL;
        rc = db_lmdb_err(r, "commit", NULL);
        goto fail;
    }
    *out = db;
    return 0;
fail_txn:
    db_txn_abort(db, t);
fail:
    if (db->env)
        mdb_env_close(db->env);
    pthread_rwlock_destroy(&db->grow);
    reg_del(db->dev, db->ino);
    if (db->lockfd >= 0)
        close(db->lockfd);
    free(db);
    return rc;
}

void vqs_db_close(vqs_db *db)
{
    if (!db)
        return;
    mdb_env_close(db->env);
    pthread_rwlock_destroy(&db->grow);
    reg_del(db->dev, db->ino);
    if (db->lockfd >= 0)
        close(db->lockfd); /* releases the directory lock */
    free(db);
}

int vqs_db_is_read_only(const vqs_db *db) { return db->read_only; }

const char *vqs_db_dir(const vqs_db *db) { return db->dir; }
size_t vqs_db_map_size(const vqs_db *db) { return db->map_size; }

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

/* ---- collections --------------------------------------------------------- */

static int check_cfg(const char *name, const vqs_db_config *c)
{
    if (c->d == 0 || c->d > VQS_MAX_DIM_DEFAULT)
        return vqs_seterr(VQS_EINVAL, "collection '%s': dimension %u (1..%d)", name, c->d, VQS_MAX_DIM_DEFAULT);
    if (c->metric > 2)
        return vqs_seterr(VQS_EINVAL, "collection '%s': metric %u", name, c->metric);
    if (c->rerank > 2)
        return vqs_seterr(VQS_EINVAL, "collection '%s': rerank %u (0 none, 1 disk, 2 memory)", name, c->rerank);
    if (!memchr(c->spec, 0, sizeof c->spec) || !c->spec[0])
        return vqs_seterr(VQS_EINVAL, "collection '%s': empty or unterminated spec", name);
    if (!(c->oversampling >= 0) || c->oversampling > 1e6f)
        return vqs_seterr(VQS_EINVAL, "collection '%s': oversampling %g", name, (double)c->oversampling);
    if (!clip_ok(c->sq_clip))
        return vqs_seterr(VQS_EINVAL, "collection '%s': sq_clip %g (0: default, or a quantile in (0.5, 1])", name,
                          (double)c->sq_clip);
    return 0;
}

int vqs_db_create(vqs_db *db, const char *name, const vqs_db_config *cfg)
{
    if (!db || !cfg)
        return vqs_seterr(VQS_EINVAL, "db_create: NULL argument");
    int rc = check_name(name);
    if (rc || (rc = check_cfg(name, cfg)))
        return rc;
    if (db->read_only)
        return vqs_seterr(VQS_EINVAL, "%s: opened read-only", db->dir);
    for (;;) {
        MDB_txn *t;
        if ((rc = db_txn_begin(db, 1, &t)))
            return rc;
        char kb[72];
        MDB_val k = name_key(name, kb), v;
        int r = mdb_get(t, db->meta, &k, &v);
        if (r == 0) {
            db_txn_abort(db, t);
            return vqs_seterr(-EEXIST, "collection '%s' already exists in %s", name, db->dir);
        }
        MDB_val nk = {7, "next_id"}, nv;
        uint32_t id = 1;
        if ((r = mdb_get(t, db->meta, &nk, &nv)) == 0 && nv.mv_size == 4)
            id = get32le(nv.mv_data);
        uint8_t b[4];
        put32le(b, id + 1);
        nv = (MDB_val){4, b};
        db_rec rec = {0};
        rec.id = id;
        rec.cfg = *cfg;
        if (!(r = mdb_put(t, db->meta, &nk, &nv, 0)) && !(r = db_put_rec(db, t, name, &rec)))
            r = db_txn_commit(db, t);
        else
            db_txn_abort(db, t);
        if (r == MDB_MAP_FULL) {
            if ((rc = db_grow_map(db)))
                return rc;
            continue;
        }
        return r ? db_lmdb_err(r, "create", name) : 0;
    }
}

/* Deletes every key of dbi that starts with the 4-byte prefix. */
static int del_prefix(MDB_txn *t, MDB_dbi dbi, uint32_t coll)
{
    MDB_cursor *cur;
    int r = mdb_cursor_open(t, dbi, &cur);
    if (r)
        return r;
    uint8_t pre[4];
    put32be(pre, coll);
    MDB_val k = {4, pre}, v;
    r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (r == 0 && k.mv_size >= 4 && memcmp(k.mv_data, pre, 4) == 0) {
        if ((r = mdb_cursor_del(cur, 0)))
            break;
        r = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (r == MDB_NOTFOUND || r == EINVAL) /* deleted the last item */
            break;
        if (r == 0)
            continue;
    }
    mdb_cursor_close(cur);
    return r == MDB_NOTFOUND || r == EINVAL ? 0 : r;
}

static MDB_val trained_key(uint32_t coll, uint8_t buf[6])
{
    buf[0] = 't', buf[1] = ':';
    put32be(buf + 2, coll);
    return (MDB_val){6, buf};
}

int vqs_db_drop(vqs_db *db, const char *name)
{
    if (!db)
        return vqs_seterr(VQS_EINVAL, "db_drop: NULL argument");
    if (db->read_only)
        return vqs_seterr(VQS_EINVAL, "%s: opened read-only", db->dir);
    for (;;) {
        MDB_txn *t;
        int rc = db_txn_begin(db, 1, &t);
        if (rc)
            return rc;
        db_rec rec;
        if ((rc = db_get_rec(db, t, name, &rec))) {
            db_txn_abort(db, t);
            return rc;
        }
        char kb[72];
        uint8_t tb[6];
        MDB_val k = name_key(name, kb), tk = trained_key(rec.id, tb);
        int r = mdb_del(t, db->meta, &k, NULL);
        if (!r && (r = mdb_del(t, db->meta, &tk, NULL)) == MDB_NOTFOUND)
            r = 0;
        MDB_dbi all[] = {db->seg, db->ext, db->pt, db->dead};
        for (int i = 0; !r && i < 4; i++)
            r = del_prefix(t, all[i], rec.id);
        if (!r)
            r = db_txn_commit(db, t);
        else
            db_txn_abort(db, t);
        if (r == MDB_MAP_FULL) {
            if ((rc = db_grow_map(db)))
                return rc;
            continue;
        }
        return r ? db_lmdb_err(r, "drop", name) : 0;
    }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int vqs_db_list(vqs_db *db, char ***names, size_t *n)
{
    if (!db || !names || !n)
        return vqs_seterr(VQS_EINVAL, "db_list: NULL argument");
    *names = NULL;
    *n = 0;
    MDB_txn *t;
    int rc = db_txn_begin(db, 0, &t);
    if (rc)
        return rc;
    MDB_cursor *cur;
    int r = mdb_cursor_open(t, db->meta, &cur);
    if (r) {
        db_txn_abort(db, t);
        return db_lmdb_err(r, "list", NULL);
    }
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    MDB_val k = {2, "c:"}, d;
    for (r = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); r == 0; r = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        if (k.mv_size < 2 || memcmp(k.mv_data, "c:", 2) != 0)
            break;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 8;
            char **nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                rc = vqs_seterr(VQS_ENOMEM, "db_list");
                break;
            }
            v = nv;
        }
        if (!(v[cnt] = db_dup_payload((const char *)k.mv_data + 2, k.mv_size - 2))) {
            rc = vqs_seterr(VQS_ENOMEM, "db_list");
            break;
        }
        cnt++;
    }
    mdb_cursor_close(cur);
    db_txn_abort(db, t);
    if (rc) {
        vqs_db_list_free(v, cnt);
        return rc;
    }
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_str);
    *names = v;
    *n = cnt;
    return 0;
}

void vqs_db_list_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

int vqs_db_info(vqs_db *db, const char *name, vqs_db_stats *info)
{
    if (!db || !info)
        return vqs_seterr(VQS_EINVAL, "db_info: NULL argument");
    MDB_txn *t;
    int rc = db_txn_begin(db, 0, &t);
    if (rc)
        return rc;
    db_rec r;
    rc = db_get_rec(db, t, name, &r);
    db_txn_abort(db, t);
    if (rc)
        return rc;
    memset(info, 0, sizeof *info);
    info->cfg = r.cfg;
    info->count = r.count;
    info->next_iid = r.next_iid;
    info->layout_version = VQS_DB_LAYOUT_VERSION;
    info->code_bytes = r.code_bytes;
    info->payload_bytes = r.payload_bytes;
    info->deleted = r.deleted;
    info->trained = r.trained != 0;
    return 0;
}

int vqs_db_count(vqs_db *db, const char *name, uint64_t *count)
{
    vqs_db_stats in = {0};
    int rc = vqs_db_info(db, name, &in);
    if (!rc && count)
        *count = in.count;
    return rc;
}

/* LMDB reports a short write as EIO. Its usual cause is a file system
 * that filled up in the middle of the write (or RLIMIT_FSIZE): say so, so
 * that callers can tell "out of space" (HTTP 507) from a failing disk. */
static int short_write_cause(const vqs_db *db)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/vqs.mdb", db->dir);
    struct stat st;
    struct rlimit rl;
    if (stat(path, &st) == 0 && getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (uint64_t)st.st_size + ((uint64_t)1 << 20) >= (uint64_t)rl.rlim_cur)
        return EFBIG;
    struct statvfs fs;
    if (statvfs(db->dir, &fs) == 0 && (uint64_t)fs.f_bavail * fs.f_frsize < ((uint64_t)4 << 20))
        return ENOSPC;
    return EIO;
}

int db_write_txn(vqs_db *db, const char *name, const char *what, db_write_fn fn, void *ctx)
{
    if (db->read_only)
        return vqs_seterr(VQS_EINVAL, "%s: opened read-only", db->dir);
    for (;;) {
        MDB_txn *t;
        int rc = db_txn_begin(db, 1, &t);
        if (rc)
            return rc;
        int vqs = 0;
        int r = fn(db, t, ctx, &vqs);
        if (r) {
            db_txn_abort(db, t);
            if (vqs)
                return r;
        } else {
            r = db_txn_commit(db, t);
        }
        if (r == MDB_MAP_FULL) {
            if ((rc = db_grow_map(db)))
                return rc;
            continue;
        }
        if (r == EIO)
            r = short_write_cause(db);
        if (r == ENOSPC || r == EFBIG || r == EDQUOT || r == EIO)
            return vqs_seterr(-r, "collection '%s': %s: writing %s/vqs.mdb: %s%s (nothing of this write was stored)",
                              name, what, db->dir, strerror(r),
                              r == EIO ? " (a short write, with room left on the disk)" : "");
        return r ? db_lmdb_err(r, what, name) : 0;
    }
}

typedef struct cfg_ctx {
    const char *name;
    const vqs_db_config *cfg;
    const void *blob;
    size_t len;
} cfg_ctx;

static int set_config_fn(vqs_db *db, MDB_txn *t, void *ctx, int *vqs)
{
    cfg_ctx *C = ctx;
    db_rec r;
    int rc = db_get_rec(db, t, C->name, &r);
    if (rc)
        return *vqs = 1, rc;
    const vqs_db_config *n = C->cfg;
    if (n->d != r.cfg.d || n->metric != r.cfg.metric || n->rerank != r.cfg.rerank || strcmp(n->spec, r.cfg.spec) ||
        n->sq_clip != r.cfg.sq_clip)
        return *vqs = 1, vqs_seterr(VQS_EINVAL, "collection '%s': dimension, metric, spec, sq_clip and rerank storage "
                                    "cannot change", C->name);
    if ((rc = check_cfg(C->name, n)))
        return *vqs = 1, rc;
    r.cfg = *n;
    return db_put_rec(db, t, C->name, &r);
}

int vqs_db_set_config(vqs_db *db, const char *name, const vqs_db_config *cfg)
{
    if (!db || !cfg)
        return vqs_seterr(VQS_EINVAL, "db_set_config: NULL argument");
    cfg_ctx C = {name, cfg, NULL, 0};
    return db_write_txn(db, name, "set the configuration", set_config_fn, &C);
}

/* Reads the collection record into *r and stores the trained-state blob
 * (refused if one is stored); the caller sets r->trained and writes r back. */
static int put_trained(vqs_db *db, MDB_txn *t, const char *name, db_rec *r, const void *blob, size_t len,
                       int *vqs)
{
    int rc = db_get_rec(db, t, name, r);
    if (rc)
        return *vqs = 1, rc;
    if (r->trained)
        return *vqs = 1, vqs_seterr(VQS_EINVAL, "collection '%s' is already trained", name);
    uint8_t tb[6];
    MDB_val k = trained_key(r->id, tb), v = {len, (void *)blob};
    return mdb_put(t, db->meta, &k, &v, 0);
}

static int set_trained_fn(vqs_db *db, MDB_txn *t, void *ctx, int *vqs)
{
    cfg_ctx *C = ctx;
    db_rec r;
    int rc = put_trained(db, t, C->name, &r, C->blob, C->len, vqs);
    if (rc)
        return rc;
    r.trained = 1;
    return db_put_rec(db, t, C->name, &r);
}

int vqs_db_set_trained(vqs_db *db, const char *name, const void *blob, size_t len)
{
    if (!db || !blob || !len)
        return vqs_seterr(VQS_EINVAL, "db_set_trained: NULL or empty blob");
    cfg_ctx C = {name, NULL, blob, len};
    return db_write_txn(db, name, "store the trained state", set_trained_fn, &C);
}

typedef struct recode_ctx {
    const char *name;
    const void *blob;
    size_t len;
    size_t new_cs;
    vqs_db_recode_fn fn;
    void *ctx;
} recode_ctx;

static int recode_fn(vqs_db *db, MDB_txn *t, void *ctx, int *vqs)
{
    recode_ctx *R = ctx;
    db_rec r;
    int rc = put_trained(db, t, R->name, &r, R->blob, R->len, vqs), e;
    if (rc)
        return rc;
    /* the segment keys first: rewriting values under an open cursor is not
     * worth the subtlety */
    size_t nseg = 0, cap = 0;
    uint64_t *firsts = NULL;
    MDB_cursor *cur;
    if ((e = mdb_cursor_open(t, db->seg, &cur)))
        return e;
    uint8_t ib[12];
    MDB_val k = db_iid_key(r.id, 0, ib), v;
    for (e = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); e == 0; e = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 12 || get32be(k.mv_data) != r.id)
            break;
        if (nseg == cap) {
            cap = cap ? 2 * cap : 64;
            uint64_t *f = realloc(firsts, 8 * cap);
            if (!f) {
                mdb_cursor_close(cur);
                free(firsts);
                return *vqs = 1, vqs_seterr(VQS_ENOMEM, "recode: %zu segments", cap);
            }
            firsts = f;
        }
        firsts[nseg++] = get64be((const uint8_t *)k.mv_data + 4);
    }
    mdb_cursor_close(cur);
    if (e && e != MDB_NOTFOUND) {
        free(firsts);
        return e;
    }
    e = 0;
    uint64_t code_bytes = 0;
    uint8_t *in = NULL;
    size_t incap = 0;
    for (size_t si = 0; si < nseg && !rc; si++) {
        k = db_iid_key(r.id, firsts[si], ib);
        if ((e = mdb_get(t, db->seg, &k, &v)))
            break;
        const uint8_t *s = v.mv_data;
        size_t n = v.mv_size >= 8 ? get32le(s) : 0, cs = v.mv_size >= 8 ? get32le(s + 4) : 0;
        if (v.mv_size < 8 || cs != r.code_size || v.mv_size != 8 + 4 * n + n * cs) {
            rc = vqs_seterr(VQS_ECORRUPT, "collection '%s': segment at internal id %llu is malformed", R->name,
                            (unsigned long long)firsts[si]);
            break;
        }
        if (n * cs > incap) {
            free(in);
            incap = n * cs;
            if (!(in = malloc(incap))) {
                rc = vqs_seterr(VQS_ENOMEM, "recode: %zu bytes", incap);
                break;
            }
        }
        memcpy(in, s + 8 + 4 * n, n * cs);
        MDB_val nv = {8 + 4 * n + n * R->new_cs, NULL};
        if ((e = mdb_put(t, db->seg, &k, &nv, MDB_RESERVE)))
            break;
        uint8_t *o = nv.mv_data;
        put32le(o, (uint32_t)n);
        put32le(o + 4, (uint32_t)R->new_cs);
        uint32_t *lists = malloc(4 * (n ? n : 1));
        if (!lists) {
            rc = vqs_seterr(VQS_ENOMEM, "recode: %zu points", n);
            break;
        }
        rc = R->fn(R->ctx, firsts[si], n, in, cs, lists, o + 8 + 4 * n);
        for (size_t i = 0; !rc && i < n; i++)
            put32le(o + 8 + 4 * i, lists[i]);
        free(lists);
        code_bytes += n * R->new_cs;
    }
    free(in);
    free(firsts);
    if (rc)
        return *vqs = 1, rc;
    if (e)
        return e;
    r.code_size = (uint32_t)R->new_cs;
    r.code_bytes = code_bytes;
    r.trained = 1;
    return db_put_rec(db, t, R->name, &r);
}

int vqs_db_train_recode(vqs_db *db, const char *name, const void *blob, size_t len, size_t code_size,
                        vqs_db_recode_fn fn, void *ctx)
{
    if (!db || !blob || !len || !fn || code_size == 0 || code_size > (1u << 20))
        return vqs_seterr(VQS_EINVAL, "db_train_recode: NULL or empty argument");
    recode_ctx R = {name, blob, len, code_size, fn, ctx};
    return db_write_txn(db, name, "store the trained state and re-encode", recode_fn, &R);
}

int vqs_db_get_trained(vqs_db *db, const char *name, void **blob, size_t *len)
{
    if (!db || !blob || !len)
        return vqs_seterr(VQS_EINVAL, "db_get_trained: NULL argument");
    *blob = NULL;
    *len = 0;
    MDB_txn *t;
    int rc = db_txn_begin(db, 0, &t);
    if (rc)
        return rc;
    db_rec r;
    if ((rc = db_get_rec(db, t, name, &r)))
        goto done;
    uint8_t tb[6];
    MDB_val k = trained_key(r.id, tb), v;
    int e = mdb_get(t, db->meta, &k, &v);
    if (e == MDB_NOTFOUND) {
        rc = r.trained ? vqs_seterr(VQS_ECORRUPT, "collection '%s': marked trained, its trained state is missing", name)
                       : vqs_seterr(VQS_ENOTFOUND, "collection '%s' is not trained", name);
    } else if (e) {
        rc = db_lmdb_err(e, "read the trained state", name);
    } else if (!(*blob = malloc(v.mv_size ? v.mv_size : 1))) {
        rc = vqs_seterr(VQS_ENOMEM, "db_get_trained: %zu bytes", v.mv_size);
    } else {
        memcpy(*blob, v.mv_data, v.mv_size);
        *len = v.mv_size;
    }
done:
    db_txn_abort(db, t);
    return rc;
}

/* ---- points -------------------------------------------------------------- */

typedef struct ups_ctx {
    const char *name;
    const vqs_db_batch *b;
    uint64_t *iids, *old;
    int (*before_commit)(void *, uint64_t, size_t);
    void *ctx;
} ups_ctx;

/* Marks a live internal id dead: removes its point record, adds it to the
 * dead set. */
static int kill_iid(vqs_db *db, MDB_txn *t, db_rec *r, uint64_t iid)
{
    uint8_t kb[12];
    MDB_val k = db_iid_key(r->id, iid, kb), v;
    int e = mdb_get(t, db->pt, &k, &v);
    if (e == 0) {
        r->payload_bytes -= v.mv_size >= PT_HDR ? v.mv_size - PT_HDR : 0;
        if ((e = mdb_del(t, db->pt, &k, NULL)))
            return e;
    } else if (e != MDB_NOTFOUND) {
        return e;
    }
    MDB_val empty = {0, ""};
    if ((e = mdb_put(t, db->dead, &k, &empty, 0)))
        return e;
    r->deleted++;
    r->count--;
    return 0;
}

static int cmp_key21(const void *a, const void *b) { return memcmp(a, b, 21); }

static int upsert_fn(vqs_db *db, MDB_txn *t, void *ctx, int *vqs)
{
    ups_ctx *U = ctx;
    const vqs_db_batch *b = U->b;
    db_rec r;
    int rc = db_get_rec(db, t, U->name, &r);
    if (rc)
        return *vqs = 1, rc;
    if (r.code_size && b->code_size != r.code_size)
        return *vqs = 1, vqs_seterr(VQS_EINVAL, "collection '%s': codes of %zu bytes, the stored ones have %u",
                                    U->name, b->code_size, r.code_size);
    if (b->code_size == 0 || b->code_size > (1u << 20))
        return *vqs = 1, vqs_seterr(VQS_EINVAL, "collection '%s': code size %zu", U->name, b->code_size);
    if (b->n > (1u << 24))
        return *vqs = 1, vqs_seterr(VQS_EINVAL, "collection '%s': batch of %zu points (at most 2^24)", U->name, b->n);
    uint64_t first = r.next_iid;
    uint8_t kb[21], ib[12];
    int e;
    for (size_t i = 0; i < b->n; i++) {
        MDB_val k, v;
        if ((rc = db_ext_key(r.id, &b->ids[i], kb, &k)))
            return *vqs = 1, vqs_seterr(rc, "collection '%s': point %zu of the batch: %s", U->name, i, vqs_errdetail());
        uint64_t old = UINT64_MAX;
        e = mdb_get(t, db->ext, &k, &v);
        if (e == 0) {
            if (v.mv_size != 8)
                return *vqs = 1, vqs_seterr(VQS_ECORRUPT, "collection '%s': id map entry of %zu bytes", U->name, v.mv_size);
            old = get64le(v.mv_data);
            if (old >= first)
                return *vqs = 1, vqs_seterr(VQS_EINVAL, "collection '%s': point %zu of the batch repeats an id earlier in the batch",
                                            U->name, i);
            if ((e = kill_iid(db, t, &r, old)))
                return e;
        } else if (e != MDB_NOTFOUND) {
            return e;
        }
        if (U->old)
            U->old[i] = old;
        uint64_t iid = first + i;
        if (U->iids)
            U->iids[i] = iid;
        uint8_t vb[8];
        put64le(vb, iid);
        MDB_val iv = {8, vb};
        if ((e = mdb_put(t, db->ext, &k, &iv, 0)))
            return e;
        const char *pay = b->payloads ? b->payloads[i] : NULL;
        size_t plen = pay ? strlen(pay) : 0;
        MDB_val pk = db_iid_key(r.id, iid, ib), pv = {PT_HDR + plen, NULL};
        if ((e = mdb_put(t, db->pt, &pk, &pv, MDB_RESERVE)))
            return e;
        uint8_t *p = pv.mv_data;
        memset(p, 0, PT_HDR);
        p[0] = b->ids[i].kind;
        if (p[0] == VQS_PID_U64)
            put64be(p + 1, b->ids[i].u64);
        else
            memcpy(p + 1, b->ids[i].uuid, 16);
        if (plen)
            memcpy(p + PT_HDR, pay, plen);
        r.payload_bytes += plen;
        r.count++;
    }
    /* the segment: u32 n, u32 code_size, n u32 lists, n * code_size bytes */
    size_t sz = 8 + 4 * b->n + b->n * b->code_size;
    MDB_val sk = db_iid_key(r.id, first, ib), sv = {sz, NULL};
    if ((e = mdb_put(t, db->seg, &sk, &sv, MDB_RESERVE)))
        return e;
    uint8_t *s = sv.mv_data;
    put32le(s, (uint32_t)b->n);
    put32le(s + 4, (uint32_t)b->code_size);
    for (size_t i = 0; i < b->n; i++)
        put32le(s + 8 + 4 * i, b->lists ? b->lists[i] : 0);
    memcpy(s + 8 + 4 * b->n, b->codes, b->n * b->code_size);
    r.code_size = (uint32_t)b->code_size;
    r.code_bytes += b->n * b->code_size;
    r.next_iid = first + b->n;
    if ((e = db_put_rec(db, t, U->name, &r)))
        return e;
    if (U->before_commit && (rc = U->before_commit(U->ctx, first, b->n)))
        return *vqs = 1, rc;
    return 0;
}

int vqs_db_upsert(vqs_db *db, const char *name, const vqs_db_batch *b, uint64_t *iids,
                  uint64_t *old_iids, int (*before_commit)(void *ctx, uint64_t first, size_t n),
                  void *ctx)
{
    if (!db || !b || (b->n && (!b->ids || !b->codes)))
        return vqs_seterr(VQS_EINVAL, "db_upsert: NULL argument");
    if (b->n == 0)
        return 0;
    /* ids must be distinct within the batch (the in-transaction check above
     * only catches a repeat of an id that was new; sorting catches all) */
    uint8_t *keys = malloc(21 * b->n);
    if (!keys)
        return vqs_seterr(VQS_ENOMEM, "db_upsert: %zu points", b->n);
    for (size_t i = 0; i < b->n; i++) {
        MDB_val k;
        memset(keys + 21 * i, 0, 21);
        int rc = db_ext_key(0, &b->ids[i], keys + 21 * i, &k);
        if (rc) {
            free(keys);
            return vqs_seterr(rc, "collection '%s': point %zu of the batch: %s", name, i, vqs_errdetail());
        }
    }
    qsort(keys, b->n, 21, cmp_key21);
    for (size_t i = 1; i < b->n; i++)
        if (!memcmp(keys + 21 * (i - 1), keys + 21 * i, 21)) {
            vqs_pid p = {0};
            p.kind = keys[21 * i + 4];
            if (p.kind == VQS_PID_U64)
                p.u64 = get64be(keys + 21 * i + 5);
            else
                memcpy(p.uuid, keys + 21 * i + 5, 16);
            char buf[40];
            free(keys);
            return vqs_seterr(VQS_EINVAL, "collection '%s': point id %s appears twice in the batch", name,
                              vqs_pid_format(&p, buf));
        }
    free(keys);
    ups_ctx U = {name, b, iids, old_iids, before_commit, ctx};
    return db_write_txn(db, name, "upsert", upsert_fn, &U);
}

typedef struct del_ctx {
    const char *name;
    size_t n;
    const vqs_pid *ids;
    uint64_t *iids;
    size_t nd;
} del_ctx;

static int delete_fn(vqs_db *db, MDB_txn *t, void *ctx, int *vqs)
{
    del_ctx *D = ctx;
    db_rec r;
    int rc = db_get_rec(db, t, D->name, &r);
    if (rc)
        return *vqs = 1, rc;
    D->nd = 0;
    for (size_t i = 0; i < D->n; i++) {
        uint8_t kb[21];
        MDB_val k, v;
        if (D->iids)
            D->iids[i] = UINT64_MAX;
        if ((rc = db_ext_key(r.id, &D->ids[i], kb, &k)))
            return *vqs = 1, vqs_seterr(rc, "collection '%s': id %zu: %s", D->name, i, vqs_errdetail());
        int e = mdb_get(t, db->ext, &k, &v);
        if (e == MDB_NOTFOUND)
            continue;
        if (e)
            return e;
        if (v.mv_size != 8)
            return *vqs = 1, vqs_seterr(VQS_ECORRUPT, "collection '%s': id map entry of %zu bytes", D->name, v.mv_size);
        uint64_t iid = get64le(v.mv_data);
        if ((e = mdb_del(t, db->ext, &k, NULL)) || (e = kill_iid(db, t, &r, iid)))
            return e;
        if (D->iids)
            D->iids[i] = iid;
        D->nd++;
    }
    return db_put_rec(db, t, D->name, &r);
}

int vqs_db_delete(vqs_db *db, const char *name, size_t n, const vqs_pid *ids, uint64_t *iids,
                  size_t *ndeleted)
{
    if (!db || (n && !ids))
        return vqs_seterr(VQS_EINVAL, "db_delete: NULL argument");
    del_ctx D = {name, n, ids, iids, 0};
    int rc = db_write_txn(db, name, "delete", delete_fn, &D);
    if (!rc && ndeleted)
        *ndeleted = D.nd;
    return rc;
}

int vqs_db_get(vqs_db *db, const char *name, const vqs_pid *id, uint64_t *iid, char **payload)
{
    if (!db || !id)
        return vqs_seterr(VQS_EINVAL, "db_get: NULL argument");
    if (payload)
        *payload = NULL;
    MDB_txn *t;
    int rc = db_txn_begin(db, 0, &t);
    if (rc)
        return rc;
    db_rec r;
    uint8_t kb[21], ib[12];
    MDB_val k, v;
    char buf[40];
    if ((rc = db_get_rec(db, t, name, &r)) || (rc = db_ext_key(r.id, id, kb, &k)))
        goto done;
    int e = mdb_get(t, db->ext, &k, &v);
    if (e == MDB_NOTFOUND) {
        rc = vqs_seterr(VQS_ENOTFOUND, "collection '%s': no point %s", name, vqs_pid_format(id, buf));
        goto done;
    }
    if (e || v.mv_size != 8) {
        rc = e ? db_lmdb_err(e, "read the id map", name) : vqs_seterr(VQS_ECORRUPT, "collection '%s': id map entry", name);
        goto done;
    }
    uint64_t i = get64le(v.mv_data);
    if (iid)
        *iid = i;
    if (payload) {
        MDB_val pk = db_iid_key(r.id, i, ib), pv;
        const char *p = NULL;
        size_t pl = 0;
        if ((e = mdb_get(t, db->pt, &pk, &pv))) {
            rc = e == MDB_NOTFOUND ? vqs_seterr(VQS_ECORRUPT, "collection '%s': point %s has no record", name, vqs_pid_format(id, buf))
                                   : db_lmdb_err(e, "read a point", name);
            goto done;
        }
        if ((rc = pt_decode(&pv, NULL, &p, &pl)))
            goto done;
        if (p && !(*payload = db_dup_payload(p, pl)))
            rc = vqs_seterr(VQS_ENOMEM, "db_get");
    }
done:
    db_txn_abort(db, t);
    return rc;
}

int vqs_db_get_iid(vqs_db *db, const char *name, uint64_t iid, vqs_pid *id, char **payload)
{
    if (!db)
        return vqs_seterr(VQS_EINVAL, "db_get_iid: NULL argument");
    if (payload)
        *payload = NULL;
    MDB_txn *t;
    int rc = db_txn_begin(db, 0, &t);
    if (rc)
        return rc;
    db_rec r;
    uint8_t ib[12];
    if ((rc = db_get_rec(db, t, name, &r)))
        goto done;
    MDB_val k = db_iid_key(r.id, iid, ib), v;
    int e = mdb_get(t, db->pt, &k, &v);
    if (e) {
        rc = e == MDB_NOTFOUND ? vqs_seterr(VQS_ENOTFOUND, "collection '%s': internal id %llu is not live", name,
                                            (unsigned long long)iid)
                               : db_lmdb_err(e, "read a point", name);
        goto done;
    }
    const char *p = NULL;
    size_t pl = 0;
    if ((rc = pt_decode(&v, id, &p, &pl)))
        goto done;
    if (payload && p && !(*payload = db_dup_payload(p, pl)))
        rc = vqs_seterr(VQS_ENOMEM, "db_get_iid");
done:
    db_txn_abort(db, t);
    return rc;
}

int vqs_db_iterate(vqs_db *db, const char *name,
                   int (*fn)(void *ctx, uint64_t iid, const vqs_pid *id, const char *payload,
                             size_t payload_len),
                   void *ctx)
{
    if (!db || !fn)
        return vqs_seterr(VQS_EINVAL, "db_iterate: NULL argument");
    MDB_txn *t;
    int rc = db_txn_begin(db, 0, &t);
    if (rc)
        return rc;
    db_rec r;
    MDB_cursor *cur = NULL;
    if ((rc = db_get_rec(db, t, name, &r)))
        goto done;
    int e = mdb_cursor_open(t, db->pt, &cur);
    if (e) {
        rc = db_lmdb_err(e, "iterate", name);
        goto done;
    }
    uint8_t ib[12];
    MDB_val k = db_iid_key(r.id, 0, ib), v;
    for (e = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); e == 0; e = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 12 || get32be(k.mv_data) != r.id)
            break;
        vqs_pid id;
        const char *p = NULL;
        size_t pl = 0;
        if ((rc = pt_decode(&v, &id, &p, &pl)) || (rc = fn(ctx, get64be((const uint8_t *)k.mv_data + 4), &id, p, pl)))
            break;
    }
    if (!rc && e && e != MDB_NOTFOUND)
        rc = db_lmdb_err(e, "iterate", name);
done:
    if (cur)
        mdb_cursor_close(cur);
    db_txn_abort(db, t);
    return rc;
}

int vqs_db_load_codes(vqs_db *db, const char *name,
                      int (*fn)(void *ctx, size_t n, const uint64_t *iids, const uint32_t *lists,
                                const uint8_t *codes, size_t code_size),
                      void *ctx)
{
    if (!db || !fn)
        return vqs_seterr(VQS_EINVAL, "db_load_codes: NULL argument");
    MDB_txn *t;
    int rc = db_txn_begin(db, 0, &t);
    if (rc)
        return rc;
    db_rec r;
    MDB_cursor *cur = NULL, *dc = NULL;
    uint64_t *iids = NULL;
    uint32_t *lists = NULL;
    uint8_t *codes = NULL;
    size_t cap = 0;
    if ((rc = db_get_rec(db, t, name, &r)))
        goto done;
    int e, de;
    if ((e = mdb_cursor_open(t, db->seg, &cur)) || (e = mdb_cursor_open(t, db->dead, &dc))) {
        rc = db_lmdb_err(e, "load codes", name);
        goto done;
    }
    /* merge-walk the segments and the dead set, both in internal-id order */
    uint8_t ib[12], db2[12];
    MDB_val k = db_iid_key(r.id, 0, ib), v, dk = db_iid_key(r.id, 0, db2), dv;
    de = mdb_cursor_get(dc, &dk, &dv, MDB_SET_RANGE);
    uint64_t dead = de == 0 && dk.mv_size == 12 && get32be(dk.mv_data) == r.id ? get64be((uint8_t *)dk.mv_data + 4)
                                                                              : UINT64_MAX;
    uint64_t expect = 0;
    for (e = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); e == 0; e = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 12 || get32be(k.mv_data) != r.id)
            break;
        uint64_t first = get64be((const uint8_t *)k.mv_data + 4);
        const uint8_t *s = v.mv_data;
        size_t n = v.mv_size >= 8 ? get32le(s) : 0, cs = v.mv_size >= 8 ? get32le(s + 4) : 0;
        if (v.mv_size < 8 || cs != r.code_size || v.mv_size != 8 + 4 * n + n * cs || first != expect ||
            first + n > r.next_iid) {
            rc = vqs_seterr(VQS_ECORRUPT,
                            "collection '%s': segment at internal id %llu: %zu bytes for %zu codes of %zu bytes "
                            "(expected first id %llu, code size %u)",
                            name, (unsigned long long)first, v.mv_size, n, cs, (unsigned long long)expect, r.code_size);
            break;
        }
        expect = first + n;
        if (n > cap) {
            free(iids), free(lists), free(codes);
            cap = n;
            iids = malloc(8 * cap), lists = malloc(4 * cap), codes = malloc(cs * cap);
            if (!iids || !lists || !codes) {
                rc = vqs_seterr(VQS_ENOMEM, "load codes: %zu points", n);
                break;
            }
        }
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t iid = first + i;
            while (dead < iid) {
                de = mdb_cursor_get(dc, &dk, &dv, MDB_NEXT);
                dead = de == 0 && dk.mv_size == 12 && get32be(dk.mv_data) == r.id ? get64be((uint8_t *)dk.mv_data + 4)
                                                                                 : UINT64_MAX;
            }
            if (dead == iid)
                continue;
            iids[m] = iid;
            lists[m] = get32le(s + 8 + 4 * i);
            memcpy(codes + m * cs, s + 8 + 4 * n + i * cs, cs);
            m++;
        }
        if (m && (rc = fn(ctx, m, iids, lists, codes, cs)))
            break;
    }
    if (!rc && e && e != MDB_NOTFOUND)
        rc = db_lmdb_err(e, "load codes", name);
    if (!rc && expect != r.next_iid)
        rc = vqs_seterr(VQS_ECORRUPT, "collection '%s': the segments hold internal ids up to %llu, %llu were handed out",
                        name, (unsigned long long)expect, (unsigned long long)r.next_iid);
done:
    if (cur)
        mdb_cursor_close(cur);
    if (dc)
        mdb_cursor_close(dc);
    db_txn_abort(db, t);
    free(iids);
    free(lists);
    free(codes);
    return rc;
}
