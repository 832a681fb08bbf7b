/*
 * h_collections.c: the handlers of whole collections: list, describe
 * (Qdrant's shape, and vqs's own fields under "vqs"), create, drop, train,
 * PATCH.
 *
 * Design decisions:
 * - Create takes Qdrant's shapes (vectors, quantization_config,
 *   optimizers_config.indexing_threshold) and the vqs extension ("vqs":
 *   spec, rerank, train_size, nprobe, oversampling, clip); the collection
 *   layer checks the configuration (the spec by building it for the
 *   dimension and metric) before the name is looked at, so a spec that
 *   cannot work is a 400, not a collection that cannot open; it then
 *   creates the records and the vector file, all or nothing, and drop
 *   removes both (index/collection/vqs_collection.h).
 * - Create and drop hold the registry for writing (registry.c), so a drop
 *   waits for the requests in flight on the collection; PATCH too, so no
 *   request reads the defaults while they change.
 * - Nothing of a request is ignored: each field of Qdrant's create and
 *   update requests is used, accepted because it states what vqs does
 *   anyway (one shard, one replica, payloads on disk, codes in memory), or
 *   refused with a 400 naming it. null means "unset", as in Qdrant.
 * - Collection info tells the truth in Qdrant's shape: one segment, the
 *   graph as hnsw_config (m = R / 2 and ef_construct = L of a VAMANA<R>
 *   spec, else m = 0, Qdrant's own "no graph"), no WAL (null), the
 *   training size as indexing_threshold, the quantization Qdrant has a name
 *   for (else null: the spec is under "vqs").
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

static const char *distance_name(uint32_t m)
{
    return m == VQS_METRIC_L2 ? "Euclid" : m == VQS_METRIC_IP ? "Dot" : "Cosine";
}

int api_h_list(vqs_server *s, resp *r)
{
    json_t *a = json_array();
    pthread_rwlock_rdlock(&s->reg);
    for (entry *e = s->colls; e; e = e->next)
        json_array_append_new(a, json_pack("{s:s}", "name", e->name));
    pthread_rwlock_unlock(&s->reg);
    return ok(r, json_pack("{s:o}", "collections", a));
}

/* Qdrant's quantization_config of a vqs spec, for the specs it has a name
 * for (SQ8, ROT,BIN, PQ{m}x8 with a compression of 4d/m in x4..x64); NULL
 * (a new reference) for the others: the spec itself is under "vqs" */
static json_t *quantization_of(const vqs_coll_config *cfg)
{
    unsigned m = 0;
    char tail = 0;
    if (!strcmp(cfg->spec, "SQ8")) {
        json_t *sc = json_pack("{s:s, s:b}", "type", "int8", "always_ram", 1);
        if (sc && cfg->sq_clip)
            json_object_set_new(sc, "quantile", json_real(round(cfg->sq_clip * 1e6) / 1e6));
        return json_pack("{s:o}", "scalar", sc);
    }
    if (!strcmp(cfg->spec, "ROT,BIN"))
        return json_pack("{s:{s:b}}", "binary", "always_ram", 1);
    if (sscanf(cfg->spec, "PQ%ux8%c", &m, &tail) == 1 && m && cfg->d % m == 0) {
        unsigned long ratio = 4ul * cfg->d / m;
        if (4ul * cfg->d % m == 0 && (ratio == 4 || ratio == 8 || ratio == 16 || ratio == 32 || ratio == 64)) {
            char c[24];
            snprintf(c, sizeof c, "x%lu", ratio);
            return json_pack("{s:{s:s, s:b}}", "product", "compression", c, "always_ram", 1);
        }
    }
    return json_null();
}

/* vqs's own fields of one vector (info: vqs_coll_stat of its handle) */
static json_t *vqs_fields(const vqs_coll_info *info)
{
    const vqs_coll_config *cfg = &info->cfg;
    size_t code = info->code_size;
    json_t *o = json_pack("{s:s, s:b, s:I, s:f, s:f, s:s, s:s, s:I, s:I, s:f, s:I}", "spec", cfg->spec, "trained",
                          info->trained, "code_bytes_per_vector", (json_int_t)code, "index_bytes_per_vector",
                          info->bytes_per_vector, "compression_ratio", 4.0 * cfg->d / (double)code, "rerank",
                          vqs_rerank_name(cfg->rerank), "rerank_backend", info->rerank_backend, "nprobe",
                          (json_int_t)cfg->nprobe, "train_size", (json_int_t)cfg->train_size, "oversampling",
                          (double)cfg->oversampling, "deleted_codes", (json_int_t)info->deleted);
    /* the SQ8/SQ4 clip quantile it was created with (float32, shown to 6 decimals), or null */
    if (o)
        json_object_set_new(o, "clip", cfg->sq_clip ? json_real(round(cfg->sq_clip * 1e6) / 1e6) : json_null());
    return o;
}

/* Qdrant's VectorParams of one vector */
static json_t *vector_params(const vqs_coll_config *cfg, int named)
{
    json_t *o = json_pack("{s:I, s:s, s:b, s:s}", "size", (json_int_t)cfg->d, "distance", distance_name(cfg->metric),
                          "on_disk", cfg->rerank == VQS_RERANK_DISK, "datatype", "float32");
    if (o && named) /* a named vector's own quantization (the collection's is null then) */
        json_object_set_new(o, "quantization_config", quantization_of(cfg));
    return o;
}

