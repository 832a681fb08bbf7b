/*
 * ivf_internal.h: the compressed index's struct and what its parts share.
 * The parts, one concept each:
 *   ivf.c         create, free, the spec, accessors, training, shared helpers
 *   ivf_ids.c     the id map (external id -> list, position)
 *   ivf_add.c     encode, decode, add and remove vectors
 *   ivf_pack.c    a list's codes in the fast-scan block layout
 *   ivf_blob.c    the trained state as a blob
 *   ivf_search.c  search
 */
#ifndef VQS_IVF_INTERNAL_H
#define VQS_IVF_INTERNAL_H

#include "vqs_index.h"
#include "vqs_kernels.h"

/* The second-stage copy of each vector (vqs_index.refine). */
typedef enum vqs_ivf_refine {
    VQS_IVF_REFINE_NONE = 0,
    VQS_IVF_REFINE_FLAT = 1,  /* ,RFlat: the float32 vector */
    VQS_IVF_REFINE_CODEC = 2, /* ,Refine(<codec>): a finer codec's code */
} vqs_ivf_refine;

/* The fast-scan layout of the codes (vqs_index.fastscan, ivf.c "One code
 * path"): the value is the bits per sub-quantizer code, so a query's
 * tables hold M << fastscan entries. */
typedef enum vqs_ivf_fastscan {
    VQS_IVF_FS_NONE = 0, /* row after row */
    VQS_IVF_FS_PQ4 = 4,  /* PQ Mx4: blocks of 32 */
    VQS_IVF_FS_PQ8 = 8,  /* PQ Mx8 with AVX-512 VBMI: blocks of 64 */
} vqs_ivf_fastscan;

typedef struct vqs_graph vqs_graph; /* graph.c */

typedef struct ivlist {
    size_t n, cap;
    int64_t *ids;    /* NULL while the id map is the identity (ivf_ids.c) */
    uint8_t *codes;  /* cap * cs, or the fast-scan layout for cap rows */
    uint8_t *rcodes; /* cap * rcs (refine copy), or NULL */
    float *nf;       /* cap: 1/|x^| of each vector (cosine correction), or NULL */
    float nf_lo, nf_hi; /* bounds of nf over the vectors added since the list
                           was last empty (removals leave them wider: still
                           bounds), for the fast-scan pruning */
} ivlist;

/* The id map's form (ivf_ids.c). */
typedef enum vqs_ivf_idform {
    VQS_IDS_IDENT = 0, /* flat, ids 0 .. n-1 at their positions: no map, no ids */
    VQS_IDS_DENSE = 1, /* ht[id]: a location */
    VQS_IDS_HASH = 2,  /* ht: open addressing over locations */
} vqs_ivf_idform;

struct vqs_index {
    char spec[512];
    size_t d;
    vqs_metric metric;
    vqs_index_opts o;
    int nthreads;

    size_t nlist;      /* 1: flat */
    int ivf;           /* coarse step present */
    float *centroids;  /* nlist * d */
    int by_residual;

    vqs_codec *codec;
    size_t cs;         /* code_size */
    vqs_ivf_fastscan fastscan;
    size_t fs_M, fs_bs, fs_block; /* sub-quantizers, vectors and bytes per block */
    int fs_sq;         /* fast-scan layout over 4- or 8-bit scalar codes: a
                          table per dimension, built from the codec's SQ view
                          (ivf_search.c) */

    int cosnorm;       /* cosine scores divided by |x^| (lists carry nf) */
    vqs_codec_norms *norms; /* derives |x^| from a code (and its list) */
    int rcosnorm;      /* the same for the refine codec's re-scoring, where
                          |x^| is derived per candidate at search time */
    vqs_codec_norms *rnorms;

    vqs_ivf_refine refine;
    vqs_codec *rcodec;
    size_t rcs;        /* refine bytes per vector */

