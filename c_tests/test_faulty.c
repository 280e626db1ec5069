/* libfaulty's non-crashing faults, driven the way the loader drives them:
 * error codes and texts, empty and bad-status outputs, NULL handles, late and
 * missing callbacks, and a hang that wrapperFini ends. (crash and abort kill
 * the process: the e2e tests cover them.) argv[2]: the counters file. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <time.h>

#include "test_util.h"
#include "wrapper.h"

static struct {
    wrapperInitPtr init;
    wrapperFiniPtr fini;
    wrapperErrorPtr error;
    wrapperExecPtr exec;
    wrapperExecFreePtr exec_free;
    wrapperExecAsyncPtr exec_async;
    wrapperCreatePtr create;
    wrapperWritePtr write;
    wrapperReadPtr read;
    wrapperDestroyPtr destroy;
    wrapperHealthPtr health;
    wrapperCancelPtr cancel;
} E;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_calls, g_last_ret, g_last_status;

static int on_result(const void* tag, pDataList resp, int ret)
{
    (void)tag;
    pthread_mutex_lock(&g_mu);
    g_calls++;
    g_last_ret = ret;
    g_last_status = resp ? (int)resp->status : -1;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    return 0;
}

/* Waits up to ms for the callback count to reach n; returns the count. */
static int wait_calls(int n, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ns = until.tv_nsec + (long long)(ms % 1000) * 1000000LL;
    until.tv_sec += ms / 1000 + ns / 1000000000LL;
    until.tv_nsec = ns % 1000000000LL;
    pthread_mutex_lock(&g_mu);
    while (g_calls < n)
        if (pthread_cond_timedwait(&g_cv, &g_mu, &until))
            break;
    int calls = g_calls;
    pthread_mutex_unlock(&g_mu);
    return calls;
}

static int exec_fault(const char* fault, const char* code, pDataList* out)
{
    struct ParamList p[3];
    const char* kv[] = {"sid", "t", "fault", fault, "code", code};
    return E.exec("t", make_params(p, kv, code ? 3 : 2), NULL, out, NULL, 0);
}

static int async_fault(const char* fault, const char* ms)
{
    struct ParamList p[3];
    const char* kv[] = {"sid", "t", "fault", fault, "ms", ms};
    return E.exec_async("t", make_params(p, kv, 3), NULL, on_result, 1000, NULL, 0);
}

static void test_once_sync(void)
{
    pDataList out = NULL;
    CHECK(exec_fault("error", "4242", &out) == 4242 && out == NULL, "error returns code");
    CHECK(strcmp(E.error(4242), "faulty: requested error") == 0, "text: %s", E.error(4242));
    CHECK(exec_fault("empty", NULL, &out) == 0 && out == NULL, "empty: 0 and NULL");
    CHECK(exec_fault("bad_status", NULL, &out) == 0 && out && (int)out->status == 7,
          "bad_status: a node with status 7");
    E.exec_free("t", &out);
    CHECK(exec_fault("no_such_fault", NULL, &out) != 0, "unknown fault is an error");
    CHECK(exec_fault("slow", NULL, &out) == 0 && node_is(out, "result", "ok"), "slow 0ms ok");
    E.exec_free("t", &out);
}

static void test_once_async(void)
{
    CHECK(async_fault("late_callback", "200") == 0, "late_callback starts");
    CHECK(wait_calls(1, 50) == 0, "no callback before ms");
    CHECK(wait_calls(1, 1000) == 1 && g_last_ret == 0, "the late callback arrives");
    CHECK(async_fault("never_callback", "0") == 0, "never_callback starts");
    CHECK(async_fault("bad_status", "0") == 0, "bad_status starts");
    CHECK(wait_calls(2, 1000) == 2 && g_last_status == 7, "bad status pushed");
    struct timespec pause = {0, 100 * 1000000L};
    nanosleep(&pause, NULL);
    CHECK(wait_calls(3, 0) == 2, "never_callback never calls back");
}

static void test_sessions(void)
{
    struct ParamList p[2];
    const char* null_kv[] = {"sid", "s", "fault", "null_handle"};
    int err = -1;
    CHECK(E.create("s", make_params(p, null_kv, 2), NULL, NULL, 0, &err) == NULL && err == 0,
          "null_handle: NULL with errNum 0 (%d)", err);
    const char* err_kv[] = {"sid", "s", "fault", "error"};
    CHECK(E.create("s", make_params(p, err_kv, 2), NULL, NULL, 0, &err) == NULL && err == 5001,
          "error at create: %d", err);
    const char* bad_kv[] = {"sid", "s", "fault", "bad_status"};
    const void* h = E.create("s", make_params(p, bad_kv, 2), NULL, NULL, 0, &err);
    REQUIRE(h != NULL, "create");
    struct DataList in;
    set_data(&in, "input", "x", DataEnd, NULL);
    pDataList out = NULL;
    CHECK(E.write(h, &in) == 0 && E.read(h, &out) == 0 && out && (int)out->status == 7,
          "bad_status read");
    CHECK(E.read(h, &out) == 0 && out == NULL, "then nothing");
    CHECK(E.destroy(h) == 0, "destroy");
}

