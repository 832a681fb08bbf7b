/*
 * graph.c: the graph index (VAMANA<R>,<codec>[,RFlat|,Refine(...)]): a
 * proximity graph over the positions of a flat index's one list, built and
 * searched with the codes that list already holds. This file: the spec
 * token, the adjacency, insertion (build), tombstones and their
 * consolidation, and the beam search that both insertion and queries run.
 * Query-time scoring of neighbours through the codec kernels:
 * ivf_search.c.
 *
 * Design decisions:
 * - Vamana (DiskANN: Subramanya et al., NeurIPS 2019; FreshDiskANN: Singh
 *   et al., 2021), not HNSW. One flat graph whose nodes have at most R
 *   out-edges, chosen by RobustPrune with alpha >= 1: it keeps long edges
 *   that HNSW's heuristic (alpha = 1) drops, so a search from one entry
 *   point (the medoid) reaches any region in few hops, which is what the
 *   on-disk mode needs: each hop is one batch of random reads, and one
 *   fixed-size adjacency block per node is the whole graph (HNSW's upper
 *   layers would be a second structure to store and keep in memory). The
 *   trade-off: HNSW's hierarchy finds the region of a query in O(log n)
 *   cheap hops in memory and its build prunes with alpha = 1 only, so it
 *   builds faster for the same degree; Vamana's alpha > 1 makes each
 *   prune cost more and the graph denser. Insertion is FreshDiskANN's
 *   (greedy search from the entry with beam L, RobustPrune of the nodes it
 *   expanded, reverse edges with pruning on overflow), so a full build and
 *   later inserts are the same algorithm and reach the same quality.
 * - Nodes are the positions of the list's rows; the list keeps ids, codes,
 *   the refine copy and cosine factors as for a flat index. Adjacency is
 *   a fixed block of Rcap = ceil(1.3 R) 32-bit node numbers per node
 *   (DiskANN's slack: a reverse edge is appended while there is room, and
 *   the node is pruned back to R only when it overflows, which makes
 *   pruning ~0.3 R times rarer).
 * - Distances during construction are squared L2 for every metric, exact
 *   where the index has the float vectors (,RFlat: the refine copy), else
 *   between decoded codes (a bulk insert decodes every node once, up to
 *   1 GiB; smaller inserts score with the codec's asymmetric L2 and decode
 *   the prune's candidates). Cosine is L2 over the unit vectors: the same
 *   neighbours, and the geometry RobustPrune's alpha assumes. Inner
 *   products too: a graph built on -<x, y> (hnswlib's way) left the nodes
 *   of small norm without edges in, so part of the index was unreachable
 *   (a full beam found 0.69 of the flat answers on a mixture with
 *   outliers; built in L2, all of them). The query side still ranks by
 *   the inner product; a greedy search reaches the large-norm answers of
 *   such data late (beam 64: 0.57-0.69 of the flat answers, against
 *   0.995-1 under L2 and cosine; tests/index/test_graph.cpp).
 * - Every node keeps an edge in: the new node's nearest neighbour keeps
 *   the reverse edge whatever its prune says, and after bulk inserts and
 *   consolidation a sweep links any node left without one (link_orphans).
 * - An empty graph starts from the batch's medoid (DiskANN's start point):
 *   every insertion's search, and every query's, begins there.
 * - Deletes are tombstones: the node keeps routing searches but is never
 *   a result. When tombstones pass a fifth of the nodes, consolidation
 *   (FreshDiskANN's delete phase) gives every live node that points to a
 *   deleted one the deleted node's neighbours as candidates, prunes, and
 *   then compacts the list and renumbers the graph.
 * - /D (Qdrant's hnsw_config.on_disk) keeps the adjacency, the graph's
 *   bulk (4 Rcap bytes a node against 3 for its degree and tombstone), in
 *   a file mapped shared, as Qdrant mmaps its HNSW links: the kernel pages
 *   in what searches touch and can drop it again, so the links cost page
 *   cache, not the process's memory. The file has no name (O_TMPFILE, else
 *   mkstemp and unlink): it is this process's working copy, gone with it
 *   and never read back, so a crash leaves nothing behind; a collection
 *   keeps its snapshot as without /D (collection.c). Its blocks are
 *   allocated before use (posix_fallocate), so a full disk is an error at
 *   growth, never a SIGBUS at a later store. MADV_RANDOM: a fault reads
 *   its own page, not the kernel's read-around. Rejected: writing the links
 *   in place as the graph's persistent form (positions change at
 *   consolidation, and a crash mid-update would leave half a graph that
 *   the snapshot's all-or-nothing rename never does).
 * - Build runs on the thread pool, one node per task, with striped spin
 *   locks over the adjacency blocks (hnswlib's scheme); the first nodes of
 *   an empty graph go in one by one so that early nodes have neighbours.
 *   With one thread the graph is a function of the input order alone.
 */
#define _GNU_SOURCE
#include "graph_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NLOCKS 4096 /* striped locks over the nodes */
#define SERIAL_FIRST 256
#define DEFAULT_ALPHA 1.2f
#define DECODE_MAX ((size_t)1 << 30) /* bytes of decoded nodes a bulk insert may hold */

struct vqs_graph {
    size_t R, Rcap, L;
    float alpha;
    size_t ef;         /* default search beam */
    uint32_t *adj;     /* cap * Rcap */
    uint16_t *deg;     /* cap */
    uint8_t *dead;     /* cap: tombstones */
    size_t cap, n, ndead;
    uint32_t entry;
    size_t entry_at;   /* nodes when the entry was last chosen */
    size_t since_sweep; /* nodes inserted since link_orphans */
    int deferred;      /* vqs_index_graph_defer: rows from node pend on are not linked */
    size_t pend;
    float *ones;       /* d ones: the F32 kernel's weights */
    vqs_graph_disk *disk; /* on disk (graph_disk.c): adj, deg and dead freed */
    size_t bw;         /* on disk: default nodes read per hop */
    /* /D: adj is mbytes of the file mfd, mapped shared (mdir: its directory) */
    int mapped, mfd;
    size_t mbytes;
    char *mdir;
    atomic_flag locks[NLOCKS];
};

/* ---- the spec token ------------------------------------------------------------ */

int vqs_graph_parse(const char *tok, size_t len, vqs_graph_params *gp)
{
    /* VAMANA<R>[/L<beam>][/A<alpha>][/D] */
    char buf[128];
    if (len >= sizeof buf)
        return vqs_seterr(VQS_ESPEC, "'%.*s': graph token too long", (int)len, tok);
    memcpy(buf, tok, len);
    buf[len] = 0;
    gp->R = 0;
    gp->L = 0;
    gp->alpha = 0;
    gp->mapped = 0;
    char *p = buf + 6, *end;
    unsigned long R = strtoul(p, &end, 10);
    if (end == p || R < 4 || R > 512)
        return vqs_seterr(VQS_ESPEC, "'%s': VAMANA needs a degree in 4..512, e.g. VAMANA32", buf);
    gp->R = R;
    p = end;
    while (*p == '/') {
        p++;
        if (*p == 'L') {
            unsigned long L = strtoul(p + 1, &end, 10);
            if (end == p + 1 || L < 1 || L > 4096)
                return vqs_seterr(VQS_ESPEC, "'%s': /L<beam> needs a build beam in 1..4096", buf);
            gp->L = L;
        } else if (*p == 'A') {
            double a = strtod(p + 1, &end);
            if (end == p + 1 || !(a >= 1.0 && a <= 2.0))
                return vqs_seterr(VQS_ESPEC, "'%s': /A<alpha> needs an alpha in 1..2", buf);
            gp->alpha = (float)a;
        } else if (*p == 'D' && !gp->mapped) {
            gp->mapped = 1;
            end = p + 1;
        } else {
            return vqs_seterr(VQS_ESPEC, "'%s': unknown or repeated graph parameter '/%s' (/L<beam>, /A<alpha>, /D)",
                              buf, p);
        }
        p = end;
    }
    if (*p)
        return vqs_seterr(VQS_ESPEC, "'%s': unexpected '%s' in the graph token", buf, p);
    if (gp->L && gp->L < gp->R)
        return vqs_seterr(VQS_ESPEC, "'%s': the build beam /L%zu must be at least the degree %zu", buf, gp->L, gp->R);
    return 0;
}

