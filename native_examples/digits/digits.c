/*
 * libdigits: a real (small) model behind the wrapper ABI. It classifies an
 * 8x8 grayscale image of a handwritten digit with an MLP 64 -> 32 -> 10
 * trained by tools/train_digits.py on scikit-learn's digits data set.
 *
 * Once-sync (wrapperExec/ExecFree), and wrapperExecBatch (the aiges batch
 * extension: the images of several requests in one pass of the backend).
 *   input  "image": 64 bytes, row-major, 0 = background, 255 = full ink
 *   output "result": DataText/DataOnce JSON {"digit":D,"scores":[10 probabilities]}
 * wrapperInit config:
 *   model=PATH          the DGT1 weights file (default: digits.weights of the
 *                       source tree, compiled in as DIGITS_DEFAULT_MODEL)
 *   counters_file=PATH  optional: the same one-line call counters as libecho's
 *
 * Threads: the model is read-only after wrapperInit, so any number of
 * wrapperExec calls run at once; a read-write lock only keeps them apart from
 * a re-init or fini.
 *
 * The forward pass is the backend's (digits_internal.h): digits_cpu.c here;
 * ../digits_cuda builds this same file around a GPU backend as libdigits_cuda,
 * with its own DIGITS_VERSION.
 */
#define _POSIX_C_SOURCE 200809L
#include "digits_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#ifndef DIGITS_VERSION
#define DIGITS_VERSION "digits/1.0.0"
#endif
#ifndef DIGITS_DEFAULT_MODEL
#define DIGITS_DEFAULT_MODEL "digits.weights"
#endif

static pthread_rwlock_t g_model_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct digits_model* g_model;

/* Error texts that name a value (a size, a path). wrapperError gets only the
 * code, so the text of the calling thread's last error is kept per thread: the
 * loader asks right after the failing call, on the same thread. Another
 * thread gets the code's fixed text. Init errors are also kept globally,
 * since start-up has no concurrent requests to confuse. */
static _Thread_local int t_err_code;
static _Thread_local char t_err_text[512];
static char g_init_err[512];

__attribute__((format(printf, 2, 3))) static int fail(int code, const char* fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_err_text, sizeof t_err_text, fmt, ap);
    va_end(ap);
    t_err_code = code;
    return code;
}

/* ---- counters (counters_file), for the loader's leak and call checks ---- */
enum { C_INIT, C_FINI, C_EXEC, C_EXECFREE, C_LIVE_EXEC, C_COUNT };
static pthread_mutex_t g_count_mu = PTHREAD_MUTEX_INITIALIZER;
static long long g_count[C_COUNT];
static char* g_counters_path; /* NULL: no counters_file */

static void write_counters_locked(void)
{
    if (!g_counters_path)
        return;
    size_t n = strlen(g_counters_path);
    char* tmp = malloc(n + sizeof ".tmp");
    FILE* f = tmp ? fopen(strcat(strcpy(tmp, g_counters_path), ".tmp"), "w") : NULL;
    if (f) {
        /* libecho's line, so the same readers work; digits has no sessions,
         * async calls or resources. */
        const long long* c = g_count;
        fprintf(f,
                "init=%lld fini=%lld exec=%lld execfree=%lld live_exec=%lld async=0 "
                "callbacks=0 create=0 destroy=0 live_sessions=0 loadres=0 unloadres=0\n",
                c[C_INIT], c[C_FINI], c[C_EXEC], c[C_EXECFREE], c[C_LIVE_EXEC]);
        if (fclose(f) == 0)
            rename(tmp, g_counters_path); /* readers never see a partial line */
    }
    free(tmp);
}

/* One change of a call counter and of live_exec (outputs not yet freed). */
static void count(int counter, int live_delta)
{
    pthread_mutex_lock(&g_count_mu);
    g_count[counter]++;
    g_count[C_LIVE_EXEC] += live_delta;
    write_counters_locked();
    pthread_mutex_unlock(&g_count_mu);
}

/* ---- config ---- */
static const char* config_value(pConfig cfg, const char* key)
{
    for (; cfg; cfg = cfg->next)
        if (cfg->key && cfg->value && cfg->value[0] && strcmp(cfg->key, key) == 0)
            return cfg->value;
    return NULL;
}