/* Qdrant's CollectionInfo (the fields its clients read), told as vqs is:
 * one segment, no HNSW graph (m = 0, as Qdrant writes "no graph"), no WAL
 * (every write commits to LMDB before its answer), the training size as
 * the indexing threshold; vqs's own fields under "vqs" (a collection of
 * named vectors: each vector's under "vqs"."vectors"). */
int api_h_get_coll(entry *e, resp *r)
{
    size_t nv = vqs_coll_nvectors(e->c);
    int named = vqs_coll_vector_name(e->c, 0) != NULL;
    vqs_coll_info info[VQS_DB_MAX_VECTORS];
    uint64_t indexed = 0;
    for (size_t i = 0; i < nv; i++) {
        int rc = vqs_coll_stat(vqs_coll_vector(e->c, i), &info[i]);
        if (rc)
            return fail(r, 500, "collection '%s': %s", e->name, vqs_errdetail());
        indexed += info[i].trained ? info[i].count : 0;
    }
    const vqs_coll_config *cfg = &info[0].cfg;
    /* train_size points of d float32, in KB (Qdrant's unit), rounded up */
    json_int_t threshold_kb = (json_int_t)((cfg->train_size * 4 * cfg->d + 1023) / 1024);
    json_t *vectors = named ? json_object() : vector_params(cfg, 0), *vq = named ? json_object() : vqs_fields(&info[0]);
    json_t *vqv = named ? json_object() : NULL;
    for (size_t i = 0; named && i < nv; i++) {
        json_object_set_new(vectors, vqs_coll_vector_name(e->c, i), vector_params(&info[i].cfg, 1));
        json_object_set_new(vqv, vqs_coll_vector_name(e->c, i), vqs_fields(&info[i]));
    }
    if (vqv)
        json_object_set_new(vq, "vectors", vqv);
    if (vq)
        json_object_set_new(vq, "payload_bytes", json_real((double)info[0].payload_bytes));
    size_t gR = 0, gL = 0; /* the graph, as Qdrant's hnsw_config */
    if (vqs_index_graph_params(cfg->spec, &gR, &gL, NULL) != 1)
        gR = gL = 0;
    json_t *res = json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:I, "
        "s:{s:{s:o, s:I, s:s, s:I, s:I, s:b}, "
        "s:{s:I, s:I, s:I, s:b}, "
        "s:{s:I, s:I, s:n, s:I}, "
        "s:n, s:o}, "
        "s:o, s:o}",
        "status", "green", "optimizer_status", "ok", "points_count", (json_int_t)info[0].count, "vectors_count",
        (json_int_t)(info[0].count * nv), "indexed_vectors_count", (json_int_t)indexed, "segments_count",
        (json_int_t)1,
        "config",
        "params", "vectors", vectors, "shard_number", (json_int_t)1, "sharding_method", "auto",
        "replication_factor", (json_int_t)1, "write_consistency_factor", (json_int_t)1, "on_disk_payload", 1,
        "hnsw_config", "m", (json_int_t)(gR / 2), "ef_construct", (json_int_t)gL, "full_scan_threshold",
        (json_int_t)threshold_kb, "on_disk", vqs_index_graph_mapped(cfg->spec) == 1,
        "optimizer_config", "default_segment_number", (json_int_t)1, "flush_interval_sec", (json_int_t)0,
        "max_optimization_threads", "indexing_threshold", threshold_kb,
        "wal_config", "quantization_config", named ? json_null() : quantization_of(cfg),
        "payload_schema", json_object(), /* replaced below */
        "vqs", vq);
    if (!res)
        return fail(r, 500, "out of memory");
    json_t *ps = api_payload_schema(e);
    if (!ps) {
        json_decref(res);
        return fail(r, 500, "collection '%s': payload indexes: %s", e->name, vqs_errdetail());
    }
    json_object_set_new(res, "payload_schema", ps);
    return ok(r, res);
}

/* "null or absent": Qdrant's way of saying "leave it / the default" */
static int unset(const json_t *x) { return !x || json_is_null(x); }

/* A field of Qdrant's that only one value of makes sense for vqs (one
 * node, one shard): x must be null or equal that value. */
static int only_value(const json_t *x, const json_t *want, const char *field, const char *why, resp *r)
{
    if (unset(x) || json_equal((json_t *)x, (json_t *)want))
        return 0;
    char *w = json_dumps(want, JSON_ENCODE_ANY);
    fail(r, 400, "%s: not supported by vqs other than %s (%s)", field, w ? w : "?", why);
    free(w);
    return r->code;
}

/* An object of Qdrant's of which vqs takes none of the fields: null, {} or
 * fields that are all null; else 400 naming the first field set. */
static int none_set(const json_t *x, const char *field, const char *why, resp *r)
{
    if (unset(x))
        return 0;
    if (!json_is_object(x))
        return fail(r, 400, "%s: not supported by vqs (%s)", field, why);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)x, k, v)
    {
        if (!json_is_null(v))
            return fail(r, 400, "%s.%.60s: not supported by vqs (%s)", field, k, why);
    }
    return 0;
}