static size_t default_L(size_t R) { return R + R / 2 > 64 ? R + R / 2 : 64; }

/* The graph token of a spec into gp: 1, 0 (no graph), or VQS_ESPEC. */
static int spec_graph(const char *spec, vqs_graph_params *gp)
{
    while (spec && *spec == ' ')
        spec++;
    if (!spec || strncmp(spec, "VAMANA", 6))
        return 0;
    int rc = vqs_graph_parse(spec, strcspn(spec, ","), gp);
    return rc ? rc : 1;
}

int vqs_index_graph_params(const char *spec, size_t *R, size_t *L, float *alpha)
{
    vqs_graph_params gp;
    int rc = spec_graph(spec, &gp);
    if (rc != 1)
        return rc;
    if (R)
        *R = gp.R;
    if (L)
        *L = gp.L ? gp.L : default_L(gp.R);
    if (alpha)
        *alpha = gp.alpha > 0 ? gp.alpha : DEFAULT_ALPHA;
    return 1;
}

/* ---- create, grow, free ---------------------------------------------------------- */

static int map_open(vqs_graph *g);

int vqs_graph_create(const vqs_graph_params *gp, size_t d, const char *dir, vqs_graph **out)
{
    vqs_graph *g = calloc(1, sizeof *g);
    if (gp->mapped && !dir)
        dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
    if (!g || !(g->ones = malloc(sizeof(float) * d)) || (gp->mapped && !(g->mdir = strdup(dir)))) {
        if (g)
            free(g->ones);
        free(g);
        return vqs_seterr(VQS_ENOMEM, "graph_create");
    }
    g->mapped = gp->mapped;
    g->mfd = -1;
    int rc = g->mapped ? map_open(g) : 0;
    if (rc) {
        free(g->ones);
        free(g->mdir);
        free(g);
        return rc;
    }
    for (size_t j = 0; j < d; j++)
        g->ones[j] = 1.0f;
    g->R = gp->R;
    g->Rcap = (gp->R * 13 + 9) / 10;
    /* DiskANN builds with L = 100 at R = 64; on siftsmall (R = 32) L = 64
     * gave the same recall at a given search beam as L = 100 in 0.62 of the
     * time, and L = 40 lost 0.008 (bench/README, graph index) */
    g->L = gp->L ? gp->L : default_L(gp->R);
    g->alpha = gp->alpha > 0 ? gp->alpha : DEFAULT_ALPHA;
    g->ef = 64;
    for (size_t i = 0; i < NLOCKS; i++)
        atomic_flag_clear(&g->locks[i]);
    *out = g;
    return 0;
}

/* The adjacency's memory: freed, or unmapped with its file closed. */
static void adj_release(vqs_graph *g)
{
    if (g->mapped) {
        if (g->adj)
            munmap(g->adj, g->mbytes);
        if (g->mfd >= 0)
            close(g->mfd);
        g->mfd = -1;
        g->mbytes = 0;
    } else {
        free(g->adj);
    }
    g->adj = NULL;
}

/* /D: the adjacency's file, without a name. */
static int map_open(vqs_graph *g)
{
    g->mfd = open(g->mdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (g->mfd < 0 && errno != ENOENT && errno != ENOTDIR && errno != EACCES) {
        char t[4200]; /* no O_TMPFILE on this filesystem: a name, removed at once */
        snprintf(t, sizeof t, "%s/.vqs-graph-XXXXXX", g->mdir);
        g->mfd = mkostemp(t, O_CLOEXEC);
        if (g->mfd >= 0)
            unlink(t);
    }
    if (g->mfd < 0)
        return vqs_seterr(-errno, "graph: the adjacency file (/D) in '%s': %s", g->mdir, strerror(errno));
    return 0;
}

/* /D: the adjacency of cap nodes in the file, its blocks allocated. */
static int map_adjacency(vqs_graph *g, size_t cap)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t ps = pg > 0 ? (size_t)pg : 4096, want = sizeof(uint32_t) * g->Rcap * cap;
    want = (want + ps - 1) / ps * ps;
    if (want <= g->mbytes)
        return 0;
    int e = posix_fallocate(g->mfd, 0, (off_t)want);
    if (e)
        return vqs_seterr(-e, "graph: the adjacency file (/D) in '%s' for %zu nodes (%zu bytes): %s", g->mdir, cap,
                          want, strerror(e));
    void *a = g->adj ? mremap(g->adj, g->mbytes, want, MREMAP_MAYMOVE)
                     : mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_SHARED, g->mfd, 0);
    if (a == MAP_FAILED)
        return vqs_seterr(-errno, "graph: mapping the adjacency file (/D) in '%s', %zu bytes: %s", g->mdir, want,
                          strerror(errno));
    /* a beam's reads are random: a fault brings its page, not the 128 KiB
     * around it that would page in the whole graph within a few queries */
    madvise(a, want, MADV_RANDOM);
    g->adj = a;
    g->mbytes = want;
    return 0;
}

void vqs_graph_free(vqs_graph *g)
{
    if (!g)
        return;
    adj_release(g);
    free(g->mdir);
    free(g->deg);
    free(g->dead);
    free(g->ones);
    vqs_graph_disk_close(g->disk);
    free(g);
}

int vqs_graph_reserve(vqs_graph *g, size_t cap)
{
    if (cap <= g->cap)
        return 0;
    if (cap >= UINT32_MAX) /* nodes are 32-bit numbers */
        return vqs_seterr(VQS_ERANGE, "graph: %zu nodes; a graph holds fewer than 2^32", cap);
    if (g->mapped) {
        int rc = map_adjacency(g, cap);
        if (rc)
            return rc;
    } else {
        uint32_t *a = realloc(g->adj, sizeof(uint32_t) * g->Rcap * cap);
        if (!a)
            return vqs_seterr(VQS_ENOMEM, "graph: %zu nodes of degree %zu", cap, g->Rcap);
        g->adj = a;
    }
    uint16_t *dg = realloc(g->deg, sizeof(uint16_t) * cap);
    if (!dg)
        return vqs_seterr(VQS_ENOMEM, "graph: %zu nodes", cap);
    g->deg = dg;
    uint8_t *dd = realloc(g->dead, cap);
    if (!dd)
        return vqs_seterr(VQS_ENOMEM, "graph: %zu nodes", cap);
    g->dead = dd;
    memset(g->deg + g->cap, 0, sizeof(uint16_t) * (cap - g->cap));
    memset(g->dead + g->cap, 0, cap - g->cap);
    g->cap = cap;
    return 0;
}

size_t vqs_graph_nodes(const vqs_graph *g) { return g->n; }
size_t vqs_graph_degree_cap(const vqs_graph *g) { return g->Rcap; }
size_t vqs_graph_default_ef(const vqs_graph *g) { return g->ef; }
int vqs_graph_is_dead(const vqs_graph *g, uint32_t u) { return g->dead && g->dead[u]; }
size_t vqs_graph_degree(const vqs_graph *g) { return g->R; }
uint32_t vqs_graph_entry_node(const vqs_graph *g) { return g->entry; }
size_t vqs_graph_tombstones(const vqs_graph *g) { return g->ndead; }
int vqs_graph_deferred(const vqs_graph *g) { return g->deferred; }
int vqs_graph_on_disk(const vqs_graph *g) { return g->disk != NULL; }
vqs_graph_disk *vqs_graph_disk_of(const vqs_graph *g) { return g->disk; }
size_t vqs_graph_disk_width(const vqs_graph *g) { return g->bw; }

