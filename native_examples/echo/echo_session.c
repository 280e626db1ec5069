/*
 * libecho: sessions. Each write echoes its input nodes (same key, bytes,
 * type, status, desc). A sync session queues them for wrapperRead; an async
 * one (config push=true and a callback given) hands each write's list to a
 * worker thread that calls cb in write order. Params at create time:
 *   fail_create=N  wrapperCreate returns NULL with *errNum = N
 *   fail_write=N   every wrapperWrite returns N
 *   delay_ms=N     async sessions: the worker waits N ms before each delivery
 *                  (cut short by wrapperDestroy)
 *   write_delay_ms=N  every wrapperWrite waits N ms first; wrapperCancel of the
 *                  session's usrTag cuts it short: error 30007, counted in "cancelled"
 */
#define _POSIX_C_SOURCE 200809L
#include "echo_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <time.h>

struct batch { /* one write's outputs, waiting for the async worker */
    pDataList list;
    struct batch* next;
};

struct session {
    struct session* next_live; /* registry link */
    const char* usrTag;        /* passed back to cb as given, never read */
    wrapperCallback cb;
    int fail_write, delay_ms, write_delay_ms;
    char tag[128];             /* usrTag's text, copied at create: for wrapperCancel */
    unsigned long long writes, bytes;
    char debug[96]; /* wrapperDebugInfo text, valid while the session lives */
    /* sync sessions; calls for one session are sequential, so no lock */
    pDataList pending, *pending_tail; /* written, not yet read */
    pDataList last_read;              /* handed out by the last read */
    /* async sessions: queue shared with the worker */
    pthread_t worker;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    struct batch *qhead, **qtail;
};

/* Live sessions. A handle is looked up here before it is dereferenced, so a
 * stale, NULL or foreign handle gets an error code instead of a crash. */
static pthread_mutex_t g_sess_mu = PTHREAD_MUTEX_INITIALIZER;
static struct session* g_sessions;

static struct session* find(const void* handle, int unlink)
{
    struct session* found = NULL;
    pthread_mutex_lock(&g_sess_mu);
    for (struct session** p = &g_sessions; *p; p = &(*p)->next_live)
        if (*p == handle) {
            found = *p;
            if (unlink)
                *p = found->next_live;
            break;
        }
    pthread_mutex_unlock(&g_sess_mu);
    return found;
}

/* Called with s->mu held: waits delay_ms, or less if wrapperDestroy stops us. */
static void worker_delay(struct session* s)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += s->delay_ms / 1000;
    until.tv_nsec += (long)(s->delay_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!s->stop)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
            break;
}

/* Delivers every queued batch, in order, until stopped and drained: results
 * written before wrapperDestroy still reach the loader. */
static void* worker_main(void* arg)
{
    struct session* s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->qhead && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        if (!s->qhead)
            break;
        if (s->delay_ms > 0)
            worker_delay(s);
        struct batch* b = s->qhead;
        s->qhead = b->next;
        if (!s->qhead)
            s->qtail = &s->qhead;
        pthread_mutex_unlock(&s->mu);
        s->cb(s->usrTag, b->list, 0); /* the loader copies inside */
        echo_list_free(b->list);
        free(b);
        echo_count(C_CALLBACKS, 1, C_END);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void session_free(struct session* s)
{
    while (s->qhead) {
        struct batch* b = s->qhead;
        s->qhead = b->next;
        echo_list_free(b->list);
        free(b);
    }
    echo_list_free(s->pending);
    echo_list_free(s->last_read);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

WrapperAPI const void* wrapperCreate(const char* usrTag, pParamList params, wrapperCallback cb,
                                    unsigned int psrIds[], int psrCnt, int* errNum)
{
    (void)psrIds;
    (void)psrCnt;
    int ignored, fail_create = 0;
    if (!errNum)
        errNum = &ignored;
    struct session* s = calloc(1, sizeof *s);
    int rc = s ? 0 : ECHO_ERR_NOMEM;
    if (!rc)
        rc = echo_param_int(params, "fail_create", &fail_create);
    if (!rc)
        rc = echo_param_int(params, "fail_write", &s->fail_write);
    if (!rc)
        rc = echo_param_int(params, "delay_ms", &s->delay_ms);
    if (!rc)
        rc = echo_param_int(params, "write_delay_ms", &s->write_delay_ms);
    if (!rc && fail_create) {
        echo_fail_requested(fail_create);
        rc = fail_create;
    }
    if (rc) {
        free(s);
        *errNum = rc;
        return NULL;
    }
    if (s->fail_write)
        echo_fail_requested(s->fail_write);
    s->usrTag = usrTag;
    snprintf(s->tag, sizeof s->tag, "%s", usrTag ? usrTag : "");
    s->cb = echo_push() ? cb : NULL;
    s->pending_tail = &s->pending;
    s->qtail = &s->qhead;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (s->cb && pthread_create(&s->worker, NULL, worker_main, s) != 0) {
        session_free(s);
        *errNum = ECHO_ERR_THREAD;
        return NULL;
    }
    pthread_mutex_lock(&g_sess_mu);
    s->next_live = g_sessions;
    g_sessions = s;
    pthread_mutex_unlock(&g_sess_mu);
    echo_count(C_CREATE, 1, C_END);
    *errNum = 0;
    return s;
}

int WrapperAPI wrapperWrite(const void* handle, pDataList reqData)
{
    struct session* s = find(handle, 0);
    if (!s)
        return ECHO_ERR_HANDLE;
    if (s->fail_write)
        return s->fail_write;
    if (s->write_delay_ms > 0 && echo_sleep_tag_ms(s->tag, s->write_delay_ms) == ECHO_ERR_CANCELLED)
        return ECHO_ERR_CANCELLED;
    pDataList copy;
    if (echo_list_copy(reqData, &copy))
        return ECHO_ERR_NOMEM;
    s->writes++;
    for (pDataList d = copy; d; d = d->next)
        s->bytes += d->len;
    if (!copy)
        return 0;
    if (!s->cb) {
        *s->pending_tail = copy;
        while (*s->pending_tail)
            s->pending_tail = &(*s->pending_tail)->next;
        return 0;
    }
    struct batch* b = calloc(1, sizeof *b);
    if (!b) {
        echo_list_free(copy);
        return ECHO_ERR_NOMEM;
    }
    b->list = copy;
    pthread_mutex_lock(&s->mu);
    *s->qtail = b;
    s->qtail = &b->next;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* Async sessions never have anything to read: their results go through cb. */
int WrapperAPI wrapperRead(const void* handle, pDataList* respData)
{
    struct session* s = find(handle, 0);
    if (!s)
        return ECHO_ERR_HANDLE;
    if (!respData)
        return ECHO_ERR_ARG;
    echo_list_free(s->last_read);
    s->last_read = s->pending;
    s->pending = NULL;
    s->pending_tail = &s->pending;
    *respData = s->last_read;
    return 0;
}

WrapperAPI const char* wrapperDebugInfo(const void* handle)
{
    struct session* s = find(handle, 0);
    if (!s)
        return "echo: unknown handle";
    snprintf(s->debug, sizeof s->debug, "echo session: writes=%llu bytes=%llu", s->writes,
             s->bytes);
    return s->debug;
}

int WrapperAPI wrapperDestroy(const void* handle)
{
    struct session* s = find(handle, 1); /* unlinked first: later calls get an error */
    if (!s)
        return ECHO_ERR_HANDLE;
    if (s->cb) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->worker, NULL);
    }
    session_free(s);
    echo_count(C_DESTROY, 1, C_END);
    return 0;
}
