/* libstream through the loader's session sequences (SPEC section 2): sync
 * sessions read after every write, async ones through the callback, a
 * summary held back by final_delay_ms, requested and input errors, several
 * input keys, exec/execFree, destroy racing a delayed summary, and sessions
 * on many threads at once; at the end its counters_file must show nothing
 * leaked. */
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
    wrapperExecPtr exec;
    wrapperExecFreePtr exec_free;
    wrapperCreatePtr create;
    wrapperWritePtr write;
    wrapperReadPtr read;
    wrapperDestroyPtr destroy;
    wrapperDebugInfoPtr debug_info;
    wrapperCancelPtr cancel;
} E;

/* "key(input)=data/status;" per node, "(input)" only with that desc pair. */
static void summarize(const struct DataList* d, char* out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (; d && used < size; d = d->next) {
        const char* input = d->desc && strcmp(d->desc->key, "input") == 0 ? d->desc->value : NULL;
        used += (size_t)snprintf(out + used, size - used, "%s%s%s%s=%.*s/%d;", d->key,
                                 input ? "(" : "", input ? input : "", input ? ")" : "",
                                 (int)d->len, (const char*)d->data, (int)d->status);
    }
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* ---- what the callbacks received (summaries: the data dies on return) ---- */
struct result {
    const void* tag;
    int ret;
    double at_ms;
    char summary[1024];
};
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static struct result g_results[64];
static int g_nresults, g_callbacks; /* g_callbacks also counts the threads' ones */

static int on_result(const void* tag, pDataList resp, int ret)
{
    pthread_mutex_lock(&g_mu);
    if (g_nresults < 64) {
        struct result* r = &g_results[g_nresults];
        r->tag = tag;
        r->ret = ret;
        r->at_ms = now_ms();
        summarize(resp, r->summary, sizeof r->summary);
    }
    g_nresults++;
    g_callbacks++;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    return 0;
}

/* Waits up to 10 s for n results in total; returns how many there are. */
static int wait_results(int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&g_mu);
    while (g_nresults < n && pthread_cond_timedwait(&g_cv, &g_mu, &until) == 0) {
    }
    int got = g_nresults;
    pthread_mutex_unlock(&g_mu);
    return got;
}

static const char tag_sync[] = "sync", tag_async[] = "async";
static int g_sessions, g_execs, g_execfrees; /* made here, for the counters check */

static const void* create(const char* tag, pParamList params, wrapperCallback cb)
{
    int err = -1;
    const void* h = E.create(tag, params, cb, NULL, 0, &err);
    REQUIRE(h != NULL && err == 0, "create failed: %d", err);
    __atomic_add_fetch(&g_sessions, 1, __ATOMIC_SEQ_CST);
    return h;
}

/* Writes one text node from a scratch copy that is clobbered afterwards:
 * inputs die with the call, the engine must have copied what it keeps. */
static int write_text(const void* h, const char* key, const char* text, DataStatus status)
{
    char buf[256];
    struct DataList in;
    snprintf(buf, sizeof buf, "%s", text);
    set_data(&in, key, buf, status, NULL);
    int rc = E.write(h, &in);
    memset(buf, '#', sizeof buf);
    return rc;
}

/* Reads once and checks the summary of what came back ("" = nothing). */
static void read_is(const void* h, const char* want, const char* what)
{
    pDataList out = (pDataList)1;
    char got[1024];
    int rc = E.read(h, &out);
    summarize(out, got, sizeof got);
    CHECK(rc == 0 && strcmp(got, want) == 0, "%s: read rc %d\n got: %s\nwant: %s", what, rc, got,
          want);
}

/* The running example: "world" is cut by a chunk boundary, "Baz" lowercased,
 * six distinct words with ties, of which the top five are kept. */
static const char* const frames[] = {"Hello wor", "ld foo\nbar", " baz Baz zed"};
static const DataStatus statuses[] = {DataBegin, DataContinue, DataEnd};
static const char* const want_frames[] = {
    "stats(text)={\"chunk\":1,\"bytes\":9,\"words\":2,\"lines\":0}/0;",
    "stats(text)={\"chunk\":2,\"bytes\":19,\"words\":4,\"lines\":1}/1;",
    "stats(text)={\"chunk\":3,\"bytes\":31,\"words\":7,\"lines\":1}/1;"
    "summary={\"chunks\":3,\"bytes\":31,\"words\":7,\"lines\":1,"
    "\"top\":[[\"baz\",2],[\"bar\",1],[\"foo\",1],[\"hello\",1],[\"world\",1]]}/2;",
};

