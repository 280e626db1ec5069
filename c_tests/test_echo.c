/* libecho through every call sequence of the loader (SPEC section 2): once
 * sync and async, sync and async sessions, resources, service callbacks; at
 * the end its counters_file must show nothing leaked. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"
#include "wrapper.h"

static struct {
    wrapperInitPtr init;
    wrapperFiniPtr fini;
    wrapperErrorPtr error;
    wrapperVersionPtr version;
    wrapperSetCtrlPtr set_ctrl;
    wrapperExecPtr exec;
    wrapperExecFreePtr exec_free;
    wrapperExecAsyncPtr exec_async;
    wrapperCreatePtr create;
    wrapperWritePtr write;
    wrapperReadPtr read;
    wrapperDestroyPtr destroy;
    wrapperDebugInfoPtr debug_info;
    wrapperLoadResPtr load_res;
    wrapperUnloadResPtr unload_res;
    wrapperCancelPtr cancel;
} E;

/* ---- what the callbacks received (summaries: the data dies on return) ---- */
struct result {
    const void* tag;
    int ret, has_data;
    pthread_t thread;
    char summary[512]; /* "key=data/status;" per node */
};
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static struct result g_results[64];
static int g_nresults;

static void summarize(const struct DataList* d, char* out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (; d && used < size; d = d->next)
        used += (size_t)snprintf(out + used, size - used, "%s=%.*s/%d;", d->key, (int)d->len,
                                 (const char*)d->data, (int)d->status);
}

static int on_result(const void* tag, pDataList resp, int ret)
{
    pthread_mutex_lock(&g_mu);
    if (g_nresults < 64) {
        struct result* r = &g_results[g_nresults];
        r->tag = tag;
        r->ret = ret;
        r->has_data = resp != NULL;
        r->thread = pthread_self();
        summarize(resp, r->summary, sizeof r->summary);
    }
    g_nresults++;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    return 0;
}

/* Waits up to 5 s for n results in total; returns how many there are. */
static int wait_results(int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&g_mu);
    while (g_nresults < n && pthread_cond_timedwait(&g_cv, &g_mu, &until) == 0) {
    }
    int got = g_nresults;
    pthread_mutex_unlock(&g_mu);
    return got;
}

static const char tag_exec[] = "exec", tag_async[] = "async", tag_fail[] = "fail",
                  tag_inline[] = "inline", tag_twice[] = "twice", tag_late[] = "late",
                  tag_sess[] = "sess";

static int g_meter_calls, g_trace_calls;
static const void* g_meter_tag;
/* late_ctrl_ms: calls from the engine's own thread, after the exec returned */
static int g_late_meter, g_late_trace, g_late_null;
static const void* g_late_tag;

static int on_meter(const void* tag, const char* key, int count)
{
    if (strcmp(key, "echo_late") == 0) {
        pthread_mutex_lock(&g_mu);
        g_late_meter += count == 1;
        g_late_tag = tag;
        pthread_mutex_unlock(&g_mu);
        return 0;
    }
    g_meter_calls += strcmp(key, "echo_exec") == 0 && count == 1;
    g_meter_tag = tag;
    return 0;
}

static int on_trace(const char* tag, const char* key, const char* value)
{
    if (strcmp(key, "echo") == 0 && strncmp(value, "late", 4) == 0) {
        pthread_mutex_lock(&g_mu);
        g_late_trace += strcmp(value, "late") == 0 && tag != NULL;
        g_late_null += strcmp(value, "late_null") == 0 && tag == NULL;
        pthread_cond_broadcast(&g_cv); /* late_null is the last call */
        pthread_mutex_unlock(&g_mu);
        return 0;
    }
    g_trace_calls += strcmp(key, "echo") == 0 && strcmp(value, "exec") == 0;
    return 0;
}

/* Waits up to 5 s for the late_ctrl_ms calls; returns 1 if all came. */
static int wait_late(void)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&g_mu);
    while (!g_late_null && pthread_cond_timedwait(&g_cv, &g_mu, &until) == 0) {
    }
    int ok = g_late_meter == 1 && g_late_trace == 1 && g_late_null == 1 && g_late_tag == tag_late;
    pthread_mutex_unlock(&g_mu);
    return ok;
}