void vqs_graph_attach_disk(vqs_graph *g, vqs_graph_disk *D, size_t bw)
{
    adj_release(g);
    free(g->deg);
    free(g->dead);
    g->deg = NULL;
    g->dead = NULL;
    g->n = vqs_graph_disk_nodes(D);
    g->cap = g->n;
    g->deferred = 0;
    g->disk = D;
    g->bw = bw;
}
const uint32_t *vqs_graph_neighbors(const vqs_graph *g, uint32_t u, size_t *deg)
{
    *deg = g->deg[u];
    return g->adj + (size_t)u * g->Rcap;
}
size_t vqs_graph_bytes(const vqs_graph *g)
{
    if (g->disk)
        return sizeof *g + vqs_graph_disk_bytes(g->disk);
    return g->cap * ((g->mapped ? 0 : sizeof(uint32_t) * g->Rcap) + sizeof(uint16_t) + 1) + sizeof *g;
}

static inline void lock(vqs_graph *g, uint32_t u)
{
    atomic_flag *f = &g->locks[u % NLOCKS];
    while (atomic_flag_test_and_set_explicit(f, memory_order_acquire))
        ;
}
static inline void unlock(vqs_graph *g, uint32_t u)
{
    atomic_flag_clear_explicit(&g->locks[u % NLOCKS], memory_order_release);
}

/* ---- scratch: the visited set and the beam --------------------------------------- */

void vqs_graph_scratch_free(vqs_graph_scratch *s)
{
    free(s->vis);
    free(s->tag);
    free(s->pk);
    free(s->pn);
    free(s->pe);
    free(s->nbr);
    free(s->nk);
    free(s->xn);
    free(s->xk);
    free(s->vb);
    free(s->rm);
    vqs_graph_disk_release(s->disk, s->slot);
    free(s->dn);
    free(s->dord);
    free(s->dv);
    memset(s, 0, sizeof *s);
}

static int scratch_ready(vqs_graph_scratch *s, size_t ef, size_t Rcap)
{
    if (!s->vis) {
        s->vcap = 4096;
        if (!(s->vis = malloc(sizeof(uint32_t) * s->vcap)))
            return vqs_seterr(VQS_ENOMEM, "graph search: scratch");
    }
    if (ef > s->pcap) {
        free(s->pk);
        free(s->pn);
        free(s->pe);
        s->pk = malloc(sizeof(float) * (ef + 1));
        s->pn = malloc(sizeof(uint32_t) * (ef + 1));
        s->pe = malloc(ef + 1);
        s->pcap = s->pk && s->pn && s->pe ? ef : 0;
        if (!s->pcap)
            return vqs_seterr(VQS_ENOMEM, "graph search: a beam of %zu", ef);
    }
    if (Rcap > s->ncap) {
        free(s->nbr);
        free(s->nk);
        s->nbr = malloc(sizeof(uint32_t) * Rcap);
        s->nk = malloc(sizeof(float) * Rcap);
        s->ncap = s->nbr && s->nk ? Rcap : 0;
        if (!s->ncap)
            return vqs_seterr(VQS_ENOMEM, "graph search: scratch");
    }
    return 0;
}

/* Visited set: open addressing over node + 1 (0 is empty), cleared per
 * search; it grows at half load, and if it cannot grow the search stops
 * adding nodes (a shorter search, never a failure). Returns 1 if u was new. */
static int visit(vqs_graph_scratch *s, uint32_t u)
{
    if (s->tag) {
        if (s->tag[u] == s->epoch)
            return 0;
        s->tag[u] = s->epoch;
        return 1;
    }
    if (2 * (s->vn + 1) > s->vcap) {
        uint32_t *nv = calloc(2 * s->vcap, sizeof(uint32_t));
        if (!nv)
            return 0;
        size_t m = 2 * s->vcap - 1;
        for (size_t i = 0; i < s->vcap; i++)
            if (s->vis[i]) {
                size_t h = (s->vis[i] * 0x9E3779B1u) & m;
                while (nv[h])
                    h = (h + 1) & m;
                nv[h] = s->vis[i];
            }
        free(s->vis);
        s->vis = nv;
        s->vcap *= 2;
    }
    uint32_t key = u + 1;
    size_t m = s->vcap - 1, h = (key * 0x9E3779B1u) & m;
    while (s->vis[h]) {
        if (s->vis[h] == key)
            return 0;
        h = (h + 1) & m;
    }
    s->vis[h] = key;
    s->vn++;
    return 1;
}

/* Inserts (key, u) into the sorted beam (ties by lower node) if it fits
 * among the ef best; returns its position or ef if it did not. */
static size_t beam_insert(vqs_graph_scratch *s, size_t ef, float key, uint32_t u)
{
    size_t n = s->pl;
    if (n == ef && !(key < s->pk[n - 1] || (key == s->pk[n - 1] && u < s->pn[n - 1])))
        return ef;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->pk[mid] < key || (s->pk[mid] == key && s->pn[mid] < u))
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t mv = (n == ef ? n - 1 : n) - lo;
    memmove(s->pk + lo + 1, s->pk + lo, sizeof(float) * mv);
    memmove(s->pn + lo + 1, s->pn + lo, sizeof(uint32_t) * mv);
    memmove(s->pe + lo + 1, s->pe + lo, mv);
    s->pk[lo] = key;
    s->pn[lo] = u;
    s->pe[lo] = 0;
    if (n < ef)
        s->pl++;
    return lo;
}

/* A search's start, shared by the beam in memory and the beam on disk: the
 * scratch ready for a beam of ef, the visited set emptied, the beam holding
 * the entry e alone (nothing in a graph of no nodes). */
static int beam_start(vqs_graph_scratch *s, size_t ef, size_t Rcap, size_t n, uint32_t e,
                      const vqs_graph_scorer *sc)
{
    int rc = scratch_ready(s, ef, Rcap);
    if (rc)
        return rc;
    if (s->tag && ++s->epoch == 0) { /* wrapped: clear the tags */
        memset(s->tag, 0, sizeof(uint32_t) * s->ntag);
        s->epoch = 1;
    }
    if (!s->tag)
        memset(s->vis, 0, sizeof(uint32_t) * s->vcap);
    s->vn = 0;
    s->pl = 0;
    s->xl = 0;
    if (!n)
        return 0;
    float k0;
    visit(s, e);
    if ((rc = sc->score(sc->ctx, 1, &e, &k0)))
        return rc;
    beam_insert(s, ef, k0, e);
    return 0;
}

/* The next node to expand: the first unexpanded position from cur, or from
 * best if an insertion went above cur. */
static size_t next_unexpanded(const vqs_graph_scratch *s, size_t cur, size_t best)
{
    if (best < cur)
        cur = best;
    while (cur < s->pl && s->pe[cur])
        cur++;
    return cur;
}

/* Scores the m new neighbours s->nbr and inserts them into the beam; *best:
 * the lowest position one went to, if lower. */
static int score_into_beam(vqs_graph_scratch *s, size_t ef, size_t m, const vqs_graph_scorer *sc, size_t *best)
{
    int rc = m ? sc->score(sc->ctx, m, s->nbr, s->nk) : 0;
    for (size_t i = 0; i < m && !rc; i++) {
        size_t at = beam_insert(s, ef, s->nk[i], s->nbr[i]);
        if (at < *best)
            *best = at;
    }
    return rc;
}