static void test_sync_session(void)
{
    struct ParamList pn[1];
    const void* h = create(tag_sync, make_params(pn, (const char*[]){"sid", "s1"}, 1), NULL);
    for (int i = 0; i < 3; i++) {
        CHECK(write_text(h, "text", frames[i], statuses[i]) == 0, "write %d failed", i);
        read_is(h, want_frames[i], "sync session");
        read_is(h, "", "second read");
    }
    const char* info = E.debug_info(h);
    CHECK(info && strcmp(info, "stream session: chunks=3 bytes=31 words=7") == 0, "debug info: %s",
          info);
    int rc = write_text(h, "text", "more", DataContinue);
    CHECK(rc == 40006 && strcmp(E.error(rc), "stream: input already ended") == 0,
          "write after the end: %d", rc);
    CHECK(E.write(h, NULL) == 0, "an empty write failed");
    CHECK(E.destroy(h) == 0, "destroy failed");

    pDataList out;
    CHECK(E.destroy(h) == 40001 && strcmp(E.error(40001), "stream: unknown handle") == 0,
          "second destroy");
    int local;
    CHECK(E.write(&local, NULL) == 40001 && E.read(NULL, &out) == 40001 && E.destroy(NULL) == 40001,
          "foreign/NULL handle accepted");
    CHECK(E.debug_info(NULL) != NULL && E.debug_info(h) != NULL, "debugInfo(bad handle) is NULL");
}

static void test_async_session(void)
{
    int base = wait_results(0);
    const void* h = create(tag_async, NULL, on_result);
    for (int i = 0; i < 3; i++)
        CHECK(write_text(h, "text", frames[i], statuses[i]) == 0, "async write %d failed", i);
    REQUIRE(wait_results(base + 3) == base + 3, "async session: 3 results did not arrive");
    for (int i = 0; i < 3; i++) {
        const struct result* r = &g_results[base + i];
        CHECK(r->tag == tag_async && r->ret == 0 && strcmp(r->summary, want_frames[i]) == 0,
              "async result %d (ret %d)\n got: %s\nwant: %s", i, r->ret, r->summary,
              want_frames[i]);
    }
    read_is(h, "", "read on an async session");
    CHECK(E.destroy(h) == 0, "async destroy failed");
    CHECK(wait_results(0) == base + 3, "a callback after destroy");
}

/* Words cut at every byte, and chunks made only of a word's tail: 2007
 * words over 2000+ distinct ones (the table has to grow), in 7-byte chunks. */
static char g_long_text[20000];
static const char g_long_top[] =
    "\"top\":[[\"w1000\",4],[\"w42\",3],[\"w7\",3],[\"w0\",1],[\"w1\",1]]}";

static void make_long_text(void)
{
    size_t n = 0;
    for (int i = 0; i < 2000; i++)
        n += (size_t)snprintf(g_long_text + n, sizeof g_long_text - n, "W%d%s", i,
                              i % 10 == 9 ? "\n" : " \t ");
    snprintf(g_long_text + n, sizeof g_long_text - n, "w42 w42 w1000 W1000 w1000 w7 w7");
}

/* Streams g_long_text in 7-byte chunks through a sync session; returns the
 * summary text of the last read. */
static void stream_long_text(const void* h, char* summary, size_t size)
{
    size_t len = strlen(g_long_text);
    pDataList out = NULL;
    for (size_t off = 0; off < len; off += 7) {
        struct DataList in;
        char chunk[8] = {0};
        memcpy(chunk, g_long_text + off, len - off < 7 ? len - off : 7);
        set_data(&in, "text", chunk, off == 0 ? DataBegin : off + 7 >= len ? DataEnd : DataContinue,
                 NULL);
        int rc = E.write(h, &in);
        if (!CHECK(rc == 0 && E.read(h, &out) == 0 && out, "chunk at %zu: rc %d", off, rc))
            break;
    }
    summarize(out, summary, size);
}