/* wrapperHealth: 0 until fault=unhealthy, then non-zero with a NUL-terminated reason
 * that fits detailLen (even a tiny one), and 0 again after fault=healthy. */
static void test_health(void)
{
    char detail[128] = "untouched";
    CHECK(E.health(detail, sizeof detail) == 0, "healthy at first");
    pDataList out = NULL;
    CHECK(exec_fault("unhealthy", NULL, &out) == 0 && node_is(out, "result", "ok"),
          "fault=unhealthy succeeds");
    E.exec_free("t", &out);
    CHECK(E.health(detail, sizeof detail) != 0, "unhealthy after the switch");
    CHECK(strstr(detail, "unhealthy") != NULL, "reason: %s", detail);
    char tiny[8];
    memset(tiny, 'x', sizeof tiny);
    CHECK(E.health(tiny, sizeof tiny) != 0 && tiny[sizeof tiny - 1] == '\0',
          "reason truncated within detailLen");
    CHECK(exec_fault("healthy", NULL, &out) == 0, "fault=healthy succeeds");
    E.exec_free("t", &out);
    CHECK(E.health(detail, sizeof detail) == 0, "healthy again");
}

struct slow { const char* tag; int rc; };

static void* slow_main(void* arg)
{
    struct slow* s = arg;
    struct ParamList pn[2];
    pDataList out = NULL;
    int rc = E.exec(s->tag, make_params(pn, (const char*[]){"fault", "slow", "ms", "2000"}, 2),
                    NULL, &out, NULL, 0);
    __atomic_store_n(&s->rc, rc, __ATOMIC_SEQ_CST);
    if (out)
        E.exec_free(s->tag, &out);
    return NULL;
}

/* wrapperCancel: a slow call for the tag returns within 200 ms with 5006; a call for
 * another tag, and a hang, are left alone. */
static void test_cancel(void)
{
    struct slow mine = {"slow-1", -1}, other = {"slow-2", -1};
    pthread_t a, b;
    REQUIRE(pthread_create(&a, NULL, slow_main, &mine) == 0 &&
            pthread_create(&b, NULL, slow_main, &other) == 0, "threads");
    struct timespec pause = {0, 100 * 1000000L}, t0, t1;
    nanosleep(&pause, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(E.cancel("slow-1") == 0, "wrapperCancel");
    pthread_join(a, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    CHECK(mine.rc == 5006 && ms < 200, "cancelled slow call: rc %d after %.0f ms", mine.rc, ms);
    CHECK(strstr(E.error(5006), "cancel") != NULL, "error(5006): %s", E.error(5006));
    CHECK(__atomic_load_n(&other.rc, __ATOMIC_SEQ_CST) == -1, "another tag's call stopped too");
    CHECK(E.cancel("slow-2") == 0, "wrapperCancel of the other");
    pthread_join(b, NULL);
    CHECK(other.rc == 5006, "the other one, cancelled in its turn: rc %d", other.rc);
}

static void* hang_main(void* arg)
{
    pDataList out = NULL;
    *(int*)arg = exec_fault("hang", NULL, &out);
    if (out)  /* released by wrapperFini, the call still returns its output: free it */
        E.exec_free("t", &out);
    return NULL;
}

/* A hung Exec returns once wrapperFini runs; fini waits for async workers. */
static void test_hang_ends_at_fini(const char* counters)
{
    int rc = -1;
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, hang_main, &rc) == 0, "thread");
    struct timespec pause = {0, 100 * 1000000L};
    nanosleep(&pause, NULL);
    FILE* f = fopen(counters, "r");
    char line[512] = "";
    if (f) {
        CHECK(fgets(line, sizeof line, f) != NULL, "read counters");
        fclose(f);
    }
    CHECK(strstr(line, "hung=1 ") != NULL, "one call hung: %s", line);
    CHECK(E.fini() == 0, "fini");
    pthread_join(t, NULL);
    CHECK(rc == 0, "the hung call returned after fini");
}

int main(int argc, char** argv)
{
    REQUIRE(argc == 3, "usage: test_faulty libfaulty.so counters_file");
    void* lib = open_lib(argv[1]);
    LOAD(lib, E.init, "wrapperInit");
    LOAD(lib, E.fini, "wrapperFini");
    LOAD(lib, E.error, "wrapperError");
    LOAD(lib, E.exec, "wrapperExec");
    LOAD(lib, E.exec_free, "wrapperExecFree");
    LOAD(lib, E.exec_async, "wrapperExecAsync");
    LOAD(lib, E.create, "wrapperCreate");
    LOAD(lib, E.write, "wrapperWrite");
    LOAD(lib, E.read, "wrapperRead");
    LOAD(lib, E.destroy, "wrapperDestroy");
    LOAD(lib, E.health, "wrapperHealth");
    LOAD(lib, E.cancel, "wrapperCancel");
    struct ParamList cfg[1];
    const char* kv[] = {"counters_file", argv[2]};
    REQUIRE(E.init(make_params(cfg, kv, 1)) == 0, "init");
    test_once_sync();
    test_once_async();
    test_sessions();
    test_health();
    test_cancel();
    test_hang_ends_at_fini(argv[2]);
    return test_exit("test_faulty");
}