    /* IVF-PQ, L2, residual codes: FAISS's "precomputed tables" (behind
     * transforms: in their output space, q and c as T(q) and tcent). |q - c - r|^2 = |q - c|^2 + sum_m (|r_m|^2 + 2 <c_m, r_m>)
     * - 2 sum_m <q_m, r_m>: the middle term depends only on the list and
     * the code, so a list's table is ptab[l] plus a per-query table. */
    float *ptab;          /* layout (nlist, M, ksub) */
    size_t pq_M, pq_ksub, pq_dsub;
    const float *pq_cent; /* the codec's, layout (M, ksub, dsub) */
    float *pq_centT;      /* the same, layout (M, dsub, ksub): a query's table
                             in loops over ksub that vectorise */
    /* IVF, L2, residual codes behind transforms T (affine): T(c) - T(0)
     * of each list's centroid (nlist * dq), so T(q - c) = T(q) - tcent[l]
     * and a query goes through T once, not once per probed list. The
     * precomputed tables above are then built on these centroids. */
    float *tcent;
    size_t dq;

    /* VAMANA<R>: a graph over the rows of the one list (graph.c); NULL
     * for flat and IVF indexes */
    vqs_graph *graph;

    int trained;
    ivlist *lists;
    size_t ntotal;
    int64_t next_id;

    /* the id map (ivf_ids.c) */
    vqs_ivf_idform idform;
    int wide;          /* locations as 64-bit LOC, else 32-bit handles */
    unsigned pbits;    /* a 32-bit handle: list << pbits | position */
    void *ht;          /* dense: a location per id; hash: the slots */
    size_t hcap;       /* entries of ht */
    size_t map_n;      /* ids in the map (dense and hash) */
};

/* ---- id map (ivf_ids.c) ----------------------------------------------------- */


/* Sets the form for a new index (identity for flat, else dense). */
void vqs_ivf_map_init(vqs_index *ix);
/* Whether key is in the index, and where. */
int vqs_ivf_map_get(const vqs_index *ix, int64_t key, size_t *list, size_t *pos);
/* Identity to dense: the list's ids and the map made (before an add out of
 * sequence or a removal); nothing changes if it fails. */
int vqs_ivf_map_leave_identity(vqs_index *ix);
/* Makes room for the n keys about to be put at positions up to maxpos
 * (and picks the map's form). Not in identity form. */
int vqs_ivf_map_reserve(vqs_index *ix, size_t n, const int64_t *keys, size_t maxpos);
/* key absent, room reserved, its id already in the list at pos */
void vqs_ivf_map_put(vqs_index *ix, int64_t key, size_t list, size_t pos);
/* key present, its id already in the list at its new pos */
void vqs_ivf_map_move(vqs_index *ix, int64_t key, size_t list, size_t pos);
void vqs_ivf_map_del(vqs_index *ix, int64_t key); /* key present, its id still at its position */
/* Bytes the map holds (for vqs_index_bytes_per_vector). */
size_t vqs_ivf_map_bytes(const vqs_index *ix);
/* tests: fewer position bits in the 32-bit handles, for indexes created
 * after it is set (0: as many as fit) */
extern unsigned vqs_ivf_test_pos_bits;

/* ---- fast-scan lists (ivf_pack.c) ------------------------------------------- */

size_t vqs_ivf_list_code_bytes(const vqs_index *ix, size_t rows);
void vqs_ivf_fs_get(const vqs_index *ix, const uint8_t *packed, size_t i, uint8_t *code);
/* Fast scan: writes rows [pos, pos + n) of the list from plain codes (cs
 * bytes each), re-packing the blocks they touch. */
void vqs_ivf_fs_write(const vqs_index *ix, ivlist *L, size_t pos, size_t n, const uint8_t *codes,
                      uint8_t *tmp /* fs_bs * cs */);

/* ---- shared helpers (ivf.c) -------------------------------------------------- */

/* finite rows whose scores stay finite (vqs_check_vectors) */
int vqs_ivf_check_rows(const vqs_index *ix, size_t n, const float *x, const char *what);
/* Nearest list of every row: L2 nearest centroid, or largest inner product. */
int vqs_ivf_assign_lists(const vqs_index *ix, size_t n, const float *x, int32_t *a);
/* The handle that derives |x^| from a code: residual codes are offset by
 * their list's centroid. Rebuilt whenever the codec or centroids change. */
int vqs_ivf_prepare_norms(vqs_index *ix);
/* The transformed centroids, and the precomputed tables when they apply
 * and fit (else plain per-list query preparation is used). */
int vqs_ivf_build_ptab(vqs_index *ix);

#endif