/* Qdrant's hnsw_config at create (the collection's, or one vector's, which
 * overrides it): m > 0 asks for a graph, which vqs builds as a Vamana graph
 * of degree R = 2 m (HNSW's layer 0 holds 2 m links) with the build beam
 * max(ef_construct, R) (index/graph.c): the spec becomes VAMANA<R>/L<L>,
 * <spec>. m = 0 is Qdrant's own "no graph". on_disk: true keeps the
 * graph's links in a file, mapped (VAMANA<R>/D, index/graph.c), as Qdrant
 * mmaps its HNSW links. *m, *efc, *disk: as given (-1: not given). The
 * other fields have no meaning in vqs and are refused when set. */
static int parse_hnsw(const json_t *x, const char *w, long *m, long *efc, int *disk, resp *r)
{
    if (unset(x))
        return 0;
    if (!json_is_object(x))
        return fail(r, 400, "%s: expected an object (m, ef_construct)", w);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)x, k, v)
    {
        if (json_is_null(v))
            continue;
        if (!strcmp(k, "m")) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) == 1 ||
                json_integer_value(v) > 256)
                return fail(r, 400, "%s.m: expected 0 (no graph) or an integer in 2..256", w);
            *m = (long)json_integer_value(v);
        } else if (!strcmp(k, "ef_construct")) {
            if (!json_is_integer(v) || json_integer_value(v) < 4 || json_integer_value(v) > 4096)
                return fail(r, 400, "%s.ef_construct: expected an integer in 4..4096", w);
            *efc = (long)json_integer_value(v);
        } else if (!strcmp(k, "on_disk")) {
            if (!json_is_boolean(v))
                return fail(r, 400, "%s.on_disk: expected a boolean", w);
            *disk = json_is_true(v);
        } else {
            return fail(r, 400, "%s.%.60s: not supported by vqs (its graph takes m and ef_construct)", w, k);
        }
    }
    return 0;
}

/* Puts the graph hnsw_config asked for in front of cfg's spec (on_disk
 * alone: /D on the spec's own graph). */
static int apply_hnsw(long m, long efc, int disk, const char *w, vqs_coll_config *cfg, resp *r)
{
    char spec[sizeof cfg->spec];
    int len;
    if (m <= 0) {
        if (disk != 1 || vqs_index_graph_mapped(cfg->spec) == 1)
            return 0;
        size_t tl = strcspn(cfg->spec, ",");
        if (m == 0 || strncmp(cfg->spec, "VAMANA", 6))
            return fail(r, 400, "%s.on_disk: true keeps a graph's links on disk, but no graph is asked for "
                                "(m > 0, or a VAMANA spec under \"vqs\")", w);
        len = snprintf(spec, sizeof spec, "%.*s/D%s", (int)tl, cfg->spec, cfg->spec + tl);
    } else {
        if (!strncmp(cfg->spec, "IVF", 3) || !strncmp(cfg->spec, "VAMANA", 6))
            return fail(r, 400, "%s.m: the spec '%s' already chooses its index (IVF or VAMANA); give one or the "
                                "other", w, cfg->spec);
        long R = 2 * m, L = efc > R ? efc : R;
        const char *D = disk == 1 ? "/D" : "";
        len = efc > 0 ? snprintf(spec, sizeof spec, "VAMANA%ld/L%ld%s,%s", R, L, D, cfg->spec)
                      : snprintf(spec, sizeof spec, "VAMANA%ld%s,%s", R, D, cfg->spec);
    }
    if (len < 0 || (size_t)len >= sizeof spec)
        return fail(r, 400, "%s: the spec with its graph is too long", w);
    memcpy(cfg->spec, spec, (size_t)len + 1);
    return 0;
}

/* Qdrant's optimizers_config (create) or its diff (PATCH): indexing_threshold
 * (KB of float32 vectors held before an index is built; 0: never) is the
 * training size in points; nothing else has a meaning in vqs. *set: 1 if
 * the training size was given. */
static int parse_optimizers(const json_t *oc, uint32_t d, uint64_t *train_size, int *set, resp *r)
{
    *set = 0;
    if (unset(oc))
        return 0;
    if (!json_is_object(oc))
        return fail(r, 400, "\"optimizers_config\": expected an object");
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)oc, k, x)
    {
        if (json_is_null(x))
            continue;
        if (!strcmp(k, "indexing_threshold")) {
            if (!json_is_integer(x) || json_integer_value(x) < 0)
                return fail(r, 400, "\"optimizers_config\".\"indexing_threshold\" must be an integer >= 0 (KB)");
            *train_size = ((uint64_t)json_integer_value(x) * 1024 + 4 * d - 1) / (4 * d);
            *set = 1;
        } else {
            return fail(r, 400, "\"optimizers_config\".\"%.60s\": not supported by vqs (it has no background "
                                "optimizer; indexing_threshold sets the training size)", k);
        }
    }
    return 0;
}

