/* libFuzzer target: the spec parsers (vqs_index_create: IVF, refine and the
 * codec grammar behind it, vqs_codec_create). The first byte picks the
 * dimension and the metric; the rest is the spec. A spec that parses must
 * train on a small sample, add and search without crashing (refusals with an
 * error code are fine: a spec may need more training rows than given). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vqs_index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 300)
        return 0;
    size_t d = 1 + data[0] % 48;
    vqs_metric m = (vqs_metric)((data[0] >> 6) % 3);
    char spec[301];
    memcpy(spec, data + 1, size - 1);
    spec[size - 1] = 0;
    vqs_codec *c = NULL;
    if (vqs_codec_create(spec, d, NULL, &c) == 0)
        vqs_codec_free(c);
    vqs_index *ix = NULL;
    vqs_index_opts o = {.nthreads = 1, .seed = 1};
    o.codec.kmeans_iters = 2;
    if (vqs_index_create(spec, d, m, &o, &ix) == 0) {
        enum { N = 300 };
        float *x = malloc(sizeof(float) * N * d);
        int64_t ids[3];
        float dist[3];
        vqs_synth_opts so = {.seed = 3};
        if (x && vqs_synth_gmm(&so, N, d, x) == 0 && vqs_index_train(ix, N, x) == 0 &&
            vqs_index_add(ix, N, x, NULL) == 0)
            vqs_index_search(ix, NULL, 1, x, 3, ids, dist);
        free(x);
        vqs_index_free(ix);
    }
    return 0;
}
