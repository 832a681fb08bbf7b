/*
 * graph_internal.h: the graph index's parts (graph.c) as the rest of the
 * index uses them: the spec token, the adjacency, insertion, tombstones
 * and the beam search that insertion and queries share.
 */
#ifndef VQS_GRAPH_INTERNAL_H
#define VQS_GRAPH_INTERNAL_H

#include "ivf_internal.h"

typedef struct vqs_graph_params {
    size_t R;    /* out-degree after a prune */
    size_t L;    /* build beam; 0: default */
    float alpha; /* RobustPrune's; 0: 1.2 */
    int mapped;  /* /D: the adjacency in a file, mapped (graph.c) */
} vqs_graph_params;

typedef struct vqs_graph_cand {
    float key;
    uint32_t u;
} vqs_graph_cand;

/* Per-thread scratch of the beam search (zeroed before first use, freed
 * with vqs_graph_scratch_free). After vqs_graph_beam: the beam's pl nodes
 * pn (keys pk, ascending; ties by lower node) and, with want_expanded, the
 * xl nodes it expanded (xn, keys xk). */
typedef struct vqs_graph_scratch {
    uint32_t *vis;     /* visited: a hash set (searches: memory bounded by the work) */
    size_t vcap, vn;
    uint32_t *tag;     /* or a tag per node (construction: ntag nodes, this search's tag) */
    size_t ntag;
    uint32_t epoch;
    float *pk;
    uint32_t *pn;
    uint8_t *pe;
    size_t pl, pcap;
    uint32_t *nbr;
    float *nk;
    size_t ncap;
    int want_expanded;
    uint32_t *xn;
    float *xk;
    size_t xl, xcap;
    /* construction */
    float *vb;
    uint8_t *rm;
    size_t vbn;
    vqs_graph_cand *cand;
    size_t ccap;
    /* on disk: the reader slot, and the vectors of the nodes expanded
     * (dn, dv: dvb bytes each; dord: their order by node, once sorted) */
    struct vqs_graph_disk *disk;
    void *slot;
    uint32_t *dn, *dord;
    uint8_t *dv;
    size_t dl, dcap, dvb;
    int dsorted;
} vqs_graph_scratch;

/* Scores n nodes against the search's query: keys (smaller is better).
 * A non-zero return stops the search with that error. */
typedef struct vqs_graph_scorer {
    int (*score)(void *ctx, size_t n, const uint32_t *nodes, float *keys);
    void *ctx;
} vqs_graph_scorer;

/* The graph token of a spec: tok[0..len) = "VAMANA<R>[/L<beam>][/A<alpha>]". */
int vqs_graph_parse(const char *tok, size_t len, vqs_graph_params *gp);
/* dir: where a mapped graph (gp->mapped) keeps its adjacency file; NULL:
 * $TMPDIR, else /var/tmp */
int vqs_graph_create(const vqs_graph_params *gp, size_t d, const char *dir, vqs_graph **out);
void vqs_graph_free(vqs_graph *g);
/* room for cap nodes; nothing else changes */
int vqs_graph_reserve(vqs_graph *g, size_t cap);
/* Links the list's rows first .. first + n - 1 (already appended) into the
 * graph. */
int vqs_graph_insert(vqs_index *ix, size_t first, size_t n);
/* Drops nodes first.. and every edge to them (a failed insertion). */
void vqs_graph_truncate(vqs_graph *g, size_t first);
/* Tombstones node u (its id already out of the id map). */
void vqs_graph_kill(vqs_graph *g, uint32_t u);
/* Repairs the edges into tombstoned nodes and compacts the list and the
 * graph (positions change; the id map follows). */
int vqs_graph_consolidate(vqs_index *ix);
/* Whether tombstones have passed the consolidation threshold. */
int vqs_graph_wants_consolidation(const vqs_graph *g);

/* Greedy beam search from the entry with a beam of ef (>= 1); locked: the
 * adjacency may change under it (parallel build). */
int vqs_graph_beam(const vqs_graph *g, vqs_graph_scratch *s, size_t ef, int locked,
                   const vqs_graph_scorer *sc);
void vqs_graph_scratch_free(vqs_graph_scratch *s);

size_t vqs_graph_nodes(const vqs_graph *g);
size_t vqs_graph_degree_cap(const vqs_graph *g);
size_t vqs_graph_default_ef(const vqs_graph *g);
int vqs_graph_is_dead(const vqs_graph *g, uint32_t u);
const uint32_t *vqs_graph_neighbors(const vqs_graph *g, uint32_t u, size_t *deg);
size_t vqs_graph_bytes(const vqs_graph *g); /* held in memory (/D: not the mapped links) */
size_t vqs_graph_degree(const vqs_graph *g); /* R */
uint32_t vqs_graph_entry_node(const vqs_graph *g);
size_t vqs_graph_tombstones(const vqs_graph *g);
int vqs_graph_deferred(const vqs_graph *g);

/* ---- on disk (graph_disk.c; the beam over it: graph.c) ---------------------- */

typedef struct vqs_graph_disk vqs_graph_disk;
int vqs_graph_on_disk(const vqs_graph *g);
vqs_graph_disk *vqs_graph_disk_of(const vqs_graph *g);
size_t vqs_graph_disk_width(const vqs_graph *g); /* default nodes read per hop */
/* Moves g to disk: its adjacency is freed; D is g's from now on. */
void vqs_graph_attach_disk(vqs_graph *g, vqs_graph_disk *D, size_t beam_width);
void vqs_graph_disk_close(vqs_graph_disk *D);
size_t vqs_graph_disk_max_width(void);
size_t vqs_graph_disk_vec_bytes(const vqs_graph_disk *D);
size_t vqs_graph_disk_bytes(const vqs_graph_disk *D);
uint32_t vqs_graph_disk_entry(const vqs_graph_disk *D);
size_t vqs_graph_disk_nodes(const vqs_graph_disk *D);
const char *vqs_graph_disk_path(const vqs_graph_disk *D);
/* The node bytes (vector, u32 degree, neighbours) of m <= max_width nodes,
 * read together through the reader slot *slot (taken on first use) or from
 * the cache; checked. */
int vqs_graph_disk_fetch(vqs_graph_disk *D, void **slot, size_t m, const uint32_t *u, const uint8_t **out);
void vqs_graph_disk_release(vqs_graph_disk *D, void *slot);
/* The beam search over the graph on disk: each round expands the width
 * best unexpanded nodes of the beam, their blocks read together; keeps
 * their vectors (vqs_graph_disk_vector). With width 1 it visits what
 * vqs_graph_beam visits over the same graph. */
int vqs_graph_beam_disk(const vqs_graph *g, vqs_graph_scratch *s, size_t ef, size_t width,
                        const vqs_graph_scorer *sc);
/* The full vector of node u (the vector bytes of its block) into *out: one
 * the last beam expanded, else read now. */
int vqs_graph_disk_vector(const vqs_graph *g, vqs_graph_scratch *s, uint32_t u, const uint8_t **out);

#endif