static void test_split_words(void)
{
    const void* h = create(tag_sync, NULL, NULL);
    static const char* const texts[] = {"ab", "cd ", "e", ""};
    static const char* const want[] = {
        "stats(t)={\"chunk\":1,\"bytes\":2,\"words\":1,\"lines\":0}/0;",
        "stats(t)={\"chunk\":2,\"bytes\":5,\"words\":1,\"lines\":0}/1;",
        "stats(t)={\"chunk\":3,\"bytes\":6,\"words\":2,\"lines\":0}/1;",
        "stats(t)={\"chunk\":4,\"bytes\":6,\"words\":2,\"lines\":0}/1;"
        "summary={\"chunks\":4,\"bytes\":6,\"words\":2,\"lines\":0,"
        "\"top\":[[\"abcd\",1],[\"e\",1]]}/2;",
    };
    for (int i = 0; i < 4; i++) {
        CHECK(write_text(h, "t", texts[i], i == 0 ? DataBegin : i == 3 ? DataEnd : DataContinue) == 0,
              "write %d failed", i);
        read_is(h, want[i], "split words");
    }
    CHECK(E.destroy(h) == 0, "destroy failed");

    h = create(tag_sync, NULL, NULL);
    char got[1024], want_end[256];
    stream_long_text(h, got, sizeof got);
    snprintf(want_end, sizeof want_end, "\"words\":2007,\"lines\":200,%s/2;", g_long_top);
    CHECK(strstr(got, want_end) != NULL, "long text in 7-byte chunks: %s", got);
    CHECK(E.destroy(h) == 0, "destroy failed");
}

static void test_delayed_summary(void)
{
    struct ParamList pn[1];
    const void* h = create(tag_sync, make_params(pn, (const char*[]){"final_delay_ms", "150"}, 1), NULL);
    double t0 = now_ms();
    CHECK(write_text(h, "text", "a b A", DataOnce) == 0, "delayed write failed");
    read_is(h, "stats(text)={\"chunk\":1,\"bytes\":5,\"words\":3,\"lines\":0}/0;", "before the summary");
    pDataList out = NULL;
    while (now_ms() - t0 < 10000 && E.read(h, &out) == 0 && !out)
        sleep_ms(5);
    double waited = now_ms() - t0;
    char got[1024];
    summarize(out, got, sizeof got);
    CHECK(strcmp(got, "summary={\"chunks\":1,\"bytes\":5,\"words\":3,\"lines\":0,"
                      "\"top\":[[\"a\",2],[\"b\",1]]}/3;") == 0,
          "delayed summary: %s", got);
    CHECK(waited >= 140, "summary came after %.0f ms, not 150", waited);
    read_is(h, "", "after the summary");
    CHECK(E.destroy(h) == 0, "destroy failed");

    /* Async: the stats now, the summary as a callback of its own later. */
    int base = wait_results(0);
    h = create(tag_async, make_params(pn, (const char*[]){"final_delay_ms", "100"}, 1), on_result);
    t0 = now_ms();
    CHECK(write_text(h, "text", "x", DataBegin) == 0 && write_text(h, "text", "y", DataEnd) == 0,
          "async delayed writes failed");
    REQUIRE(wait_results(base + 3) == base + 3, "async delayed summary did not arrive");
    CHECK(strcmp(g_results[base + 1].summary,
                 "stats(text)={\"chunk\":2,\"bytes\":2,\"words\":1,\"lines\":0}/1;") == 0,
          "async stats before the summary: %s", g_results[base + 1].summary);
    CHECK(strcmp(g_results[base + 2].summary,
                 "summary={\"chunks\":2,\"bytes\":2,\"words\":1,\"lines\":0,\"top\":[[\"xy\",1]]}/2;") == 0 &&
              g_results[base + 2].tag == tag_async,
          "async delayed summary: %s", g_results[base + 2].summary);
    CHECK(g_results[base + 2].at_ms - t0 >= 90, "async summary after %.0f ms, not 100",
          g_results[base + 2].at_ms - t0);
    CHECK(E.destroy(h) == 0, "destroy failed");
}

