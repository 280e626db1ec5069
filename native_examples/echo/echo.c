/*
 * libecho: a test engine implementing every symbol of wrapper.h. It echoes
 * its inputs back, plus nodes describing the request ("params", "psr_ids",
 * "config"), and records every call in counters (see echo_state.c) so the
 * loader's tests can prove it frees what it gets and calls what it must.
 *
 * This file: the one-shot calls, wrapperExec/ExecFree (sync),
 * wrapperExecAsync and wrapperExecBatch (the aiges batch extension). Request params that change behaviour:
 *   delay_ms=N        sleep N ms first (async: in the worker); wrapperCancel of the
 *                     request's usrTag cuts it short: error 30007, no output (async:
 *                     the callback, at once, with 30007), counted in "cancelled"
 *   fail=N            return N (async: cb(usrTag, NULL, N)), no output
 *   empty=true        succeed with no output (*respData / cb data NULL)
 *   show_config=true  add a "config" node with the wrapperInit pairs
 *   no_callback=true  async: never call back (the loader must time out)
 *   inline=true       async: call back on the caller's thread, before returning
 *   callback_twice=true  async: call back twice (the loader must ignore the 2nd)
 *   late_ctrl_ms=N    sync: also meter and trace N ms after the call, from a detached
 *                     thread, with the by then stale usrTag (and trace with NULL)
 * Built with ECHO_MARK_VERSION (libecho_next.so), every answer also has a
 * "version" node holding wrapperVersion's text.
 */
#define _POSIX_C_SOURCE 200809L
#include "echo_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>

struct options {
    int delay_ms, fail, empty, show_config, no_callback, inline_cb, twice, late_ctrl_ms;
};

static int parse_options(pParamList params, struct options* o)
{
    *o = (struct options){0};
    int rc = echo_param_int(params, "delay_ms", &o->delay_ms);
    if (!rc)
        rc = echo_param_int(params, "fail", &o->fail);
    if (!rc)
        rc = echo_param_int(params, "late_ctrl_ms", &o->late_ctrl_ms);
    if (rc || o->delay_ms < 0 || o->late_ctrl_ms < 0)
        return ECHO_ERR_ARG;
    if (o->fail)
        echo_fail_requested(o->fail);
    o->empty = echo_param_true(params, "empty");
    o->show_config = echo_param_true(params, "show_config");
    o->no_callback = echo_param_true(params, "no_callback");
    o->inline_cb = echo_param_true(params, "inline");
    o->twice = echo_param_true(params, "callback_twice");
    return 0;
}

/* Copies of the inputs, then "params", "psr_ids" (only with ids) and
 * "config" (only with show_config=true). */
static int build_output(pParamList params, pDataList req, const unsigned int* psrIds,
                        int psrCnt, int show_config, pDataList* out)
{
    static const char* const keys[] = {"params", "psr_ids", "config"};
    int want[] = {1, psrIds && psrCnt > 0, show_config};
    pDataList head;
    if (echo_list_copy(req, &head))
        return ECHO_ERR_NOMEM;
    pDataList* tail = &head;
    while (*tail)
        tail = &(*tail)->next;
    for (int i = 0; i < 3; i++) {
        if (!want[i])
            continue;
        char* text = i == 0   ? echo_params_json(params)
                     : i == 1 ? echo_psr_text(psrIds, psrCnt)
                              : echo_config_json();
        *tail = text ? echo_text_node(keys[i], text) : NULL;
        free(text);
        if (!*tail) {
            echo_list_free(head);
            return ECHO_ERR_NOMEM;
        }
        tail = &(*tail)->next;
    }
#ifdef ECHO_MARK_VERSION
    /* The build answering shows in the answer: a hot reload is visible per request. */
    *tail = echo_text_node("version", ECHO_VERSION);
    if (!*tail) {
        echo_list_free(head);
        return ECHO_ERR_NOMEM;
    }
#endif
    *out = head;
    return 0;
}

int WrapperAPI wrapperExec(const char* usrTag, pParamList params, pDataList reqData,
                           pDataList* respData, unsigned int psrIds[], int psrCnt)
{
    echo_count(C_EXEC, 1, C_END);
    if (!respData)
        return ECHO_ERR_ARG;
    *respData = NULL;
    echo_ctrl_exec(usrTag);
    struct options o;
    int rc = parse_options(params, &o);
    if (!rc && o.late_ctrl_ms)
        rc = echo_ctrl_later(usrTag, o.late_ctrl_ms);
    if (rc)
        return rc;
    if (echo_sleep_tag_ms(usrTag, o.delay_ms) == ECHO_ERR_CANCELLED)
        return ECHO_ERR_CANCELLED;
    if (o.fail)
        return o.fail;
    if (o.empty)
        return 0;
    pDataList out;
    rc = build_output(params, reqData, psrIds, psrCnt, o.show_config, &out);
    if (rc)
        return rc;
    echo_count(C_LIVE_EXEC, 1, C_END);
    *respData = out;
    return 0;
}

/* Appends a "batch" node holding n to *out (show_batch=true). */
static int add_batch_node(pDataList* out, unsigned int n)
{
    char text[16];
    snprintf(text, sizeof text, "%u", n);
    pDataList* tail = out;
    while (*tail)
        tail = &(*tail)->next;
    *tail = echo_text_node("batch", text);
    return *tail ? 0 : ECHO_ERR_NOMEM;
}

