/* libFuzzer target: the codec blob loader (vqs_codec_load) and every stage
 * loader behind it. A blob that loads must also encode and decode a vector
 * without reading out of bounds. The CRC would reject almost every mutation
 * before the stage parsers run, so the target recomputes it over the input:
 * the fuzzer then explores the parsers themselves. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codebook_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4 || size > (1u << 20))
        return 0;
    uint8_t *buf = malloc(size);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    uint32_t crc = vqs_crc32c(0, buf, size - 4);
    memcpy(buf + size - 4, &crc, 4); /* little-endian host */
    vqs_codec *c = NULL;
    if (vqs_codec_load(buf, size, &c) == 0) {
        size_t d = vqs_codec_d(c), cs = vqs_codec_code_size(c);
        float *x = calloc(d, sizeof(float));
        uint8_t *code = calloc(cs ? cs : 1, 1);
        if (x && code) {
            for (size_t j = 0; j < d; j++)
                x[j] = (float)j * 0.25f - 1.0f;
            vqs_codec_encode(c, 1, x, code);
            vqs_codec_decode(c, 1, code, x);
        }
        free(x);
        free(code);
        vqs_codec_free(c);
    }
    free(buf);
    return 0;
}
