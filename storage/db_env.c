/*
 * db_env.c: the LMDB environment of a data directory (vqs_store_db.h):
 * open and close, the layout version, the writer lock, the registry of
 * open environments, map growth and the transaction helpers the other
 * parts use (db_internal.h). Layout: storage/README.md.
 *
 * Design decisions:
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

/* ---- LMDB errors, transactions, map growth ------------------------------ */

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

static int txn_commit(vqs_db *db, MDB_txn *t)
{
    int rc = mdb_txn_commit(t);
    pthread_rwlock_unlock(&db->grow);
    return rc;
}

/* Doubles the map (no transaction of ours may be open). */
static int grow_map(vqs_db *db)
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
    uint32_t layout = VQS_DB_LAYOUT_VERSION;
    r = mdb_get(t, db->meta, &k, &v);
    if (r == 0 && v.mv_size == 4)
        layout = vqs_le32_get(v.mv_data);
    if (r == MDB_NOTFOUND && !o->read_only) {
        uint8_t b[4];
        vqs_le32_put(b, VQS_DB_LAYOUT_VERSION);
        v = (MDB_val){4, b};
        if ((r = mdb_put(t, db->meta, &k, &v, 0))) {
            rc = db_lmdb_err(r, "write the layout version", NULL);
            goto fail_txn;
        }
    } else if (r) {
        rc = r == MDB_NOTFOUND ? vqs_seterr(VQS_ECORRUPT, "%s: no layout version record", path)
                               : db_lmdb_err(r, "read the layout version", NULL);
        goto fail_txn;
    } else if (v.mv_size != 4 || vqs_le32_get(v.mv_data) < 1 || vqs_le32_get(v.mv_data) > VQS_DB_LAYOUT_VERSION) {
        rc = vqs_seterr(VQS_EVERSION, "%s: storage layout version %u; this vqs reads versions 1 to %d",
                        path, v.mv_size == 4 ? vqs_le32_get(v.mv_data) : 0, VQS_DB_LAYOUT_VERSION);
        goto fail_txn;
    }
    /* version 2 added the payload indexes (pidx) and the meta records of
     * payload schemas and aliases; a version-1 directory holds none of
     * them, so migrating it is creating pidx and writing the new version
     * (a read-only handle reads it as it is: no pidx, no indexes) */
    r = mdb_dbi_open(t, "pidx", fl, &db->pidx);
    if (r == MDB_NOTFOUND && o->read_only && layout == 1) {
        db->has_pidx = 0;
    } else if (r) {
        rc = r == MDB_NOTFOUND ? vqs_seterr(VQS_ECORRUPT, "%s: layout %u without its database 'pidx'", path, layout)
             : r == MDB_INCOMPATIBLE ? vqs_seterr(VQS_ECORRUPT, "%s: 'pidx' is not a vqs database", path)
                                     : db_lmdb_err(r, "pidx", NULL);
        goto fail_txn;
    } else {
        db->has_pidx = 1;
    }
    /* version 3 added named vectors: "v:" records in meta and NAME@I
     * collection records (db_vectors.c); older directories hold none, so
     * migrating is writing the new version */
    if (layout < VQS_DB_LAYOUT_VERSION && !o->read_only) {
        uint8_t b[4];
        vqs_le32_put(b, VQS_DB_LAYOUT_VERSION);
        v = (MDB_val){4, b};
        if ((r = mdb_put(t, db->meta, &k, &v, 0))) {
            rc = db_lmdb_err(r, "write the layout version", NULL);
            goto fail_txn;
        }
        db->migrated_from = layout;
    }
    db->layout = o->read_only ? layout : VQS_DB_LAYOUT_VERSION;
    /* commit even a read-only transaction: aborting it would close the
     * database handles it opened */
    if ((r = txn_commit(db, t))) {
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

uint32_t vqs_db_layout(const vqs_db *db, uint32_t *migrated_from)
{
    if (migrated_from)
        *migrated_from = db->migrated_from;
    return db->layout;
}

/* ---- write transactions ------------------------------------------------ */

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
            r = txn_commit(db, t);
        }
        if (r == MDB_MAP_FULL) {
            if ((rc = grow_map(db)))
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
