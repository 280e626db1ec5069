/*
 * libgpusim: a stand-in for a GPU engine, to show and test batching
 * (docs/BATCHING.md) where there is no GPU. A call costs call_ms plus item_us
 * per item, as a kernel launch with its transfers costs about as much for one
 * input as for sixteen, and the simulated device runs one call at a time
 * (exclusive=true): more instances add no throughput, bigger batches do.
 *
 * Once-sync (wrapperExec / wrapperExecFree) and the aiges batch extension
 * (wrapperExecBatch). Every input node comes back unchanged, plus "batch": the
 * number of requests the call ran (1 for wrapperExec).
 * wrapperInit config ([wrapper]):
 *   call_ms=N        fixed cost of a call in ms (default 20)
 *   item_us=N        cost of each item in microseconds (default 100)
 *   exclusive=B      one call at a time on the device (default true)
 *   counters_file=P  libecho's counters line, plus batches= (calls of wrapperExecBatch)
 * Request params:
 *   fail=N           this item fails with N (the others of its batch do not)
 *   fail_batch=N     the whole call fails with N (wrapperExec: the request)
 *   delay_ms=N       the call takes N ms longer (the once timeout tests)
 */
#define _POSIX_C_SOURCE 200809L
#include "wrapper.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { GPUSIM_ERR_ARG = 60001, GPUSIM_ERR_NOMEM = 60002 };

static long g_call_us = 20000, g_item_us = 100;
static int g_exclusive = 1;
static pthread_mutex_t g_device = PTHREAD_MUTEX_INITIALIZER; /* the simulated GPU */

/* ---- counters ---- */
enum { C_INIT, C_FINI, C_EXEC, C_EXECFREE, C_LIVE_EXEC, C_BATCHES, C_COUNT };
static pthread_mutex_t g_count_mu = PTHREAD_MUTEX_INITIALIZER;
static long long g_count[C_COUNT];
static char* g_counters_path;

static void write_counters_locked(void)
{
    if (!g_counters_path)
        return;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", g_counters_path);
    FILE* f = fopen(tmp, "w");
    if (!f)
        return;
    const long long* c = g_count;
    fprintf(f,
            "init=%lld fini=%lld exec=%lld execfree=%lld live_exec=%lld async=0 callbacks=0 "
            "create=0 destroy=0 live_sessions=0 loadres=0 unloadres=0 batches=%lld\n",
            c[C_INIT], c[C_FINI], c[C_EXEC], c[C_EXECFREE], c[C_LIVE_EXEC], c[C_BATCHES]);
    if (fclose(f) == 0)
        rename(tmp, g_counters_path);
}

/* count(C_X, dx, C_Y, dy, -1): several counters changed at once. */
static void count(int a, long long da, int b, long long db, int c, long long dc)
{
    pthread_mutex_lock(&g_count_mu);
    g_count[a] += da;
    if (b >= 0)
        g_count[b] += db;
    if (c >= 0)
        g_count[c] += dc;
    write_counters_locked();
    pthread_mutex_unlock(&g_count_mu);
}

/* ---- params and config ---- */
static const char* value_of(pParamList list, const char* key)
{
    for (; list; list = list->next)
        if (list->key && list->value && strcmp(list->key, key) == 0)
            return list->value;
    return NULL;
}

static long long_of(pParamList list, const char* key, long dflt)
{
    const char* v = value_of(list, key);
    return v && *v ? strtol(v, NULL, 10) : dflt;
}

int WrapperAPI wrapperInit(pConfig cfg)
{
    g_call_us = long_of(cfg, "call_ms", 20) * 1000;
    g_item_us = long_of(cfg, "item_us", 100);
    const char* excl = value_of(cfg, "exclusive");
    g_exclusive = !(excl && (strcmp(excl, "false") == 0 || strcmp(excl, "0") == 0));
    if (g_call_us < 0 || g_item_us < 0)
        return GPUSIM_ERR_ARG;
    const char* path = value_of(cfg, "counters_file");
    pthread_mutex_lock(&g_count_mu);
    free(g_counters_path);
    g_counters_path = path && *path ? strdup(path) : NULL;
    pthread_mutex_unlock(&g_count_mu);
    count(C_INIT, 1, -1, 0, -1, 0);
    return 0;
}

int WrapperAPI wrapperFini(void)
{
    count(C_FINI, 1, -1, 0, -1, 0);
    pthread_mutex_lock(&g_count_mu);
    free(g_counters_path);
    g_counters_path = NULL;
    pthread_mutex_unlock(&g_count_mu);
    return 0;
}

