/* wrapperExecBatch, the aiges batch extension, driven as the loader drives it: n
 * requests with loader-owned (stack) inputs and one usrTag each, per-item errors
 * read from errs[] with wrapperError on the calling thread, every respData[i]
 * freed with wrapperExecFree(usrTags[i], &respData[i]), batches from several
 * threads at once (one per instance). For libecho, libgpusim and libdigits:
 * every answer is its own request's; a failing item fails alone; a failing call
 * leaves nothing to free; one call of a batch costs gpusim about one call's time;
 * digits answers a batch exactly as one request at a time; the counters show
 * every output freed.
 * Usage: test_batch libecho.so libgpusim.so libdigits.so digits.weights heldout.bin
 *        counters_dir */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "test_util.h"
#include "wrapper.h"

#define MAX_N 64
#define IMAGE_BYTES 64
#define RECORD_BYTES (IMAGE_BYTES + 2)

struct engine {
    wrapperInitPtr init;
    wrapperFiniPtr fini;
    wrapperErrorPtr error;
    wrapperExecPtr exec;
    wrapperExecFreePtr exec_free;
    wrapperExecBatchPtr batch;
};

static void load(const char* path, struct engine* e)
{
    void* lib = open_lib(path);
    LOAD(lib, e->init, "wrapperInit");
    LOAD(lib, e->fini, "wrapperFini");
    LOAD(lib, e->error, "wrapperError");
    LOAD(lib, e->exec, "wrapperExec");
    LOAD(lib, e->exec_free, "wrapperExecFree");
    LOAD(lib, e->batch, "wrapperExecBatch");
}

/* One batch's inputs, owned by the caller for the call only (as the loader's). */
struct batch {
    unsigned n;
    char tags[MAX_N][40], texts[MAX_N][40];
    const char* tag_ptrs[MAX_N];
    struct ParamList pn[MAX_N][2];
    const char* kv[MAX_N][4];
    pParamList params[MAX_N];
    struct DataList dn[MAX_N];
    pDataList req[MAX_N], resp[MAX_N];
    int errs[MAX_N];
};

/* n items: input "input" = "<prefix>-<i>", params sid=<tag> and one optional extra
 * pair (extra_key for the item at extra_at, -1: none). */
static void build(struct batch* b, unsigned n, const char* prefix, int extra_at,
                  const char* extra_key, const char* extra_value)
{
    memset(b, 0, sizeof *b);
    b->n = n;
    for (unsigned i = 0; i < n; i++) {
        snprintf(b->tags[i], sizeof b->tags[i], "sid-%s-%u", prefix, i);
        snprintf(b->texts[i], sizeof b->texts[i], "%s-%u", prefix, i);
        b->tag_ptrs[i] = b->tags[i];
        const char* kv[] = {"sid", b->tags[i], extra_key, extra_value};
        memcpy(b->kv[i], kv, sizeof kv);
        b->params[i] = make_params(b->pn[i], b->kv[i], (int)i == extra_at ? 2 : 1);
        set_data(&b->dn[i], "input", b->texts[i], DataOnce, NULL);
        b->req[i] = &b->dn[i];
        b->resp[i] = (pDataList)(uintptr_t)0x1; /* the engine must set every respData[i] */
        b->errs[i] = -12345;
    }
}

static int run(const struct engine* e, struct batch* b)
{
    return e->batch(b->n, b->tag_ptrs, b->params, b->req, b->resp, b->errs);
}

static const struct DataList* find(const struct DataList* list, const char* key)
{
    for (; list; list = list->next)
        if (list->key && strcmp(list->key, key) == 0)
            return list;
    return NULL;
}

/* Every item answered with its own input, or failed with want_err where asked;
 * every output freed with its own tag. */