static int set_counters_file(const char* path)
{
    char* copy = NULL;
    if (path && !(copy = malloc(strlen(path) + 1)))
        return fail(DIGITS_ERR_NOMEM, "digits: out of memory");
    if (copy)
        strcpy(copy, path);
    pthread_mutex_lock(&g_count_mu);
    free(g_counters_path);
    g_counters_path = copy;
    g_count[C_INIT]++;
    write_counters_locked();
    pthread_mutex_unlock(&g_count_mu);
    return 0;
}

int WrapperAPI wrapperInit(pConfig cfg)
{
    const char* path = config_value(cfg, "model");
    struct digits_model* m;
    int rc = digits_model_load(path ? path : DIGITS_DEFAULT_MODEL, &m, g_init_err,
                               sizeof g_init_err);
    if (rc)
        return fail(rc, "%s", g_init_err);
    rc = digits_backend_open(m, g_init_err, sizeof g_init_err);
    if (rc) {
        digits_model_free(m);
        return fail(rc, "%s", g_init_err);
    }
    rc = set_counters_file(config_value(cfg, "counters_file"));
    if (rc) {
        digits_model_free(m);
        return rc;
    }
    g_init_err[0] = '\0';
    pthread_rwlock_wrlock(&g_model_lock);
    struct digits_model* old = g_model; /* a second init replaces the model */
    g_model = m;
    pthread_rwlock_unlock(&g_model_lock);
    digits_model_free(old);
    return 0;
}

int WrapperAPI wrapperFini(void)
{
    pthread_rwlock_wrlock(&g_model_lock);
    digits_model_free(g_model);
    g_model = NULL;
    pthread_rwlock_unlock(&g_model_lock);

    pthread_mutex_lock(&g_count_mu);
    g_count[C_FINI]++;
    write_counters_locked();
    free(g_counters_path);
    g_counters_path = NULL;
    pthread_mutex_unlock(&g_count_mu);
    return 0;
}

/* WrapperAPI before the return type: after `const char*` GCC reads it as
 * an attribute of the pointer type and warns. */
WrapperAPI const char* wrapperVersion(void)
{
    return DIGITS_VERSION;
}

static const char* fixed_text(int errNum)
{
    switch (errNum) {
    case DIGITS_ERR_ARG: return "digits: invalid argument";
    case DIGITS_ERR_NOMEM: return "digits: out of memory";
    case DIGITS_ERR_NOINIT: return "digits: no model loaded (wrapperInit failed or was not called)";
    case DIGITS_ERR_INPUT: return "digits: no input \"image\"";
    case DIGITS_ERR_SIZE: return "digits: image must be 64 bytes (8x8 grayscale)";
    case DIGITS_ERR_MODEL_OPEN:
    case DIGITS_ERR_MODEL_BAD: return g_init_err[0] ? g_init_err : "digits: cannot load the model";
    case DIGITS_ERR_DEVICE: return g_init_err[0] ? g_init_err : "digits: the device failed";
    }
    return "digits: unknown error";
}

WrapperAPI const char* wrapperError(int errNum)
{
    return errNum == t_err_code && t_err_text[0] ? t_err_text : fixed_text(errNum);
}

static pDataList result_node(int digit, const double* scores, unsigned n)
{
    pDataList node = calloc(1, sizeof *node);
    char* key = malloc(sizeof "result");
    char* json = digits_result_json(digit, scores, n);
    if (!node || !key || !json) {
        free(node);
        free(key);
        free(json);
        return NULL;
    }
    node->key = strcpy(key, "result");
    node->data = json; /* its NUL stays after len: the text is also a C string */
    node->len = (unsigned int)strlen(json);
    node->type = DataText;
    node->status = DataOnce;
    return node;
}

static int classify(const unsigned char* image, pDataList* out)
{
    double scores[DIGITS_MAX_OUTPUTS];
    char err[256];
    int digit;
    pthread_rwlock_rdlock(&g_model_lock);
    if (!g_model) {
        pthread_rwlock_unlock(&g_model_lock);
        return fail(DIGITS_ERR_NOINIT, "%s", fixed_text(DIGITS_ERR_NOINIT));
    }
    unsigned n = g_model->n_out;
    int rc = digits_classify(g_model, image, scores, &digit, err, sizeof err);
    pthread_rwlock_unlock(&g_model_lock);
    if (rc)
        return fail(rc, "%s", err);
    *out = result_node(digit, scores, n);
    return *out ? 0 : fail(DIGITS_ERR_NOMEM, "digits: out of memory");
}

