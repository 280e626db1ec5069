/*
 * libfaulty: a test engine that fails the way real engines do, on request.
 * Modes: once-sync (Exec/ExecFree), once-async (ExecAsync) and sessions
 * (Create/Write/Read/Destroy, polled or pushed through the callback).
 *
 * Request params:
 *   fault=NAME  what goes wrong (default: nothing; output "result" = "ok"):
 *     crash          SIGSEGV in the call
 *     abort          abort() in the call
 *     hang           never return (sleeps until wrapperFini; wrapperCancel does not stop it)
 *     slow           sleep `ms` first, then succeed; wrapperCancel of the request's (or
 *                    session's) usrTag cuts the sleep short: error 5006, no output
 *     error          return `code` (default 5001); wrapperError names it
 *     empty          succeed with no output (NULL list)
 *     null_handle    wrapperCreate returns NULL with *errNum 0
 *     bad_status     an output node with status 7 (not a DataStatus)
 *     late_callback  async: the callback comes after `ms`
 *     never_callback async: no callback at all
 *     unhealthy      succeed, and wrapperHealth reports the engine unhealthy from now on
 *     healthy        succeed, and wrapperHealth reports it healthy again
 *   ms=N, code=N  arguments of the faults above.
 * Sessions take `fault` at create (null_handle, error) and apply the others at
 * every write (bad_status: at read / in the pushed result).
 *
 * Config `push` = true: sessions deliver through the callback of wrapperCreate;
 * otherwise they are read (the loader always hands one over).
 * Config `counters_file` = PATH: every call is counted in that file (one line
 * of key=value pairs, like libecho), so tests can prove that the loader freed,
 * destroyed and finished what it had to, and in which order.
 */
#define _POSIX_C_SOURCE 200809L
#include "wrapper.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { ERR_ARG = 5002, ERR_NOMEM = 5003, ERR_HANDLE = 5004, ERR_THREAD = 5005,
       ERR_CANCELLED = 5006,
       DEFAULT_CODE = 5001, BAD_STATUS = 7 };

enum fault { F_NONE, F_CRASH, F_ABORT, F_HANG, F_SLOW, F_ERROR, F_EMPTY, F_NULL_HANDLE,
             F_BAD_STATUS, F_LATE_CALLBACK, F_NEVER_CALLBACK, F_UNHEALTHY, F_HEALTHY };
static const char* const FAULTS[] = {"", "crash", "abort", "hang", "slow", "error", "empty",
                                     "null_handle", "bad_status", "late_callback",
                                     "never_callback", "unhealthy", "healthy"};
/* Set by fault=unhealthy, cleared by fault=healthy; read by wrapperHealth on its own thread. */
static int g_unhealthy;
#define UNHEALTHY_REASON "faulty: simulated device error (fault=unhealthy)"

struct options {
    enum fault fault;
    int ms, code;
};

/* ---- counters ---- */
enum { C_INIT, C_FINI, C_EXEC, C_EXECFREE, C_LIVE_EXEC, C_ASYNC, C_CALLBACKS, C_CREATE,
       C_DESTROY, C_HUNG, C_FINI_LIVE, C_CANCELS, C_CANCELLED, C_COUNT };
static const char* const NAMES[] = {"init", "fini", "exec", "execfree", "live_exec", "async",
                                    "callbacks", "create", "destroy", "hung",
                                    "fini_saw_live_sessions", "cancels", "cancelled"};
static pthread_mutex_t g_count_mu = PTHREAD_MUTEX_INITIALIZER;
static long long g_count[C_COUNT];
static char g_path[1024]; /* "" = no counters file */

