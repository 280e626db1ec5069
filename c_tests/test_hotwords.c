/* libhotwords through the personalization sequence of the loader (SPEC 5):
 * LoadRes -> Exec with psrIds -> UnloadRes, refusals with their texts, many
 * threads at once, and a counters_file whose loadres/unloadres balance. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include "test_util.h"
#include "wrapper.h"

static struct {
    wrapperInitPtr init;
    wrapperFiniPtr fini;
    wrapperErrorPtr error;
    wrapperVersionPtr version;
    wrapperExecPtr exec;
    wrapperExecFreePtr exec_free;
    wrapperLoadResPtr load_res;
    wrapperUnloadResPtr unload_res;
} E;

enum { ERR_NOT_LOADED = 40003, ERR_LOADED = 40004, ERR_EMPTY = 40005 };

static int load_text(unsigned int id, const char* text)
{
    struct DataList node;
    set_data(&node, "words", text, DataOnce, NULL);
    return E.load_res(&node, id);
}

/* Exec on text with ids; 0 and the result in out (size n), or the error code. */
static int mark(const char* text, const unsigned int* ids, int n, char* out, size_t size)
{
    struct DataList in;
    set_data(&in, "input", text, DataOnce, NULL);
    struct ParamList pn[1];
    pParamList params = make_params(pn, (const char*[]){"sid", "s1"}, 1);
    pDataList resp = NULL;
    int rc = E.exec("tag", params, &in, &resp, (unsigned int*)ids, n);
    out[0] = '\0';
    if (rc == 0) {
        CHECK(list_len(resp) == 1 && resp->key && strcmp(resp->key, "result") == 0,
              "want one output \"result\"");
        CHECK(resp && resp->type == DataText && resp->status == DataOnce, "output type/status");
        if (resp)
            snprintf(out, size, "%.*s", (int)resp->len, (const char*)resp->data);
    } else {
        CHECK(resp == NULL, "a failed exec returned output");
    }
    if (resp)
        CHECK(E.exec_free("tag", &resp) == 0 && resp == NULL, "execFree did not clear the list");
    return rc;
}

static void check_mark(const char* text, const unsigned int* ids, int n, const char* want)
{
    char got[512];
    int rc = mark(text, ids, n, got, sizeof got);
    CHECK(rc == 0 && strcmp(got, want) == 0, "mark(%s) = %d \"%s\", want \"%s\"", text, rc, got,
          want);
}

static void test_sequence(void)
{
    CHECK(strcmp(E.version(), "hotwords/1.0.0") == 0, "version is %s", E.version());
    const unsigned int one[] = {1}, two[] = {2}, both[] = {1, 2}, seven[] = {7};
    check_mark("turn on the lamp", NULL, 0, "turn on the lamp");

    CHECK(load_text(1, "lamp\nKitchen, light") == 0, "load 1 failed");
    check_mark("Turn on the LAMP in the kitchen, lamps stay.", one, 1,
               "Turn on the [LAMP] in the [kitchen], lamps stay.");
    check_mark("turn on the lamp", NULL, 0, "turn on the lamp");
    check_mark("", one, 1, "");

    int rc = load_text(1, "other");
    CHECK(rc == ERR_LOADED, "a second load of id 1 returned %d", rc);
    CHECK(strcmp(E.error(rc), "hotwords: resource 1 is already loaded") == 0, "text: %s",
          E.error(rc));
    check_mark("other lamp", one, 1, "other [lamp]"); /* nothing replaced */

    char got[64];
    rc = mark("turn on the lamp", seven, 1, got, sizeof got);
    CHECK(rc == ERR_NOT_LOADED, "unknown psrId returned %d", rc);
    CHECK(strcmp(E.error(rc), "hotwords: resource 7 is not loaded") == 0, "text: %s",
          E.error(rc));

    CHECK(load_text(2, "caf\xc3\xa9  light_2 stay") == 0, "load 2 failed");
    check_mark("Caf\xc3\xa9 lamp: stay, light_2!", two, 1, "[Caf\xc3\xa9] lamp: [stay], [light_2]!");
    check_mark("Caf\xc3\xa9 lamp: stay", both, 2, "[Caf\xc3\xa9] [lamp]: [stay]");

    rc = load_text(3, " ,\n, ");
    CHECK(rc == ERR_EMPTY && strstr(E.error(rc), "resource 3 holds no words"), "empty: %d %s",
          rc, E.error(rc));
    CHECK(E.load_res(NULL, 3) == ERR_EMPTY, "NULL perData accepted");

    CHECK(E.unload_res(1) == 0, "unload 1 failed");
    rc = E.unload_res(1);
    CHECK(rc == ERR_NOT_LOADED && strcmp(E.error(rc), "hotwords: resource 1 is not loaded") == 0,
          "second unload of 1: %d %s", rc, E.error(rc));
    rc = mark("lamp", both, 2, got, sizeof got);
    CHECK(rc == ERR_NOT_LOADED && strcmp(E.error(rc), "hotwords: resource 1 is not loaded") == 0,
          "exec with an unloaded id: %d %s", rc, E.error(rc));
    CHECK(E.unload_res(2) == 0, "unload 2 failed");
}