static int g_execs; /* wrapperExec calls made, for the counters check */

static void test_exec(const char* counters)
{
    struct ParamList pn[3], dn[1];
    pParamList params =
        make_params(pn, (const char*[]){"sid", "s1", "k", "v\"q\\\n", "show_config", "true"}, 3);
    struct DataList in[2];
    set_data(&in[1], "b", "world", DataOnce, NULL);
    set_data(&in[0], "a", "hello", DataOnce, &in[1]);
    in[0].type = DataAudio;
    in[0].desc = make_params(dn, (const char*[]){"encoding", "raw"}, 1);
    unsigned int psr[] = {3, 7};

    pDataList out = NULL;
    g_execs++;
    CHECK(E.exec(tag_exec, params, in, &out, psr, 2) == 0, "exec failed");
    char want[512];
    snprintf(want, sizeof want,
             "a=hello/3;b=world/3;params={\"sid\":\"s1\",\"k\":\"v\\\"q\\\\\\n\","
             "\"show_config\":\"true\"}/3;psr_ids=3,7/3;"
             "config={\"counters_file\":\"%s\",\"model\":\"m1\",\"push\":\"true\"}/3;",
             counters);
    char got[512];
    summarize(out, got, sizeof got);
    CHECK(strcmp(got, want) == 0, "exec output\n got: %s\nwant: %s", got, want);
    CHECK(out && out->data != in[0].data, "output shares the input buffer");
    CHECK(out && out->type == DataAudio && out->desc && strcmp(out->desc->key, "encoding") == 0 &&
              strcmp(out->desc->value, "raw") == 0 && out->desc->vlen == 3,
          "type/desc not copied");
    CHECK(g_meter_calls == 1 && g_meter_tag == tag_exec, "meter not called with the usrTag");
    CHECK(g_trace_calls == 1, "trace not called");
    CHECK(E.exec_free(tag_exec, &out) == 0 && out == NULL, "execFree did not clear the list");

    g_execs++;
    CHECK(E.exec(tag_exec, NULL, NULL, &out, NULL, 0) == 0, "exec with no inputs failed");
    summarize(out, got, sizeof got);
    CHECK(strcmp(got, "params={}/3;") == 0, "exec(NULL, NULL) output: %s", got);
    E.exec_free(tag_exec, &out);

    g_execs++;
    int rc = E.exec(tag_exec, make_params(pn, (const char*[]){"fail", "42"}, 1), in, &out, NULL, 0);
    CHECK(rc == 42 && out == NULL, "fail=42 returned %d with output %p", rc, (void*)out);
    CHECK(strcmp(E.error(42), "echo: failure requested") == 0, "error(42): %s", E.error(42));
    CHECK(strcmp(E.error(987654), "echo: unknown error") == 0, "error(987654): %s", E.error(987654));

    g_execs++;
    rc = E.exec(tag_exec, make_params(pn, (const char*[]){"empty", "true"}, 1), in, &out, NULL, 0);
    CHECK(rc == 0 && out == NULL, "empty=true returned %d with output %p", rc, (void*)out);
    CHECK(E.exec_free(tag_exec, &out) == 0, "execFree(NULL list) failed");

    g_execs++;
    rc = E.exec(tag_late, make_params(pn, (const char*[]){"late_ctrl_ms", "1"}, 1), in, &out,
                NULL, 0);
    CHECK(rc == 0 && out != NULL, "late_ctrl_ms=1 returned %d", rc);
    E.exec_free(tag_late, &out);
    CHECK(wait_late(), "late meter/trace calls: meter=%d trace=%d null=%d", g_late_meter,
          g_late_trace, g_late_null);

    E.set_ctrl(CTMeterCustom, NULL);
    E.set_ctrl(CTTraceLog, NULL);
}

