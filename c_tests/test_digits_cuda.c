/* libdigits_cuda, the digits model on an NVIDIA GPU: every held-out image
 * (heldout.bin) must get the exported model's prediction and exactly the
 * result text of the CPU engine libdigits, also from several threads at once;
 * wrong sizes and missing models fail as libdigits' do; fini, re-init and
 * fini again work (the weights leave and return to the GPU).
 *
 * Without a usable GPU the engine must refuse wrapperInit with 50008 and a
 * text naming CUDA's reason: the test checks that and exits 77 (skipped). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>

#include "test_util.h"
#include "wrapper.h"

#define IMAGE_BYTES 64
#define RECORD_BYTES (IMAGE_BYTES + 2) /* image, label, prediction */
#define THREADS 4
#define TEXT_MAX 256
#define SKIPPED 77

/* The engines' codes (native_examples/digits/digits_internal.h). */
enum { ERR_NOINIT = 50003, ERR_SIZE = 50005, ERR_OPEN = 50006, ERR_DEVICE = 50008 };

struct engine {
    wrapperInitPtr init;
    wrapperFiniPtr fini;
    wrapperErrorPtr error;
    wrapperVersionPtr version;
    wrapperExecPtr exec;
    wrapperExecFreePtr exec_free;
};

static struct engine gpu, cpu;

static struct {
    unsigned count;
    unsigned char* records; /* count * RECORD_BYTES */
    char (*cpu_text)[TEXT_MAX]; /* libdigits' result for each record */
} H;

static void open_engine(struct engine* e, const char* path)
{
    void* lib = open_lib(path);
    LOAD(lib, e->init, "wrapperInit");
    LOAD(lib, e->fini, "wrapperFini");
    LOAD(lib, e->error, "wrapperError");
    LOAD(lib, e->version, "wrapperVersion");
    LOAD(lib, e->exec, "wrapperExec");
    LOAD(lib, e->exec_free, "wrapperExecFree");
}

static void read_heldout(const char* path)
{
    FILE* f = fopen(path, "rb");
    REQUIRE(f != NULL, "cannot open %s", path);
    unsigned char c[4];
    REQUIRE(fread(c, 1, 4, f) == 4, "%s: no count", path);
    H.count = (unsigned)c[0] | (unsigned)c[1] << 8 | (unsigned)c[2] << 16 | (unsigned)c[3] << 24;
    REQUIRE(H.count > 0 && H.count < 100000, "%s: count %u", path, H.count);
    H.records = malloc((size_t)H.count * RECORD_BYTES);
    H.cpu_text = calloc(H.count, TEXT_MAX);
    REQUIRE(H.records && H.cpu_text, "out of memory");
    REQUIRE(fread(H.records, RECORD_BYTES, H.count, f) == H.count, "%s is truncated", path);
    fclose(f);
}

static int init_model(const struct engine* e, const char* model)
{
    struct ParamList pn[1];
    const char* kv[] = {"model", model};
    return e->init(make_params(pn, kv, 1));
}

/* One exec: rc, and the result text in text ("" when none). */
static int classify(const struct engine* e, const unsigned char* image, unsigned len, char* text)
{
    struct DataList in = {.key = "image", .data = (void*)image, .len = len,
                          .type = DataImage, .status = DataOnce};
    pDataList out = NULL;
    int rc = e->exec("tag", NULL, &in, &out, NULL, 0);
    text[0] = '\0';
    if (rc == 0 && out && out->key && strcmp(out->key, "result") == 0 && out->len < TEXT_MAX) {
        memcpy(text, out->data, out->len);
        text[out->len] = '\0';
    }
    e->exec_free("tag", &out);
    return rc;
}

static const unsigned char* record(unsigned i)
{
    return H.records + (size_t)i * RECORD_BYTES;
}

/* Every image on the GPU; how many answers differ from libdigits'. */
static intptr_t run_heldout(void)
{
    intptr_t differ = 0;
    char text[TEXT_MAX];
    for (unsigned i = 0; i < H.count; i++) {
        int rc = classify(&gpu, record(i), IMAGE_BYTES, text);
        differ += rc != 0 || strcmp(text, H.cpu_text[i]) != 0;
    }
    return differ;
}

static void* worker(void* arg)
{
    (void)arg;
    return (void*)run_heldout();
}