static void count(int counter, int delta)
{
    pthread_mutex_lock(&g_count_mu);
    g_count[counter] += delta;
    if (g_path[0]) {
        char tmp[sizeof g_path + 4];
        snprintf(tmp, sizeof tmp, "%s.tmp", g_path);
        FILE* f = fopen(tmp, "w");
        if (f) {
            for (int i = 0; i < C_COUNT; i++)
                fprintf(f, "%s=%lld ", NAMES[i], g_count[i]);
            fprintf(f, "live_sessions=%lld\n", g_count[C_CREATE] - g_count[C_DESTROY]);
            if (fclose(f) == 0)
                rename(tmp, g_path);
        }
    }
    pthread_mutex_unlock(&g_count_mu);
}

/* ---- life cycle: wrapperFini stops sleeps and hangs, and waits for workers ---- */
static pthread_mutex_t g_life_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_life_cv = PTHREAD_COND_INITIALIZER;
static int g_stopping, g_pending;

/* Sleeps ms (forever when ms < 0) unless wrapperFini runs; returns 1 if it did. */
static int sleep_ms(int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ns = until.tv_nsec + (long long)(ms < 0 ? 0 : ms % 1000) * 1000000LL;
    until.tv_sec += (ms < 0 ? 0 : ms / 1000) + ns / 1000000000LL;
    until.tv_nsec = ns % 1000000000LL;
    pthread_mutex_lock(&g_life_mu);
    while (ms != 0 && !g_stopping) {
        int rc = ms < 0 ? pthread_cond_wait(&g_life_cv, &g_life_mu)
                        : pthread_cond_timedwait(&g_life_cv, &g_life_mu, &until);
        if (rc == ETIMEDOUT)
            break;
    }
    int stopping = g_stopping;
    pthread_mutex_unlock(&g_life_mu);
    return stopping;
}

/* ---- wrapperCancel: the last tags cancelled (copies), under g_life_mu ---- */
#define CANCEL_RING 64
#define TAG_MAX 128
static char g_cancelled[CANCEL_RING][TAG_MAX];
static unsigned g_cancel_next;

static int cancelled_locked(const char* tag)
{
    for (int i = 0; i < CANCEL_RING; i++)
        if (g_cancelled[i][0] && strncmp(g_cancelled[i], tag, TAG_MAX) == 0)
            return 1;
    return 0;
}

/* sleep_ms for the request or session `tag`: 2 as soon as wrapperCancel(tag) comes
 * (counted in "cancelled"), 1 if wrapperFini runs, 0 when the time is up. */
static int sleep_tag_ms(const char* tag, int ms)
{
    if (!tag || !tag[0] || ms <= 0)
        return sleep_ms(ms);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ns = until.tv_nsec + (long long)(ms % 1000) * 1000000LL;
    until.tv_sec += ms / 1000 + ns / 1000000000LL;
    until.tv_nsec = ns % 1000000000LL;
    pthread_mutex_lock(&g_life_mu);
    int cancelled = cancelled_locked(tag);
    while (!g_stopping && !cancelled) {
        if (pthread_cond_timedwait(&g_life_cv, &g_life_mu, &until) == ETIMEDOUT)
            break;
        cancelled = cancelled_locked(tag);
    }
    int stopping = g_stopping;
    pthread_mutex_unlock(&g_life_mu);
    if (cancelled) {
        count(C_CANCELLED, 1);
        return 2;
    }
    return stopping;
}

static void pending(int delta)
{
    pthread_mutex_lock(&g_life_mu);
    g_pending += delta;
    pthread_cond_broadcast(&g_life_cv);
    pthread_mutex_unlock(&g_life_mu);
}

static void hang(void)
{
    count(C_HUNG, 1);
    sleep_ms(-1);
    count(C_HUNG, -1);
}

/* ---- params ---- */
static const char* param(pParamList p, const char* key)
{
    for (; p; p = p->next)
        if (p->key && strcmp(p->key, key) == 0)
            return p->value ? p->value : "";
    return NULL;
}

static int param_int(pParamList p, const char* key, int fallback, int* out)
{
    const char* v = param(p, key);
    *out = fallback;
    if (!v)
        return 0;
    char* end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (end == v || *end || errno || n < INT_MIN || n > INT_MAX)
        return ERR_ARG;
    *out = (int)n;
    return 0;
}

