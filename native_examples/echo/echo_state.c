/*
 * libecho: engine-wide state -- config, counters (and counters_file), error
 * texts, service callbacks, resources, and the init/fini life cycle.
 * Every piece has its own mutex: calls arrive from many loader threads.
 */
#define _POSIX_C_SOURCE 200809L
#include "echo_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

/* ---- config ---- */
static pthread_mutex_t g_cfg_mu = PTHREAD_MUTEX_INITIALIZER;
static pConfig g_config;

/* ---- counters: the test oracle for the loader's call discipline ---- */
static pthread_mutex_t g_count_mu = PTHREAD_MUTEX_INITIALIZER;
static long long g_count[C_COUNT];
static char* g_counters_path; /* NULL: no counters_file */
static char* g_counters_tmp;  /* path.tmp, renamed over path: readers never see a partial line */
static int g_initialized;

/* ---- life cycle: sleeps and async workers that wrapperFini must stop ---- */
static pthread_mutex_t g_life_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_life_cv = PTHREAD_COND_INITIALIZER;
static int g_stopping;
static int g_async_pending;

/* ---- wrapperCancel: the last tags cancelled (copies), under g_life_mu. A ring is
 * enough: tags are unique sids, and a cancel matters only while its call runs. */
#define CANCEL_RING 64
#define TAG_MAX 128
static char g_cancelled[CANCEL_RING][TAG_MAX];
static unsigned g_cancel_next;

/* ---- codes asked for by requests (a small ring is plenty for tests) ---- */
static pthread_mutex_t g_fail_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_fail_codes[32];
static unsigned g_fail_next;

/* ---- wrapperSetCtrl callbacks ---- */
static pthread_mutex_t g_ctrl_mu = PTHREAD_MUTEX_INITIALIZER;
static wrapperMeterCustom g_meter;
static wrapperTraceLog g_trace;

/* ---- personalization resources: resId -> bytes of all nodes ---- */
struct resource {
    unsigned int id;
    char* bytes;
    size_t len;
    struct resource* next;
};
static pthread_mutex_t g_res_mu = PTHREAD_MUTEX_INITIALIZER;
static struct resource* g_res;

static void write_counters_locked(void)
{
    if (!g_counters_path)
        return;
    FILE* f = fopen(g_counters_tmp, "w");
    if (!f)
        return;
    const long long* c = g_count;
    fprintf(f,
            "init=%lld fini=%lld exec=%lld execfree=%lld live_exec=%lld async=%lld "
            "callbacks=%lld create=%lld destroy=%lld live_sessions=%lld loadres=%lld "
            "unloadres=%lld cancels=%lld cancelled=%lld\n",
            c[C_INIT], c[C_FINI], c[C_EXEC], c[C_EXECFREE], c[C_LIVE_EXEC], c[C_ASYNC],
            c[C_CALLBACKS], c[C_CREATE], c[C_DESTROY], c[C_CREATE] - c[C_DESTROY],
            c[C_LOADRES], c[C_UNLOADRES], c[C_CANCELS], c[C_CANCELLED]);
    if (fclose(f) == 0)
        rename(g_counters_tmp, g_counters_path);
}

void echo_count(int counter, ...)
{
    va_list ap;
    va_start(ap, counter);
    pthread_mutex_lock(&g_count_mu);
    for (; counter != C_END; counter = va_arg(ap, int))
        g_count[counter] += va_arg(ap, int);
    write_counters_locked();
    pthread_mutex_unlock(&g_count_mu);
    va_end(ap);
}

void echo_fail_requested(int code)
{
    pthread_mutex_lock(&g_fail_mu);
    g_fail_codes[g_fail_next++ % (sizeof g_fail_codes / sizeof g_fail_codes[0])] = code;
    pthread_mutex_unlock(&g_fail_mu);
}

static int fail_was_requested(int code)
{
    int found = 0;
    pthread_mutex_lock(&g_fail_mu);
    for (size_t i = 0; i < sizeof g_fail_codes / sizeof g_fail_codes[0]; i++)
        found |= code != 0 && g_fail_codes[i] == code;
    pthread_mutex_unlock(&g_fail_mu);
    return found;
}