static void check_and_free(const struct engine* e, struct batch* b, int fail_at, int want_err)
{
    for (unsigned i = 0; i < b->n; i++) {
        if ((int)i == fail_at) {
            CHECK(b->errs[i] == want_err, "item %u: errs %d, want %d", i, b->errs[i], want_err);
            CHECK(b->resp[i] == NULL, "item %u failed but has output", i);
            CHECK(e->error(b->errs[i]) != NULL, "no text for %d", b->errs[i]);
        } else {
            CHECK(b->errs[i] == 0, "item %u: errs %d", i, b->errs[i]);
            CHECK(node_is(find(b->resp[i], "input"), "input", b->texts[i]),
                  "item %u: not its own answer", i);
        }
        if (b->resp[i] != NULL) {
            CHECK(e->exec_free(b->tag_ptrs[i], &b->resp[i]) == 0, "exec_free %u", i);
            CHECK(b->resp[i] == NULL, "exec_free left respData[%u] set", i);
        }
    }
}

static long long live_exec(const char* counters)
{
    FILE* f = fopen(counters, "r");
    REQUIRE(f != NULL, "cannot open %s", counters);
    char line[1024] = "";
    REQUIRE(fgets(line, sizeof line, f) != NULL, "%s is empty", counters);
    fclose(f);
    const char* at = strstr(line, "live_exec=");
    REQUIRE(at != NULL, "no live_exec in %s", line);
    return atoll(at + strlen("live_exec="));
}

static void init_with(const struct engine* e, const char* counters, const char* k2,
                      const char* v2)
{
    struct ParamList pn[3];
    const char* kv[] = {"counters_file", counters, k2, v2, "item_us", "100"};
    REQUIRE(e->init(make_params(pn, kv, k2 ? 3 : 1)) == 0, "wrapperInit failed");
}

/* What echo and gpusim share: per-item errors, a failing call, the counters. */
static void common(const struct engine* e, const char* counters, const char* batch_node)
{
    struct batch b;
    build(&b, 8, "ok", 3, "fail", "7");
    REQUIRE(run(e, &b) == 0, "batch call failed");
    check_and_free(e, &b, 3, 7);

    build(&b, 5, "whole", 4, "fail_batch", "9");
    CHECK(run(e, &b) == 9, "fail_batch: the call must fail with 9");
    for (unsigned i = 0; i < b.n; i++)
        CHECK(b.resp[i] == NULL, "failed call left respData[%u] set", i);

    build(&b, 6, "size", 0, "show_batch", "true");
    REQUIRE(run(e, &b) == 0, "batch call failed");
    CHECK(node_is(find(b.resp[0], "batch"), "batch", "6"), "no batch node holding 6");
    (void)batch_node;
    check_and_free(e, &b, -1, 0);
    CHECK(live_exec(counters) == 0, "outputs not freed: live_exec %lld", live_exec(counters));
}

/* Several instances' batches at once: every answer still its own. */
struct worker_arg {
    const struct engine* e;
    int id, rounds;
};

static void* worker(void* p)
{
    struct worker_arg* a = p;
    struct batch* b = malloc(sizeof *b);
    REQUIRE(b != NULL, "out of memory");
    for (int r = 0; r < a->rounds; r++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "t%d-r%d", a->id, r);
        build(b, 16, prefix, -1, NULL, NULL);
        CHECK(run(a->e, b) == 0, "threaded batch failed");
        check_and_free(a->e, b, -1, 0);
    }
    free(b);
    return NULL;
}