/* wrapperDestroy cancels a summary still being held back, sync or async. */
static void test_destroy_before_summary(void)
{
    struct ParamList pn[1];
    pParamList params = make_params(pn, (const char*[]){"final_delay_ms", "30000"}, 1);
    const void* h = create(tag_sync, params, NULL);
    CHECK(write_text(h, "text", "never summarized", DataOnce) == 0, "write failed");
    double t0 = now_ms();
    CHECK(E.destroy(h) == 0, "destroy failed");
    CHECK(now_ms() - t0 < 5000, "sync destroy waited out the delay");

    int base = wait_results(0);
    h = create(tag_async, params, on_result);
    CHECK(write_text(h, "text", "never summarized", DataOnce) == 0, "write failed");
    REQUIRE(wait_results(base + 1) == base + 1, "async stats did not arrive");
    t0 = now_ms();
    CHECK(E.destroy(h) == 0, "destroy failed");
    CHECK(now_ms() - t0 < 5000, "async destroy waited out the delay");
    sleep_ms(50);
    CHECK(wait_results(0) == base + 1, "a callback after destroy: %s", g_results[base + 1].summary);
}

struct slow_write { const void* h; int rc; };

static void* slow_write_main(void* arg)
{
    struct slow_write* w = arg;
    w->rc = write_text(w->h, "text", "a chunk", DataContinue);
    return NULL;
}

/* chunk_delay_ms: a write waits; wrapperCancel of the session's tag ends the wait within
 * 200 ms with 40007, and the session is destroyed as usual. */
static void test_cancel(void)
{
    struct ParamList pn[1];
    const void* h = create("cancel-me", make_params(pn, (const char*[]){"chunk_delay_ms", "2000"}, 1),
                           NULL);
    CHECK(E.cancel("someone-else") == 0, "cancel of an unknown tag");
    struct slow_write w = {h, -1};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, slow_write_main, &w) == 0, "thread");
    sleep_ms(100);
    double t0 = now_ms();
    CHECK(E.cancel("cancel-me") == 0, "wrapperCancel");
    pthread_join(t, NULL);
    CHECK(w.rc == 40007 && now_ms() - t0 < 200, "cancelled write: rc %d after %.0f ms", w.rc,
          now_ms() - t0);
    CHECK(strstr(E.error(40007), "cancel") != NULL, "error(40007): %s", E.error(40007));
    CHECK(E.destroy(h) == 0, "destroy after a cancelled write");
}

static void test_errors(void)
{
    struct ParamList pn[1];
    const void* h = create(tag_sync, make_params(pn, (const char*[]){"fail_at_chunk", "2"}, 1), NULL);
    CHECK(write_text(h, "text", "one", DataBegin) == 0, "write 1 failed");
    read_is(h, "stats(text)={\"chunk\":1,\"bytes\":3,\"words\":1,\"lines\":0}/0;", "before failing");
    int rc = write_text(h, "text", "two", DataContinue);
    CHECK(rc != 0 && strcmp(E.error(rc), "stream: failure requested at chunk 2") == 0,
          "fail_at_chunk=2: rc %d, %s", rc, E.error(rc));
    read_is(h, "", "after the failed write");
    CHECK(write_text(h, "text", " three", DataContinue) == 0, "write 3 failed");
    read_is(h, "stats(text)={\"chunk\":2,\"bytes\":9,\"words\":2,\"lines\":0}/1;", "failed write counted");

    struct DataList in;
    set_data(&in, "audio", "pcm", DataContinue, NULL);
    in.type = DataAudio;
    rc = E.write(h, &in);
    CHECK(rc != 0 && strcmp(E.error(rc), "stream: only text input") == 0, "audio input: rc %d", rc);
    set_data(&in, "text", "x", (DataStatus)7, NULL);
    CHECK(E.write(h, &in) == 40002, "status 7 accepted");
    read_is(h, "", "after rejected writes");
    CHECK(strcmp(E.error(12345), "stream: unknown error") == 0, "error(12345): %s", E.error(12345));
    CHECK(E.destroy(h) == 0, "destroy failed");

    static const char* const bad[] = {"fail_at_chunk", "x", "final_delay_ms", "-1",
                                      "final_delay_ms", "9999999999"};
    for (int i = 0; i < 3; i++) {
        int err = 0;
        h = E.create(tag_sync, make_params(pn, bad + 2 * i, 1), NULL, NULL, 0, &err);
        CHECK(h == NULL && err == 40002, "%s=%s: handle %p err %d", bad[2 * i], bad[2 * i + 1], h, err);
    }
}

