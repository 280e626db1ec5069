/*
 * libstream: sessions -- handles, threads and delivery (what a write feeds
 * and produces is stream_inputs.c). A sync session (no config push=true)
 * queues
 * outputs for wrapperRead; an async one hands each write's outputs to a
 * worker thread that calls cb in write order. Params at create time:
 *   final_delay_ms=N  the summary comes N ms after the write that ends the
 *                     input, from the session's worker thread (sync sessions
 *                     get one too); wrapperDestroy cancels it
 *   chunk_delay_ms=N  every write takes N ms first (the work a chunk costs);
 *                     wrapperCancel of the session's usrTag cuts it short with
 *                     STREAM_ERR_CANCELLED, counted in "cancelled"
 *   fail_at_chunk=K   write number K returns STREAM_ERR_FAIL + K
 *                     (wrapperError: "stream: failure requested at chunk K")
 */
#define _POSIX_C_SOURCE 200809L
#include "stream_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <time.h>

struct batch { /* outputs waiting for the worker */
    pDataList list;
    int delayed;         /* held until due; dropped by wrapperDestroy */
    struct timespec due; /* CLOCK_MONOTONIC */
    struct batch* next;
};

struct session {
    struct session* next_live; /* registry link */
    const char* usrTag;        /* passed back to cb as given, never read */
    wrapperCallback cb;
    int final_delay_ms, fail_at_chunk, chunk_delay_ms;
    char tag[128]; /* usrTag's text, copied at create: for wrapperCancel */
    /* Touched only by the session's own calls, which are sequential. */
    unsigned long long writes;
    struct inputs in;
    pDataList last_read; /* handed out by the last read */
    char debug[128];     /* wrapperDebugInfo text, valid while the session lives */
    /* Shared with the worker, under mu. */
    int has_worker;
    pthread_t worker;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC */
    int stop;
    pDataList pending, *pending_tail; /* sync: ready for wrapperRead */
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

/* Links list at the end of the list that *tail points into (its head or a
 * node's next); *tail is left on the new end. */
static void append(pDataList** tail, pDataList list)
{
    while (**tail)
        *tail = &(**tail)->next;
    **tail = list;
    while (**tail)
        *tail = &(**tail)->next;
}

static void batch_free(struct batch* b)
{
    stream_list_free(b->list);
    free(b);
}

/* Called with s->mu held. Waits until b is due; 0 if wrapperDestroy came first. */
static int wait_due(struct session* s, const struct batch* b)
{
    while (!s->stop)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &b->due) == ETIMEDOUT)
            break;
    return !s->stop;
}

/* Delivers queued batches in order until stopped and drained: outputs
 * written before wrapperDestroy still arrive (before it returns); a summary
 * still being delayed is cancelled. */
static void* worker_main(void* arg)
{
    struct session* s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->qhead && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        struct batch* b = s->qhead;
        if (!b)
            break;
        int deliver = !b->delayed || wait_due(s, b);
        s->qhead = b->next;
        if (!s->qhead)
            s->qtail = &s->qhead;
        if (!deliver) {
            batch_free(b);
        } else if (!s->cb) {
            append(&s->pending_tail, b->list);
            free(b);
        } else {
            pthread_mutex_unlock(&s->mu);
            s->cb(s->usrTag, b->list, 0); /* the loader copies inside */
            batch_free(b);
            stream_count(C_CALLBACKS, 1, C_END);
            pthread_mutex_lock(&s->mu);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void session_free(struct session* s)
{
    while (s->qhead) {
        struct batch* b = s->qhead;
        s->qhead = b->next;
        batch_free(b);
    }
    inputs_free(&s->in);
    stream_list_free(s->pending);
    stream_list_free(s->last_read);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static int init_sync(struct session* s)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr))
        return STREAM_ERR_NOMEM;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&s->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (rc)
        return STREAM_ERR_NOMEM;
    if (pthread_mutex_init(&s->mu, NULL)) {
        pthread_cond_destroy(&s->cv);
        return STREAM_ERR_NOMEM;
    }
    return 0;
}

