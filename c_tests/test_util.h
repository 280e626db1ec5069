/* Shared by the c_tests: failure reporting and loader-style input lists. */
#ifndef AIGES_TEST_UTIL_H
#define AIGES_TEST_UTIL_H

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "type.h"

static int g_failures;

/* Reports a failed check with its own message; returns ok. */
__attribute__((format(printf, 5, 6))) static inline int check_(int ok, const char* expr,
                                                               const char* file, int line,
                                                               const char* fmt, ...)
{
    if (!ok) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s:%d: FAILED: %s -- ", file, line, expr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        g_failures++;
    }
    return ok;
}

/* Records a failure and goes on, so one run reports every broken check. */
#define CHECK(cond, ...) check_((cond) != 0, #cond, __FILE__, __LINE__, __VA_ARGS__)

/* For checks the rest of the test cannot run without. */
#define REQUIRE(cond, ...)                 \
    do {                                   \
        if (!CHECK(cond, __VA_ARGS__))     \
            exit(1);                       \
    } while (0)

static inline int test_exit(const char* name)
{
    if (g_failures)
        fprintf(stderr, "%s: %d check(s) failed\n", name, g_failures);
    else
        printf("%s: all checks passed\n", name);
    return g_failures ? 1 : 0;
}

static inline void* open_lib(const char* path)
{
    void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    REQUIRE(lib != NULL, "dlopen(%s): %s", path, dlerror());
    return lib;
}

/* dlsym into a function pointer without the ISO C object/function cast warning. */
#define LOAD(lib, var, name)                                                      \
    do {                                                                          \
        void* sym_ = dlsym(lib, name);                                            \
        REQUIRE(sym_ != NULL, "dlsym(%s) failed", name);                          \
        memcpy(&(var), &sym_, sizeof sym_);                                       \
    } while (0)

/* Links n caller-owned nodes from "k1", "v1", "k2", "v2", ... (stack memory,
 * like the loader's call-scoped inputs). Returns NULL for n == 0. */
static inline pParamList make_params(struct ParamList* nodes, const char* const* kv, int n)
{
    for (int i = 0; i < n; i++) {
        nodes[i].key = (char*)kv[2 * i];
        nodes[i].value = (char*)kv[2 * i + 1];
        nodes[i].vlen = (unsigned int)strlen(kv[2 * i + 1]);
        nodes[i].next = i + 1 < n ? &nodes[i + 1] : NULL;
    }
    return n ? nodes : NULL;
}

static inline void set_data(struct DataList* node, const char* key, const char* text, DataStatus status,
                     struct DataList* next)
{
    memset(node, 0, sizeof *node);
    node->key = (char*)key;
    node->data = (void*)text;
    node->len = (unsigned int)strlen(text);
    node->type = DataText;
    node->status = status;
    node->next = next;
}

/* Does node carry exactly this key and these bytes? */
static inline int node_is(const struct DataList* node, const char* key, const char* data)
{
    return node && node->key && strcmp(node->key, key) == 0 && node->len == strlen(data) &&
           memcmp(node->data, data, node->len) == 0;
}

static inline int list_len(const struct DataList* list)
{
    int n = 0;
    for (; list; list = list->next)
        n++;
    return n;
}

#endif /* AIGES_TEST_UTIL_H */
