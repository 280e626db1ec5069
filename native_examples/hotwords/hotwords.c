/*
 * libhotwords: a once-sync engine that uses personalization resources.
 *
 * wrapperLoadRes(perData, resId) stores the words of perData (newline, comma or
 * blank separated; compared lower-cased, ASCII) as hot-word list resId; an id
 * already loaded is refused, nothing is replaced. wrapperUnloadRes(resId)
 * drops it. wrapperExec answers "result" (DataText, DataOnce): the first
 * input's text with every word of the lists named by psrIds in brackets,
 * "turn on the [lamp]"; with no psrIds the text comes back unchanged, and a
 * psrId that is not loaded fails the call ("hotwords: resource 7 is not loaded").
 *
 * Config: counters_file = path of a one-line counters file in libecho's format
 * (the test oracle for loadres/unloadres balance).
 *
 * Thread-safe: the lists sit behind a rwlock (execs read in parallel), the
 * counters behind a mutex. wrapperError names the resource of the last
 * failure on the calling thread: the loader asks on the thread that failed.
 */
#define _POSIX_C_SOURCE 200809L
#include "hotwords_internal.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#define HOTWORDS_VERSION "hotwords/1.0.0"

struct resource {
    unsigned int id;
    struct wordlist words;
    struct resource* next;
};
static pthread_rwlock_t g_res_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct resource* g_res;

/* Counters, in the order of libecho's line; the session/async ones stay 0. */
enum { C_INIT, C_FINI, C_EXEC, C_EXECFREE, C_LIVE_EXEC, C_LOADRES, C_UNLOADRES, C_COUNT };
static pthread_mutex_t g_count_mu = PTHREAD_MUTEX_INITIALIZER;
static long long g_count[C_COUNT];
static char* g_counters_path; /* NULL: no counters_file */

/* Text of this thread's last failure, for wrapperError. */
static _Thread_local int t_error_code;
static _Thread_local char t_error[128];

__attribute__((format(printf, 2, 3))) static int fail(int code, const char* fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_error, sizeof t_error, fmt, ap);
    va_end(ap);
    t_error_code = code;
    return code;
}

/* Written to path.tmp and renamed over path: readers never see a partial line. */
static void write_counters_locked(void)
{
    if (!g_counters_path)
        return;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", g_counters_path) >= (int)sizeof tmp)
        return;
    FILE* f = fopen(tmp, "w");
    if (!f)
        return;
    const long long* c = g_count;
    fprintf(f,
            "init=%lld fini=%lld exec=%lld execfree=%lld live_exec=%lld async=0 "
            "callbacks=0 create=0 destroy=0 live_sessions=0 loadres=%lld unloadres=%lld\n",
            c[C_INIT], c[C_FINI], c[C_EXEC], c[C_EXECFREE], c[C_LIVE_EXEC], c[C_LOADRES],
            c[C_UNLOADRES]);
    if (fclose(f) == 0)
        rename(tmp, g_counters_path);
}

static void count(int counter, int delta)
{
    pthread_mutex_lock(&g_count_mu);
    g_count[counter] += delta;
    write_counters_locked();
    pthread_mutex_unlock(&g_count_mu);
}

/* Caller holds g_res_lock. */
static struct resource* find_locked(unsigned int id)
{
    struct resource* r = g_res;
    while (r && r->id != id)
        r = r->next;
    return r;
}

int WrapperAPI wrapperInit(pConfig cfg)
{
    const char* path = NULL;
    for (pConfig c = cfg; c; c = c->next)
        if (c->key && c->value && strcmp(c->key, "counters_file") == 0)
            path = c->value;
    char* copy = path ? strdup(path) : NULL;
    if (path && !copy)
        return fail(HW_ERR_NOMEM, "hotwords: out of memory");
    pthread_mutex_lock(&g_count_mu);
    memset(g_count, 0, sizeof g_count);
    free(g_counters_path);
    g_counters_path = copy;
    g_count[C_INIT]++;
    write_counters_locked();
    pthread_mutex_unlock(&g_count_mu);
    return 0;
}

int WrapperAPI wrapperFini(void)
{
    pthread_rwlock_wrlock(&g_res_lock);
    while (g_res) {
        struct resource* next = g_res->next;
        hw_words_free(&g_res->words);
        free(g_res);
        g_res = next;
    }
    pthread_rwlock_unlock(&g_res_lock);
    pthread_mutex_lock(&g_count_mu);
    g_count[C_FINI]++;
    write_counters_locked();
    free(g_counters_path);
    g_counters_path = NULL;
    pthread_mutex_unlock(&g_count_mu);
    return 0;
}

/* WrapperAPI before the return type: after `const char*` GCC reads it as an
 * attribute of the pointer type and warns. */
WrapperAPI const char* wrapperVersion(void)
{
    return HOTWORDS_VERSION;
}

WrapperAPI const char* wrapperError(int errNum)
{
    if (errNum != 0 && errNum == t_error_code)
        return t_error;
    switch (errNum) {
    case HW_ERR_ARG: return "hotwords: invalid argument";
    case HW_ERR_NOMEM: return "hotwords: out of memory";
    case HW_ERR_NOT_LOADED: return "hotwords: resource is not loaded";
    case HW_ERR_LOADED: return "hotwords: resource is already loaded";
    case HW_ERR_EMPTY: return "hotwords: resource holds no words";
    }
    return "hotwords: unknown error";
}