WrapperAPI const void* wrapperCreate(const char* usrTag, pParamList params, wrapperCallback cb,
                                     unsigned int psrIds[], int psrCnt, int* errNum)
{
    (void)psrIds;
    (void)psrCnt;
    int ignored;
    if (!errNum)
        errNum = &ignored;
    struct session* s = calloc(1, sizeof *s);
    if (!s) {
        *errNum = STREAM_ERR_NOMEM;
        return NULL;
    }
    int rc = stream_param_int(params, "final_delay_ms", 3600 * 1000, &s->final_delay_ms);
    if (!rc)
        rc = stream_param_int(params, "fail_at_chunk", STREAM_FAIL_MAX, &s->fail_at_chunk);
    if (!rc)
        rc = stream_param_int(params, "chunk_delay_ms", 3600 * 1000, &s->chunk_delay_ms);
    if (!rc)
        rc = inputs_init(&s->in);
    if (!rc)
        rc = init_sync(s);
    if (rc) {
        inputs_free(&s->in); /* also fine when still zeroed */
        free(s);
        *errNum = rc;
        return NULL;
    }
    s->usrTag = usrTag;
    snprintf(s->tag, sizeof s->tag, "%s", usrTag ? usrTag : "");
    s->cb = stream_push() ? cb : NULL;
    s->pending_tail = &s->pending;
    s->qtail = &s->qhead;
    /* Sync sessions need the worker only to hold back the summary. */
    if (s->cb || s->final_delay_ms > 0) {
        if (pthread_create(&s->worker, NULL, worker_main, s) != 0) {
            session_free(s);
            *errNum = STREAM_ERR_THREAD;
            return NULL;
        }
        s->has_worker = 1;
    }
    pthread_mutex_lock(&g_sess_mu);
    s->next_live = g_sessions;
    g_sessions = s;
    pthread_mutex_unlock(&g_sess_mu);
    stream_count(C_CREATE, 1, C_END);
    *errNum = 0;
    return s;
}

/* Hands out one write's outputs: now (sync queue or async worker), and the
 * summary later when final_delay_ms asks for it. */
static int deliver(struct session* s, pDataList out, pDataList summary)
{
    struct batch* now = s->cb ? calloc(1, sizeof *now) : NULL;
    struct batch* later = summary && s->final_delay_ms > 0 ? calloc(1, sizeof *later) : NULL;
    if ((s->cb && !now) || (summary && s->final_delay_ms > 0 && !later)) {
        free(now);
        free(later);
        stream_list_free(out);
        stream_list_free(summary);
        return STREAM_ERR_NOMEM;
    }
    if (later) {
        later->list = summary;
        later->delayed = 1;
        clock_gettime(CLOCK_MONOTONIC, &later->due);
        later->due.tv_sec += s->final_delay_ms / 1000;
        later->due.tv_nsec += (long)(s->final_delay_ms % 1000) * 1000000L;
        if (later->due.tv_nsec >= 1000000000L) {
            later->due.tv_sec++;
            later->due.tv_nsec -= 1000000000L;
        }
    } else {
        pDataList* tail = &out;
        append(&tail, summary);
    }
    pthread_mutex_lock(&s->mu);
    if (now) {
        now->list = out;
        *s->qtail = now;
        s->qtail = &now->next;
    } else {
        append(&s->pending_tail, out);
    }
    if (later) {
        *s->qtail = later;
        s->qtail = &later->next;
    }
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int WrapperAPI wrapperWrite(const void* handle, pDataList reqData)
{
    struct session* s = find(handle, 0);
    if (!s)
        return STREAM_ERR_HANDLE;
    if (++s->writes == (unsigned long long)s->fail_at_chunk)
        return STREAM_ERR_FAIL + s->fail_at_chunk;
    if (s->chunk_delay_ms > 0 && stream_sleep_tag_ms(s->tag, s->chunk_delay_ms))
        return STREAM_ERR_CANCELLED;
    int rc = inputs_check(&s->in, reqData);
    if (rc || !reqData)
        return rc;
    pDataList out, summary;
    if ((rc = inputs_write(&s->in, reqData, &out, &summary)) != 0)
        return rc;
    return deliver(s, out, summary);
}

/* Async sessions never have anything to read: their outputs go through cb. */
int WrapperAPI wrapperRead(const void* handle, pDataList* respData)
{
    struct session* s = find(handle, 0);
    if (!s)
        return STREAM_ERR_HANDLE;
    if (!respData)
        return STREAM_ERR_ARG;
    stream_list_free(s->last_read);
    pthread_mutex_lock(&s->mu);
    s->last_read = s->pending;
    s->pending = NULL;
    s->pending_tail = &s->pending;
    pthread_mutex_unlock(&s->mu);
    *respData = s->last_read;
    return 0;
}

WrapperAPI const char* wrapperDebugInfo(const void* handle)
{
    struct session* s = find(handle, 0);
    if (!s)
        return "stream: unknown handle";
    struct totals t;
    inputs_totals(&s->in, &t);
    snprintf(s->debug, sizeof s->debug, "stream session: chunks=%llu bytes=%llu words=%llu",
             t.chunks, t.bytes, t.words);
    return s->debug;
}

int WrapperAPI wrapperDestroy(const void* handle)
{
    struct session* s = find(handle, 1); /* unlinked first: later calls get an error */
    if (!s)
        return STREAM_ERR_HANDLE;
    if (s->has_worker) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->worker, NULL);
    }
    session_free(s);
    stream_count(C_DESTROY, 1, C_END);
    return 0;
}