/* CLOCK_REALTIME ms from now, as pthread_cond_timedwait takes it. */
static struct timespec deadline_after(int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return until;
}

/* A condition wait rather than nanosleep, so wrapperFini cuts delays short. */
int echo_sleep_ms(int ms)
{
    struct timespec until = deadline_after(ms);
    pthread_mutex_lock(&g_life_mu);
    while (ms > 0 && !g_stopping)
        if (pthread_cond_timedwait(&g_life_cv, &g_life_mu, &until) == ETIMEDOUT)
            break;
    int stopping = g_stopping;
    pthread_mutex_unlock(&g_life_mu);
    return stopping;
}

static int cancelled_locked(const char* tag)
{
    for (unsigned i = 0; i < CANCEL_RING; i++)
        if (g_cancelled[i][0] && strncmp(g_cancelled[i], tag, TAG_MAX) == 0)
            return 1;
    return 0;
}

int echo_sleep_tag_ms(const char* tag, int ms)
{
    if (!tag || !*tag)
        return echo_sleep_ms(ms);
    struct timespec until = deadline_after(ms);
    pthread_mutex_lock(&g_life_mu);
    int cancelled = cancelled_locked(tag);
    while (ms > 0 && !g_stopping && !cancelled) {
        if (pthread_cond_timedwait(&g_life_cv, &g_life_mu, &until) == ETIMEDOUT)
            break;
        cancelled = cancelled_locked(tag);
    }
    int stopping = g_stopping;
    pthread_mutex_unlock(&g_life_mu);
    if (cancelled && ms > 0) {
        echo_count(C_CANCELLED, 1, C_END);
        return ECHO_ERR_CANCELLED;
    }
    return stopping;
}

/* aiges extension: remember the tag and wake every sleeper; the one sleeping for it
 * returns early. Quick, any thread, a tag never seen is fine. */
int WrapperAPI wrapperCancel(const char* usrTag)
{
    if (!usrTag)
        return ECHO_ERR_ARG;
    pthread_mutex_lock(&g_life_mu);
    char* slot = g_cancelled[g_cancel_next++ % CANCEL_RING];
    snprintf(slot, TAG_MAX, "%s", usrTag);
    pthread_cond_broadcast(&g_life_cv);
    pthread_mutex_unlock(&g_life_mu);
    echo_count(C_CANCELS, 1, C_END);
    return 0;
}

void echo_async_begin(void)
{
    pthread_mutex_lock(&g_life_mu);
    g_async_pending++;
    pthread_mutex_unlock(&g_life_mu);
}

void echo_async_end(void)
{
    pthread_mutex_lock(&g_life_mu);
    g_async_pending--;
    pthread_cond_broadcast(&g_life_cv);
    pthread_mutex_unlock(&g_life_mu);
}

void echo_ctrl_exec(const char* usrTag)
{
    pthread_mutex_lock(&g_ctrl_mu);
    wrapperMeterCustom meter = g_meter;
    wrapperTraceLog trace = g_trace;
    pthread_mutex_unlock(&g_ctrl_mu);
    /* Called outside the lock: the loader's callbacks may call back into us. */
    if (meter)
        meter(usrTag, "echo_exec", 1);
    if (trace)
        trace(usrTag, "echo", "exec");
}

struct late_ctrl {
    const char* usrTag; /* passed on, never read */
    int ms;
};

static void* late_ctrl_main(void* arg)
{
    struct late_ctrl* late = arg;
    if (!echo_sleep_ms(late->ms)) {
        pthread_mutex_lock(&g_ctrl_mu);
        wrapperMeterCustom meter = g_meter;
        wrapperTraceLog trace = g_trace;
        pthread_mutex_unlock(&g_ctrl_mu);
        if (meter)
            meter(late->usrTag, "echo_late", 1);
        if (trace) {
            trace(late->usrTag, "echo", "late");
            trace(NULL, "echo", "late_null");
        }
    }
    free(late);
    echo_async_end(); /* last: wrapperFini may return right after this */
    return NULL;
}