int vqs_graph_beam(const vqs_graph *cg, vqs_graph_scratch *s, size_t ef, int locked,
                   const vqs_graph_scorer *sc)
{
    vqs_graph *g = (vqs_graph *)cg; /* the locks only */
    if (ef < 1)
        ef = 1;
    int rc = beam_start(s, ef, g->Rcap, g->n, g->entry, sc);
    if (rc)
        return rc;
    size_t cur = 0;
    while (cur < s->pl) {
        uint32_t u = s->pn[cur];
        s->pe[cur] = 1;
        if (s->want_expanded) { /* the expanded nodes, for the prune */
            if (s->xl == s->xcap) {
                size_t nc = s->xcap ? 2 * s->xcap : 256;
                uint32_t *xn = realloc(s->xn, sizeof(uint32_t) * nc);
                if (xn)
                    s->xn = xn;
                float *xk = xn ? realloc(s->xk, sizeof(float) * nc) : NULL;
                if (xk)
                    s->xk = xk;
                if (!xn || !xk)
                    return vqs_seterr(VQS_ENOMEM, "graph build: scratch");
                s->xcap = nc;
            }
            s->xn[s->xl] = u;
            s->xk[s->xl++] = s->pk[cur];
        }
        size_t deg;
        if (locked)
            lock(g, u);
        const uint32_t *nb = vqs_graph_neighbors(g, u, &deg);
        size_t m = 0;
        for (size_t i = 0; i < deg; i++)
            if (visit(s, nb[i]))
                s->nbr[m++] = nb[i];
        if (locked)
            unlock(g, u);
        size_t best = s->pl;
        if ((rc = score_into_beam(s, ef, m, sc, &best)))
            return rc;
        cur = next_unexpanded(s, cur, best);
    }
    return 0;
}

/* The node's vector into the scratch's store of expanded vectors. */
static int keep_vector(vqs_graph_scratch *s, uint32_t u, const uint8_t *v)
{
    if (s->dl == s->dcap) {
        size_t nc = s->dcap ? 2 * s->dcap : 256;
        uint32_t *dn = realloc(s->dn, sizeof(uint32_t) * nc);
        if (dn)
            s->dn = dn;
        uint8_t *dv = dn ? realloc(s->dv, nc * s->dvb) : NULL;
        if (dv)
            s->dv = dv;
        if (!dn || !dv)
            return vqs_seterr(VQS_ENOMEM, "graph search: %zu expanded nodes' vectors", nc);
        s->dcap = nc;
    }
    s->dn[s->dl] = u;
    memcpy(s->dv + s->dl * s->dvb, v, s->dvb);
    s->dl++;
    return 0;
}

int vqs_graph_beam_disk(const vqs_graph *cg, vqs_graph_scratch *s, size_t ef, size_t width,
                        const vqs_graph_scorer *sc)
{
    vqs_graph *g = (vqs_graph *)cg;
    vqs_graph_disk *D = g->disk;
    size_t mw = vqs_graph_disk_max_width();
    width = width < 1 ? 1 : width > mw ? mw : width;
    if (ef < 1)
        ef = 1;
    s->disk = D;
    s->dvb = vqs_graph_disk_vec_bytes(D);
    s->dl = 0;
    s->dsorted = 0;
    int rc = beam_start(s, ef, g->Rcap, g->n, vqs_graph_disk_entry(D), sc);
    if (rc)
        return rc;
    uint32_t sel[64];
    const uint8_t *blk[64];
    size_t cur = 0, vb = s->dvb;
    while (cur < s->pl) {
        size_t m = 0;
        for (size_t i = cur; i < s->pl && m < width; i++)
            if (!s->pe[i]) {
                s->pe[i] = 1;
                sel[m++] = s->pn[i];
            }
        if ((rc = vqs_graph_disk_fetch(D, &s->slot, m, sel, blk)))
            return rc;
        size_t best = s->pl;
        for (size_t j = 0; j < m; j++) {
            if ((rc = keep_vector(s, sel[j], blk[j])))
                return rc;
            uint32_t deg;
            memcpy(&deg, blk[j] + vb, 4);
            size_t k = 0;
            for (size_t i = 0; i < deg; i++) {
                uint32_t v;
                memcpy(&v, blk[j] + vb + 4 + 4 * i, 4);
                if (visit(s, v))
                    s->nbr[k++] = v;
            }
            if ((rc = score_into_beam(s, ef, k, sc, &best)))
                return rc;
        }
        cur = next_unexpanded(s, cur, best);
    }
    return 0;
}

static int cmp_dord(const void *a, const void *b, void *ctx)
{
    const uint32_t *dn = ctx;
    uint32_t x = dn[*(const uint32_t *)a], y = dn[*(const uint32_t *)b];
    return x < y ? -1 : x > y;
}

int vqs_graph_disk_vector(const vqs_graph *g, vqs_graph_scratch *s, uint32_t u, const uint8_t **out)
{
    if (!s->dsorted) {
        uint32_t *o = realloc(s->dord, sizeof(uint32_t) * (s->dl ? s->dl : 1));
        if (!o)
            return vqs_seterr(VQS_ENOMEM, "graph search: scratch");
        s->dord = o;
        for (size_t i = 0; i < s->dl; i++)
            o[i] = (uint32_t)i;
        qsort_r(o, s->dl, sizeof(uint32_t), cmp_dord, s->dn);
        s->dsorted = 1;
    }
    size_t lo = 0, hi = s->dl;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->dn[s->dord[mid]] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->dl && s->dn[s->dord[lo]] == u) {
        *out = s->dv + (size_t)s->dord[lo] * s->dvb;
        return 0;
    }
    /* not expanded (not expected: a finished beam has expanded every node it holds) */
    const uint8_t *blk;
    int rc = vqs_graph_disk_fetch(g->disk, &s->slot, 1, &u, &blk);
    if (!rc && !(rc = keep_vector(s, u, blk))) {
        s->dsorted = 0;
        *out = s->dv + (s->dl - 1) * s->dvb;
    }
    return rc;
}

/* ---- construction ----------------------------------------------------------------- */

typedef struct build_ctx {
    vqs_index *ix;
    vqs_graph *g;
    const vqs_kernels *K;
    int locked;      /* parallel: adjacency under the striped locks */
    const uint32_t *perm; /* the nodes to insert, in order */
    vqs_graph_scratch *sc; /* per thread */
    vqs_codec_query **cq;  /* per thread: codes-only build */
    float **qv;      /* per thread: the new node's vector (d) */
    float *dec;      /* no float copy: every node's decoded code, during a
                        bulk insert (decode_all), or NULL */
} build_ctx;

/* The float vector of node u: the refine copy (RFlat), its decoded code
 * from the bulk insert's cache, or decoded now (into buf, d floats). */
static const float *node_vec(const build_ctx *B, uint32_t u, float *buf)
{
    const vqs_index *ix = B->ix;
    const ivlist *L = &ix->lists[0];
    if (ix->refine == VQS_IVF_REFINE_FLAT)
        return (const float *)(L->rcodes + (size_t)u * ix->rcs);
    if (B->dec)
        return B->dec + (size_t)u * ix->d;
    vqs_codec_decode(ix->codec, 1, L->codes + (size_t)u * ix->cs, buf);
    return buf;
}

/* The construction's distance: squared L2 for every metric (file comment) */
static float vdist(const build_ctx *B, const float *x, const float *y)
{
    float o;
    B->K->sq_l2(VQS_ELEM_F32, x, B->g->ones, B->ix->d, (const uint8_t *)y, 0, 1, &o);
    return o;
}

