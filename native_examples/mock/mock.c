/*
 * libmock: an engine written the way upstream AIGES's own test engine is
 * (iflytek/aiges test/wrapper/wrapper.cpp): wrapperRead returns a result on
 * EVERY call, whose status is the status of the last input written. A loader
 * that reads "until nothing is left" never stops on it; upstream's read policy
 * (one read per intermediate write, read until End after the last input) does.
 *
 * Once: wrapperExec answers "result" (status Once) with the input's length.
 * Sessions: every write remembers its last status and the bytes so far; every
 * read answers "result" = "mock result after N bytes" with that status.
 * Create params (request parameters) switch on the misbehaviour tests need:
 *   never_end=1    the status End is answered as Continue: no End, ever
 *   empty_reads=N  after the last input, the first N reads return no data
 *   hang=OP        OP = read, write or exec never returns (deadlocked for good:
 *                  nothing, wrapperFini included, lets it go)
 *   push=1         results go through the wrapperCreate callback (from the
 *                  write's own thread) instead of reads, when a callback is given
 * Config `counters_file` = PATH: the call counts, one line of key=value pairs
 * (the same line as libecho's), so tests can check create == destroy.
 */
#define _POSIX_C_SOURCE 200809L
#include "wrapper.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ERR_HANDLE = 6001, ERR_ARG = 6002, ERR_NOMEM = 6003 };

/* ---- counters ---- */
enum { C_INIT, C_FINI, C_EXEC, C_EXECFREE, C_LIVE_EXEC, C_CREATE, C_DESTROY, C_COUNT };
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static long long g_count[C_COUNT];
static char g_path[1024]; /* "" = no counters file */

static void count(int counter, int delta)
{
    pthread_mutex_lock(&g_mu);
    g_count[counter] += delta;
    if (counter == C_EXEC)
        g_count[C_LIVE_EXEC] += delta;
    if (counter == C_EXECFREE)
        g_count[C_LIVE_EXEC] -= delta;
    if (g_path[0]) {
        char tmp[1100];
        snprintf(tmp, sizeof tmp, "%s.tmp", g_path);
        FILE* f = fopen(tmp, "w");
        if (f) {
            const long long* c = g_count;
            fprintf(f,
                    "init=%lld fini=%lld exec=%lld execfree=%lld live_exec=%lld async=0 "
                    "callbacks=0 create=%lld destroy=%lld live_sessions=%lld loadres=0 "
                    "unloadres=0\n",
                    c[C_INIT], c[C_FINI], c[C_EXEC], c[C_EXECFREE], c[C_LIVE_EXEC],
                    c[C_CREATE], c[C_DESTROY], c[C_CREATE] - c[C_DESTROY]);
            if (fclose(f) == 0)
                rename(tmp, g_path);
        }
    }
    pthread_mutex_unlock(&g_mu);
}

/* A deadlock: waits on a condition nobody signals. */
static void hang_forever(void)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
    pthread_mutex_lock(&mu);
    for (;;)
        pthread_cond_wait(&never, &mu);
}

static const char* param(pParamList p, const char* key)
{
    for (; p; p = p->next)
        if (p->key && strcmp(p->key, key) == 0)
            return p->value ? p->value : "";
    return NULL;
}

static int param_is(pParamList p, const char* key, const char* value)
{
    const char* v = param(p, key);
    return v && strcmp(v, value) == 0;
}

/* One "result" node of text, status given; NULL when out of memory. */
static pDataList result_node(const char* text, DataStatus status)
{
    pDataList n = calloc(1, sizeof *n);
    char* copy = strdup(text);
    char* key = strdup("result");
    if (!n || !copy || !key) {
        free(n);
        free(copy);
        free(key);
        return NULL;
    }
    n->key = key;
    n->data = copy;
    n->len = (unsigned int)strlen(copy);
    n->type = DataText;
    n->status = status;
    return n;
}

static void node_free(pDataList n)
{
    while (n) {
        pDataList next = n->next;
        free(n->key);
        free(n->data);
        free(n);
        n = next;
    }
}

int WrapperAPI wrapperSetCtrl(CtrlType type, void* func)
{
    (void)type;
    (void)func;
    return 0;
}

int WrapperAPI wrapperInit(pConfig cfg)
{
    const char* path = param(cfg, "counters_file");
    pthread_mutex_lock(&g_mu);
    snprintf(g_path, sizeof g_path, "%s", path ? path : "");
    pthread_mutex_unlock(&g_mu);
    count(C_INIT, 1);
    return 0;
}

int WrapperAPI wrapperFini(void)
{
    count(C_FINI, 1);
    return 0;
}

WrapperAPI const char* wrapperError(int errNum)
{
    switch (errNum) {
    case ERR_HANDLE: return "unknown session handle";
    case ERR_ARG: return "bad argument";
    case ERR_NOMEM: return "out of memory";
    default: return "mock engine error";
    }
}