int echo_ctrl_later(const char* usrTag, int ms)
{
    struct late_ctrl* late = malloc(sizeof *late);
    if (!late)
        return ECHO_ERR_NOMEM;
    late->usrTag = usrTag;
    late->ms = ms;
    echo_async_begin();
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, late_ctrl_main, late);
    pthread_attr_destroy(&attr);
    if (rc) {
        free(late);
        echo_async_end();
        return ECHO_ERR_THREAD;
    }
    return 0;
}

int echo_push(void)
{
    pthread_mutex_lock(&g_cfg_mu);
    const char* v = echo_param(g_config, "push");
    int push = v && strcmp(v, "true") == 0;
    pthread_mutex_unlock(&g_cfg_mu);
    return push;
}

char* echo_config_json(void)
{
    pthread_mutex_lock(&g_cfg_mu);
    char* json = echo_params_json(g_config);
    pthread_mutex_unlock(&g_cfg_mu);
    return json;
}

/* counters_file with "{version}" replaced by ECHO_VERSION ('/' as '-'): two builds
 * loaded side by side (a hot reload) keep counters files of their own. */
static char* counters_name(const char* path)
{
    static const char mark[] = "{version}";
    const char* at = strstr(path, mark);
    size_t extra = at ? strlen(ECHO_VERSION) : 0;
    char* out = malloc(strlen(path) + extra + 1);
    if (!out || !at) {
        if (out)
            strcpy(out, path);
        return out;
    }
    size_t head = (size_t)(at - path);
    memcpy(out, path, head);
    char* v = out + head;
    strcpy(v, ECHO_VERSION);
    for (; *v; v++)
        if (*v == '/')
            *v = '-';
    strcpy(v, at + sizeof mark - 1);
    return out;
}

int WrapperAPI wrapperInit(pConfig cfg)
{
    int ok;
    pConfig copy = echo_params_copy(cfg, &ok);
    if (!ok)
        return ECHO_ERR_NOMEM;
    /* Both names are built before taking the lock: nothing can fail inside. */
    const char* path = echo_param(copy, "counters_file");
    char* file = path ? counters_name(path) : NULL;
    char* tmp = file ? malloc(strlen(file) + sizeof ".tmp") : NULL;
    if (path && (!file || !tmp)) {
        free(file);
        free(tmp);
        echo_params_free(copy);
        return ECHO_ERR_NOMEM;
    }
    if (file)
        strcat(strcpy(tmp, file), ".tmp");

    pthread_mutex_lock(&g_life_mu);
    g_stopping = 0;
    pthread_mutex_unlock(&g_life_mu);

    pthread_mutex_lock(&g_cfg_mu);
    echo_params_free(g_config); /* a second init replaces the config */
    g_config = copy;
    pthread_mutex_unlock(&g_cfg_mu);

    pthread_mutex_lock(&g_count_mu);
    /* Counters describe one init..fini life; a second init without fini
     * shows up as init=2 rather than being hidden by a reset. */
    if (!g_initialized)
        memset(g_count, 0, sizeof g_count);
    g_initialized = 1;
    free(g_counters_path);
    free(g_counters_tmp);
    g_counters_path = file;
    g_counters_tmp = tmp;
    g_count[C_INIT]++;
    write_counters_locked();
    pthread_mutex_unlock(&g_count_mu);
    return 0;
}

int WrapperAPI wrapperFini(void)
{
    /* Stop async work first: no callback may reach the loader after fini
     * returns. Delays are cut short; a worker woken that way frees its
     * result without calling back. */
    pthread_mutex_lock(&g_life_mu);
    g_stopping = 1;
    pthread_cond_broadcast(&g_life_cv);
    while (g_async_pending > 0)
        pthread_cond_wait(&g_life_cv, &g_life_mu);
    pthread_mutex_unlock(&g_life_mu);

    pthread_mutex_lock(&g_count_mu);
    g_count[C_FINI]++;
    write_counters_locked();
    free(g_counters_path);
    free(g_counters_tmp);
    g_counters_path = g_counters_tmp = NULL;
    g_initialized = 0;
    pthread_mutex_unlock(&g_count_mu);

    pthread_mutex_lock(&g_cfg_mu);
    echo_params_free(g_config);
    g_config = NULL;
    pthread_mutex_unlock(&g_cfg_mu);

    /* The loader's callbacks belong to the life that ends here: a library
     * kept mapped (-z nodelete) and initialised again by a new loader must not
     * call the old loader's, which may be freed by then. */
    pthread_mutex_lock(&g_ctrl_mu);
    g_meter = NULL;
    g_trace = NULL;
    pthread_mutex_unlock(&g_ctrl_mu);

    pthread_mutex_lock(&g_res_mu);
    while (g_res) {
        struct resource* next = g_res->next;
        free(g_res->bytes);
        free(g_res);
        g_res = next;
    }
    pthread_mutex_unlock(&g_res_mu);
    return 0;
}