/* Qdrant's quantization_config -> a vqs spec (and the SQ8 clip quantile) */
static int spec_from_quantization(const json_t *q, size_t d, char *spec, size_t n, float *clip, resp *r)
{
    json_t *x, *v;
    const char *k;
    if (!json_is_object(q) || json_object_size(q) != 1)
        return fail(r, 400, "quantization_config: expected one of {\"scalar\": ...}, {\"product\": ...}, {\"binary\": ...}");
    if ((x = json_object_get(q, "scalar"))) {
        if (!json_is_object(x))
            return fail(r, 400, "quantization_config.scalar: expected an object");
        json_object_foreach(x, k, v)
        {
            if (json_is_null(v))
                continue;
            if (!strcmp(k, "type")) {
                if (!json_is_string(v) || strcmp(json_string_value(v), "int8"))
                    return fail(r, 400, "quantization_config.scalar.type: only \"int8\" is known");
            } else if (!strcmp(k, "quantile")) {
                /* the quantile of each dimension's range: vqs's SQ8 clip */
                double cv = json_is_number(v) ? json_number_value(v) : 0;
                if (!(cv <= 1.0 && (float)cv > 0.5f))
                    return fail(r, 400, "quantization_config.scalar.quantile: vqs takes a number in (0.5, 1]");
                *clip = (float)cv;
            } else if (!strcmp(k, "always_ram")) {
                if (!json_is_true(v))
                    return fail(r, 400, "quantization_config.scalar.always_ram: not supported by vqs other than "
                                        "true (its codes are always in memory)");
            } else {
                return fail(r, 400, "quantization_config.scalar.%.60s: unknown field", k);
            }
        }
        snprintf(spec, n, "SQ8");
        return 0;
    }
    if ((x = json_object_get(q, "binary"))) {
        if (!json_is_object(x))
            return fail(r, 400, "quantization_config.binary: expected an object");
        json_object_foreach(x, k, v)
        {
            if (json_is_null(v))
                continue;
            if (!strcmp(k, "always_ram")) {
                if (!json_is_true(v))
                    return fail(r, 400, "quantization_config.binary.always_ram: not supported by vqs other than "
                                        "true (its codes are always in memory)");
            } else if (!strcmp(k, "encoding")) {
                if (!json_is_string(v) || strcmp(json_string_value(v), "one_bit"))
                    return fail(r, 400, "quantization_config.binary.encoding: not supported by vqs other than "
                                        "\"one_bit\"");
            } else if (!strcmp(k, "query_encoding")) {
                if (!json_is_string(v) || strcmp(json_string_value(v), "default"))
                    return fail(r, 400, "quantization_config.binary.query_encoding: not supported by vqs other "
                                        "than \"default\"");
            } else {
                return fail(r, 400, "quantization_config.binary.%.60s: unknown field", k);
            }
        }
        snprintf(spec, n, "ROT,BIN");
        return 0;
    }
    if ((x = json_object_get(q, "product"))) {
        if (!json_is_object(x))
            return fail(r, 400, "quantization_config.product: expected an object");
        json_object_foreach(x, k, v)
        {
            if (json_is_null(v) || !strcmp(k, "compression"))
                continue;
            if (!strcmp(k, "always_ram")) {
                if (!json_is_true(v))
                    return fail(r, 400, "quantization_config.product.always_ram: not supported by vqs other than "
                                        "true (its codes are always in memory)");
            } else {
                return fail(r, 400, "quantization_config.product.%.60s: unknown field", k);
            }
        }
        json_t *c = json_object_get(x, "compression");
        int ratio = 0;
        if (json_is_string(c) && sscanf(json_string_value(c), "x%d", &ratio) == 1 &&
            (ratio == 4 || ratio == 8 || ratio == 16 || ratio == 32 || ratio == 64)) {
            /* ratio x: 4d / x bytes = M bytes of 8-bit codes */
            size_t m = 4 * d / (size_t)ratio;
            if (m == 0 || d % m)
                return fail(r, 400, "quantization_config.product: compression %s gives %zu sub-quantizers, which do "
                                    "not divide the dimension %zu",
                            json_string_value(c), m, d);
            snprintf(spec, n, "PQ%zux8", m);
            return 0;
        }
        return fail(r, 400, "quantization_config.product.compression must be \"x4\", \"x8\", \"x16\", \"x32\" or \"x64\"");
    }
    return fail(r, 400, "quantization_config: expected \"scalar\", \"product\" or \"binary\"");
}

/* Qdrant's VectorParams of one vector (w: how the messages name it,
 * "\"vectors\"" or "\"vectors\".\"NAME\""); a named vector may carry its
 * own quantization_config and "vqs" (*qz, *vx: borrowed, NULL if none) */