static void test_async(void)
{
    struct ParamList pn[2];
    struct DataList in[2];
    char a[] = "hello", b[] = "world";
    set_data(&in[1], "b", b, DataOnce, NULL);
    set_data(&in[0], "a", a, DataOnce, &in[1]);

    int rc = E.exec_async(tag_async, make_params(pn, (const char*[]){"sid", "a1", "delay_ms", "30"}, 2),
                          in, on_result, 1000, NULL, 0);
    CHECK(rc == 0, "execAsync returned %d", rc);
    memset(a, '#', 5); /* inputs die with the call: the engine must have copied */
    memset(pn, 0, sizeof pn);
    REQUIRE(wait_results(1) == 1, "no async callback within 5 s");
    CHECK(g_results[0].tag == tag_async, "callback usrTag is not the pointer given");
    CHECK(strcmp(g_results[0].summary, "a=hello/3;b=world/3;params={\"sid\":\"a1\",\"delay_ms\":\"30\"}/3;") == 0,
          "async output: %s", g_results[0].summary);
    memcpy(a, "hello", 5);

    rc = E.exec_async(tag_fail, make_params(pn, (const char*[]){"fail", "43"}, 1), in, on_result, 1000, NULL, 0);
    REQUIRE(rc == 0 && wait_results(2) == 2, "no callback for fail=43 (rc %d)", rc);
    CHECK(g_results[1].tag == tag_fail && g_results[1].ret == 43 && !g_results[1].has_data,
          "fail callback: ret %d data %d", g_results[1].ret, g_results[1].has_data);

    rc = E.exec_async(tag_inline, make_params(pn, (const char*[]){"inline", "true"}, 1), in, on_result, 1000, NULL, 0);
    pthread_mutex_lock(&g_mu);
    int n = g_nresults;
    pthread_mutex_unlock(&g_mu);
    CHECK(rc == 0 && n == 3, "inline callback did not happen before return (rc %d)", rc);
    CHECK(g_results[2].tag == tag_inline && pthread_equal(g_results[2].thread, pthread_self()),
          "inline callback not on the caller's thread");

    rc = E.exec_async(tag_twice, make_params(pn, (const char*[]){"callback_twice", "true"}, 1), in, on_result, 1000, NULL, 0);
    REQUIRE(rc == 0 && wait_results(5) == 5, "callback_twice: want 2 callbacks (rc %d)", rc);
    CHECK(g_results[3].tag == tag_twice && g_results[4].tag == tag_twice, "callback_twice tags");

    rc = E.exec_async(tag_async, make_params(pn, (const char*[]){"no_callback", "true"}, 1), in, on_result, 1000, NULL, 0);
    CHECK(rc == 0, "no_callback returned %d", rc);
    CHECK(E.exec_async(tag_async, NULL, in, NULL, 1000, NULL, 0) != 0, "execAsync accepted cb NULL");
}

static void test_sync_session(void)
{
    struct ParamList pn[1];
    int err = -1;
    const void* h = E.create(tag_sess, make_params(pn, (const char*[]){"sid", "ss"}, 1), NULL, NULL, 0, &err);
    REQUIRE(h != NULL && err == 0, "create failed: %d", err);
    static const char* const frames[] = {"x1", "x2", "x3"};
    for (int i = 0; i < 3; i++) {
        struct DataList in;
        set_data(&in, "audio", frames[i], (DataStatus)i, NULL); /* Begin, Continue, End */
        CHECK(E.write(h, &in) == 0, "write %d failed", i);
        pDataList out = NULL;
        CHECK(E.read(h, &out) == 0, "read %d failed", i);
        CHECK(list_len(out) == 1 && node_is(out, "audio", frames[i]) && out->status == (DataStatus)i,
              "read %d got the wrong frame", i);
        CHECK(E.read(h, &out) == 0 && out == NULL, "second read %d returned data", i);
    }
    CHECK(strcmp(E.debug_info(h), "echo session: writes=3 bytes=6") == 0, "debug info: %s", E.debug_info(h));
    CHECK(E.destroy(h) == 0, "destroy failed");

    pDataList out;
    CHECK(E.destroy(h) != 0, "second destroy succeeded");
    CHECK(E.write(h, NULL) != 0 && E.read(NULL, &out) != 0 && E.destroy(NULL) != 0,
          "stale/NULL handle accepted");
    CHECK(E.debug_info(NULL) != NULL, "debugInfo(NULL) returned NULL");

    h = E.create(tag_sess, make_params(pn, (const char*[]){"fail_create", "55"}, 1), NULL, NULL, 0, &err);
    CHECK(h == NULL && err == 55, "fail_create=55: handle %p err %d", h, err);
    CHECK(strcmp(E.error(55), "echo: failure requested") == 0, "error(55): %s", E.error(55));
    h = E.create(tag_sess, make_params(pn, (const char*[]){"fail_write", "56"}, 1), NULL, NULL, 0, &err);
    REQUIRE(h != NULL, "create with fail_write failed");
    CHECK(E.write(h, NULL) == 56, "fail_write=56 not returned");
    CHECK(E.destroy(h) == 0, "destroy failed");
}