typedef struct bscore {
    const build_ctx *B;
    const float *q;
    const uint8_t *rows; /* float vectors (refine copy or decoded), stride bytes apart */
    size_t stride;
    vqs_codec_query *cq; /* else the codec's score of the codes */
    uint8_t *buf;        /* gathered codes */
} bscore;

static int build_score(void *ctx, size_t n, const uint32_t *nodes, float *keys)
{
    const bscore *S = ctx;
    const vqs_index *ix = S->B->ix;
    if (!S->cq) {
        /* the rows are scattered: ask for all of them before the first
         * distance (their misses overlap) */
        size_t rb = S->stride < 4096 ? S->stride : 4096;
        for (size_t i = 0; i < n; i++) {
            const char *r = (const char *)(S->rows + (size_t)nodes[i] * S->stride);
            for (size_t o = 0; o < rb; o += 64)
                __builtin_prefetch(r + o);
        }
        for (size_t i = 0; i < n; i++)
            keys[i] = vdist(S->B, S->q, (const float *)(S->rows + (size_t)nodes[i] * S->stride));
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(S->buf + i * ix->cs, ix->lists[0].codes + (size_t)nodes[i] * ix->cs, ix->cs);
    return vqs_codec_query_score(S->cq, n, S->buf, keys);
}

static int cmp_cand(const void *a, const void *b)
{
    const vqs_graph_cand *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->u > y->u) - (x->u < y->u);
}

/* RobustPrune: out-edges of p (vector xp) from the candidates c[0..nc)
 * (keys: distances to p), at most R, written to p's block. Call with p's
 * lock held when building in parallel. s->vb, s->rm: scratch. */
static int robust_prune(const build_ctx *B, vqs_graph_scratch *s, uint32_t p, vqs_graph_cand *c,
                        size_t nc, size_t R)
{
    vqs_graph *g = B->g;
    const vqs_index *ix = B->ix;
    size_t d = ix->d;
    qsort(c, nc, sizeof *c, cmp_cand);
    size_t w = 0; /* drop p and duplicates */
    for (size_t i = 0; i < nc; i++)
        if (c[i].u != p && !g->dead[c[i].u] && (w == 0 || c[i].u != c[w - 1].u || c[i].key != c[w - 1].key))
            c[w++] = c[i];
    nc = w;
    int flat = ix->refine == VQS_IVF_REFINE_FLAT;
    if (nc > s->vbn) {
        free(s->vb);
        free(s->rm);
        s->vb = flat || B->dec ? NULL : malloc(sizeof(float) * d * nc);
        s->rm = malloc(nc);
        s->vbn = (flat || B->dec || s->vb) && s->rm ? nc : 0;
        if (!s->vbn)
            return vqs_seterr(VQS_ENOMEM, "graph build: %zu candidates", nc);
    }
    memset(s->rm, 0, nc);
    /* candidates' vectors, decoded once each when there is no float copy */
    const float *const rows = flat ? (const float *)ix->lists[0].rcodes : B->dec;
    if (!rows)
        for (size_t i = 0; i < nc; i++)
            vqs_codec_decode(ix->codec, 1, ix->lists[0].codes + (size_t)c[i].u * ix->cs, s->vb + i * d);
#define CVEC(i) (rows ? rows + (size_t)c[i].u * d : s->vb + (i) * d)
    uint32_t *o = g->adj + (size_t)p * g->Rcap;
    size_t sel = 0;
    for (size_t i = 0; i < nc && sel < R; i++) {
        if (s->rm[i])
            continue;
        o[sel++] = c[i].u;
        const float *xi = CVEC(i);
        for (size_t j = i + 1; j < nc; j++) {
            if (s->rm[j])
                continue;
            float dij = vdist(B, xi, CVEC(j));
            if (g->alpha * dij <= c[j].key) /* p* occludes j (DiskANN: on squared distances) */
                s->rm[j] = 1;
        }
    }
#undef CVEC
    g->deg[p] = (uint16_t)sel;
    return 0;
}

/* Adds the edge u -> p, pruning u when its block is full; force: p stays
 * among u's neighbours even if the prune drops it (it replaces the
 * farthest kept one, or takes the slack). */
static int add_reverse(const build_ctx *B, vqs_graph_scratch *s, uint32_t u, uint32_t p, int locked,
                       float *ubuf, vqs_graph_cand *cb, int force)
{
    vqs_graph *g = B->g;
    int rc = 0;
    if (locked)
        lock(g, u);
    uint32_t *o = g->adj + (size_t)u * g->Rcap;
    size_t dg = g->deg[u];
    int have = 0;
    for (size_t i = 0; i < dg && !have; i++)
        have = o[i] == p;
    if (!have) {
        if (dg < g->Rcap) {
            o[dg] = p;
            g->deg[u] = (uint16_t)(dg + 1);
        } else {
            const float *xu = node_vec(B, u, ubuf);
            float *tmp = ubuf + B->ix->d; /* a second vector */
            for (size_t i = 0; i < dg; i++)
                cb[i] = (vqs_graph_cand){vdist(B, xu, node_vec(B, o[i], tmp)), o[i]};
            cb[dg] = (vqs_graph_cand){vdist(B, xu, node_vec(B, p, tmp)), p};
            rc = robust_prune(B, s, u, cb, dg + 1, g->R);
            size_t nd = g->deg[u];
            int kept = 0;
            for (size_t i = 0; i < nd && !kept; i++)
                kept = o[i] == p;
            if (!rc && force && !kept) {
                if (nd < g->Rcap)
                    g->deg[u] = (uint16_t)(nd + 1);
                o[nd < g->Rcap ? nd : nd - 1] = p;
            }
        }
    }
    if (locked)
        unlock(g, u);
    return rc;
}

static int insert_one(void *ctx, size_t t, int tid)
{
    const build_ctx *B = ctx;
    vqs_graph *g = B->g;
    const vqs_index *ix = B->ix;
    vqs_graph_scratch *s = &B->sc[tid];
    uint32_t p = B->perm[t];
    int locked = B->locked;
    size_t d = ix->d;
    float *qv = B->qv[tid]; /* 3 * d: the node's vector and two more */
    const float *xp = node_vec(B, p, qv);
    bscore S = {B, xp, NULL, 0, NULL, NULL};
    int rc = 0;
    if (ix->refine == VQS_IVF_REFINE_FLAT) {
        S.rows = ix->lists[0].rcodes;
        S.stride = ix->rcs;
    } else if (B->dec) {
        S.rows = (const uint8_t *)B->dec;
        S.stride = sizeof(float) * d;
    } else {
        vqs_codec_query **cq = &B->cq[tid];
        rc = *cq ? vqs_codec_query_reset(*cq, xp) : vqs_codec_query_create(ix->codec, VQS_METRIC_L2, xp, cq);
        if (rc)
            return rc;
        S.cq = *cq;
        S.buf = (uint8_t *)(qv + 3 * d);
    }
    vqs_graph_scorer sc = {build_score, &S};
    s->want_expanded = 1;
    if ((rc = vqs_graph_beam(g, s, g->L, locked, &sc)))
        return rc;
    /* candidates: the expanded nodes and the rest of the beam */
    size_t nc = 0, need = s->xl + s->pl + g->Rcap + 1;
    if (need > s->ccap) {
        free(s->cand);
        s->cand = malloc(sizeof(vqs_graph_cand) * need);
        s->ccap = s->cand ? need : 0;
        if (!s->cand)
            return vqs_seterr(VQS_ENOMEM, "graph build: scratch");
    }
    for (size_t i = 0; i < s->xl; i++)
        s->cand[nc++] = (vqs_graph_cand){s->xk[i], s->xn[i]};
    for (size_t i = 0; i < s->pl; i++)
        if (!s->pe[i])
            s->cand[nc++] = (vqs_graph_cand){s->pk[i], s->pn[i]};
    if (S.cq) { /* codes' scores: keys of the prune in the decoded space */
        for (size_t i = 0; i < nc; i++)
            s->cand[i].key = vdist(B, xp, node_vec(B, s->cand[i].u, qv + d));
    }
    if (locked)
        lock(g, p);
    rc = robust_prune(B, s, p, s->cand, nc, g->R);
    uint32_t out[1024];
    size_t dp = g->deg[p];
    memcpy(out, g->adj + (size_t)p * g->Rcap, sizeof(uint32_t) * dp);
    if (locked)
        unlock(g, p);
    if (rc)
        return rc;
    /* reverse edges; the nearest neighbour's is kept whatever its prune
     * says, so that every node has an edge in: without it a far outlier
     * (whose neighbours all prune it away as occluded) became unreachable,
     * and under inner products an outlier of large norm is the answer to
     * many queries */
    for (size_t i = 0; i < dp && !rc; i++)
        rc = add_reverse(B, s, out[i], p, locked, qv + d, s->cand, i == 0);
    return rc;
}