WrapperAPI const char* wrapperVersion(void)
{
    return "gpusim/1.0.0";
}

WrapperAPI const char* wrapperError(int errNum)
{
    switch (errNum) {
    case GPUSIM_ERR_ARG: return "gpusim: invalid argument";
    case GPUSIM_ERR_NOMEM: return "gpusim: out of memory";
    }
    return "gpusim: failure requested";
}

/* ---- the simulated device ---- */
static void run_on_device(long us)
{
    if (g_exclusive)
        pthread_mutex_lock(&g_device);
    struct timespec left = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&left, &left) == -1 && errno == EINTR)
        ;
    if (g_exclusive)
        pthread_mutex_unlock(&g_device);
}

static void list_free(pDataList list)
{
    while (list) {
        pDataList next = list->next;
        free(list->key);
        free(list->data);
        free(list);
        list = next;
    }
}

static pDataList node_new(const char* key, const void* data, unsigned int len, DataType type)
{
    pDataList node = calloc(1, sizeof *node);
    if (!node)
        return NULL;
    node->key = strdup(key ? key : "");
    node->data = malloc(len + 1); /* NUL after the bytes: text is also a C string */
    if (!node->key || !node->data) {
        free(node->key);
        free(node->data);
        free(node);
        return NULL;
    }
    if (len)
        memcpy(node->data, data, len);
    ((char*)node->data)[len] = '\0';
    node->len = len;
    node->type = type;
    node->status = DataOnce;
    return node;
}

/* The inputs back, then "batch": n. */
static int answer(pDataList req, unsigned int n, pDataList* out)
{
    pDataList head = NULL, *tail = &head;
    for (; req; req = req->next) {
        *tail = node_new(req->key, req->data, req->data ? req->len : 0, req->type);
        if (!*tail)
            goto nomem;
        tail = &(*tail)->next;
    }
    char text[16];
    int len = snprintf(text, sizeof text, "%u", n);
    if (!(*tail = node_new("batch", text, (unsigned int)len, DataText)))
        goto nomem;
    *out = head;
    return 0;
nomem:
    list_free(head);
    return GPUSIM_ERR_NOMEM;
}

int WrapperAPI wrapperExec(const char* usrTag, pParamList params, pDataList reqData,
                           pDataList* respData, unsigned int psrIds[], int psrCnt)
{
    (void)usrTag;
    (void)psrIds;
    (void)psrCnt;
    if (!respData)
        return GPUSIM_ERR_ARG;
    *respData = NULL;
    run_on_device(g_call_us + g_item_us + long_of(params, "delay_ms", 0) * 1000);
    int rc = (int)long_of(params, "fail_batch", 0);
    if (!rc)
        rc = (int)long_of(params, "fail", 0);
    if (!rc)
        rc = answer(reqData, 1, respData);
    count(C_EXEC, 1, C_LIVE_EXEC, rc == 0, -1, 0);
    return rc;
}

int WrapperAPI wrapperExecBatch(unsigned int n, const char* usrTags[], pParamList params[],
                                pDataList reqData[], pDataList respData[], int errs[])
{
    (void)usrTags;
    if (!n || !params || !reqData || !respData || !errs)
        return GPUSIM_ERR_ARG;
    long extra_ms = 0;
    int batch_rc = 0;
    for (unsigned int i = 0; i < n; i++) {
        respData[i] = NULL;
        errs[i] = 0;
        long d = long_of(params[i], "delay_ms", 0);
        extra_ms = d > extra_ms ? d : extra_ms;
        if (!batch_rc)
            batch_rc = (int)long_of(params[i], "fail_batch", 0);
    }
    run_on_device(g_call_us + g_item_us * (long)n + extra_ms * 1000);
    count(C_BATCHES, 1, -1, 0, -1, 0);
    if (batch_rc)
        return batch_rc;
    long long answered = 0;
    for (unsigned int i = 0; i < n; i++) {
        errs[i] = (int)long_of(params[i], "fail", 0);
        if (!errs[i])
            errs[i] = answer(reqData[i], n, &respData[i]);
        answered += errs[i] == 0;
    }
    count(C_EXEC, n, C_LIVE_EXEC, answered, -1, 0);
    return 0;
}

int WrapperAPI wrapperExecFree(const char* usrTag, pDataList* respData)
{
    (void)usrTag;
    if (!respData)
        return GPUSIM_ERR_ARG;
    pDataList list = *respData;
    *respData = NULL;
    list_free(list);
    count(C_EXECFREE, 1, C_LIVE_EXEC, list ? -1 : 0, -1, 0);
    return 0;
}
