/* libdigits, the small real model: every held-out image (heldout.bin, written
 * by tools/train_digits.py) must get the prediction of the exported model and
 * the accuracy must stay above 0.9; model files that are missing or corrupt
 * fail wrapperInit with a text naming the problem; a wrong image size fails
 * the exec with its size in the text, also on many threads at once; and the
 * counters show every output freed. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "test_util.h"
#include "wrapper.h"

#define IMAGE_BYTES 64
#define RECORD_BYTES (IMAGE_BYTES + 2) /* image, label, prediction */
#define THREADS 4

/* The engine's codes (native_examples/digits/digits_internal.h). */
enum { ERR_NOINIT = 50003, ERR_INPUT = 50004, ERR_SIZE = 50005, ERR_OPEN = 50006, ERR_BAD = 50007 };

static struct {
    wrapperInitPtr init;
    wrapperFiniPtr fini;
    wrapperErrorPtr error;
    wrapperVersionPtr version;
    wrapperExecPtr exec;
    wrapperExecFreePtr exec_free;
} E;

static struct {
    unsigned count;
    unsigned char* records; /* count * RECORD_BYTES */
} H;

static void read_heldout(const char* path)
{
    FILE* f = fopen(path, "rb");
    REQUIRE(f != NULL, "cannot open %s", path);
    unsigned char c[4];
    REQUIRE(fread(c, 1, 4, f) == 4, "%s: no count", path);
    H.count = (unsigned)c[0] | (unsigned)c[1] << 8 | (unsigned)c[2] << 16 | (unsigned)c[3] << 24;
    REQUIRE(H.count > 0 && H.count < 100000, "%s: count %u", path, H.count);
    H.records = malloc((size_t)H.count * RECORD_BYTES);
    REQUIRE(H.records != NULL, "out of memory");
    REQUIRE(fread(H.records, RECORD_BYTES, H.count, f) == H.count, "%s is truncated", path);
    fclose(f);
}

/* A file in /tmp holding len bytes of data; the caller unlinks it. */
static void temp_file(char* path, const void* data, size_t len)
{
    strcpy(path, "/tmp/test_digits_XXXXXX");
    int fd = mkstemp(path);
    REQUIRE(fd >= 0, "mkstemp failed");
    REQUIRE(write(fd, data, len) == (ssize_t)len, "write %s failed", path);
    close(fd);
}