/* Gives every live node without an edge in one from its nearest
 * out-neighbour (else from the entry): into the slack, or in place of
 * that neighbour's farthest edge. RobustPrune on a neighbour's overflow
 * can drop the only edge into a far outlier (each of its neighbours finds
 * it occluded), leaving it unreachable; under inner products such an
 * outlier of large norm is the answer to many queries. O(n R); run after
 * bulk inserts and consolidation. */
static void link_orphans(vqs_graph *g)
{
    uint8_t *in = calloc(g->n ? g->n : 1, 1);
    if (!in)
        return; /* a later sweep links them */
    for (size_t u = 0; u < g->n; u++) {
        if (g->dead[u])
            continue;
        const uint32_t *o = g->adj + u * g->Rcap;
        for (size_t i = 0; i < g->deg[u]; i++)
            in[o[i]] = 1;
    }
    for (size_t v = 0; v < g->n; v++) {
        if (in[v] || g->dead[v] || v == g->entry)
            continue;
        const uint32_t *ov = g->adj + v * g->Rcap;
        uint32_t w = g->entry;
        for (size_t i = 0; i < g->deg[v]; i++)
            if (!g->dead[ov[i]]) {
                w = ov[i];
                break;
            }
        uint32_t *o = g->adj + (size_t)w * g->Rcap;
        size_t dg = g->deg[w];
        if (dg < g->Rcap)
            g->deg[w] = (uint16_t)(dg + 1);
        o[dg < g->Rcap ? dg : dg - 1] = (uint32_t)v;
        in[v] = 1;
    }
    free(in);
}

/* The node nearest the mean of (a sample of) the live nodes. */
static void choose_entry(vqs_index *ix, vqs_graph *g, const build_ctx *B, float *buf)
{
    size_t d = ix->d, n = g->n, step = n > 10000 ? n / 10000 : 1;
    double *mean = calloc(d, sizeof(double));
    float *mf = malloc(sizeof(float) * d);
    if (!mean || !mf) {
        free(mean);
        free(mf);
        return; /* keep the entry */
    }
    size_t cnt = 0;
    for (size_t u = 0; u < n; u += step) {
        if (g->dead[u])
            continue;
        const float *x = node_vec(B, (uint32_t)u, buf);
        for (size_t j = 0; j < d; j++)
            mean[j] += x[j];
        cnt++;
    }
    if (cnt) {
        for (size_t j = 0; j < d; j++)
            mf[j] = (float)(mean[j] / (double)cnt);
        float best = INFINITY;
        for (size_t u = 0; u < n; u += step) {
            if (g->dead[u])
                continue;
            float dd = vdist(B, mf, node_vec(B, (uint32_t)u, buf));
            if (dd < best) {
                best = dd;
                g->entry = (uint32_t)u;
            }
        }
    }
    g->entry_at = n;
    free(mean);
    free(mf);
}

static void build_free(build_ctx *B, int nt)
{
    for (int t = 0; t < nt; t++) {
        if (B->sc) {
            free(B->sc[t].cand);
            vqs_graph_scratch_free(&B->sc[t]);
        }
        if (B->cq)
            vqs_codec_query_free(B->cq[t]);
        if (B->qv)
            free(B->qv[t]);
    }
    free(B->sc);
    free(B->cq);
    free(B->qv);
    free(B->dec);
}

int vqs_graph_insert(vqs_index *ix, size_t first, size_t n)
{
    vqs_graph *g = ix->graph;
    if (g->deferred) { /* stored, linked at vqs_index_graph_finish */
        g->n = first + n;
        return 0;
    }
    int nt = ix->nthreads > 0 ? ix->nthreads : 1;
    build_ctx B = {.ix = ix, .g = g, .K = vqs_kernels_active()};
    B.sc = calloc((size_t)nt, sizeof *B.sc);
    B.cq = calloc((size_t)nt, sizeof *B.cq);
    B.qv = calloc((size_t)nt, sizeof *B.qv);
    int rc = 0;
    if (!B.sc || !B.cq || !B.qv)
        rc = vqs_seterr(VQS_ENOMEM, "graph build");
    for (int t = 0; t < nt && !rc; t++) {
        if (!(B.qv[t] = malloc(sizeof(float) * 3 * ix->d + g->Rcap * ix->cs + 64)))
            rc = vqs_seterr(VQS_ENOMEM, "graph build");
        /* visited tags over every node: 4 bytes a node and thread while
         * building, cheaper than the hash set searches use */
        else if (!(B.sc[t].tag = calloc(first + n, sizeof(uint32_t))))
            rc = vqs_seterr(VQS_ENOMEM, "graph build: %zu nodes", first + n);
        else
            B.sc[t].ntag = first + n;
    }
    /* without a float copy, a bulk insert (a new index, or an eighth or more
     * of it added at once) decodes every node once, up to 1 GiB, instead of
     * each node once per prune that meets it */
    size_t tot = first + n;
    if (!rc && ix->refine != VQS_IVF_REFINE_FLAT && 8 * n >= tot && tot * ix->d * sizeof(float) <= DECODE_MAX &&
        (B.dec = malloc(sizeof(float) * tot * ix->d)) &&
        vqs_codec_decode(ix->codec, tot, ix->lists[0].codes, B.dec)) {
        free(B.dec); /* decoded row by row instead */
        B.dec = NULL;
        vqs_clearerr();
    }
    /* the insertion order: into an empty graph the batch's medoid goes
     * first, as the entry every insertion's search starts from (DiskANN's
     * start point; from an arbitrary first row, a two-thread build of
     * siftsmall with L = 64 left a sixth of the points behind edges that a
     * beam of 1024 did not find, in 2 of 4 runs) */
    uint32_t *perm = rc ? NULL : malloc(sizeof(uint32_t) * (n ? n : 1));
    if (!rc && !perm)
        rc = vqs_seterr(VQS_ENOMEM, "graph build: %zu nodes", n);
    size_t done = 0;
    int empty = g->n == 0;
    g->n = first + n; /* nodes not yet linked have no edge in: no search meets them */
    if (!rc && n) {
        uint32_t m = (uint32_t)first;
        if (empty) {
            choose_entry(ix, g, &B, B.qv[0]);
            m = g->entry;
            done = 1; /* the first node: the entry, no edges yet */
        }
        size_t w = 0;
        if (empty)
            perm[w++] = m;
        for (size_t i = 0; i < n; i++)
            if (!empty || first + i != m)
                perm[w++] = (uint32_t)(first + i);
    }
    /* one by one while the graph is small, then in parallel */
    while (!rc && done < n && (first + done < SERIAL_FIRST || nt == 1)) {
        B.perm = perm + done;
        rc = insert_one(&B, 0, 0);
        done++;
    }
    if (!rc && done < n) {
        B.perm = perm + done;
        B.locked = 1;
        rc = vqs_parallel_for(nt, n - done, insert_one, &B);
    }
    free(perm);
    g->n = first + n;
    if (!rc && g->n >= 2 * g->entry_at && B.qv)
        choose_entry(ix, g, &B, B.qv[0]);
    g->since_sweep += n;
    if (!rc && 64 * g->since_sweep >= g->n) { /* bulk inserts: at most every 1/64 of the nodes */
        link_orphans(g);
        g->since_sweep = 0;
    }
    build_free(&B, nt);
    return rc;
}