static void test_async_session(void)
{
    int base = wait_results(0), err = -1;
    const void* h = E.create(tag_sess, NULL, on_result, NULL, 0, &err);
    REQUIRE(h != NULL && err == 0, "async create failed: %d", err);
    static const char* const frames[] = {"f0", "f1", "f2", "f3", "f4"};
    static const DataStatus status[] = {DataBegin, DataContinue, DataContinue, DataContinue, DataEnd};
    for (int i = 0; i < 5; i++) {
        struct DataList in;
        set_data(&in, "audio", frames[i], status[i], NULL);
        CHECK(E.write(h, &in) == 0, "async write %d failed", i);
    }
    REQUIRE(wait_results(base + 5) == base + 5, "async session: 5 results did not arrive");
    for (int i = 0; i < 5; i++) {
        char want[32];
        snprintf(want, sizeof want, "audio=%s/%d;", frames[i], (int)status[i]);
        CHECK(g_results[base + i].tag == tag_sess && strcmp(g_results[base + i].summary, want) == 0,
              "async session result %d: %s, want %s", i, g_results[base + i].summary, want);
    }
    pDataList out = NULL;
    CHECK(E.read(h, &out) == 0 && out == NULL, "read on an async session returned data");
    CHECK(E.destroy(h) == 0, "async destroy failed");

    /* Results written before destroy still arrive, before destroy returns. */
    struct ParamList pn[1];
    h = E.create(tag_sess, make_params(pn, (const char*[]){"delay_ms", "20"}, 1), on_result, NULL, 0, &err);
    REQUIRE(h != NULL, "delayed async create failed: %d", err);
    struct DataList in;
    set_data(&in, "audio", "last", DataEnd, NULL);
    CHECK(E.write(h, &in) == 0 && E.write(h, &in) == 0, "delayed writes failed");
    CHECK(E.destroy(h) == 0, "delayed destroy failed");
    CHECK(wait_results(0) == base + 7, "destroy dropped queued results: %d of 2", wait_results(0) - base - 5);
}

static void test_resources(void)
{
    struct DataList per[2];
    set_data(&per[1], "b", "23", DataOnce, NULL);
    set_data(&per[0], "a", "01", DataOnce, &per[1]);
    per[0].type = per[1].type = DataPer;
    CHECK(E.load_res(per, 5) == 0, "loadRes failed");
    CHECK(E.unload_res(5) == 0, "unloadRes failed");
    CHECK(E.unload_res(5) != 0, "unloadRes of an unloaded id succeeded");
}

/* wrapperFini cuts a pending async delay short and never calls back. */
static void test_fini(void)
{
    struct ParamList pn[1];
    struct DataList in;
    set_data(&in, "a", "late", DataOnce, NULL);
    int before = wait_results(0);
    CHECK(E.exec_async(tag_late, make_params(pn, (const char*[]){"delay_ms", "30000"}, 1), &in, on_result, 1000, NULL, 0) == 0,
          "late execAsync failed");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(E.fini() == 0, "wrapperFini failed");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(t1.tv_sec - t0.tv_sec < 5, "wrapperFini waited out a 30 s delay");
    CHECK(wait_results(0) == before, "a callback arrived during wrapperFini");
}