/* The 64 bytes of input "image" in *px, or the request's error. */
static int find_image(pDataList reqData, const unsigned char** px)
{
    pDataList image = reqData;
    while (image && !(image->key && strcmp(image->key, "image") == 0))
        image = image->next;
    if (!image)
        return fail(DIGITS_ERR_INPUT, "digits: no input \"image\"");
    unsigned int len = image->data ? image->len : 0;
    if (len != DIGITS_INPUTS)
        return fail(DIGITS_ERR_SIZE, "digits: image must be 64 bytes (8x8 grayscale), got %u",
                    len);
    *px = image->data;
    return 0;
}

static int exec_image(pDataList reqData, pDataList* respData)
{
    if (!respData)
        return fail(DIGITS_ERR_ARG, "digits: invalid argument (respData is NULL)");
    *respData = NULL;
    const unsigned char* px;
    int rc = find_image(reqData, &px);
    return rc ? rc : classify(px, respData);
}

/* Classifies the n images in one pass of the backend (on a GPU: one launch); the
 * result of image k goes to respData[at[k]], its error to errs[at[k]]. */
static int classify_batch(const unsigned char* const images[], const unsigned* at, unsigned n,
                          pDataList respData[], int errs[])
{
    char err[256];
    pthread_rwlock_rdlock(&g_model_lock);
    if (!g_model) {
        pthread_rwlock_unlock(&g_model_lock);
        return fail(DIGITS_ERR_NOINIT, "%s", fixed_text(DIGITS_ERR_NOINIT));
    }
    unsigned n_out = g_model->n_out;
    double* scores = malloc((size_t)n * n_out * sizeof *scores);
    int* digit = malloc(n * sizeof *digit);
    int rc = scores && digit ? digits_classify_batch(g_model, images, n, scores, digit, err,
                                                     sizeof err)
                             : DIGITS_ERR_NOMEM;
    pthread_rwlock_unlock(&g_model_lock);
    for (unsigned k = 0; !rc && k < n; k++) {
        respData[at[k]] = result_node(digit[k], scores + (size_t)k * n_out, n_out);
        errs[at[k]] = respData[at[k]] ? 0 : DIGITS_ERR_NOMEM;
    }
    free(scores);
    free(digit);
    return rc ? fail(rc, "%s", rc == DIGITS_ERR_NOMEM ? "digits: out of memory" : err) : 0;
}

int WrapperAPI wrapperExec(const char* usrTag, pParamList params, pDataList reqData,
                           pDataList* respData, unsigned int psrIds[], int psrCnt)
{
    (void)usrTag;
    (void)params;
    (void)psrIds;
    (void)psrCnt;
    int rc = exec_image(reqData, respData);
    count(C_EXEC, rc == 0);
    return rc;
}

/* The aiges batch extension: the images of n requests classified in one pass of
 * the backend. A request without a valid image fails alone; a backend failure
 * fails the call. */
int WrapperAPI wrapperExecBatch(unsigned int n, const char* usrTags[], pParamList params[],
                                pDataList reqData[], pDataList respData[], int errs[])
{
    (void)usrTags;
    (void)params;
    if (!n || !reqData || !respData || !errs)
        return fail(DIGITS_ERR_ARG, "digits: invalid argument (NULL array)");
    const unsigned char** images = malloc(n * sizeof *images);
    unsigned* at = malloc(n * sizeof *at);
    if (!images || !at) {
        free(images);
        free(at);
        return fail(DIGITS_ERR_NOMEM, "digits: out of memory");
    }
    unsigned valid = 0;
    for (unsigned i = 0; i < n; i++) {
        respData[i] = NULL;
        errs[i] = find_image(reqData[i], &images[valid]);
        if (!errs[i])
            at[valid++] = i;
    }
    /* Per-item errors get their code's fixed text: one thread-local text cannot
     * tell apart several items' messages. */
    t_err_code = 0;
    int rc = valid ? classify_batch(images, at, valid, respData, errs) : 0;
    free(images);
    free(at);
    for (unsigned i = 0; i < n; i++)
        count(C_EXEC, respData[i] != NULL);
    return rc;
}

int WrapperAPI wrapperExecFree(const char* usrTag, pDataList* respData)
{
    (void)usrTag;
    if (!respData)
        return fail(DIGITS_ERR_ARG, "digits: invalid argument (respData is NULL)");
    pDataList list = *respData;
    *respData = NULL;
    count(C_EXECFREE, list ? -1 : 0);
    while (list) {
        pDataList next = list->next;
        free(list->key);
        free(list->data);
        free(list);
        list = next;
    }
    return 0;
}