void vqs_graph_truncate(vqs_graph *g, size_t first)
{
    for (size_t u = 0; u < first; u++) {
        uint32_t *o = g->adj + u * g->Rcap;
        size_t w = 0;
        for (size_t i = 0; i < g->deg[u]; i++)
            if (o[i] < first)
                o[w++] = o[i];
        g->deg[u] = (uint16_t)w;
    }
    for (size_t u = first; u < g->n; u++) {
        g->deg[u] = 0;
        if (g->dead[u])
            g->ndead--;
        g->dead[u] = 0;
    }
    g->n = first;
    if (g->entry >= first)
        g->entry = 0;
}

/* ---- deletes ------------------------------------------------------------------------ */

void vqs_graph_kill(vqs_graph *g, uint32_t u)
{
    if (!g->dead[u]) {
        g->dead[u] = 1;
        g->ndead++;
    }
}

int vqs_graph_wants_consolidation(const vqs_graph *g)
{
    return g->ndead >= 16 && 5 * g->ndead >= g->n;
}

static int repair_one(void *ctx, size_t t, int tid)
{
    const build_ctx *B = ctx;
    vqs_graph *g = B->g;
    uint32_t p = (uint32_t)t;
    if (g->dead[p])
        return 0;
    const uint32_t *o = g->adj + (size_t)p * g->Rcap;
    size_t dg = g->deg[p], any = 0;
    for (size_t i = 0; i < dg && !any; i++)
        any = g->dead[o[i]];
    if (!any)
        return 0;
    /* candidates: the live neighbours, and the live neighbours of the dead
     * ones (only p's own block is written: blocks of dead nodes are read,
     * never written, so the tasks need no locks) */
    vqs_graph_scratch *s = &B->sc[tid];
    size_t need = dg * (g->Rcap + 1);
    if (need > s->ccap) {
        free(s->cand);
        s->cand = malloc(sizeof(vqs_graph_cand) * need);
        s->ccap = s->cand ? need : 0;
        if (!s->cand)
            return vqs_seterr(VQS_ENOMEM, "graph consolidation: scratch");
    }
    float *qv = B->qv[tid];
    const float *xp = node_vec(B, p, qv);
    size_t nc = 0;
    for (size_t i = 0; i < dg; i++) {
        uint32_t v = o[i];
        if (!g->dead[v]) {
            s->cand[nc++].u = v;
            continue;
        }
        const uint32_t *ov = g->adj + (size_t)v * g->Rcap;
        for (size_t j = 0; j < g->deg[v]; j++)
            if (!g->dead[ov[j]] && ov[j] != p)
                s->cand[nc++].u = ov[j];
    }
    for (size_t i = 0; i < nc; i++)
        s->cand[i].key = vdist(B, xp, node_vec(B, s->cand[i].u, qv + B->ix->d));
    return robust_prune(B, s, p, s->cand, nc, g->R);
}

int vqs_graph_consolidate(vqs_index *ix)
{
    vqs_graph *g = ix->graph;
    ivlist *L = &ix->lists[0];
    size_t n = g->n;
    int nt = ix->nthreads > 0 ? ix->nthreads : 1;
    build_ctx B = {.ix = ix, .g = g, .K = vqs_kernels_active()};
    B.sc = calloc((size_t)nt, sizeof *B.sc);
    B.cq = calloc((size_t)nt, sizeof *B.cq);
    B.qv = calloc((size_t)nt, sizeof *B.qv);
    uint32_t *remap = malloc(sizeof(uint32_t) * (n ? n : 1));
    int rc = 0;
    if (!B.sc || !B.cq || !B.qv || !remap)
        rc = vqs_seterr(VQS_ENOMEM, "graph consolidation");
    for (int t = 0; t < nt && !rc; t++)
        if (!(B.qv[t] = malloc(sizeof(float) * 3 * ix->d)))
            rc = vqs_seterr(VQS_ENOMEM, "graph consolidation");
    if (!rc)
        rc = vqs_parallel_for(nt, n, repair_one, &B);
    if (rc) { /* nothing was compacted; repaired blocks are still a valid graph */
        build_free(&B, nt);
        free(remap);
        return rc;
    }
    size_t live = 0;
    for (size_t u = 0; u < n; u++)
        remap[u] = g->dead[u] ? UINT32_MAX : (uint32_t)live++;
    /* rows and blocks move down in order: a row's new place is free or its own */
    for (size_t u = 0; u < n; u++) {
        uint32_t v = remap[u];
        if (v == UINT32_MAX || v == u)
            continue;
        L->ids[v] = L->ids[u];
        memcpy(L->codes + (size_t)v * ix->cs, L->codes + u * ix->cs, ix->cs);
        if (ix->rcs)
            memcpy(L->rcodes + (size_t)v * ix->rcs, L->rcodes + u * ix->rcs, ix->rcs);
        if (L->nf)
            L->nf[v] = L->nf[u];
        memcpy(g->adj + (size_t)v * g->Rcap, g->adj + u * g->Rcap, sizeof(uint32_t) * g->deg[u]);
        g->deg[v] = g->deg[u];
        vqs_ivf_map_move(ix, L->ids[v], 0, v);
    }
    for (size_t v = 0; v < live; v++) {
        uint32_t *o = g->adj + v * g->Rcap;
        size_t w = 0;
        for (size_t i = 0; i < g->deg[v]; i++)
            if (remap[o[i]] != UINT32_MAX)
                o[w++] = remap[o[i]];
        g->deg[v] = (uint16_t)w;
    }
    int entry_dead = g->dead[g->entry];
    g->entry = entry_dead ? 0 : remap[g->entry];
    memset(g->dead, 0, n);
    memset(g->deg + live, 0, sizeof(uint16_t) * (n - live));
    g->n = live;
    g->ndead = 0;
    L->n = live;
    if (entry_dead && live)
        choose_entry(ix, g, &B, B.qv[0]);
    link_orphans(g);
    build_free(&B, nt);
    free(remap);
    return 0;
}

/* ---- persistence ------------------------------------------------------------------ */

/* The file: "VQSGRAPH", u32 version, u32 R, u32 Rcap, u64 nodes,
 * u64 entry (an ordinal), the nodes' ids (i64 each, in node order), then per
 * node u16 degree and its neighbours as u32 ordinals, then the CRC-32C of
 * everything before it. Little-endian, as the machine writes it. */
#define GRAPH_MAGIC "VQSGRAPH"
#define GRAPH_VERSION 1u

typedef struct gio {
    FILE *f;
    uint32_t crc;
    int bad;
} gio;

static void put(gio *w, const void *p, size_t n)
{
    if (!w->bad && fwrite(p, 1, n, w->f) != n)
        w->bad = 1;
    w->crc = vqs_crc32c(w->crc, p, n);
}

static int get(gio *r, void *p, size_t n)
{
    if (r->bad || fread(p, 1, n, r->f) != n)
        return r->bad = 1, -1;
    r->crc = vqs_crc32c(r->crc, p, n);
    return 0;
}

int vqs_index_graph_mapped(const char *spec)
{
    vqs_graph_params gp;
    int rc = spec_graph(spec, &gp);
    return rc == 1 ? gp.mapped : rc;
}