static int parse(pParamList params, struct options* o)
{
    *o = (struct options){F_NONE, 0, DEFAULT_CODE};
    const char* name = param(params, "fault");
    if (name) {
        size_t i = 0, n = sizeof FAULTS / sizeof FAULTS[0];
        while (i < n && strcmp(FAULTS[i], name) != 0)
            i++;
        if (i == n)
            return ERR_ARG;
        o->fault = (enum fault)i;
    }
    int rc = param_int(params, "ms", 0, &o->ms);
    if (!rc)
        rc = param_int(params, "code", DEFAULT_CODE, &o->code);
    return rc || o->ms < 0 ? ERR_ARG : 0;
}

/* The faults that act inside the call itself, for the request or session `tag`;
 * returns a code, or 0 to go on. */
static int act(const struct options* o, const char* tag)
{
    switch (o->fault) {
    case F_CRASH: raise(SIGSEGV); break;
    case F_ABORT: abort();
    case F_HANG: hang(); break;
    case F_SLOW:
        if (sleep_tag_ms(tag, o->ms) == 2)
            return ERR_CANCELLED;
        break;
    case F_ERROR: return o->code;
    case F_UNHEALTHY: __atomic_store_n(&g_unhealthy, 1, __ATOMIC_SEQ_CST); break;
    case F_HEALTHY: __atomic_store_n(&g_unhealthy, 0, __ATOMIC_SEQ_CST); break;
    default: break;
    }
    return 0;
}

/* One output node "result" = "ok" (malloc'ed, freed by free_list). */
static pDataList result(DataStatus status, int bad)
{
    pDataList d = calloc(1, sizeof *d);
    char* key = malloc(sizeof "result");
    char* data = malloc(2);
    if (!d || !key || !data) {
        free(d);
        free(key);
        free(data);
        return NULL;
    }
    memcpy(key, "result", sizeof "result");
    memcpy(data, "ok", 2);
    d->key = key;
    d->data = data;
    d->len = 2;
    d->type = DataText;
    d->status = bad ? (DataStatus)BAD_STATUS : status;
    return d;
}

static void free_list(pDataList d)
{
    while (d) {
        pDataList next = d->next;
        free(d->key);
        free(d->data);
        free(d);
        d = next;
    }
}

/* ---- life cycle ---- */
/* Config push=true: sessions deliver through the callback of wrapperCreate;
 * otherwise they are read (the loader hands every session one). */
static int g_push;

int WrapperAPI wrapperInit(pConfig cfg)
{
    const char* push = param(cfg, "push");
    __atomic_store_n(&g_push, push && strcmp(push, "true") == 0, __ATOMIC_RELAXED);
    const char* path = param(cfg, "counters_file");
    pthread_mutex_lock(&g_life_mu);
    g_stopping = 0;
    pthread_mutex_unlock(&g_life_mu);
    pthread_mutex_lock(&g_count_mu);
    memset(g_count, 0, sizeof g_count);
    snprintf(g_path, sizeof g_path, "%s", path ? path : "");
    pthread_mutex_unlock(&g_count_mu);
    count(C_INIT, 1);
    return 0;
}

int WrapperAPI wrapperFini(void)
{
    pthread_mutex_lock(&g_count_mu);
    int live = g_count[C_CREATE] != g_count[C_DESTROY];
    pthread_mutex_unlock(&g_count_mu);
    if (live)
        count(C_FINI_LIVE, 1);
    pthread_mutex_lock(&g_life_mu);
    g_stopping = 1;
    pthread_cond_broadcast(&g_life_cv);
    while (g_pending > 0)
        pthread_cond_wait(&g_life_cv, &g_life_mu);
    pthread_mutex_unlock(&g_life_mu);
    count(C_FINI, 1);
    return 0;
}