/* One item of a batch, as wrapperExec runs it, less the delay (slept once for all). */
static int exec_item(const char* usrTag, pParamList params, pDataList req, unsigned int n,
                     pDataList* out)
{
    echo_ctrl_exec(usrTag);
    struct options o;
    int rc = parse_options(params, &o);
    if (!rc && o.late_ctrl_ms)
        rc = echo_ctrl_later(usrTag, o.late_ctrl_ms);
    if (rc || o.fail)
        return rc ? rc : o.fail;
    if (o.empty)
        return 0;
    rc = build_output(params, req, NULL, 0, o.show_config, out);
    if (!rc && echo_param_true(params, "show_batch"))
        rc = add_batch_node(out, n);
    if (rc) {
        echo_list_free(*out);
        *out = NULL;
        return rc;
    }
    echo_count(C_LIVE_EXEC, 1, C_END);
    return 0;
}

/* The aiges batch extension: n requests in one call. The call sleeps the longest
 * delay_ms of its items (one launch, not n); fail=N fails its item only, fail_batch=N
 * on any item fails the whole call; show_batch=true adds a "batch" node holding n. */
int WrapperAPI wrapperExecBatch(unsigned int n, const char* usrTags[], pParamList params[],
                                pDataList reqData[], pDataList respData[], int errs[])
{
    if (!n || !usrTags || !params || !reqData || !respData || !errs)
        return ECHO_ERR_ARG;
    int delay_ms = 0, batch_fail = 0;
    for (unsigned int i = 0; i < n; i++) {
        respData[i] = NULL;
        errs[i] = 0;
        int d = 0, fb = 0;
        if (echo_param_int(params[i], "delay_ms", &d) || echo_param_int(params[i], "fail_batch", &fb))
            continue; /* the item's own error, below */
        delay_ms = d > delay_ms ? d : delay_ms;
        batch_fail = batch_fail ? batch_fail : fb;
    }
    echo_count(C_EXEC, (int)n, C_END);
    if (batch_fail) {
        echo_fail_requested(batch_fail);
        return batch_fail;
    }
    echo_sleep_ms(delay_ms);
    for (unsigned int i = 0; i < n; i++)
        errs[i] = exec_item(usrTags[i], params[i], reqData[i], n, &respData[i]);
    return 0;
}

int WrapperAPI wrapperExecFree(const char* usrTag, pDataList* respData)
{
    (void)usrTag;
    if (!respData)
        return ECHO_ERR_ARG;
    pDataList list = *respData;
    *respData = NULL;
    echo_list_free(list);
    echo_count(C_EXECFREE, 1, C_LIVE_EXEC, list ? -1 : 0, C_END);
    return 0;
}

/* One ExecAsync request, owned by whoever runs it. usrTag is only passed back,
 * never read: the loader may already have forgotten it. */
struct job {
    const char* usrTag;
    char tag[128]; /* its text, copied while the call lasts: for wrapperCancel */
    wrapperCallback cb;
    struct options o;
    pDataList resp;
};

static void run_job(struct job* j)
{
    /* fini: no callback; cancel: called back at once with 30007, as a sync call returns */
    int stopped = echo_sleep_tag_ms(j->tag, j->o.delay_ms);
    int cancelled = stopped == ECHO_ERR_CANCELLED;
    int calls = 0;
    if ((!stopped || cancelled) && !j->o.no_callback) {
        int ret = cancelled ? ECHO_ERR_CANCELLED : j->o.fail;
        pDataList data = ret ? NULL : j->resp;
        calls = j->o.twice && !cancelled ? 2 : 1;
        for (int i = 0; i < calls; i++)
            j->cb(j->usrTag, data, ret);
    }
    /* The loader copied the result inside the callback. */
    echo_list_free(j->resp);
    free(j);
    echo_count(C_CALLBACKS, calls, C_LIVE_EXEC, -1, C_END);
    echo_async_end(); /* last: wrapperFini may return right after this */
}

static void* job_thread(void* arg)
{
    run_job(arg);
    return NULL;
}

int WrapperAPI wrapperExecAsync(const char* usrTag, pParamList params, pDataList reqData,
                                wrapperCallback cb, int timeout, unsigned int psrIds[],
                                int psrCnt)
{
    (void)timeout; /* bounding the wait is the loader's job */
    if (!cb)
        return ECHO_ERR_ARG;
    struct job* j = calloc(1, sizeof *j);
    if (!j)
        return ECHO_ERR_NOMEM;
    int rc = parse_options(params, &j->o);
    if (!rc && !j->o.fail && !j->o.empty)
        rc = build_output(params, reqData, psrIds, psrCnt, j->o.show_config, &j->resp);
    if (rc) {
        free(j);
        return rc;
    }
    j->usrTag = usrTag;
    snprintf(j->tag, sizeof j->tag, "%s", usrTag ? usrTag : "");
    j->cb = cb;
    echo_ctrl_exec(usrTag); /* now, on the caller's thread, while usrTag is valid */
    echo_count(C_ASYNC, 1, C_LIVE_EXEC, 1, C_END);
    echo_async_begin();
    if (j->o.inline_cb) {
        run_job(j);
        return 0;
    }
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &attr, job_thread, j);
    pthread_attr_destroy(&attr);
    if (rc) {
        echo_list_free(j->resp);
        free(j);
        echo_count(C_ASYNC, -1, C_LIVE_EXEC, -1, C_END);
        echo_async_end();
        return ECHO_ERR_THREAD;
    }
    return 0;
}