WrapperAPI const char* wrapperVersion(void)
{
    return "mock/1.0.0";
}

/* ---- once ---- */
int WrapperAPI wrapperExec(const char* usrTag, pParamList params, pDataList reqData,
                           pDataList* respData, unsigned int psrIds[], int psrCnt)
{
    (void)usrTag;
    (void)psrIds;
    (void)psrCnt;
    if (!respData)
        return ERR_ARG;
    if (param_is(params, "hang", "exec"))
        hang_forever();
    unsigned long long bytes = 0;
    for (pDataList d = reqData; d; d = d->next)
        bytes += d->len;
    char text[64];
    snprintf(text, sizeof text, "mock result after %llu bytes", bytes);
    *respData = result_node(text, DataOnce);
    if (!*respData)
        return ERR_NOMEM;
    count(C_EXEC, 1);
    return 0;
}

int WrapperAPI wrapperExecFree(const char* usrTag, pDataList* respData)
{
    (void)usrTag;
    if (respData && *respData) {
        node_free(*respData);
        *respData = NULL;
        count(C_EXECFREE, 1);
    }
    return 0;
}

/* ---- sessions ---- */
struct session {
    struct session* next_live;
    const void* usrTag;
    wrapperCallback cb; /* non-NULL only with push=1 */
    int never_end, empty_reads;
    int hang_read, hang_write;
    DataStatus last; /* status of the last input written */
    int last_input;  /* an End/Once input was written */
    unsigned long long bytes;
    pDataList last_read; /* handed out by the last read */
};

static struct session* g_live;

static struct session* find(const void* handle, int unlink)
{
    struct session* found = NULL;
    pthread_mutex_lock(&g_mu);
    for (struct session** p = &g_live; *p; p = &(*p)->next_live)
        if (*p == handle) {
            found = *p;
            if (unlink)
                *p = found->next_live;
            break;
        }
    pthread_mutex_unlock(&g_mu);
    return found;
}

WrapperAPI const void* wrapperCreate(const char* usrTag, pParamList params, wrapperCallback cb,
                                     unsigned int psrIds[], int psrCnt, int* errNum)
{
    (void)psrIds;
    (void)psrCnt;
    struct session* s = calloc(1, sizeof *s);
    if (!s) {
        if (errNum)
            *errNum = ERR_NOMEM;
        return NULL;
    }
    const char* empty = param(params, "empty_reads");
    s->usrTag = usrTag;
    s->cb = param_is(params, "push", "1") ? cb : NULL;
    s->never_end = param_is(params, "never_end", "1");
    s->empty_reads = empty ? atoi(empty) : 0;
    s->hang_read = param_is(params, "hang", "read");
    s->hang_write = param_is(params, "hang", "write");
    pthread_mutex_lock(&g_mu);
    s->next_live = g_live;
    g_live = s;
    pthread_mutex_unlock(&g_mu);
    count(C_CREATE, 1);
    if (errNum)
        *errNum = 0;
    return s;
}

/* The result a read answers now: status of the last write (End -> Continue with
 * never_end). */
static pDataList current_result(const struct session* s)
{
    char text[64];
    snprintf(text, sizeof text, "mock result after %llu bytes", s->bytes);
    DataStatus status = s->last;
    if (s->never_end && (status == DataEnd || status == DataOnce))
        status = DataContinue;
    return result_node(text, status);
}

int WrapperAPI wrapperWrite(const void* handle, pDataList reqData)
{
    struct session* s = find(handle, 0);
    if (!s)
        return ERR_HANDLE;
    if (s->hang_write)
        hang_forever();
    for (pDataList d = reqData; d; d = d->next) {
        s->bytes += d->len;
        s->last = d->status;
        if (d->status == DataEnd || d->status == DataOnce)
            s->last_input = 1;
    }
    if (s->cb) {
        pDataList out = current_result(s);
        if (!out)
            return ERR_NOMEM;
        s->cb(s->usrTag, out, 0); /* the loader copies it in the callback */
        node_free(out);
    }
    return 0;
}

int WrapperAPI wrapperRead(const void* handle, pDataList* respData)
{
    struct session* s = find(handle, 0);
    if (!s)
        return ERR_HANDLE;
    if (!respData)
        return ERR_ARG;
    if (s->hang_read)
        hang_forever();
    node_free(s->last_read);
    s->last_read = NULL;
    *respData = NULL;
    if (s->cb)
        return 0; /* pushed: nothing to read */
    if (s->last_input && s->empty_reads > 0) {
        s->empty_reads--;
        return 0;
    }
    s->last_read = current_result(s);
    if (!s->last_read)
        return ERR_NOMEM;
    *respData = s->last_read;
    return 0;
}

int WrapperAPI wrapperDestroy(const void* handle)
{
    struct session* s = find(handle, 1);
    if (!s)
        return ERR_HANDLE;
    node_free(s->last_read);
    free(s);
    count(C_DESTROY, 1);
    return 0;
}