static int parse_vector_params(const json_t *v, const char *w, int named, vqs_coll_config *cfg, int *on_disk,
                               const json_t **qz, const json_t **vx, const json_t **hc, resp *r)
{
    json_t *x;
    const char *k;
    *qz = *vx = *hc = NULL;
    if (!json_is_object(v))
        return fail(r, 400, "%s: expected {\"size\": d, \"distance\": \"Cosine\"|\"Euclid\"|\"Dot\"}", w);
    json_object_foreach((json_t *)v, k, x)
    {
        if (!strcmp(k, "size")) {
            if (!json_is_integer(x) || json_integer_value(x) <= 0 || json_integer_value(x) > 65536)
                return fail(r, 400, "%s.\"size\" must be an integer between 1 and 65536", w);
            cfg->d = (uint32_t)json_integer_value(x);
        } else if (!strcmp(k, "distance")) {
            const char *dn = json_is_string(x) ? json_string_value(x) : "";
            if (!strcmp(dn, "Cosine"))
                cfg->metric = VQS_METRIC_COS;
            else if (!strcmp(dn, "Euclid"))
                cfg->metric = VQS_METRIC_L2;
            else if (!strcmp(dn, "Dot"))
                cfg->metric = VQS_METRIC_IP;
            else
                return fail(r, 400, "%s.\"distance\" must be \"Cosine\", \"Euclid\" or \"Dot\" (got "
                                    "\"%.40s\")%s",
                            w, dn, !strcmp(dn, "Manhattan") ? ": Manhattan is not supported by vqs" : "");
        } else if (json_is_null(x)) {
            continue;
        } else if (!strcmp(k, "on_disk")) {
            /* where the full vectors are kept: vqs's rerank disk or memory */
            if (!json_is_boolean(x))
                return fail(r, 400, "%s.\"on_disk\": expected a boolean", w);
            *on_disk = json_is_true(x);
        } else if (!strcmp(k, "datatype")) {
            if (!json_is_string(x) || strcmp(json_string_value(x), "float32"))
                return fail(r, 400, "%s.\"datatype\": not supported by vqs other than \"float32\" (the "
                                    "index's codes are its compressed form)", w);
        } else if (named && !strcmp(k, "quantization_config")) {
            *qz = x;
        } else if (named && !strcmp(k, "vqs")) {
            *vx = x;
        } else if (!strcmp(k, "hnsw_config")) {
            *hc = x;
        } else if (!strcmp(k, "quantization_config") || !strcmp(k, "multivector_config")) {
            return fail(r, 400, "%s.\"%s\": not supported by vqs%s", w, k,
                        k[0] == 'q' ? " for the unnamed vector (give the collection's quantization_config or "
                                      "\"vqs\".\"spec\")" : "");
        } else {
            return fail(r, 400, "%s.\"%.60s\": unknown field", w, k);
        }
    }
    if (!cfg->d || !json_object_get(v, "distance"))
        return fail(r, 400, "%s: \"size\" and \"distance\" are required", w);
    return 0;
}