/* ---- wrapperCancel (the aiges extension) ---- */
static double ms_since(const struct timespec* t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

struct call { /* one wrapperExec or wrapperWrite on a thread of its own */
    const char* tag;
    const void* handle; /* NULL: exec */
    int rc;
    struct timespec returned;
};

static void* call_main(void* arg)
{
    struct call* c = arg;
    struct ParamList pn[2];
    struct DataList in;
    set_data(&in, "a", "slow", DataOnce, NULL);
    if (c->handle) {
        c->rc = E.write(c->handle, &in);
    } else {
        pDataList out = NULL;
        g_execs++;
        c->rc = E.exec(c->tag, make_params(pn, (const char*[]){"sid", c->tag, "delay_ms", "2000"}, 2),
                       &in, &out, NULL, 0);
        if (out)
            E.exec_free(c->tag, &out);
    }
    clock_gettime(CLOCK_MONOTONIC, &c->returned);
    return NULL;
}

/* Starts the call, cancels `cancel_tag` 100 ms later; the ms from the cancel to the
 * call's return, its code in c->rc. */
static double cancel_after_100ms(struct call* c, const char* cancel_tag)
{
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, call_main, c) == 0, "pthread_create");
    sleep_ms(100);
    struct timespec at;
    clock_gettime(CLOCK_MONOTONIC, &at);
    char copy[64]; /* the loader's buffer dies with the call: the engine must copy */
    snprintf(copy, sizeof copy, "%s", cancel_tag);
    CHECK(E.cancel(copy) == 0, "wrapperCancel(%s) failed", cancel_tag);
    memset(copy, 0, sizeof copy);
    pthread_join(t, NULL);
    return (double)(c->returned.tv_sec - at.tv_sec) * 1e3 +
           (double)(c->returned.tv_nsec - at.tv_nsec) / 1e6;
}

static void test_cancel(void)
{
    /* A 2 s exec stops within 200 ms of wrapperCancel of its tag, with 30007. */
    struct call c = {"cancel-exec", NULL, -1, {0, 0}};
    double ms = cancel_after_100ms(&c, "cancel-exec");
    CHECK(c.rc == 30007 && ms < 200, "cancelled exec: rc %d after %.0f ms", c.rc, ms);
    CHECK(strstr(E.error(30007), "cancel") != NULL, "error(30007): %s", E.error(30007));

    /* Cancelled before it starts (the client left while it queued): at once. */
    CHECK(E.cancel("cancel-early") == 0, "cancel of a tag not running");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    c = (struct call){"cancel-early", NULL, -1, {0, 0}};
    call_main(&c);
    CHECK(c.rc == 30007 && ms_since(&t0) < 200, "exec of a cancelled tag: rc %d", c.rc);

    /* Async: the worker stops early and calls back at once with 30007. */
    struct ParamList pn[2];
    struct DataList in;
    set_data(&in, "a", "slow", DataOnce, NULL);
    int before = wait_results(0);
    char tag[] = "cancel-async";
    CHECK(E.exec_async(tag, make_params(pn, (const char*[]){"delay_ms", "2000"}, 1), &in, on_result,
                       5000, NULL, 0) == 0, "execAsync failed");
    sleep_ms(100);
    CHECK(E.cancel("cancel-async") == 0, "cancel async");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    REQUIRE(wait_results(before + 1) == before + 1, "no callback for a cancelled execAsync");
    CHECK(ms_since(&t0) < 200 && g_results[before].ret == 30007 && !g_results[before].has_data,
          "cancelled execAsync: ret %d after %.0f ms", g_results[before].ret, ms_since(&t0));

    /* A session's write waiting write_delay_ms stops on the session's tag. */
    int err = -1;
    const void* h = E.create("cancel-session", make_params(pn, (const char*[]){"write_delay_ms", "2000"}, 1),
                             NULL, NULL, 0, &err);
    REQUIRE(h != NULL && err == 0, "create with write_delay_ms failed: %d", err);
    c = (struct call){"cancel-session", h, -1, {0, 0}};
    ms = cancel_after_100ms(&c, "cancel-session");
    CHECK(c.rc == 30007 && ms < 200, "cancelled write: rc %d after %.0f ms", c.rc, ms);
    CHECK(E.destroy(h) == 0, "destroy after a cancelled write");

    /* Another tag's cancel leaves a call alone. */
    c = (struct call){"cancel-other", NULL, -1, {0, 0}};
    struct ParamList qn[2];
    pDataList out = NULL;
    g_execs++;
    CHECK(E.cancel("cancel-nobody") == 0, "cancel of an unknown tag");
    CHECK(E.exec("cancel-other", make_params(qn, (const char*[]){"delay_ms", "20"}, 1), &in, &out, NULL, 0) == 0,
          "an exec not cancelled failed");
    E.exec_free("cancel-other", &out);
}