/* WrapperAPI before the return type: after `const char*` GCC reads it as
 * an attribute of the pointer type and warns. */
WrapperAPI const char* wrapperVersion(void)
{
    return ECHO_VERSION;
}

/* aiges extension: this engine has no device that can fail, so always healthy. */
int WrapperAPI wrapperHealth(char* detail, unsigned int detailLen)
{
    (void)detail, (void)detailLen;
    return 0;
}

WrapperAPI const char* wrapperError(int errNum)
{
    switch (errNum) {
    case ECHO_ERR_HANDLE: return "echo: unknown handle";
    case ECHO_ERR_ARG: return "echo: invalid argument";
    case ECHO_ERR_NOMEM: return "echo: out of memory";
    case ECHO_ERR_RES: return "echo: unknown resource";
    case ECHO_ERR_THREAD: return "echo: cannot start thread";
    case ECHO_ERR_CTRL: return "echo: unknown control type";
    case ECHO_ERR_CANCELLED: return "echo: cancelled (wrapperCancel)";
    }
    return fail_was_requested(errNum) ? "echo: failure requested" : "echo: unknown error";
}

int WrapperAPI wrapperSetCtrl(CtrlType type, void* func)
{
    int rc = 0;
    pthread_mutex_lock(&g_ctrl_mu);
    /* void* -> function pointer is fine on POSIX (dlsym relies on it). */
    if (type == CTMeterCustom)
        g_meter = (wrapperMeterCustom)func;
    else if (type == CTTraceLog)
        g_trace = (wrapperTraceLog)func;
    else if (type != CTMetricsLog) /* reserved: accepted, unused */
        rc = ECHO_ERR_CTRL;
    pthread_mutex_unlock(&g_ctrl_mu);
    return rc;
}

int WrapperAPI wrapperLoadRes(pDataList perData, unsigned int resId)
{
    size_t len = 0;
    for (pDataList d = perData; d; d = d->next)
        len += d->data ? d->len : 0;
    struct resource* r = calloc(1, sizeof *r);
    char* bytes = malloc(len + 1);
    if (!r || !bytes) {
        free(r);
        free(bytes);
        return ECHO_ERR_NOMEM;
    }
    r->id = resId;
    r->bytes = bytes;
    r->len = len;
    for (pDataList d = perData; d; d = d->next)
        if (d->data && d->len) {
            memcpy(bytes, d->data, d->len);
            bytes += d->len;
        }
    pthread_mutex_lock(&g_res_mu);
    /* Newest first: a reload of the same id shadows, then replaces, the old one. */
    r->next = g_res;
    g_res = r;
    for (struct resource** p = &r->next; *p; p = &(*p)->next)
        if ((*p)->id == resId) {
            struct resource* old = *p;
            *p = old->next;
            free(old->bytes);
            free(old);
            break;
        }
    pthread_mutex_unlock(&g_res_mu);
    echo_count(C_LOADRES, 1, C_END);
    return 0;
}

int WrapperAPI wrapperUnloadRes(unsigned int resId)
{
    struct resource* found = NULL;
    pthread_mutex_lock(&g_res_mu);
    for (struct resource** p = &g_res; *p; p = &(*p)->next)
        if ((*p)->id == resId) {
            found = *p;
            *p = found->next;
            break;
        }
    pthread_mutex_unlock(&g_res_mu);
    if (!found)
        return ECHO_ERR_RES;
    free(found->bytes);
    free(found);
    echo_count(C_UNLOADRES, 1, C_END);
    return 0;
}