/* the "vqs" extension (the collection's, or a named vector's own) into cfg */
static int parse_vqs_ext(const json_t *vx, const char *w, vqs_coll_config *cfg, resp *r)
{
    const char *k;
    json_t *x;
    if (!vx)
        return 0;
    if (!json_is_object(vx))
        return fail(r, 400, "%s must be an object (spec, rerank, train_size, nprobe, oversampling, clip)", w);
    json_object_foreach((json_t *)vx, k, x)
    {
        if (!strcmp(k, "spec") && json_is_string(x) && json_string_length(x) < sizeof cfg->spec)
            snprintf(cfg->spec, sizeof cfg->spec, "%s", json_string_value(x));
        else if (!strcmp(k, "rerank") && json_is_string(x) && !vqs_rerank_parse(json_string_value(x), &cfg->rerank)) {
            /* "none", "disk" or "memory": the layer's name table */
        } else if (!strcmp(k, "train_size") && json_is_integer(x) && json_integer_value(x) >= 0)
            cfg->train_size = (uint64_t)json_integer_value(x);
        else if (!strcmp(k, "nprobe") && json_is_integer(x) && json_integer_value(x) > 0 &&
                 json_integer_value(x) < (1 << 24))
            cfg->nprobe = (uint32_t)json_integer_value(x);
        else if (!strcmp(k, "oversampling") && json_is_number(x) && json_number_value(x) >= 1 &&
                 json_number_value(x) <= 1000)
            cfg->oversampling = (float)json_number_value(x);
        else if (!strcmp(k, "clip")) {
            /* SQ8/SQ4 training ranges (vqs_codec_opts.sq_clip), stored with the collection */
            double cv = json_is_number(x) ? json_number_value(x) : 0;
            if (!(cv <= 1.0 && (float)cv > 0.5f))
                return fail(r, 400, "%s.\"clip\" must be a number in (0.5, 1]: the two-sided quantile of "
                                    "each dimension's SQ8/SQ4 training range (0.999 clips 0.1%% at each end, 1 "
                                    "keeps min/max; leave it out for the default)", w);
            cfg->sq_clip = (float)cv;
        } else {
            vqs_clearerr();
            return fail(r, 400, "%s.\"%s\": unknown key or bad value (spec: string; rerank: \"disk\", \"memory\" or "
                                "\"none\"; train_size: integer >= 0; nprobe: integer >= 1; oversampling: 1..1000; "
                                "clip: (0.5, 1])", w, k);
        }
    }
    return 0;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static const char NO_HNSW[] = "a collection's graph is chosen when it is created (hnsw_config.m, or a VAMANA spec "
                               "under \"vqs\") and cannot be changed";
static const char NO_WAL[] = "vqs has no WAL: every write is committed to LMDB before it is answered";

int api_h_create(vqs_server *s, const char *name, const req *q, resp *r)
{
    json_t *j = api_parse_body(q, r);
    if (!j)
        return r->code;
    vqs_coll_config base = {0}; /* nprobe, oversampling: the collection defaults */
    base.rerank = VQS_RERANK_DISK;
    base.train_size = 10000;
    snprintf(base.spec, sizeof base.spec, "SQ8");
    vqs_coll_config cfg[VQS_DB_MAX_VECTORS];
    const char *vn[VQS_DB_MAX_VECTORS];
    size_t nv = 1;
    json_t *x, *one = json_integer(1), *yes = json_true(), *aut = json_string("auto");
    const json_t *oc = NULL, *qc = NULL, *hc = NULL;
    const char *k;
    int rc;
    /* "vectors": one unnamed vector {"size", "distance", ...}, or named
     * ones {"NAME": {...}, ...} (kept in name order, as Qdrant lists them):
     * named when every value is an object (VectorParams' "size" and
     * "distance" never are), so a vector may be called "size" */
    json_t *vecs = json_object_get(j, "vectors");
    int named = json_is_object(vecs) && json_object_size(vecs) > 0;
    json_object_foreach(named ? vecs : NULL, k, x) named &= json_is_object(x);
    if (named) {
        if (json_object_size(vecs) > VQS_DB_MAX_VECTORS) {
            fail(r, 400, "\"vectors\": %zu named vectors; vqs keeps at most %d per collection",
                 json_object_size(vecs), VQS_DB_MAX_VECTORS);
            goto out;
        }
        nv = 0;
        json_object_foreach(vecs, k, x) vn[nv++] = k;
        qsort(vn, nv, sizeof *vn, cmp_name);
    }
    /* every field of Qdrant's CreateCollection is either used, accepted as
     * what vqs does anyway (one shard, one replica, payloads on disk), or
     * refused naming it; optimizers_config and quantization_config depend
     * on each vector's d: applied below */
    json_object_foreach(j, k, x)
    {
        if (!strcmp(k, "vectors") || !strcmp(k, "vqs"))
            continue;
        if (!strcmp(k, "shard_number")) {
            if (only_value(x, one, "shard_number", "a collection is one shard", r))
                goto out;
        } else if (!strcmp(k, "sharding_method")) {
            if (only_value(x, aut, "sharding_method", "a collection is one shard", r))
                goto out;
        } else if (!strcmp(k, "replication_factor") || !strcmp(k, "write_consistency_factor")) {
            if (only_value(x, one, k, "vqs is one node", r))
                goto out;
        } else if (!strcmp(k, "on_disk_payload")) {
            if (only_value(x, yes, k, "payloads are kept in LMDB on disk, and cached in memory for filters", r))
                goto out;
        } else if (!strcmp(k, "hnsw_config")) {
            hc = x;
        } else if (!strcmp(k, "wal_config")) {
            if (none_set(x, k, NO_WAL, r))
                goto out;
        } else if (!strcmp(k, "optimizers_config")) {
            oc = x;
        } else if (!strcmp(k, "quantization_config")) {
            qc = unset(x) ? NULL : x;
        } else if (!strcmp(k, "sparse_vectors")) {
            if (!unset(x) && !(json_is_object(x) && json_object_size(x) == 0)) {
                fail(r, 400, "\"sparse_vectors\": sparse vectors are not supported by vqs");
                goto out;
            }
        } else if (!strcmp(k, "strict_mode_config") || !strcmp(k, "metadata") || !strcmp(k, "init_from")) {
            if (!unset(x)) {
                fail(r, 400, "\"%s\": not supported by vqs", k);
                goto out;
            }
        } else {
            fail(r, 400, "unknown field \"%.60s\" in the collection's configuration", k);
            goto out;
        }
    }
    for (size_t i = 0; i < nv; i++) {
        char w[160], wv[176];
        if (named)
            snprintf(w, sizeof w, "\"vectors\".\"%.100s\"", vn[i]);
        else
            snprintf(w, sizeof w, "\"vectors\"");
        snprintf(wv, sizeof wv, "%s.\"vqs\"", w);
        cfg[i] = base;
        int on_disk = -1, ts_set = 0;
        const json_t *qz, *vx, *vh;
        if (parse_vector_params(named ? json_object_get(vecs, vn[i]) : vecs, w, named, &cfg[i], &on_disk, &qz, &vx,
                                &vh, r))
            goto out;
        if (on_disk >= 0)
            cfg[i].rerank = on_disk ? VQS_RERANK_DISK : VQS_RERANK_MEMORY;
        if (parse_optimizers(oc, cfg[i].d, &cfg[i].train_size, &ts_set, r))
            goto out;
        const json_t *qq = qz && !unset(qz) ? qz : qc;
        float qclip = 0;
        if (qq && spec_from_quantization(qq, cfg[i].d, cfg[i].spec, sizeof cfg[i].spec, &qclip, r))
            goto out;
        cfg[i].sq_clip = qclip;
        if (parse_vqs_ext(json_object_get(j, "vqs"), "\"vqs\"", &cfg[i], r) || parse_vqs_ext(vx, wv, &cfg[i], r))
            goto out;
        /* the graph: the collection's hnsw_config, then the vector's over it */
        long hm = -1, hef = -1;
        int hdisk = -1;
        char wh[192];
        snprintf(wh, sizeof wh, "%s.\"hnsw_config\"", w);
        if (parse_hnsw(hc, "\"hnsw_config\"", &hm, &hef, &hdisk, r) || parse_hnsw(vh, wh, &hm, &hef, &hdisk, r) ||
            apply_hnsw(hm, hef, hdisk, "\"hnsw_config\"", &cfg[i], r))
            goto out;
        /* the spec must build for this dimension and metric (the rest is
         * checked above): a 400 before the name is looked at */
        if ((rc = vqs_coll_config_check(name, &cfg[i], NULL))) {
            fail(r, 400, "%s%s\"vqs\".\"spec\": %s", named ? w : "", named ? ": " : "", vqs_errdetail());
            vqs_clearerr();
            goto out;
        }
    }
    pthread_rwlock_wrlock(&s->reg);
    if (api_entry_find(s, name)) {
        pthread_rwlock_unlock(&s->reg);
        fail(r, 409, "Wrong input: Collection `%s` already exists!", name);
        goto out;
    }
    if (api_alias_resolve(s, name)) {
        pthread_rwlock_unlock(&s->reg);
        fail(r, 409, "Wrong input: Alias with the same name `%s` already exists!", name);
        goto out;
    }
    rc = named ? vqs_coll_create_named(s->cat, name, nv, vn, cfg) : vqs_coll_create(s->cat, name, &cfg[0]);
    if (rc) {
        pthread_rwlock_unlock(&s->reg);
        fail(r, status_of(rc), "%s", vqs_errdetail());
        vqs_clearerr();
        goto out;
    }
    entry *e = api_entry_open(s, name);
    if (!e || !e->c) {
        if (e)
            fail(r, 500, "%s", e->open_error);
        else
            fail(r, 500, "out of memory");
        api_entry_free(e);
        vqs_coll_drop(s->cat, name);
        pthread_rwlock_unlock(&s->reg);
        goto out;
    }
    e->next = s->colls;
    s->colls = e;
    pthread_rwlock_unlock(&s->reg);
    ok(r, json_true());
out:
    json_decref(j);
    json_decref(one);
    json_decref(yes);
    json_decref(aut);
    return r->code;
}

int api_h_drop(vqs_server *s, const char *name, resp *r)
{
    pthread_rwlock_wrlock(&s->reg);
    entry **pp = &s->colls;
    while (*pp && strcmp((*pp)->name, name))
        pp = &(*pp)->next;
    if (!*pp) {
        pthread_rwlock_unlock(&s->reg);
        return fail(r, 404, "Not found: Collection `%s` doesn't exist!", name);
    }
    entry *e = *pp;
    int rc = vqs_coll_drop(s->cat, name); /* its records, then its vector file */
    if (rc) {
        pthread_rwlock_unlock(&s->reg);
        return fail(r, 500, "drop '%s': %s", name, vqs_errdetail());
    }
    *pp = e->next;
    api_entry_free(e);
    /* storage dropped the collection's aliases with it */
    if (api_aliases_load(s)) {
        fprintf(stderr, "vqs serve: dropped '%s', but the aliases could not be read back: %s\n", name,
                vqs_errdetail());
        vqs_clearerr();
    }
    pthread_rwlock_unlock(&s->reg);
    return ok(r, json_true());
}

/* trains every vector not trained yet, each on the points held */
int api_h_train(entry *e, resp *r)
{
    size_t nv = vqs_coll_nvectors(e->c), done = 0;
    for (size_t i = 0; i < nv; i++) {
        vqs_coll *vc = vqs_coll_vector(e->c, i);
        if (vqs_coll_is_trained(vc))
            continue;
        int rc = vqs_coll_train(vc, 0, NULL);
        if (rc) {
            const char *vn = vqs_coll_vector_name(e->c, i);
            fail(r, status_of(rc), "training%s%s%s: %s", vn ? " vector '" : "", vn ? vn : "", vn ? "'" : "",
                 vqs_errdetail());
            vqs_clearerr();
            return r->code;
        }
        done++;
    }
    if (!done)
        return fail(r, 400, "collection '%s' is already trained", e->name);
    return ok(r, json_true());
}

/* PATCH /collections/{name}: Qdrant's UpdateCollection. What vqs has is
 * applied (optimizers_config.indexing_threshold as the training size; under
 * "vqs" nprobe, oversampling, train_size); params that state what vqs is
 * (one replica, payloads on disk) are accepted; everything else is refused
 * naming the field, before anything changes. The registry is held for
 * writing, so no request runs on the collection while its defaults change
 * (vqs_coll_set_defaults). */
int api_h_patch(vqs_server *s, const char *name, const req *q, resp *r)
{
    json_t *j = api_parse_body(q, r);
    if (!j)
        return r->code;
    json_t *x, *v, *one = json_integer(1), *yes = json_true();
    const char *k, *pk;
    /* what changes: -1 / 0 / negative values: unchanged */
    long long nprobe = -1, train_size = -1, it_kb = -1;
    double oversampling = -1;
    json_object_foreach(j, k, x)
    {
        if (unset(x))
            continue;
        if (!strcmp(k, "optimizers_config")) {
            if (!json_is_object(x)) {
                fail(r, 400, "\"optimizers_config\": expected an object");
                goto out;
            }
            json_object_foreach(x, pk, v)
            {
                if (json_is_null(v))
                    continue;
                if (strcmp(pk, "indexing_threshold")) {
                    fail(r, 400, "\"optimizers_config\".\"%.60s\": not supported by vqs (it has no background "
                                 "optimizer; indexing_threshold sets the training size)", pk);
                    goto out;
                }
                if (!json_is_integer(v) || json_integer_value(v) < 0) {
                    fail(r, 400, "\"optimizers_config\".\"indexing_threshold\" must be an integer >= 0 (KB)");
                    goto out;
                }
                it_kb = json_integer_value(v);
            }
        } else if (!strcmp(k, "params")) {
            if (!json_is_object(x)) {
                fail(r, 400, "\"params\": expected an object");
                goto out;
            }
            json_object_foreach(x, pk, v)
            {
                char f[80];
                snprintf(f, sizeof f, "params.%.60s", pk);
                if (!strcmp(pk, "replication_factor") || !strcmp(pk, "write_consistency_factor")) {
                    if (only_value(v, one, f, "vqs is one node", r))
                        goto out;
                } else if (!strcmp(pk, "on_disk_payload")) {
                    if (only_value(v, yes, f, "payloads are kept in LMDB on disk, and cached in memory for filters", r))
                        goto out;
                } else if (!json_is_null(v)) {
                    fail(r, 400, "%s: not supported by vqs", f);
                    goto out;
                }
            }
        } else if (!strcmp(k, "vqs")) {
            if (!json_is_object(x)) {
                fail(r, 400, "\"vqs\": expected an object (nprobe, oversampling, train_size)");
                goto out;
            }
            json_object_foreach(x, pk, v)
            {
                if (!strcmp(pk, "nprobe") && json_is_integer(v) && json_integer_value(v) > 0 &&
                    json_integer_value(v) < (1 << 24))
                    nprobe = json_integer_value(v);
                else if (!strcmp(pk, "oversampling") && json_is_number(v) && json_number_value(v) >= 1 &&
                         json_number_value(v) <= 1000)
                    oversampling = json_number_value(v);
                else if (!strcmp(pk, "train_size") && json_is_integer(v) && json_integer_value(v) >= 0)
                    train_size = json_integer_value(v);
                else if (!strcmp(pk, "spec") || !strcmp(pk, "rerank") || !strcmp(pk, "clip")) {
                    fail(r, 400, "\"vqs\".\"%s\": cannot be changed after the collection is created (its codes "
                                 "and vector file depend on it)", pk);
                    goto out;
                } else {
                    fail(r, 400, "\"vqs\".\"%.60s\": unknown key or bad value (nprobe: 1..16777215; oversampling: "
                                 "1..1000; train_size: integer >= 0)", pk);
                    goto out;
                }
            }
        } else if (!strcmp(k, "hnsw_config")) {
            if (none_set(x, k, NO_HNSW, r))
                goto out;
        } else if (!strcmp(k, "vectors") || !strcmp(k, "quantization_config")) {
            if (!json_is_object(x) || json_object_size(x)) {
                fail(r, 400, "\"%s\": changing it is not supported by vqs (the codes are trained for it; create "
                             "a new collection)", k);
                goto out;
            }
        } else if (!strcmp(k, "sparse_vectors")) {
            fail(r, 400, "\"sparse_vectors\": sparse vectors are not supported by vqs");
            goto out;
        } else if (!strcmp(k, "strict_mode_config") || !strcmp(k, "metadata")) {
            fail(r, 400, "\"%s\": not supported by vqs", k);
            goto out;
        } else {
            fail(r, 400, "unknown field \"%.60s\" (Qdrant's update: optimizers_config, params, vectors, "
                         "hnsw_config, quantization_config, sparse_vectors, strict_mode_config, metadata; vqs: \"vqs\")", k);
            goto out;
        }
    }
    if (it_kb >= 0 && train_size >= 0) {
        fail(r, 400, "\"optimizers_config\".\"indexing_threshold\" and \"vqs\".\"train_size\" both set the training "
                     "size: give one");
        goto out;
    }
    pthread_rwlock_wrlock(&s->reg);
    entry *e = api_entry_find(s, name);
    const char *real = e ? NULL : api_alias_resolve(s, name);
    if (real)
        e = api_entry_find(s, real);
    if (!e) {
        fail(r, 404, "Not found: Collection `%s` doesn't exist!", name);
    } else if (!e->c) {
        fail(r, 500, "%s", e->open_error);
    } else {
        /* every vector of the collection (each checks the values first: a
         * refusal comes from the first, before anything changed) */
        int rc = 0;
        for (size_t i = 0; i < vqs_coll_nvectors(e->c) && !rc; i++) {
            vqs_coll *vc = vqs_coll_vector(e->c, i);
            const vqs_coll_config *cfg = vqs_coll_config_of(vc);
            uint64_t ts = cfg->train_size;
            if (train_size >= 0)
                ts = (uint64_t)train_size;
            if (it_kb >= 0)
                ts = ((uint64_t)it_kb * 1024 + 4 * cfg->d - 1) / (4 * cfg->d);
            rc = vqs_coll_set_defaults(vc, nprobe >= 0 ? (uint32_t)nprobe : cfg->nprobe,
                                       oversampling >= 0 ? (float)oversampling : cfg->oversampling, ts);
        }
        if (rc) {
            fail(r, status_of(rc), "collection '%s': %s", e->name, vqs_errdetail());
            vqs_clearerr();
        } else {
            ok(r, json_true());
        }
    }
    pthread_rwlock_unlock(&s->reg);
out:
    json_decref(j);
    json_decref(one);
    json_decref(yes);
    return r->code;
}
