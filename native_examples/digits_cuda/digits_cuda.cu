/*
 * libdigits_cuda's forward pass: the digits MLP on an NVIDIA GPU. Everything
 * else in the engine -- the ABI, reading digits.weights, the digit, softmax
 * and JSON result -- is libdigits' own code (../digits/digits.c and
 * digits_model.c) built again around this file.
 *
 * The same numbers as the CPU: each thread computes one unit, adding its
 * products left to right, and every product and sum is rounded on its own
 * (__fmul_rn/__fadd_rn are never fused into an FMA; the file is also built
 * with -fmad=false). IEEE single precision rounds the same on both sides, so
 * the logits, and the result text, equal libdigits' bit for bit.
 *
 * One image is one block. wrapperExec runs one image per launch; wrapperExecBatch
 * (the aiges batch extension, docs/BATCHING.md) runs a whole batch in one launch,
 * one block per image, with one copy in and one copy out. The device is the process's first visible one: aiges-load
 * --gpus and Ray set CUDA_VISIBLE_DEVICES for that.
 */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "digits_internal.h"
}

/* The image travels inside the launch's arguments: no copy to the device. */
struct image_bytes {
    unsigned char px[DIGITS_INPUTS];
};

/* w: the device copy of the model's weights, laid out as in struct digits_model. */
struct device_layers {
    const float *w1, *b1, *w2, *b2;
};

/* One image's logits, computed by one block. */
__device__ void forward_one(const struct device_layers& l, unsigned n_in, unsigned n_hid,
                            unsigned n_out, const unsigned char* px, float* z)
{
    extern __shared__ float shared[];
    float* x = shared;       /* [n_in] */
    float* h = shared + n_in; /* [n_hid] */
    for (unsigned i = threadIdx.x; i < n_in; i += blockDim.x)
        x[i] = __fdiv_rn((float)px[i], 255.0f);
    __syncthreads();
    for (unsigned j = threadIdx.x; j < n_hid; j += blockDim.x) {
        const float* row = l.w1 + (size_t)j * n_in;
        float acc = l.b1[j];
        for (unsigned c = 0; c < n_in; c++)
            acc = __fadd_rn(acc, __fmul_rn(row[c], x[c]));
        h[j] = acc > 0.0f ? acc : 0.0f;
    }
    __syncthreads();
    for (unsigned k = threadIdx.x; k < n_out; k += blockDim.x) {
        const float* row = l.w2 + (size_t)k * n_hid;
        float acc = l.b2[k];
        for (unsigned j = 0; j < n_hid; j++)
            acc = __fadd_rn(acc, __fmul_rn(row[j], h[j]));
        z[k] = acc;
    }
}

__global__ void forward(struct device_layers l, unsigned n_in, unsigned n_hid, unsigned n_out,
                        struct image_bytes image, float* z)
{
    forward_one(l, n_in, n_hid, n_out, image.px, z);
}

/* A batch: block b classifies image b of images[n][n_in] into z[n][n_out]. */
__global__ void forward_batch(struct device_layers l, unsigned n_in, unsigned n_hid,
                              unsigned n_out, const unsigned char* images, float* z)
{
    forward_one(l, n_in, n_hid, n_out, images + (size_t)blockIdx.x * n_in,
                z + (size_t)blockIdx.x * n_out);
}

static int device_error(char* err, size_t errlen, const char* what, cudaError_t rc)
{
    snprintf(err, errlen, "digits_cuda: %s: %s (%s)", what, cudaGetErrorString(rc),
             cudaGetErrorName(rc));
    return DIGITS_ERR_DEVICE;
}

static size_t weight_count(const struct digits_model* m)
{
    return (size_t)(m->b2 + m->n_out - m->w);
}

static struct device_layers layers(const struct digits_model* m)
{
    const float* d = (const float*)m->device;
    struct device_layers l = {d + (m->w1 - m->w), d + (m->b1 - m->w), d + (m->w2 - m->w),
                              d + (m->b2 - m->w)};
    return l;
}

extern "C" int digits_backend_open(struct digits_model* m, char* err, size_t errlen)
{
    int count = 0, device = 0, pools = 0;
    cudaError_t rc = cudaGetDeviceCount(&count);
    if (rc == cudaSuccess && count == 0)
        rc = cudaErrorNoDevice;
    if (rc != cudaSuccess)
        return device_error(err, errlen, "no usable CUDA device", rc);
    /* Each call takes its output buffer from the stream-ordered allocator. */
    rc = cudaGetDevice(&device);
    if (rc == cudaSuccess)
        rc = cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device);
    if (rc != cudaSuccess)
        return device_error(err, errlen, "cannot query the CUDA device", rc);
    if (!pools) {
        snprintf(err, errlen, "digits_cuda: CUDA device %d has no stream-ordered allocator "
                 "(needs a driver for CUDA 11.2 or later)", device);
        return DIGITS_ERR_DEVICE;
    }
    size_t bytes = weight_count(m) * sizeof(float);
    void* weights = NULL;
    rc = cudaMalloc(&weights, bytes);
    if (rc != cudaSuccess)
        return device_error(err, errlen, "cannot allocate the weights on the GPU", rc);
    rc = cudaMemcpy(weights, m->w, bytes, cudaMemcpyHostToDevice);
    if (rc != cudaSuccess) {
        cudaFree(weights);
        return device_error(err, errlen, "cannot copy the weights to the GPU", rc);
    }
    m->device = weights;
    return 0;
}