int WrapperAPI wrapperLoadRes(pDataList perData, unsigned int resId)
{
    struct resource* r = calloc(1, sizeof *r);
    if (!r)
        return fail(HW_ERR_NOMEM, "hotwords: out of memory");
    int rc = hw_words_parse(perData, &r->words);
    if (rc) {
        free(r);
        return rc == HW_ERR_EMPTY
                   ? fail(rc, "hotwords: resource %u holds no words (send a newline or comma "
                              "separated list)", resId)
                   : fail(rc, "hotwords: out of memory");
    }
    r->id = resId;
    pthread_rwlock_wrlock(&g_res_lock);
    int taken = find_locked(resId) != NULL;
    if (!taken) {
        r->next = g_res;
        g_res = r;
    }
    pthread_rwlock_unlock(&g_res_lock);
    if (taken) {
        hw_words_free(&r->words);
        free(r);
        return fail(HW_ERR_LOADED, "hotwords: resource %u is already loaded", resId);
    }
    count(C_LOADRES, 1);
    return 0;
}

int WrapperAPI wrapperUnloadRes(unsigned int resId)
{
    struct resource* found = NULL;
    pthread_rwlock_wrlock(&g_res_lock);
    for (struct resource** p = &g_res; *p; p = &(*p)->next)
        if ((*p)->id == resId) {
            found = *p;
            *p = found->next;
            break;
        }
    pthread_rwlock_unlock(&g_res_lock);
    if (!found)
        return fail(HW_ERR_NOT_LOADED, "hotwords: resource %u is not loaded", resId);
    hw_words_free(&found->words);
    free(found);
    count(C_UNLOADRES, 1);
    return 0;
}

static pDataList text_node(const char* key, char* text, size_t len)
{
    pDataList node = calloc(1, sizeof *node);
    char* k = strdup(key);
    if (!node || !k) {
        free(node);
        free(k);
        return NULL;
    }
    node->key = k;
    node->data = text;
    node->len = (unsigned int)len;
    node->type = DataText;
    node->status = DataOnce;
    return node;
}

/* The marked text of input, with the lists of psrIds; holds the read lock. */
static int mark_input(pDataList input, const unsigned int* psrIds, int psrCnt, char** out,
                      size_t* out_len)
{
    const struct wordlist** lists = calloc(psrCnt > 0 ? (size_t)psrCnt : 1, sizeof *lists);
    if (!lists)
        return fail(HW_ERR_NOMEM, "hotwords: out of memory");
    int rc = 0;
    pthread_rwlock_rdlock(&g_res_lock);
    for (int i = 0; i < psrCnt && !rc; i++) {
        const struct resource* r = find_locked(psrIds[i]);
        if (r)
            lists[i] = &r->words;
        else
            rc = fail(HW_ERR_NOT_LOADED, "hotwords: resource %u is not loaded", psrIds[i]);
    }
    if (!rc) {
        *out = hw_mark(input->data ? input->data : "", input->data ? input->len : 0, lists,
                       (size_t)psrCnt, out_len);
        if (!*out)
            rc = fail(HW_ERR_NOMEM, "hotwords: out of memory");
    }
    pthread_rwlock_unlock(&g_res_lock);
    free(lists);
    return rc;
}

int WrapperAPI wrapperExec(const char* usrTag, pParamList params, pDataList reqData,
                           pDataList* respData, unsigned int psrIds[], int psrCnt)
{
    (void)usrTag;
    (void)params;
    count(C_EXEC, 1);
    if (!respData)
        return fail(HW_ERR_ARG, "hotwords: respData is NULL");
    *respData = NULL;
    if (!reqData)
        return fail(HW_ERR_ARG, "hotwords: no input text");
    if (psrCnt < 0 || (psrCnt > 0 && !psrIds))
        return fail(HW_ERR_ARG, "hotwords: bad psrIds (count %d)", psrCnt);
    char* text;
    size_t len;
    int rc = mark_input(reqData, psrIds, psrCnt, &text, &len);
    if (rc)
        return rc;
    if (len > UINT_MAX) { /* DataList.len is an unsigned int */
        free(text);
        return fail(HW_ERR_ARG, "hotwords: result of %zu bytes is too long", len);
    }
    *respData = text_node("result", text, len);
    if (!*respData) {
        free(text);
        return fail(HW_ERR_NOMEM, "hotwords: out of memory");
    }
    count(C_LIVE_EXEC, 1);
    return 0;
}

int WrapperAPI wrapperExecFree(const char* usrTag, pDataList* respData)
{
    (void)usrTag;
    if (!respData)
        return fail(HW_ERR_ARG, "hotwords: respData is NULL");
    pDataList list = *respData;
    *respData = NULL;
    int freed = 0;
    while (list) {
        pDataList next = list->next;
        free(list->key);
        free(list->data);
        free(list);
        list = next;
        freed = 1;
    }
    pthread_mutex_lock(&g_count_mu);
    g_count[C_EXECFREE]++;
    g_count[C_LIVE_EXEC] -= freed;
    write_counters_locked();
    pthread_mutex_unlock(&g_count_mu);
    return 0;
}