int vqs_index_graph_mapped_stat(const vqs_index *ix, size_t *mapped, size_t *resident)
{
    if (!ix || !mapped || !resident)
        return vqs_seterr(VQS_EINVAL, "graph_mapped_stat: NULL argument");
    *mapped = *resident = 0;
    const vqs_graph *g = ix->graph;
    if (!g || !g->mapped || !g->adj)
        return 0;
    long pg = sysconf(_SC_PAGESIZE);
    size_t ps = pg > 0 ? (size_t)pg : 4096, np = g->mbytes / ps;
    unsigned char *v = malloc(np ? np : 1);
    if (!v)
        return vqs_seterr(VQS_ENOMEM, "graph_mapped_stat: %zu pages", np);
    if (mincore(g->adj, g->mbytes, v)) {
        int e = errno;
        free(v);
        return vqs_seterr(-e, "graph_mapped_stat: mincore: %s", strerror(e));
    }
    size_t r = 0;
    for (size_t i = 0; i < np; i++)
        r += v[i] & 1;
    free(v);
    *mapped = g->mbytes;
    *resident = r * ps;
    return 0;
}

int vqs_index_graph_drop_pages(vqs_index *ix)
{
    if (!ix)
        return vqs_seterr(VQS_EINVAL, "graph_drop_pages: NULL argument");
    vqs_graph *g = ix->graph;
    if (!g || !g->mapped || !g->adj)
        return 0;
    if (msync(g->adj, g->mbytes, MS_SYNC) || madvise(g->adj, g->mbytes, MADV_DONTNEED))
        return vqs_seterr(-errno, "graph_drop_pages: %s", strerror(errno));
    int e = posix_fadvise(g->mfd, 0, (off_t)g->mbytes, POSIX_FADV_DONTNEED);
    return e ? vqs_seterr(-e, "graph_drop_pages: posix_fadvise: %s", strerror(e)) : 0;
}

int vqs_index_graph_write(const vqs_index *ix, FILE *f)
{
    if (!ix || !f || !ix->graph)
        return vqs_seterr(VQS_EINVAL, "graph_write: no graph");
    if (ix->graph->disk)
        return vqs_seterr(VQS_EINVAL, "graph_write: the graph is on disk (%s)", vqs_graph_disk_path(ix->graph->disk));
    const vqs_graph *g = ix->graph;
    const ivlist *L = &ix->lists[0];
    uint32_t *ord = malloc(sizeof(uint32_t) * (g->n ? g->n : 1));
    if (!ord)
        return vqs_seterr(VQS_ENOMEM, "graph_write: %zu nodes", g->n);
    uint64_t live = 0;
    for (size_t u = 0; u < g->n; u++)
        ord[u] = g->dead[u] ? UINT32_MAX : (uint32_t)live++;
    gio w = {f, 0, 0};
    uint32_t hdr[3] = {GRAPH_VERSION, (uint32_t)g->R, (uint32_t)g->Rcap};
    uint64_t entry = g->n && ord[g->entry] != UINT32_MAX ? ord[g->entry] : 0;
    put(&w, GRAPH_MAGIC, 8);
    put(&w, hdr, sizeof hdr);
    put(&w, &live, 8);
    put(&w, &entry, 8);
    for (size_t u = 0; u < g->n; u++)
        if (!g->dead[u]) {
            int64_t id = L->ids ? L->ids[u] : (int64_t)u;
            put(&w, &id, 8);
        }
    uint32_t nb[1024];
    for (size_t u = 0; u < g->n; u++) {
        if (g->dead[u])
            continue;
        const uint32_t *o = g->adj + u * g->Rcap;
        uint16_t dg = 0;
        for (size_t i = 0; i < g->deg[u]; i++)
            if (ord[o[i]] != UINT32_MAX)
                nb[dg++] = ord[o[i]];
        put(&w, &dg, 2);
        put(&w, nb, sizeof(uint32_t) * dg);
    }
    uint32_t crc = w.crc;
    put(&w, &crc, 4);
    free(ord);
    if (w.bad || fflush(f))
        return vqs_seterr(errno ? -errno : -EIO, "graph_write: the write failed");
    return 0;
}

int vqs_index_graph_defer(vqs_index *ix)
{
    if (!ix || !ix->graph)
        return vqs_seterr(VQS_EINVAL, "graph_defer: the index has no graph");
    if (ix->graph->disk)
        return vqs_seterr(VQS_EINVAL, "graph_defer: the graph is on disk (%s)", vqs_graph_disk_path(ix->graph->disk));
    ix->graph->deferred = 1;
    ix->graph->pend = ix->graph->n;
    return 0;
}

/* The graph of f over the deferred nodes, or -1 (nothing kept) if it does
 * not fit them exactly. */
static int graph_read(vqs_index *ix, FILE *f)
{
    vqs_graph *g = ix->graph;
    size_t first = g->pend, n = g->n - first;
    gio r = {f, 0, 0};
    char magic[8];
    uint32_t hdr[3];
    uint64_t nn, entry;
    if (get(&r, magic, 8) || memcmp(magic, GRAPH_MAGIC, 8) || get(&r, hdr, sizeof hdr) || hdr[0] != GRAPH_VERSION ||
        hdr[1] != g->R || hdr[2] != g->Rcap || get(&r, &nn, 8) || nn != n ||
        n != ix->ntotal || get(&r, &entry, 8) || (n && entry >= n))
        return -1;
    uint32_t *pos = malloc(sizeof(uint32_t) * (n ? n : 1));
    uint8_t *seen = calloc(n ? n : 1, 1);
    int ok = pos && seen;
    for (size_t i = 0; ok && i < n; i++) {
        int64_t id;
        size_t l, p;
        ok = !get(&r, &id, 8) && vqs_ivf_map_get(ix, id, &l, &p) && p >= first && p < g->n && !seen[p - first];
        if (ok) {
            seen[p - first] = 1;
            pos[i] = (uint32_t)p;
        }
    }
    uint32_t nb[1024];
    for (size_t i = 0; ok && i < n; i++) {
        uint16_t dg;
        ok = !get(&r, &dg, 2) && dg <= g->Rcap && !get(&r, nb, sizeof(uint32_t) * dg);
        uint32_t *o = g->adj + (size_t)pos[i] * g->Rcap;
        for (size_t j = 0; ok && j < dg; j++) {
            ok = nb[j] < n;
            o[j] = ok ? pos[nb[j]] : 0;
        }
        if (ok)
            g->deg[pos[i]] = dg;
    }
    uint32_t want = r.crc, crc;
    ok = ok && !get(&r, &crc, 4) && crc == want && fgetc(f) == EOF;
    if (ok && n)
        g->entry = pos[entry];
    free(pos);
    free(seen);
    if (!ok) {
        memset(g->deg + first, 0, sizeof(uint16_t) * n);
        return -1;
    }
    g->entry_at = g->n;
    return 0;
}

int vqs_index_graph_finish(vqs_index *ix, FILE *f, int *loaded)
{
    if (loaded)
        *loaded = 0;
    if (!ix || !ix->graph || !ix->graph->deferred)
        return vqs_seterr(VQS_EINVAL, "graph_finish: no deferred graph");
    vqs_graph *g = ix->graph;
    g->deferred = 0;
    size_t first = g->pend, n = g->n - first;
    if (f && first == 0 && graph_read(ix, f) == 0) {
        if (loaded)
            *loaded = 1;
        return 0;
    }
    g->n = first; /* linked as an add links them */
    int rc = vqs_graph_insert(ix, first, n);
    if (rc)
        g->n = first + n; /* the rows stay, unlinked: searches cannot reach them */
    return rc;
}
