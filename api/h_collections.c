/*
 * h_collections.c: the handlers of whole collections: list, describe
 * (Qdrant's shape, and vqs's own fields under "vqs"), create, drop, train.
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
 *   waits for the requests in flight on the collection.
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

int api_h_get_coll(entry *e, resp *r)
{
    vqs_coll_info info;
    int rc = vqs_coll_stat(e->c, &info);
    if (rc)
        return fail(r, 500, "collection '%s': %s", e->name, vqs_errdetail());
    const vqs_coll_config *cfg = &info.cfg;
    double bpv = info.bytes_per_vector;
    size_t code = info.code_size;
    json_t *res = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:{s:{s:{s:I, s:s}}}, s:{s:s, s:b, s:I, s:f, s:f, s:s, s:s, s:I, s:I, s:f, "
        "s:f, s:I}}",
        "status", "green", "points_count", (json_int_t)info.count, "vectors_count", (json_int_t)info.count,
        "indexed_vectors_count", (json_int_t)(info.trained ? info.count : 0), "segments_count", (json_int_t)1,
        "config", "params", "vectors", "size", (json_int_t)cfg->d, "distance", distance_name(cfg->metric), "vqs",
        "spec", cfg->spec, "trained", info.trained, "code_bytes_per_vector", (json_int_t)code,
        "index_bytes_per_vector", bpv, "compression_ratio", 4.0 * cfg->d / (double)code, "rerank",
        vqs_rerank_name(cfg->rerank), "rerank_backend", info.rerank_backend, "nprobe",
        (json_int_t)cfg->nprobe, "train_size", (json_int_t)cfg->train_size, "oversampling",
        (double)cfg->oversampling, "payload_bytes", (double)info.payload_bytes, "deleted_codes",
        (json_int_t)info.deleted);
    /* the SQ8/SQ4 clip quantile it was created with (float32, shown to 6 decimals), or null */
    json_t *vq = res ? json_object_get(res, "vqs") : NULL;
    if (vq)
        json_object_set_new(vq, "clip", cfg->sq_clip ? json_real(round(cfg->sq_clip * 1e6) / 1e6) : json_null());
    json_t *ps = res ? api_payload_schema(e) : NULL;
    if (!ps) {
        json_decref(res);
        return fail(r, 500, "collection '%s': payload indexes: %s", e->name, vqs_errdetail());
    }
    json_object_set_new(res, "payload_schema", ps);
    return ok(r, res);
}