WrapperAPI const char* wrapperVersion(void)
{
    return "faulty/1.0.0";
}

WrapperAPI const char* wrapperError(int errNum)
{
    switch (errNum) {
    case ERR_ARG: return "faulty: invalid fault, ms or code";
    case ERR_NOMEM: return "faulty: out of memory";
    case ERR_HANDLE: return "faulty: unknown handle";
    case ERR_THREAD: return "faulty: cannot start thread";
    case ERR_CANCELLED: return "faulty: cancelled (wrapperCancel)";
    }
    return "faulty: requested error";
}

/* aiges extension: unhealthy after fault=unhealthy, until fault=healthy. */
int WrapperAPI wrapperHealth(char* detail, unsigned int detailLen)
{
    if (!__atomic_load_n(&g_unhealthy, __ATOMIC_SEQ_CST))
        return 0;
    if (detail && detailLen)
        snprintf(detail, detailLen, "%s", UNHEALTHY_REASON);
    return 1;
}

/* aiges extension: the request or session `usrTag` is no longer wanted: a slow fault
 * sleeping for it returns early (a hang does not). Quick, any thread. */
int WrapperAPI wrapperCancel(const char* usrTag)
{
    if (!usrTag)
        return ERR_ARG;
    pthread_mutex_lock(&g_life_mu);
    snprintf(g_cancelled[g_cancel_next++ % CANCEL_RING], TAG_MAX, "%s", usrTag);
    pthread_cond_broadcast(&g_life_cv);
    pthread_mutex_unlock(&g_life_mu);
    count(C_CANCELS, 1);
    return 0;
}

/* ---- once, sync ---- */
int WrapperAPI wrapperExec(const char* usrTag, pParamList params, pDataList reqData,
                           pDataList* respData, unsigned int psrIds[], int psrCnt)
{
    (void)reqData, (void)psrIds, (void)psrCnt;
    count(C_EXEC, 1);
    if (!respData)
        return ERR_ARG;
    *respData = NULL;
    struct options o;
    int rc = parse(params, &o);
    if (!rc)
        rc = act(&o, usrTag);
    if (rc || o.fault == F_EMPTY)
        return rc;
    *respData = result(DataOnce, o.fault == F_BAD_STATUS);
    if (!*respData)
        return ERR_NOMEM;
    count(C_LIVE_EXEC, 1);
    return 0;
}

int WrapperAPI wrapperExecFree(const char* usrTag, pDataList* respData)
{
    (void)usrTag;
    count(C_EXECFREE, 1);
    if (respData && *respData) {
        free_list(*respData);
        *respData = NULL;
        count(C_LIVE_EXEC, -1);
    }
    return 0;
}

/* ---- once, async ---- */
struct job {
    const char* usrTag; /* passed back, never read */
    wrapperCallback cb;
    struct options o;
    char tag[TAG_MAX]; /* its text, copied during the call: for wrapperCancel */
};

static void* job_main(void* arg)
{
    struct job* j = arg;
    int wait = j->o.fault == F_LATE_CALLBACK || j->o.fault == F_SLOW ? j->o.ms : 0;
    /* slow stops when cancelled (no callback); late_callback ignores it: it calls back late */
    int stopped = j->o.fault == F_SLOW ? sleep_tag_ms(j->tag, wait) : sleep_ms(wait);
    if (!stopped && j->o.fault != F_NEVER_CALLBACK) {
        int ret = j->o.fault == F_ERROR ? j->o.code : 0;
        pDataList data = ret || j->o.fault == F_EMPTY
                             ? NULL
                             : result(DataOnce, j->o.fault == F_BAD_STATUS);
        j->cb(j->usrTag, data, ret);
        free_list(data); /* the loader copied it inside the callback */
        count(C_CALLBACKS, 1);
    }
    free(j);
    pending(-1); /* last: wrapperFini may return right after this */
    return NULL;
}