static void check_answers(void)
{
    int right = 0, predicted = 0;
    for (unsigned i = 0; i < H.count; i++) {
        REQUIRE(classify(&cpu, record(i), IMAGE_BYTES, H.cpu_text[i]) == 0, "libdigits failed");
        int digit = -1;
        sscanf(H.cpu_text[i], "{\"digit\":%d", &digit);
        right += digit == record(i)[IMAGE_BYTES];
        predicted += digit == record(i)[IMAGE_BYTES + 1];
    }
    REQUIRE(predicted == (int)H.count, "libdigits itself differs from the exported model");
    intptr_t differ = run_heldout();
    CHECK(differ == 0, "%ld of %u GPU answers differ from libdigits'", (long)differ, H.count);
    printf("held-out accuracy on the GPU %.4f (%d/%u), every answer equal to the CPU's\n",
           (double)right / H.count, right, H.count);

    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        REQUIRE(pthread_create(&t[i], NULL, worker, NULL) == 0, "pthread_create");
    for (int i = 0; i < THREADS; i++) {
        void* bad;
        pthread_join(t[i], &bad);
        CHECK(bad == NULL, "thread %d: %ld answers differ", i, (long)(intptr_t)bad);
    }

    char text[TEXT_MAX];
    unsigned char small[10] = {0};
    int rc = classify(&gpu, small, sizeof small, text);
    CHECK(rc == ERR_SIZE, "10-byte image: rc %d", rc);
    CHECK(strcmp(gpu.error(rc), "digits: image must be 64 bytes (8x8 grayscale), got 10") == 0,
          "10-byte image: %s", gpu.error(rc));
}

/* No GPU: init must fail with the device code and CUDA's reason. */
static int skip_without_gpu(int rc)
{
    char text[TEXT_MAX]; /* the engine's buffer is its thread's last error: copied */
    snprintf(text, sizeof text, "%s", gpu.error(rc));
    CHECK(rc == ERR_DEVICE, "init: rc %d (%s)", rc, text);
    CHECK(strstr(text, "digits_cuda: no usable CUDA device") != NULL, "init error: %s", text);
    char out[TEXT_MAX];
    rc = classify(&gpu, record(0), IMAGE_BYTES, out);
    CHECK(rc == ERR_NOINIT, "exec after a failed init: rc %d", rc);
    if (g_failures)
        return test_exit("test_digits_cuda");
    printf("test_digits_cuda: skipped, the engine has no GPU here: %s\n", text);
    return SKIPPED;
}

int main(int argc, char** argv)
{
    REQUIRE(argc == 5, "usage: test_digits_cuda libdigits_cuda.so libdigits.so digits.weights "
                       "heldout.bin");
    read_heldout(argv[4]);
    open_engine(&gpu, argv[1]);
    open_engine(&cpu, argv[2]);
    CHECK(strcmp(gpu.version(), "digits_cuda/1.0.0") == 0, "version is %s", gpu.version());

    char text[TEXT_MAX];
    int rc = classify(&gpu, record(0), IMAGE_BYTES, text);
    CHECK(rc == ERR_NOINIT, "exec before init: rc %d", rc);
    /* The model file is read before the GPU is looked for. */
    rc = init_model(&gpu, "/nonexistent/digits.weights");
    CHECK(rc == ERR_OPEN, "missing model: rc %d", rc);
    CHECK(strstr(gpu.error(rc), "cannot open model /nonexistent/digits.weights") != NULL,
          "missing model: %s", gpu.error(rc));

    rc = init_model(&gpu, argv[3]);
    if (rc != 0)
        return skip_without_gpu(rc);
    REQUIRE(init_model(&cpu, argv[3]) == 0, "libdigits init failed");
    check_answers();

    /* A second init replaces the model; fini frees it; init works again. */
    CHECK(init_model(&gpu, argv[3]) == 0, "re-init: %s", gpu.error(ERR_DEVICE));
    CHECK(classify(&gpu, record(0), IMAGE_BYTES, text) == 0 && strcmp(text, H.cpu_text[0]) == 0,
          "after re-init: %s", text);
    CHECK(gpu.fini() == 0, "fini failed");
    CHECK(classify(&gpu, record(0), IMAGE_BYTES, text) == ERR_NOINIT, "exec after fini");
    CHECK(init_model(&gpu, argv[3]) == 0, "init after fini: %s", gpu.error(ERR_DEVICE));
    CHECK(classify(&gpu, record(1), IMAGE_BYTES, text) == 0 && strcmp(text, H.cpu_text[1]) == 0,
          "after init again: %s", text);
    CHECK(gpu.fini() == 0 && cpu.fini() == 0, "fini failed");
    free(H.records);
    free(H.cpu_text);
    return test_exit("test_digits_cuda");
}
