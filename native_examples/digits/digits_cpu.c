/*
 * libdigits' forward pass, on the CPU in plain float32 C. The order of every
 * sum is part of the contract (see README.md): python_examples/digits/wrapper.py,
 * tools/train_digits.py and libdigits_cuda's kernel add in the same order, so
 * all of them get the same logits bit for bit and therefore the same digit.
 */
#include "digits_internal.h"

int digits_backend_open(struct digits_model* m, char* err, size_t errlen)
{
    /* The weights are used where digits_model_load put them. */
    (void)m;
    (void)err;
    (void)errlen;
    return 0;
}

void digits_backend_close(struct digits_model* m)
{
    (void)m;
}

/* out[r] = b[r] + sum_c w[r][c] * in[c], summed in order c = 0, 1, ... */
static void dense(const float* w, const float* b, const float* in, unsigned rows, unsigned cols,
                  float* out)
{
    for (unsigned r = 0; r < rows; r++) {
        const float* row = w + (size_t)r * cols;
        float acc = b[r];
        for (unsigned c = 0; c < cols; c++)
            acc += row[c] * in[c];
        out[r] = acc;
    }
}

int digits_backend_logits(const struct digits_model* m, const unsigned char* image, float* z,
                          char* err, size_t errlen)
{
    (void)err;
    (void)errlen;
    float x[DIGITS_INPUTS], h[DIGITS_MAX_HIDDEN];
    /* The image bytes the model was trained on, scaled to 0..1. */
    for (unsigned i = 0; i < m->n_in; i++)
        x[i] = (float)image[i] / 255.0f;
    dense(m->w1, m->b1, x, m->n_hid, m->n_in, h);
    for (unsigned j = 0; j < m->n_hid; j++)
        h[j] = h[j] > 0.0f ? h[j] : 0.0f;
    dense(m->w2, m->b2, h, m->n_out, m->n_hid, z);
    return 0;
}

int digits_backend_logits_batch(const struct digits_model* m, const unsigned char* const images[],
                                unsigned n, float* z, char* err, size_t errlen)
{
    /* One core: image after image, each exactly as alone. */
    for (unsigned i = 0; i < n; i++)
        digits_backend_logits(m, images[i], z + (size_t)i * m->n_out, err, errlen);
    return 0;
}