extern "C" void digits_backend_close(struct digits_model* m)
{
    if (m && m->device) {
        /* Fails harmlessly when the CUDA runtime is already unloading at exit. */
        cudaFree(m->device);
        m->device = NULL;
    }
}

/* Enough threads for the widest layer, in whole warps (n_hid <= 1024, the most
 * threads a block may have). */
static unsigned block_threads(const struct digits_model* m)
{
    unsigned widest = m->n_hid > m->n_out ? m->n_hid : m->n_out;
    if (m->n_in > widest)
        widest = m->n_in;
    return (widest + 31) / 32 * 32;
}

extern "C" int digits_backend_logits(const struct digits_model* m, const unsigned char* image,
                                     float* z, char* err, size_t errlen)
{
    /* Each host thread has its own default stream: calls of different engine
     * instances run on the GPU side by side. */
    cudaStream_t stream = cudaStreamPerThread;
    struct image_bytes px;
    memcpy(px.px, image, sizeof px.px);
    size_t out_bytes = m->n_out * sizeof(float);
    void* out = NULL;
    cudaError_t rc = cudaMallocAsync(&out, out_bytes, stream);
    if (rc != cudaSuccess)
        return device_error(err, errlen, "cannot allocate on the GPU", rc);
    size_t shared_bytes = (m->n_in + m->n_hid) * sizeof(float);
    forward<<<1, block_threads(m), shared_bytes, stream>>>(layers(m), m->n_in, m->n_hid,
                                                            m->n_out, px, (float*)out);
    rc = cudaGetLastError();
    if (rc == cudaSuccess)
        rc = cudaMemcpyAsync(z, out, out_bytes, cudaMemcpyDeviceToHost, stream);
    cudaError_t freed = cudaFreeAsync(out, stream);
    cudaError_t synced = cudaStreamSynchronize(stream);
    if (rc == cudaSuccess)
        rc = freed != cudaSuccess ? freed : synced;
    return rc == cudaSuccess ? 0 : device_error(err, errlen, "the forward pass failed", rc);
}

extern "C" int digits_backend_logits_batch(const struct digits_model* m,
                                           const unsigned char* const images[], unsigned n,
                                           float* z, char* err, size_t errlen)
{
    /* The images packed on the host, then one copy in, one launch, one copy out. */
    cudaStream_t stream = cudaStreamPerThread;
    size_t in_bytes = (size_t)n * m->n_in, out_bytes = (size_t)n * m->n_out * sizeof(float);
    unsigned char* packed = (unsigned char*)malloc(in_bytes);
    if (!packed) {
        snprintf(err, errlen, "digits_cuda: out of memory");
        return DIGITS_ERR_NOMEM;
    }
    for (unsigned i = 0; i < n; i++)
        memcpy(packed + (size_t)i * m->n_in, images[i], m->n_in);
    void* dev = NULL;
    cudaError_t rc = cudaMallocAsync(&dev, in_bytes + out_bytes, stream);
    if (rc != cudaSuccess) {
        free(packed);
        return device_error(err, errlen, "cannot allocate on the GPU", rc);
    }
    /* The floats first: they need the alignment; the image bytes follow them. */
    float* out = (float*)dev;
    unsigned char* in = (unsigned char*)dev + out_bytes;
    rc = cudaMemcpyAsync(in, packed, in_bytes, cudaMemcpyHostToDevice, stream);
    if (rc == cudaSuccess) {
        size_t shared_bytes = (m->n_in + m->n_hid) * sizeof(float);
        forward_batch<<<n, block_threads(m), shared_bytes, stream>>>(layers(m), m->n_in,
                                                                      m->n_hid, m->n_out, in,
                                                                      out);
        rc = cudaGetLastError();
    }
    if (rc == cudaSuccess)
        rc = cudaMemcpyAsync(z, out, out_bytes, cudaMemcpyDeviceToHost, stream);
    cudaError_t freed = cudaFreeAsync(dev, stream);
    cudaError_t synced = cudaStreamSynchronize(stream);
    free(packed); /* after the sync: the copy in reads it */
    if (rc == cudaSuccess)
        rc = freed != cudaSuccess ? freed : synced;
    return rc == cudaSuccess ? 0 : device_error(err, errlen, "the batched forward pass failed", rc);
}