/* Stats per key, one summary once every key has ended. */
static void test_two_keys(void)
{
    const void* h = create(tag_sync, NULL, NULL);
    struct DataList in[2];
    set_data(&in[1], "b", "Z", DataBegin, NULL);
    set_data(&in[0], "a", "x y", DataBegin, &in[1]);
    CHECK(E.write(h, in) == 0, "write 1 failed");
    read_is(h,
            "stats(a)={\"chunk\":1,\"bytes\":3,\"words\":2,\"lines\":0}/0;"
            "stats(b)={\"chunk\":1,\"bytes\":1,\"words\":1,\"lines\":0}/1;",
            "two keys, write 1");
    CHECK(write_text(h, "a", " w\n", DataEnd) == 0, "write 2 failed");
    read_is(h, "stats(a)={\"chunk\":2,\"bytes\":6,\"words\":3,\"lines\":1}/1;", "a ended, b open");
    CHECK(write_text(h, "a", "late", DataContinue) == 40006, "write to an ended key accepted");
    CHECK(write_text(h, "b", "z z", DataEnd) == 0, "write 3 failed");
    read_is(h,
            "stats(b)={\"chunk\":2,\"bytes\":4,\"words\":2,\"lines\":0}/1;"
            "summary={\"chunks\":4,\"bytes\":10,\"words\":5,\"lines\":1,"
            "\"top\":[[\"w\",1],[\"x\",1],[\"y\",1],[\"z\",1],[\"zz\",1]]}/2;",
            "both ended");
    CHECK(E.destroy(h) == 0, "destroy failed");

    /* A key ending twice within one write is refused as a whole. */
    h = create(tag_sync, NULL, NULL);
    set_data(&in[1], "a", "b", DataContinue, NULL);
    set_data(&in[0], "a", "a", DataEnd, &in[1]);
    CHECK(E.write(h, in) == 40006, "input after End in the same write accepted");
    read_is(h, "", "after a refused write");
    CHECK(E.destroy(h) == 0, "destroy failed");
}

static void test_exec(void)
{
    struct DataList in[2];
    set_data(&in[1], "b", "say \"hi\" \xff\xfe \xff\xfe caf\xc3\xa9", DataOnce, NULL);
    set_data(&in[0], "a", "The the THE cat\n", DataOnce, &in[1]);
    pDataList out = NULL;
    g_execs++;
    CHECK(E.exec("tag", NULL, in, &out, NULL, 0) == 0, "exec failed");
    char got[1024];
    summarize(out, got, sizeof got);
    const char* want = "summary={\"chunks\":2,\"bytes\":36,\"words\":9,\"lines\":1,\"top\":"
                       "[[\"the\",3],[\"\\ufffd\\ufffd\",2],[\"\\\"hi\\\"\",1],[\"caf\xc3\xa9\",1],"
                       "[\"cat\",1]]}/3;";
    CHECK(strcmp(got, want) == 0, "exec\n got: %s\nwant: %s", got, want);
    CHECK(list_len(out) == 1 && out->type == DataText, "exec output shape");
    g_execfrees++;
    CHECK(E.exec_free("tag", &out) == 0 && out == NULL, "execFree did not clear the list");

    g_execs++;
    CHECK(E.exec("tag", NULL, NULL, &out, NULL, 0) == 0, "exec(NULL) failed");
    summarize(out, got, sizeof got);
    CHECK(strcmp(got, "summary={\"chunks\":0,\"bytes\":0,\"words\":0,\"lines\":0,\"top\":[]}/3;") == 0,
          "exec(NULL): %s", got);
    g_execfrees++;
    E.exec_free("tag", &out);

    in[1].type = DataImage;
    g_execs++;
    int rc = E.exec("tag", NULL, in, &out, NULL, 0);
    CHECK(rc == 40005 && out == NULL, "exec with an image: rc %d", rc);
}

/* Sessions on 8 threads at once (sync and async); each must see only its own text. */
struct worker_tag {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int got;
    char last[1024];
};

static int on_worker_result(const void* tag, pDataList resp, int ret)
{
    struct worker_tag* w = (struct worker_tag*)tag; /* ours: the test may read its own tag */
    pthread_mutex_lock(&w->mu);
    if (ret == 0)
        summarize(resp, w->last, sizeof w->last);
    w->got++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_lock(&g_mu);
    g_callbacks++;
    pthread_mutex_unlock(&g_mu);
    return 0;
}

