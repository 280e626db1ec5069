/*
 * Internal to libdigits: shared by its .c files, never exported (the target is
 * built with hidden visibility; only the WrapperAPI functions are public).
 */
#ifndef DIGITS_INTERNAL_H
#define DIGITS_INTERNAL_H

#include <stddef.h>

#include "wrapper.h"

/* Error codes of the engine; wrapperError names each one. */
enum {
    DIGITS_ERR_ARG = 50001,        /* NULL respData */
    DIGITS_ERR_NOMEM = 50002,
    DIGITS_ERR_NOINIT = 50003,     /* exec without a successful wrapperInit */
    DIGITS_ERR_INPUT = 50004,      /* no input node with key "image" */
    DIGITS_ERR_SIZE = 50005,       /* the image is not 64 bytes */
    DIGITS_ERR_MODEL_OPEN = 50006, /* the model file cannot be read */
    DIGITS_ERR_MODEL_BAD = 50007,  /* the model file is not a valid DGT1 file */
    DIGITS_ERR_DEVICE = 50008      /* the backend's device is missing or failed (GPU builds) */
};

#define DIGITS_INPUTS 64        /* 8x8 pixels */
#define DIGITS_MAX_HIDDEN 1024  /* bounds that keep a corrupt header from */
#define DIGITS_MAX_OUTPUTS 256  /* asking for absurd buffers */

/* The model, read-only once loaded: any number of threads may classify with it.
 * Weights live in w[]; the pointers below point into it. */
struct digits_model {
    unsigned n_in, n_hid, n_out;
    const float* w1; /* [n_hid][n_in] */
    const float* b1; /* [n_hid] */
    const float* w2; /* [n_out][n_hid] */
    const float* b2; /* [n_out] */
    void* device;    /* what the backend keeps for this model (the CUDA backend: the GPU's copy) */
    float w[];
};

/* ---- the model (digits_model.c) ---- */

/* Reads a DGT1 file (format in README.md); the backend is not opened yet. 0 and *out, or
 * DIGITS_ERR_NOMEM / DIGITS_ERR_MODEL_OPEN / DIGITS_ERR_MODEL_BAD with a
 * message naming the file and the problem in err. */
int digits_model_load(const char* path, struct digits_model** out, char* err, size_t errlen);
/* Closes the backend (digits_backend_close) and frees m; NULL is fine. */
void digits_model_free(struct digits_model* m);

/* The digit (index of the first largest logit) for 64 image bytes in *digit;
 * scores gets m->n_out softmax probabilities. 0, or DIGITS_ERR_DEVICE with a
 * message in err when the backend fails. */
int digits_classify(const struct digits_model* m, const unsigned char* image, double* scores,
                    int* digit, char* err, size_t errlen);

/* digits_classify for n images at once (one pass of the backend: the CUDA backend
 * runs them in one launch): image i's scores at scores + i * m->n_out, its digit in
 * digits[i]. 0, DIGITS_ERR_NOMEM, or DIGITS_ERR_DEVICE with a message in err. */
int digits_classify_batch(const struct digits_model* m, const unsigned char* const images[],
                          unsigned n, double* scores, int* digits, char* err, size_t errlen);

/* {"digit":D,"scores":[p0,p1,...]} with each p rounded to 4 decimals and
 * written the way Python's json.dumps writes round(p, 4). malloc'ed; NULL
 * when out of memory. */
char* digits_result_json(int digit, const double* scores, unsigned n);

/* ---- the forward pass: digits_cpu.c (libdigits) or
 *      ../digits_cuda/digits_cuda.cu (libdigits_cuda) ----
 * Every engine links exactly one backend; the rest of the engine is shared, so
 * both engines read the same files and write the same result text. */

/* Gets a freshly loaded model ready to run (the CUDA backend finds a GPU and
 * copies the weights to it). 0, or DIGITS_ERR_DEVICE with a message in err. */
int digits_backend_open(struct digits_model* m, char* err, size_t errlen);

/* Releases what digits_backend_open took; safe on a model never opened. */
void digits_backend_close(struct digits_model* m);

/* The m->n_out logits z for 64 image bytes, every sum in the order README.md
 * gives. 0, or DIGITS_ERR_DEVICE with a message in err. Any number of threads
 * may call it at once on one opened model. */
int digits_backend_logits(const struct digits_model* m, const unsigned char* image, float* z,
                          char* err, size_t errlen);

/* digits_backend_logits for n images: image i's logits at z + i * m->n_out. */
int digits_backend_logits_batch(const struct digits_model* m, const unsigned char* const images[],
                                unsigned n, float* z, char* err, size_t errlen);

#endif /* DIGITS_INTERNAL_H */
