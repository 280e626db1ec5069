/*
 * libstream: engine-wide state -- counters (and counters_file), error texts,
 * the init/fini life cycle -- plus the param and list helpers.
 * wrapperInit config: counters_file=PATH (optional), the same one-line file
 * as libecho's, rewritten atomically after every change.
 */
#define _POSIX_C_SOURCE 200809L
#include "stream_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#ifndef STREAM_VERSION
#define STREAM_VERSION "stream/1.0.0"
#endif

/* ---- counters: the test oracle for the loader's call discipline ---- */
static pthread_mutex_t g_count_mu = PTHREAD_MUTEX_INITIALIZER;
static long long g_count[C_COUNT];
static char* g_counters_path; /* NULL: no counters_file */
static char* g_counters_tmp;  /* path.tmp, renamed over path: readers never see a partial line */
static int g_initialized;

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

void stream_count(int counter, ...)
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

/* ---- wrapperCancel: the last tags cancelled (copies); their waits end early ---- */
#define CANCEL_RING 64
#define TAG_MAX 128
static pthread_mutex_t g_cancel_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cancel_cv = PTHREAD_COND_INITIALIZER;
static char g_cancelled[CANCEL_RING][TAG_MAX];
static unsigned g_cancel_next;

static int cancelled_locked(const char* tag)
{
    for (int i = 0; i < CANCEL_RING; i++)
        if (g_cancelled[i][0] && strncmp(g_cancelled[i], tag, TAG_MAX) == 0)
            return 1;
    return 0;
}

int stream_sleep_tag_ms(const char* tag, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ns = until.tv_nsec + (long long)(ms % 1000) * 1000000LL;
    until.tv_sec += ms / 1000 + ns / 1000000000LL;
    until.tv_nsec = ns % 1000000000LL;
    pthread_mutex_lock(&g_cancel_mu);
    int cancelled = cancelled_locked(tag);
    while (ms > 0 && !cancelled) {
        if (pthread_cond_timedwait(&g_cancel_cv, &g_cancel_mu, &until) == ETIMEDOUT)
            break;
        cancelled = cancelled_locked(tag);
    }
    pthread_mutex_unlock(&g_cancel_mu);
    if (!cancelled)
        return 0;
    stream_count(C_CANCELLED, 1, C_END);
    return STREAM_ERR_CANCELLED;
}

/* aiges extension: the session `usrTag` is no longer wanted; a write of it waiting
 * chunk_delay_ms returns early. Quick, any thread, an unknown tag is fine. */
int WrapperAPI wrapperCancel(const char* usrTag)
{
    if (!usrTag)
        return STREAM_ERR_ARG;
    pthread_mutex_lock(&g_cancel_mu);
    snprintf(g_cancelled[g_cancel_next++ % CANCEL_RING], TAG_MAX, "%s", usrTag);
    pthread_cond_broadcast(&g_cancel_cv);
    pthread_mutex_unlock(&g_cancel_mu);
    stream_count(C_CANCELS, 1, C_END);
    return 0;
}

static char* dup_str(const char* s)
{
    size_t n = strlen(s ? s : "");
    char* p = malloc(n + 1);
    if (p)
        memcpy(p, s ? s : "", n + 1);
    return p;
}

static const char* param(pParamList params, const char* key)
{
    for (; params; params = params->next)
        if (params->key && strcmp(params->key, key) == 0)
            return params->value ? params->value : "";
    return NULL;
}

int stream_param_int(pParamList params, const char* key, int max, int* out)
{
    const char* v = param(params, key);
    if (!v)
        return 0;
    char* end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (end == v || *end != '\0' || errno || n < 0 || n > max)
        return STREAM_ERR_ARG;
    *out = (int)n;
    return 0;
}

void stream_list_free(pDataList list)
{
    while (list) {
        pDataList next = list->next;
        for (pDescList d = list->desc; d;) {
            pDescList dn = d->next;
            free(d->key);
            free(d->value);
            free(d);
            d = dn;
        }
        free(list->key);
        free(list->data);
        free(list);
        list = next;
    }
}

pDataList stream_text_node(const char* key, const char* text, DataStatus status,
                           const char* desc_key, const char* desc_value)
{
    pDataList n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->key = dup_str(key);
    n->data = dup_str(text);
    n->len = n->data ? (unsigned int)strlen(text) : 0;
    n->type = DataText;
    n->status = status;
    if (desc_key) {
        n->desc = calloc(1, sizeof *n->desc);
        if (n->desc) {
            n->desc->key = dup_str(desc_key);
            n->desc->value = dup_str(desc_value);
            n->desc->vlen = n->desc->value ? (unsigned int)strlen(n->desc->value) : 0;
        }
    }
    if (!n->key || !n->data || (desc_key && (!n->desc || !n->desc->key || !n->desc->value))) {
        stream_list_free(n);
        return NULL;
    }
    return n;
}

static int g_push; /* config push=true */

int stream_push(void)
{
    return __atomic_load_n(&g_push, __ATOMIC_RELAXED);
}

int WrapperAPI wrapperInit(pConfig cfg)
{
    const char* push = param(cfg, "push");
    __atomic_store_n(&g_push, push && strcmp(push, "true") == 0, __ATOMIC_RELAXED);
    const char* path = param(cfg, "counters_file");
    /* Both names are built before taking the lock: nothing can fail inside. */
    char* file = path ? dup_str(path) : NULL;
    char* tmp = path ? malloc(strlen(path) + sizeof ".tmp") : NULL;
    if (path && (!file || !tmp)) {
        free(file);
        free(tmp);
        return STREAM_ERR_NOMEM;
    }
    if (path)
        strcat(strcpy(tmp, path), ".tmp");

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

/* Sessions are the loader's to destroy (it always does, before fini); each
 * joins its own threads, so nothing of ours runs once they are gone. */
int WrapperAPI wrapperFini(void)
{
    pthread_mutex_lock(&g_count_mu);
    g_count[C_FINI]++;
    write_counters_locked();
    free(g_counters_path);
    free(g_counters_tmp);
    g_counters_path = g_counters_tmp = NULL;
    g_initialized = 0;
    pthread_mutex_unlock(&g_count_mu);
    return 0;
}

/* WrapperAPI before the return type: after `const char*` GCC reads it as
 * an attribute of the pointer type and warns. */
WrapperAPI const char* wrapperVersion(void)
{
    return STREAM_VERSION;
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
    case STREAM_ERR_HANDLE: return "stream: unknown handle";
    case STREAM_ERR_ARG: return "stream: invalid argument";
    case STREAM_ERR_NOMEM: return "stream: out of memory";
    case STREAM_ERR_THREAD: return "stream: cannot start thread";
    case STREAM_ERR_TYPE: return "stream: only text input";
    case STREAM_ERR_ENDED: return "stream: input already ended";
    case STREAM_ERR_CANCELLED: return "stream: cancelled (wrapperCancel)";
    }
    if (errNum > STREAM_ERR_FAIL && errNum <= STREAM_ERR_FAIL + STREAM_FAIL_MAX) {
        /* Per thread: the text stays valid until this thread asks again,
         * and the loader copies it at once. */
        static _Thread_local char text[64];
        snprintf(text, sizeof text, "stream: failure requested at chunk %d",
                 errNum - STREAM_ERR_FAIL);
        return text;
    }
    return "stream: unknown error";
}