static void* worker_thread(void* arg)
{
    (void)arg;
    char got[1024], want_end[256];
    snprintf(want_end, sizeof want_end, "\"words\":2007,\"lines\":200,%s/2;", g_long_top);
    for (int i = 0; i < 3; i++) {
        const void* h = create(tag_sync, NULL, NULL);
        stream_long_text(h, got, sizeof got);
        CHECK(strstr(got, want_end) != NULL, "concurrent sync session: %s", got);
        CHECK(E.destroy(h) == 0, "destroy failed");
    }
    struct worker_tag w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    const void* h = create((const char*)&w, NULL, on_worker_result);
    int writes = 0;
    for (const char* p = g_long_text; *p; p += 64, writes++) {
        char chunk[65] = {0};
        memcpy(chunk, p, strnlen(p, 64));
        CHECK(write_text(h, "t", chunk, writes == 0 ? DataBegin : strlen(p) <= 64 ? DataEnd : DataContinue) == 0,
              "async write failed");
        if (strlen(p) <= 64)
            break;
    }
    /* Gives up only after 10 s without progress: slow under valgrind tools. */
    pthread_mutex_lock(&w.mu);
    for (int seen = -1; w.got < writes + 1 && w.got != seen;) {
        seen = w.got;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        while (w.got == seen && pthread_cond_timedwait(&w.cv, &w.mu, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&w.mu);
    CHECK(w.got == writes + 1 && strstr(w.last, want_end), "concurrent async session: %d of %d, %s",
          w.got, writes + 1, w.last);
    CHECK(E.destroy(h) == 0, "destroy failed");
    return NULL;
}

static void test_concurrent(void)
{
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        REQUIRE(pthread_create(&t[i], NULL, worker_thread, NULL) == 0, "pthread_create");
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
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
    CHECK(cancels == 2 && cancelled == 1, "cancels=%lld cancelled=%lld", cancels, cancelled);
    CHECK(init == 1 && fini == 1, "init=%lld fini=%lld", init, fini);
    CHECK(exec == g_execs && execfree == g_execfrees && live_exec == 0,
          "exec=%lld execfree=%lld live_exec=%lld", exec, execfree, live_exec);
    CHECK(callbacks == g_callbacks, "callbacks=%lld, received %d", callbacks, g_callbacks);
    CHECK(create == g_sessions && destroy == create && live_sessions == 0,
          "create=%lld destroy=%lld live=%lld (made %d)", create, destroy, live_sessions, g_sessions);
    CHECK(async == 0 && loadres == 0 && unloadres == 0, "async=%lld loadres=%lld unloadres=%lld",
          async, loadres, unloadres);
}

int main(int argc, char** argv)
{
    REQUIRE(argc == 2, "usage: test_stream libstream.so");
    void* lib = open_lib(argv[1]);
    LOAD(lib, E.init, "wrapperInit");
    LOAD(lib, E.fini, "wrapperFini");
    LOAD(lib, E.error, "wrapperError");
    LOAD(lib, E.version, "wrapperVersion");
    LOAD(lib, E.exec, "wrapperExec");
    LOAD(lib, E.exec_free, "wrapperExecFree");
    LOAD(lib, E.create, "wrapperCreate");
    LOAD(lib, E.write, "wrapperWrite");
    LOAD(lib, E.read, "wrapperRead");
    LOAD(lib, E.destroy, "wrapperDestroy");
    LOAD(lib, E.debug_info, "wrapperDebugInfo");
    LOAD(lib, E.cancel, "wrapperCancel");
    CHECK(dlsym(lib, "stream_count") == NULL && dlsym(lib, "text_feed") == NULL,
          "internal helpers are exported");

    char dir[] = "/tmp/stream_test_XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL, "mkdtemp failed");
    char counters[64];
    snprintf(counters, sizeof counters, "%s/counters", dir);
    struct ParamList cn[2];
    REQUIRE(E.init(make_params(cn, (const char*[]){"counters_file", counters, "push", "true"}, 2)) == 0,
            "wrapperInit failed");
    memset(cn, 0, sizeof cn); /* config is the loader's: the engine must have copied it */
    CHECK(strcmp(E.version(), "stream/1.0.0") == 0, "version: %s", E.version());
    make_long_text();

    test_sync_session();
    test_async_session();
    test_split_words();
    test_delayed_summary();
    test_destroy_before_summary();
    test_errors();
    test_cancel();
    test_two_keys();
    test_exec();
    test_concurrent();
    CHECK(E.fini() == 0, "wrapperFini failed");
    check_counters(counters);

    unlink(counters);
    rmdir(dir);
    return test_exit("test_stream");
}
