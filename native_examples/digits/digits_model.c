/*
 * libdigits: the model -- reading digits.weights, the digit and its scores
 * from the logits, and the JSON result. The logits themselves come from the
 * backend the engine is linked with: digits_cpu.c, or the GPU's
 * ../digits_cuda/digits_cuda.cu. This file is shared by both engines.
 */
#define _POSIX_C_SOURCE 200809L
#include "digits_internal.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_BYTES 16

/* The file is little-endian whatever the host is. */
static uint32_t le32(const unsigned char* p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int dims_ok(uint32_t n_in, uint32_t n_hid, uint32_t n_out)
{
    return n_in == DIGITS_INPUTS && n_hid >= 1 && n_hid <= DIGITS_MAX_HIDDEN && n_out >= 1 &&
           n_out <= DIGITS_MAX_OUTPUTS;
}

/* Reads count little-endian float32 values into w; all must be finite. */
static int read_floats(FILE* f, float* w, size_t count, const char* path, char* err,
                       size_t errlen)
{
    unsigned char b[4];
    for (size_t i = 0; i < count; i++) {
        if (fread(b, 1, 4, f) != 4) {
            snprintf(err, errlen, "digits: model %s is truncated (want %zu bytes)", path,
                     HEADER_BYTES + 4 * count);
            return DIGITS_ERR_MODEL_BAD;
        }
        uint32_t bits = le32(b);
        memcpy(&w[i], &bits, sizeof w[i]);
        if (!isfinite(w[i])) {
            snprintf(err, errlen, "digits: model %s holds a non-finite weight", path);
            return DIGITS_ERR_MODEL_BAD;
        }
    }
    if (fgetc(f) != EOF) {
        snprintf(err, errlen, "digits: model %s has trailing bytes (want %zu bytes)", path,
                 HEADER_BYTES + 4 * count);
        return DIGITS_ERR_MODEL_BAD;
    }
    return 0;
}

static int read_model(FILE* f, const char* path, struct digits_model** out, char* err,
                      size_t errlen)
{
    unsigned char h[HEADER_BYTES];
    if (fread(h, 1, sizeof h, f) != sizeof h || memcmp(h, "DGT1", 4) != 0) {
        snprintf(err, errlen, "digits: %s is not a digits model (no DGT1 header)", path);
        return DIGITS_ERR_MODEL_BAD;
    }
    uint32_t n_in = le32(h + 4), n_hid = le32(h + 8), n_out = le32(h + 12);
    if (!dims_ok(n_in, n_hid, n_out)) {
        snprintf(err, errlen,
                 "digits: model %s has layer sizes %u-%u-%u (need %d inputs, 1..%d hidden, "
                 "1..%d outputs)",
                 path, (unsigned)n_in, (unsigned)n_hid, (unsigned)n_out, DIGITS_INPUTS,
                 DIGITS_MAX_HIDDEN, DIGITS_MAX_OUTPUTS);
        return DIGITS_ERR_MODEL_BAD;
    }
    size_t count = (size_t)n_hid * n_in + n_hid + (size_t)n_out * n_hid + n_out;
    struct digits_model* m = malloc(sizeof *m + count * sizeof(float));
    if (!m) {
        snprintf(err, errlen, "digits: out of memory loading %s", path);
        return DIGITS_ERR_NOMEM;
    }
    int rc = read_floats(f, m->w, count, path, err, errlen);
    if (rc) {
        free(m);
        return rc;
    }
    m->device = NULL;
    m->n_in = n_in;
    m->n_hid = n_hid;
    m->n_out = n_out;
    m->w1 = m->w;
    m->b1 = m->w1 + (size_t)n_hid * n_in;
    m->w2 = m->b1 + n_hid;
    m->b2 = m->w2 + (size_t)n_out * n_hid;
    *out = m;
    return 0;
}

int digits_model_load(const char* path, struct digits_model** out, char* err, size_t errlen)
{
    *out = NULL;
    FILE* f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "digits: cannot open model %s: %s", path, strerror(errno));
        return DIGITS_ERR_MODEL_OPEN;
    }
    int rc = read_model(f, path, out, err, errlen);
    fclose(f);
    return rc;
}

void digits_model_free(struct digits_model* m)
{
    if (!m)
        return;
    digits_backend_close(m);
    free(m);
}

/* The digit and the softmax scores of one image's logits z. */
static void scores_of(const struct digits_model* m, const float* z, double* scores, int* digit)
{
    unsigned best = 0;
    for (unsigned k = 1; k < m->n_out; k++)
        if (z[k] > z[best])
            best = k;
    /* Softmax in double, shifted by the largest logit so exp cannot overflow. */
    double sum = 0.0;
    for (unsigned k = 0; k < m->n_out; k++) {
        scores[k] = exp((double)z[k] - (double)z[best]);
        sum += scores[k];
    }
    for (unsigned k = 0; k < m->n_out; k++)
        scores[k] /= sum;
    *digit = (int)best;
}

int digits_classify(const struct digits_model* m, const unsigned char* image, double* scores,
                    int* digit, char* err, size_t errlen)
{
    float z[DIGITS_MAX_OUTPUTS];
    int rc = digits_backend_logits(m, image, z, err, errlen);
    if (!rc)
        scores_of(m, z, scores, digit);
    return rc;
}

int digits_classify_batch(const struct digits_model* m, const unsigned char* const images[],
                          unsigned n, double* scores, int* digits, char* err, size_t errlen)
{
    float* z = malloc((size_t)n * m->n_out * sizeof *z);
    if (!z) {
        snprintf(err, errlen, "digits: out of memory");
        return DIGITS_ERR_NOMEM;
    }
    int rc = digits_backend_logits_batch(m, images, n, z, err, errlen);
    for (unsigned i = 0; !rc && i < n; i++)
        scores_of(m, z + (size_t)i * m->n_out, scores + (size_t)i * m->n_out, &digits[i]);
    free(z);
    return rc;
}

/* "%.4f" less trailing zeros, one kept after the point: 0.0120 -> 0.012,
 * 1.0000 -> 1.0 -- what Python prints for round(p, 4). */
static int format_score(char* buf, size_t size, double p)
{
    int len = snprintf(buf, size, "%.4f", p);
    while (len > 2 && buf[len - 1] == '0' && buf[len - 2] != '.')
        buf[--len] = '\0';
    return len;
}

char* digits_result_json(int digit, const double* scores, unsigned n)
{
    /* A probability prints as at most "1.0" or "0.dddd": 6 chars and a comma. */
    size_t cap = 48 + (size_t)n * 8;
    char* json = malloc(cap);
    if (!json)
        return NULL;
    size_t len = (size_t)snprintf(json, cap, "{\"digit\":%d,\"scores\":[", digit);
    for (unsigned k = 0; k < n; k++) {
        if (k)
            json[len++] = ',';
        len += (size_t)format_score(json + len, cap - len, scores[k]);
    }
    snprintf(json + len, cap - len, "]}");
    return json;
}