/* Each thread loads its own list, execs with it and a shared one, unloads. */
static void* worker(void* arg)
{
    unsigned int id = 100 + (unsigned int)(size_t)arg;
    char words[32], got[128];
    snprintf(words, sizeof words, "w%u", id);
    for (int round = 0; round < 50; round++) {
        CHECK(load_text(id, words) == 0, "thread load %u failed", id);
        const unsigned int ids[] = {id, 99};
        char text[64], want[64];
        snprintf(text, sizeof text, "a w%u and shared", id);
        snprintf(want, sizeof want, "a [w%u] and [shared]", id);
        int rc = mark(text, ids, 2, got, sizeof got);
        CHECK(rc == 0 && strcmp(got, want) == 0, "thread mark %u: %d %s", id, rc, got);
        CHECK(E.unload_res(id) == 0, "thread unload %u failed", id);
        rc = mark(text, ids, 1, got, sizeof got);
        snprintf(want, sizeof want, "hotwords: resource %u is not loaded", id);
        CHECK(rc == ERR_NOT_LOADED && strcmp(E.error(rc), want) == 0, "thread %u after unload: %s",
              id, E.error(rc));
    }
    return NULL;
}

static void test_threads(void)
{
    CHECK(load_text(99, "shared") == 0, "load 99 failed");
    pthread_t threads[8];
    for (size_t i = 0; i < 8; i++)
        REQUIRE(pthread_create(&threads[i], NULL, worker, (void*)i) == 0, "pthread_create");
    for (size_t i = 0; i < 8; i++)
        pthread_join(threads[i], NULL);
    CHECK(E.unload_res(99) == 0, "unload 99 failed");
}

static void check_counters(const char* path, long long loads, long long unloads,
                           const char* life)
{
    FILE* f = fopen(path, "r");
    REQUIRE(f != NULL, "no counters file %s", path);
    char line[512] = "";
    CHECK(fgets(line, sizeof line, f) != NULL, "empty counters file");
    fclose(f);
    long long loadres = -1, unloadres = -1, live = -1;
    const char* p = strstr(line, " loadres=");
    const char* q = strstr(line, " unloadres=");
    const char* l = strstr(line, " live_exec=");
    if (p && q && l) {
        loadres = atoll(p + 9);
        unloadres = atoll(q + 11);
        live = atoll(l + 11);
    }
    CHECK(loadres == loads && unloadres == unloads, "want loadres=%lld unloadres=%lld: %s",
          loads, unloads, line);
    CHECK(live == 0, "an exec result was never freed: %s", line);
    CHECK(strstr(line, life) == line, "want %s: %s", life, line);
}

int main(int argc, char** argv)
{
    REQUIRE(argc == 3, "usage: test_hotwords libhotwords.so counters_file");
    void* lib = open_lib(argv[1]);
    LOAD(lib, E.init, "wrapperInit");
    LOAD(lib, E.fini, "wrapperFini");
    LOAD(lib, E.error, "wrapperError");
    LOAD(lib, E.version, "wrapperVersion");
    LOAD(lib, E.exec, "wrapperExec");
    LOAD(lib, E.exec_free, "wrapperExecFree");
    LOAD(lib, E.load_res, "wrapperLoadRes");
    LOAD(lib, E.unload_res, "wrapperUnloadRes");
    CHECK(dlsym(lib, "hw_mark") == NULL, "internal helpers are exported");

    remove(argv[2]);
    struct ParamList cn[1];
    pConfig cfg = make_params(cn, (const char*[]){"counters_file", argv[2]}, 1);
    REQUIRE(E.init(cfg) == 0, "wrapperInit failed");
    test_sequence();
    test_threads();
    /* 1, 2, 99 and 8 threads x 50 rounds, every one unloaded. */
    check_counters(argv[2], 403, 403, "init=1 fini=0 ");
    CHECK(load_text(6, "kept until fini") == 0, "load 6 failed"); /* fini frees it (ASan: no leak) */
    CHECK(E.fini() == 0, "wrapperFini failed");
    check_counters(argv[2], 404, 403, "init=1 fini=1 ");
    dlclose(lib);
    return test_exit("test_hotwords");
}