static unsigned char* read_file(const char* path, size_t* len)
{
    FILE* f = fopen(path, "rb");
    REQUIRE(f != NULL, "cannot open %s", path);
    static unsigned char buf[1 << 16];
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

static int init_model(const char* model, const char* counters)
{
    struct ParamList pn[2];
    const char* kv[] = {"model", model, "counters_file", counters};
    return E.init(make_params(pn, kv, counters ? 2 : 1));
}

/* One exec of an image of len bytes: rc, and the digit (-1 if none) with the
 * scores checked for shape. */
static int classify(const unsigned char* image, unsigned len, int* digit, int* shape_ok)
{
    struct DataList in = {.key = "image", .data = (void*)image, .len = len,
                          .type = DataImage, .status = DataOnce};
    pDataList out = NULL;
    int rc = E.exec("tag", NULL, &in, &out, NULL, 0);
    *digit = -1;
    *shape_ok = 0;
    if (rc == 0 && out && out->len && strcmp(out->key, "result") == 0) {
        const char* json = out->data;
        int n = 0;
        if (sscanf(json, "{\"digit\":%d,\"scores\":[%n", digit, &n) == 1 && n > 0) {
            char* p = (char*)json + n;
            double s[10], sum = 0;
            int k = 0;
            for (; k < 10; k++, p++) {
                s[k] = strtod(p, &p);
                sum += s[k];
                if (*p != (k < 9 ? ',' : ']'))
                    break;
            }
            int best_ok = k == 10 && *digit >= 0 && *digit < 10;
            for (int j = 0; best_ok && j < 10; j++)
                best_ok = s[j] >= 0 && s[j] <= 1 && s[j] <= s[*digit];
            *shape_ok = best_ok && sum > 0.998 && sum < 1.002 && strcmp(p, "}") == 0 &&
                        out->type == DataText && out->status == DataOnce && !out->next;
        }
    }
    E.exec_free("tag", &out);
    return rc;
}

static void check_model_errors(const char* weights)
{
    int rc = init_model("/nonexistent/digits.weights", NULL);
    CHECK(rc == ERR_OPEN, "missing model: rc %d", rc);
    CHECK(strstr(E.error(rc), "cannot open model /nonexistent/digits.weights") != NULL,
          "missing model: %s", E.error(rc));

    size_t len;
    unsigned char* good = read_file(weights, &len);
    struct {
        const char* what;
        size_t len;
        const char* text;
    } bad[] = {
        {"bad magic", len, "is not a digits model"},
        {"truncated", len - 7, "is truncated"},
        {"trailing", len + 1, "has trailing bytes"},
        {"header only", 10, "is not a digits model"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char* copy = calloc(1, len + 1);
        REQUIRE(copy != NULL, "out of memory");
        memcpy(copy, good, len);
        if (i == 0)
            copy[0] = 'X';
        char path[64];
        temp_file(path, copy, bad[i].len);
        rc = init_model(path, NULL);
        CHECK(rc == ERR_BAD, "%s: rc %d", bad[i].what, rc);
        CHECK(strstr(E.error(rc), bad[i].text) && strstr(E.error(rc), path), "%s: %s",
              bad[i].what, E.error(rc));
        unlink(path);
        free(copy);
    }
}

/* Classifies every held-out image; returns how many predictions differ from
 * the exported model's, and adds the correct ones to *correct. */
static int run_heldout(int* correct, int* bad_shape)
{
    int wrong = 0;
    for (unsigned i = 0; i < H.count; i++) {
        const unsigned char* r = H.records + (size_t)i * RECORD_BYTES;
        int digit, shape_ok;
        int rc = classify(r, IMAGE_BYTES, &digit, &shape_ok);
        wrong += rc != 0 || digit != r[IMAGE_BYTES + 1];
        *correct += digit == r[IMAGE_BYTES];
        *bad_shape += !shape_ok;
    }
    return wrong;
}

/* Each thread: all images, then a bad size of its own, whose text must name
 * that size even while the other threads fail with theirs. */
static void* worker(void* arg)
{
    intptr_t id = (intptr_t)arg;
    int correct = 0, bad_shape = 0;
    intptr_t errors = run_heldout(&correct, &bad_shape) + bad_shape;
    unsigned char img[IMAGE_BYTES + THREADS] = {0};
    char want[96];
    snprintf(want, sizeof want, "digits: image must be 64 bytes (8x8 grayscale), got %d",
             (int)(IMAGE_BYTES + 1 + id));
    for (int i = 0; i < 50; i++) {
        int digit, shape_ok;
        int rc = classify(img, (unsigned)(IMAGE_BYTES + 1 + id), &digit, &shape_ok);
        errors += rc != ERR_SIZE || strcmp(E.error(rc), want) != 0;
    }
    return (void*)errors;
}

static void check_requests(void)
{
    int correct = 0, bad_shape = 0;
    int wrong = run_heldout(&correct, &bad_shape);
    CHECK(wrong == 0, "%d of %u predictions differ from the exported model's", wrong, H.count);
    CHECK(bad_shape == 0, "%d results are not {\"digit\":D,\"scores\":[10 probabilities]}",
          bad_shape);
    double accuracy = (double)correct / H.count;
    printf("held-out accuracy %.4f (%d/%u)\n", accuracy, correct, H.count);
    CHECK(accuracy > 0.9, "accuracy %.4f", accuracy);

    unsigned char small[10] = {0};
    int digit, shape_ok;
    int rc = classify(small, sizeof small, &digit, &shape_ok);
    CHECK(rc == ERR_SIZE && digit == -1, "10-byte image: rc %d", rc);
    CHECK(strcmp(E.error(rc), "digits: image must be 64 bytes (8x8 grayscale), got 10") == 0,
          "10-byte image: %s", E.error(rc));

    struct DataList other = {.key = "img", .data = small, .len = 64, .type = DataImage};
    pDataList out = NULL;
    rc = E.exec("tag", NULL, &other, &out, NULL, 0);
    CHECK(rc == ERR_INPUT && out == NULL, "no \"image\" input: rc %d", rc);
    CHECK(strcmp(E.error(rc), "digits: no input \"image\"") == 0, "no input: %s", E.error(rc));
}

static void check_threads(void)
{
    pthread_t t[THREADS];
    for (intptr_t i = 0; i < THREADS; i++)
        REQUIRE(pthread_create(&t[i], NULL, worker, (void*)i) == 0, "pthread_create");
    for (int i = 0; i < THREADS; i++) {
        void* errors;
        pthread_join(t[i], &errors);
        CHECK(errors == NULL, "thread %d: %ld wrong results", i, (long)(intptr_t)errors);
    }
}

int main(int argc, char** argv)
{
    REQUIRE(argc == 4, "usage: test_digits libdigits.so digits.weights heldout.bin");
    read_heldout(argv[3]);
    void* lib = open_lib(argv[1]);
    LOAD(lib, E.init, "wrapperInit");
    LOAD(lib, E.fini, "wrapperFini");
    LOAD(lib, E.error, "wrapperError");
    LOAD(lib, E.version, "wrapperVersion");
    LOAD(lib, E.exec, "wrapperExec");
    LOAD(lib, E.exec_free, "wrapperExecFree");
    CHECK(strcmp(E.version(), "digits/1.0.0") == 0, "version is %s", E.version());

    int digit, shape_ok;
    int rc = classify(H.records, IMAGE_BYTES, &digit, &shape_ok);
    CHECK(rc == ERR_NOINIT, "exec before init: rc %d", rc);
    check_model_errors(argv[2]);
    rc = classify(H.records, IMAGE_BYTES, &digit, &shape_ok);
    CHECK(rc == ERR_NOINIT, "exec after failed inits: rc %d", rc);

    /* No config: the weights path compiled in from the source tree. */
    CHECK(E.init(NULL) == 0, "init without config: %s", E.error(50006));
    CHECK(classify(H.records, IMAGE_BYTES, &digit, &shape_ok) == 0 && shape_ok,
          "exec with the default model failed");
    CHECK(E.fini() == 0, "fini failed");

    char counters[64];
    temp_file(counters, "", 0);
    rc = init_model(argv[2], counters);
    REQUIRE(rc == 0, "init with %s: %s", argv[2], E.error(rc));
    check_requests();
    check_threads();
    size_t len;
    const char* line = (const char*)read_file(counters, &len);
    CHECK(len > 0 && strstr(line, " live_exec=0 ") != NULL, "counters: %.*s", (int)len, line);
    CHECK(E.fini() == 0, "fini failed");
    rc = classify(H.records, IMAGE_BYTES, &digit, &shape_ok);
    CHECK(rc == ERR_NOINIT, "exec after fini: rc %d", rc);
    unlink(counters);
    free(H.records);
    return test_exit("test_digits");
}