int WrapperAPI wrapperExecAsync(const char* usrTag, pParamList params, pDataList reqData,
                                wrapperCallback cb, int timeout, unsigned int psrIds[],
                                int psrCnt)
{
    (void)reqData, (void)timeout, (void)psrIds, (void)psrCnt;
    count(C_ASYNC, 1);
    struct options o;
    int rc = parse(params, &o);
    if (rc || !cb)
        return ERR_ARG;
    if (o.fault == F_CRASH || o.fault == F_ABORT || o.fault == F_HANG)
        return act(&o, usrTag); /* in ExecAsync itself, on the loader's thread */
    struct job* j = malloc(sizeof *j);
    if (!j)
        return ERR_NOMEM;
    *j = (struct job){usrTag, cb, o, ""};
    snprintf(j->tag, sizeof j->tag, "%s", usrTag ? usrTag : "");
    pending(1);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &attr, job_main, j);
    pthread_attr_destroy(&attr);
    if (rc) {
        free(j);
        pending(-1);
        return ERR_THREAD;
    }
    return 0;
}

/* ---- sessions ---- */
struct session {
    struct options o;
    const void* usrTag;
    char tag[TAG_MAX];  /* usrTag's text, copied at create: for wrapperCancel */
    wrapperCallback cb; /* NULL: results are read */
    pDataList ready;    /* one result waiting for wrapperRead */
    pDataList given;    /* the last one read, freed at the next read or destroy */
};

WrapperAPI const void* wrapperCreate(const char* usrTag, pParamList params, wrapperCallback cb,
                                     unsigned int psrIds[], int psrCnt, int* errNum)
{
    (void)psrIds, (void)psrCnt;
    struct options o;
    int rc = parse(params, &o);
    if (!rc && o.fault == F_ERROR)
        rc = o.code;
    if (errNum)
        *errNum = rc;
    if (rc || o.fault == F_NULL_HANDLE)
        return NULL; /* null_handle: no handle and no error code */
    struct session* s = calloc(1, sizeof *s);
    if (!s) {
        if (errNum)
            *errNum = ERR_NOMEM;
        return NULL;
    }
    s->o = o;
    s->usrTag = usrTag;
    snprintf(s->tag, sizeof s->tag, "%s", usrTag ? usrTag : "");
    s->cb = __atomic_load_n(&g_push, __ATOMIC_RELAXED) ? cb : NULL;
    count(C_CREATE, 1);
    return s;
}

int WrapperAPI wrapperWrite(const void* handle, pDataList reqData)
{
    struct session* s = (struct session*)handle;
    if (!s)
        return ERR_HANDLE;
    int rc = act(&s->o, s->tag);
    if (rc)
        return rc;
    DataStatus last = DataContinue;
    for (pDataList d = reqData; d; d = d->next)
        last = d->status == DataEnd || d->status == DataOnce ? DataEnd : DataContinue;
    pDataList out = result(last, s->o.fault == F_BAD_STATUS);
    if (!out)
        return ERR_NOMEM;
    if (s->cb) {
        s->cb(s->usrTag, out, 0); /* re-entrant, from inside Write */
        free_list(out);
        count(C_CALLBACKS, 1);
        return 0;
    }
    free_list(s->ready);
    s->ready = out;
    return 0;
}

int WrapperAPI wrapperRead(const void* handle, pDataList* respData)
{
    struct session* s = (struct session*)handle;
    if (!s || !respData)
        return ERR_HANDLE;
    /* Engine-owned until the next read or destroy: kept in the handle. */
    free_list(s->given);
    s->given = s->ready;
    s->ready = NULL;
    *respData = s->given;
    return 0;
}

int WrapperAPI wrapperDestroy(const void* handle)
{
    struct session* s = (struct session*)handle;
    if (!s)
        return ERR_HANDLE;
    free_list(s->ready);
    free_list(s->given);
    free(s);
    count(C_DESTROY, 1);
    return 0;
}