/* Qdrant's quantization_config -> a vqs spec */
static int spec_from_quantization(const json_t *q, size_t d, char *spec, size_t n, resp *r)
{
    json_t *x;
    if ((x = json_object_get(q, "scalar"))) {
        json_t *t = json_object_get(x, "type");
        if (t && (!json_is_string(t) || strcmp(json_string_value(t), "int8")))
            return fail(r, 400, "quantization_config.scalar.type: only \"int8\" is known");
        snprintf(spec, n, "SQ8");
        return 0;
    }
    if ((x = json_object_get(q, "binary"))) {
        snprintf(spec, n, "ROT,BIN");
        return 0;
    }
    if ((x = json_object_get(q, "product"))) {
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

int api_h_create(vqs_server *s, const char *name, const req *q, resp *r)
{
    json_t *j = api_parse_body(q, r);
    if (!j)
        return r->code;
    vqs_coll_config cfg = {0}; /* nprobe, oversampling: the collection defaults */
    cfg.rerank = VQS_RERANK_DISK;
    cfg.train_size = 10000;
    snprintf(cfg.spec, sizeof cfg.spec, "SQ8");
    json_t *v = json_object_get(j, "vectors"), *x;
    if (!json_is_object(v)) {
        json_decref(j);
        return fail(r, 400, "\"vectors\": expected {\"size\": d, \"distance\": \"Cosine\"|\"Euclid\"|\"Dot\"} "
                            "(named vectors are not supported)");
    }
    x = json_object_get(v, "size");
    if (!json_is_integer(x) || json_integer_value(x) <= 0 || json_integer_value(x) > 65536) {
        json_decref(j);
        return fail(r, 400, "\"vectors\".\"size\" must be an integer between 1 and 65536");
    }
    cfg.d = (uint32_t)json_integer_value(x);
    x = json_object_get(v, "distance");
    const char *dn = json_is_string(x) ? json_string_value(x) : "";
    if (!strcmp(dn, "Cosine"))
        cfg.metric = VQS_METRIC_COS;
    else if (!strcmp(dn, "Euclid"))
        cfg.metric = VQS_METRIC_L2;
    else if (!strcmp(dn, "Dot"))
        cfg.metric = VQS_METRIC_IP;
    else {
        fail(r, 400, "\"vectors\".\"distance\" must be \"Cosine\", \"Euclid\" or \"Dot\" (got \"%.40s\")", dn);
        json_decref(j); /* dn points into j */
        return r->code;
    }
    if ((x = json_object_get(j, "quantization_config")) && !json_is_null(x) &&
        spec_from_quantization(x, cfg.d, cfg.spec, sizeof cfg.spec, r)) {
        json_decref(j);
        return r->code;
    }
    /* Qdrant's indexing threshold (KB of float32 vectors held before an
     * index is built; 0: never) is the training size in points */
    json_t *oc = json_object_get(j, "optimizers_config");
    if (oc && (x = json_object_get(oc, "indexing_threshold")) && !json_is_null(x)) {
        if (!json_is_integer(x) || json_integer_value(x) < 0) {
            json_decref(j);
            return fail(r, 400, "\"optimizers_config\".\"indexing_threshold\" must be an integer >= 0 (KB)");
        }
        cfg.train_size = ((uint64_t)json_integer_value(x) * 1024 + 4 * cfg.d - 1) / (4 * cfg.d);
    }
    json_t *vx = json_object_get(j, "vqs");
    if (vx && !json_is_object(vx)) {
        json_decref(j);
        return fail(r, 400, "\"vqs\" must be an object (spec, rerank, train_size, nprobe, oversampling, clip)");
    }
    if (vx) {
        const char *k;
        json_object_foreach(vx, k, x)
        {
            if (!strcmp(k, "spec") && json_is_string(x) && json_string_length(x) < sizeof cfg.spec)
                snprintf(cfg.spec, sizeof cfg.spec, "%s", json_string_value(x));
            else if (!strcmp(k, "rerank") && json_is_string(x) && !vqs_rerank_parse(json_string_value(x), &cfg.rerank)) {
                /* "none", "disk" or "memory": the layer's name table */
            }
            else if (!strcmp(k, "train_size") && json_is_integer(x) && json_integer_value(x) >= 0)
                cfg.train_size = (uint64_t)json_integer_value(x);
            else if (!strcmp(k, "nprobe") && json_is_integer(x) && json_integer_value(x) > 0 &&
                     json_integer_value(x) < (1 << 24))
                cfg.nprobe = (uint32_t)json_integer_value(x);
            else if (!strcmp(k, "oversampling") && json_is_number(x) && json_number_value(x) >= 1 &&
                     json_number_value(x) <= 1000)
                cfg.oversampling = (float)json_number_value(x);
            else if (!strcmp(k, "clip")) {
                /* SQ8/SQ4 training ranges (vqs_codec_opts.sq_clip), stored with the collection */
                double cv = json_is_number(x) ? json_number_value(x) : 0;
                if (!(cv <= 1.0 && (float)cv > 0.5f)) {
                    json_decref(j);
                    return fail(r, 400, "\"vqs\".\"clip\" must be a number in (0.5, 1]: the two-sided quantile of "
                                        "each dimension's SQ8/SQ4 training range (0.999 clips 0.1%% at each end, 1 "
                                        "keeps min/max; leave it out for the default)");
                }
                cfg.sq_clip = (float)cv;
            } else {
                fail(r, 400, "\"vqs\".\"%s\": unknown key or bad value (spec: string; rerank: \"disk\", \"memory\" or "
                             "\"none\"; train_size: integer >= 0; nprobe: integer >= 1; oversampling: 1..1000; clip: (0.5, 1])",
                     k);
                json_decref(j);
                return r->code;
            }
        }
    }
    json_decref(j);
    /* the spec must build for this dimension and metric (the rest is
     * checked above): a 400 before the name is looked at */
    int rc = vqs_coll_config_check(name, &cfg, NULL);
    if (rc) {
        fail(r, 400, "\"vqs\".\"spec\": %s", vqs_errdetail());
        vqs_clearerr();
        return r->code;
    }
    pthread_rwlock_wrlock(&s->reg);
    if (api_entry_find(s, name)) {
        pthread_rwlock_unlock(&s->reg);
        return fail(r, 409, "Wrong input: Collection `%s` already exists!", name);
    }
    rc = vqs_coll_create(s->cat, name, &cfg);
    if (rc) {
        pthread_rwlock_unlock(&s->reg);
        fail(r, status_of(rc), "%s", vqs_errdetail());
        vqs_clearerr();
        return r->code;
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
        return r->code;
    }
    e->next = s->colls;
    s->colls = e;
    pthread_rwlock_unlock(&s->reg);
    return ok(r, json_true());
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
    pthread_rwlock_unlock(&s->reg);
    return ok(r, json_true());
}

int api_h_train(entry *e, resp *r)
{
    if (vqs_coll_is_trained(e->c))
        return fail(r, 400, "collection '%s' is already trained", e->name);
    int rc = vqs_coll_train(e->c, 0, NULL);
    if (rc) {
        fail(r, status_of(rc), "training: %s", vqs_errdetail());
        vqs_clearerr();
        return r->code;
    }
    return ok(r, json_true());
}

int api_h_patch(vqs_server *s, entry *e, const req *q, resp *r)
{
    (void)s, (void)e, (void)q;
    return fail(r, 501, "PATCH of a collection is not implemented yet");
}
