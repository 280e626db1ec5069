/*
 * libecho: deep copies of loader lists and the JSON text of outputs.
 * Inputs belong to the loader and die with the call, so everything the engine
 * keeps or returns is copied here; every allocation is owned by one list and
 * released by its *_free.
 */
#define _POSIX_C_SOURCE 200809L
#include "echo_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* NULL becomes "" so outputs are always NUL-terminated strings. */
static char* dup_str(const char* s)
{
    size_t n = strlen(s ? s : "");
    char* p = malloc(n + 1);
    if (p)
        memcpy(p, s ? s : "", n + 1);
    return p;
}

const char* echo_param(pParamList params, const char* key)
{
    for (; params; params = params->next)
        if (params->key && strcmp(params->key, key) == 0)
            return params->value ? params->value : "";
    return NULL;
}

int echo_param_true(pParamList params, const char* key)
{
    const char* v = echo_param(params, key);
    return v && strcmp(v, "true") == 0;
}

int echo_param_int(pParamList params, const char* key, int* out)
{
    const char* v = echo_param(params, key);
    if (!v)
        return 0;
    char* end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (end == v || *end != '\0' || errno || n < INT_MIN || n > INT_MAX)
        return ECHO_ERR_ARG;
    *out = (int)n;
    return 0;
}

void echo_params_free(pParamList list)
{
    while (list) {
        pParamList next = list->next;
        free(list->key);
        free(list->value);
        free(list);
        list = next;
    }
}

pParamList echo_params_copy(pParamList in, int* ok)
{
    pParamList head = NULL, *tail = &head;
    for (; in; in = in->next) {
        pParamList n = calloc(1, sizeof *n);
        if (n) {
            n->key = dup_str(in->key);
            n->value = dup_str(in->value);
        }
        if (!n || !n->key || !n->value) {
            echo_params_free(n);
            echo_params_free(head);
            *ok = 0;
            return NULL;
        }
        n->vlen = (unsigned int)strlen(n->value);
        *tail = n;
        tail = &n->next;
    }
    *ok = 1;
    return head;
}

void echo_list_free(pDataList list)
{
    while (list) {
        pDataList next = list->next;
        free(list->key);
        free(list->data);
        echo_params_free(list->desc);
        free(list);
        list = next;
    }
}

/* data gets a spare NUL byte so text outputs are also C strings. */
static pDataList node_new(const char* key, const void* data, unsigned int len,
                          DataType type, DataStatus status)
{
    pDataList n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    if (!data)
        len = 0; /* a NULL buffer carries nothing, whatever len says */
    n->key = dup_str(key);
    n->data = malloc((size_t)len + 1);
    if (!n->key || !n->data) {
        echo_list_free(n);
        return NULL;
    }
    if (len)
        memcpy(n->data, data, len);
    ((char*)n->data)[len] = '\0';
    n->len = len;
    n->type = type;
    n->status = status;
    return n;
}

pDataList echo_text_node(const char* key, const char* text)
{
    return node_new(key, text, (unsigned int)strlen(text), DataText, DataOnce);
}

int echo_list_copy(pDataList in, pDataList* out)
{
    pDataList head = NULL, *tail = &head;
    for (; in; in = in->next) {
        int ok = 0;
        pDataList n = node_new(in->key, in->data, in->len, in->type, in->status);
        if (n)
            n->desc = echo_params_copy(in->desc, &ok);
        if (!ok) {
            echo_list_free(n);
            echo_list_free(head);
            *out = NULL;
            return ECHO_ERR_NOMEM;
        }
        *tail = n;
        tail = &n->next;
    }
    *out = head;
    return 0;
}

/* A growing string; after a failed allocation it only records the failure. */
typedef struct {
    char* p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf* b, const char* s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char* p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static char* sb_finish(sbuf* b)
{
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    return b->p;
}

/* Bytes >= 0x80 pass through: values are UTF-8 text from the loader. */
static void sb_json_str(sbuf* b, const char* s)
{
    sb_put(b, "\"", 1);
    for (const unsigned char* c = (const unsigned char*)(s ? s : ""); *c; c++) {
        char esc[8];
        switch (*c) {
        case '"': sb_put(b, "\\\"", 2); break;
        case '\\': sb_put(b, "\\\\", 2); break;
        case '\n': sb_put(b, "\\n", 2); break;
        case '\r': sb_put(b, "\\r", 2); break;
        case '\t': sb_put(b, "\\t", 2); break;
        default:
            if (*c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *c);
                sb_put(b, esc, 6);
            } else {
                sb_put(b, (const char*)c, 1);
            }
        }
    }
    sb_put(b, "\"", 1);
}

char* echo_params_json(pParamList params)
{
    sbuf b = {0};
    sb_put(&b, "{", 1);
    for (pParamList p = params; p; p = p->next) {
        if (p != params)
            sb_put(&b, ",", 1);
        sb_json_str(&b, p->key);
        sb_put(&b, ":", 1);
        sb_json_str(&b, p->value);
    }
    sb_put(&b, "}", 1);
    return sb_finish(&b);
}

char* echo_psr_text(const unsigned int* ids, int n)
{
    sbuf b = {0};
    sb_put(&b, "", 0); /* "" rather than NULL when n == 0 */
    for (int i = 0; i < n; i++) {
        char num[16];
        int len = snprintf(num, sizeof num, i ? ",%u" : "%u", ids[i]);
        sb_put(&b, num, (size_t)len);
    }
    return sb_finish(&b);
}