static void threaded(const struct engine* e)
{
    pthread_t t[4];
    struct worker_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct worker_arg){e, i, 5};
        REQUIRE(pthread_create(&t[i], NULL, worker, &args[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_echo(const char* path, const char* counters)
{
    struct engine e;
    load(path, &e);
    init_with(&e, counters, NULL, NULL);
    common(&e, counters, "batch");
    threaded(&e);
    CHECK(live_exec(counters) == 0, "echo: live_exec %lld", live_exec(counters));
    CHECK(e.fini() == 0, "echo fini");
}

static void test_gpusim(const char* path, const char* counters)
{
    struct engine e;
    load(path, &e);
    init_with(&e, counters, "call_ms", "20");
    common(&e, counters, "batch");
    /* One call of 16 costs about one call: 20 ms + 16 x 0.1 ms, not 16 x 20 ms. The
     * upper bound is that of a call per item, not of one call: a busy machine (CI, ASan)
     * can hold this thread off the CPU for tens of milliseconds. */
    struct batch b;
    build(&b, 16, "timed", -1, NULL, NULL);
    double t0 = now_ms();
    REQUIRE(run(&e, &b) == 0, "batch call failed");
    double took = now_ms() - t0;
    CHECK(took >= 21 && took < 16 * 20, "a batch of 16 took %.1f ms (want 21.6 ms)", took);
    check_and_free(&e, &b, -1, 0);
    threaded(&e);
    CHECK(live_exec(counters) == 0, "gpusim: live_exec %lld", live_exec(counters));
    CHECK(e.fini() == 0, "gpusim fini");
}

/* The text of a digits answer (its "result" node) as a C string, or "". */
static void result_text(const struct DataList* list, char* out, size_t size)
{
    const struct DataList* r = find(list, "result");
    snprintf(out, size, "%.*s", r ? (int)r->len : 0, r ? (const char*)r->data : "");
}

static void test_digits(const char* path, const char* weights, const char* heldout,
                        const char* counters)
{
    struct engine e;
    load(path, &e);
    init_with(&e, counters, "model", weights);
    FILE* f = fopen(heldout, "rb");
    REQUIRE(f != NULL, "cannot open %s", heldout);
    unsigned char c[4];
    REQUIRE(fread(c, 1, 4, f) == 4, "no count");
    unsigned count = (unsigned)c[0] | (unsigned)c[1] << 8 | (unsigned)c[2] << 16;
    unsigned char* rec = malloc((size_t)count * RECORD_BYTES);
    REQUIRE(rec && fread(rec, RECORD_BYTES, count, f) == count, "heldout truncated");
    fclose(f);
    static struct DataList dn[MAX_N];
    static const char* tags[MAX_N];
    static pParamList params[MAX_N];
    static pDataList req[MAX_N], resp[MAX_N];
    static int errs[MAX_N];
    unsigned compared = 0;
    for (unsigned start = 0; start < count; start += 32) {
        unsigned n = count - start < 32 ? count - start : 32;
        for (unsigned i = 0; i < n; i++) {
            memset(&dn[i], 0, sizeof dn[i]);
            dn[i].key = "image";
            dn[i].data = rec + (size_t)(start + i) * RECORD_BYTES;
            /* Item 5 of each batch: a wrong size, which fails that item alone. */
            dn[i].len = i == 5 ? 63 : IMAGE_BYTES;
            dn[i].type = DataImage;
            dn[i].status = DataOnce;
            tags[i] = "digits-batch";
            params[i] = NULL;
            req[i] = &dn[i];
        }
        REQUIRE(e.batch(n, tags, params, req, resp, errs) == 0, "digits batch failed");
        for (unsigned i = 0; i < n; i++) {
            if (i == 5) {
                CHECK(errs[i] == 50005 && resp[i] == NULL, "wrong size: errs %d", errs[i]);
                continue;
            }
            pDataList one = NULL;
            CHECK(e.exec("digits-one", NULL, req[i], &one, NULL, 0) == 0, "exec");
            char a[512], b[512];
            result_text(resp[i], a, sizeof a);
            result_text(one, b, sizeof b);
            CHECK(a[0] && strcmp(a, b) == 0, "image %u: batch %s, alone %s", start + i, a, b);
            compared++;
            e.exec_free("digits-one", &one);
            e.exec_free(tags[i], &resp[i]);
        }
    }
    CHECK(compared > 100, "only %u images compared", compared);
    CHECK(live_exec(counters) == 0, "digits: live_exec %lld", live_exec(counters));
    free(rec);
    CHECK(e.fini() == 0, "digits fini");
}

int main(int argc, char** argv)
{
    REQUIRE(argc == 7, "usage: %s libecho libgpusim libdigits weights heldout counters_dir",
            argv[0]);
    char counters[3][1024];
    const char* names[] = {"echo", "gpusim", "digits"};
    for (int i = 0; i < 3; i++)
        snprintf(counters[i], sizeof counters[i], "%s/batch_%s_counters.txt", argv[6], names[i]);
    test_echo(argv[1], counters[0]);
    test_gpusim(argv[2], counters[1]);
    test_digits(argv[3], argv[4], argv[5], counters[2]);
    return test_exit("test_batch");
}