static void check_counters(const char* path)
{
    FILE* f = fopen(path, "r");
    REQUIRE(f != NULL, "counters file %s missing", path);
    char line[512] = "";
    CHECK(fgets(line, sizeof line, f) != NULL, "counters file empty");
    fclose(f);
    long long init, fini, exec, execfree, live_exec, async, callbacks, create, destroy, live_sessions,
        loadres, unloadres, cancels, cancelled;
    int end = 0;
    int n = sscanf(line,
                   "init=%lld fini=%lld exec=%lld execfree=%lld live_exec=%lld async=%lld "
                   "callbacks=%lld create=%lld destroy=%lld live_sessions=%lld loadres=%lld "
                   "unloadres=%lld cancels=%lld cancelled=%lld\n%n",
                   &init, &fini, &exec, &execfree, &live_exec, &async, &callbacks, &create,
                   &destroy, &live_sessions, &loadres, &unloadres, &cancels, &cancelled, &end);
    REQUIRE(n == 14 && line[end] == '\0', "bad counters line: %s", line);
    CHECK(init == 1 && fini == 1, "init=%lld fini=%lld", init, fini);
    CHECK(exec == g_execs && execfree == 5, "exec=%lld execfree=%lld", exec, execfree);
    CHECK(live_exec == 0, "live_exec=%lld", live_exec);
    CHECK(async == 7, "async=%lld", async);
    CHECK(callbacks == wait_results(0), "callbacks=%lld, received %d", callbacks, wait_results(0));
    CHECK(create == 5 && destroy == create && live_sessions == 0, "create=%lld destroy=%lld live=%lld",
          create, destroy, live_sessions);
    CHECK(loadres == 1 && unloadres == 1, "loadres=%lld unloadres=%lld", loadres, unloadres);
    CHECK(cancels == 5 && cancelled == 4, "cancels=%lld cancelled=%lld", cancels, cancelled);
}

int main(int argc, char** argv)
{
    REQUIRE(argc == 2, "usage: test_echo libecho.so");
    void* lib = open_lib(argv[1]);
    LOAD(lib, E.init, "wrapperInit");
    LOAD(lib, E.fini, "wrapperFini");
    LOAD(lib, E.error, "wrapperError");
    LOAD(lib, E.version, "wrapperVersion");
    LOAD(lib, E.set_ctrl, "wrapperSetCtrl");
    LOAD(lib, E.exec, "wrapperExec");
    LOAD(lib, E.exec_free, "wrapperExecFree");
    LOAD(lib, E.exec_async, "wrapperExecAsync");
    LOAD(lib, E.create, "wrapperCreate");
    LOAD(lib, E.write, "wrapperWrite");
    LOAD(lib, E.read, "wrapperRead");
    LOAD(lib, E.destroy, "wrapperDestroy");
    LOAD(lib, E.debug_info, "wrapperDebugInfo");
    LOAD(lib, E.load_res, "wrapperLoadRes");
    LOAD(lib, E.unload_res, "wrapperUnloadRes");
    LOAD(lib, E.cancel, "wrapperCancel");

    char dir[] = "/tmp/echo_test_XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL, "mkdtemp failed");
    char counters[64];
    snprintf(counters, sizeof counters, "%s/counters", dir);
    struct ParamList cn[3];
    REQUIRE(E.init(make_params(cn, (const char*[]){"counters_file", counters, "model", "m1", "push", "true"}, 3)) == 0,
            "wrapperInit failed");
    memset(cn, 0, sizeof cn); /* config is the loader's: the engine must have copied it */
    CHECK(strcmp(E.version(), "echo/1.0.0") == 0, "version: %s", E.version());
    CHECK(E.set_ctrl(CTMeterCustom, (void*)on_meter) == 0 && E.set_ctrl(CTTraceLog, (void*)on_trace) == 0,
          "setCtrl failed");

    test_exec(counters);
    test_async();
    test_sync_session();
    test_async_session();
    test_resources();
    test_cancel();
    test_fini();
    check_counters(counters);

    unlink(counters);
    rmdir(dir);
    return test_exit("test_echo");
}
