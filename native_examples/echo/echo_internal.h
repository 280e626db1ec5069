/*
 * Internal to libecho: shared by its .c files, never exported (the target is
 * built with hidden visibility; only the WrapperAPI functions are public).
 */
#ifndef ECHO_INTERNAL_H
#define ECHO_INTERNAL_H

#include "wrapper.h"

/* wrapperVersion. A second build (libecho_next.so) defines its own, and
 * ECHO_MARK_VERSION, so that a hot reload shows in every once answer. */
#ifndef ECHO_VERSION
#define ECHO_VERSION "echo/1.0.0"
#endif

/* Error codes of the engine itself; wrapperError also names codes that a
 * request asked for through `fail`, `fail_create` or `fail_write`. */
enum {
    ECHO_ERR_HANDLE = 30001, /* unknown or NULL session handle */
    ECHO_ERR_ARG = 30002,    /* bad argument or malformed param value */
    ECHO_ERR_NOMEM = 30003,
    ECHO_ERR_RES = 30004,    /* unknown resource id */
    ECHO_ERR_THREAD = 30005, /* pthread_create failed */
    ECHO_ERR_CTRL = 30006,   /* unknown CtrlType */
    ECHO_ERR_CANCELLED = 30007 /* stopped early: wrapperCancel named its usrTag */
};

/* Counters in counters_file, in the order of the line (live_sessions is
 * derived: create - destroy). */
enum {
    C_INIT, C_FINI, C_EXEC, C_EXECFREE, C_LIVE_EXEC, C_ASYNC, C_CALLBACKS,
    C_CREATE, C_DESTROY, C_LOADRES, C_UNLOADRES, C_CANCELS, C_CANCELLED, C_COUNT
};
#define C_END (-1)

/* echo_count(C_X, dx, C_Y, dy, ..., C_END): one atomic change of several
 * counters, so a reader of counters_file never sees half of it. */
void echo_count(int counter, ...);

/* Remember a code a request asked for, so wrapperError can name it. */
void echo_fail_requested(int code);

/* Sleep ms milliseconds unless wrapperFini runs; returns 1 if it does. */
int echo_sleep_ms(int ms);

/* Sleep ms milliseconds for the request or session `tag` (a copy of its usrTag):
 * 0 when the time is up, 1 if wrapperFini runs, ECHO_ERR_CANCELLED (counted in
 * "cancelled") as soon as wrapperCancel(tag) comes, or at once if it came already. */
int echo_sleep_tag_ms(const char* tag, int ms);

/* Async work in flight: wrapperFini waits until none is left. */
void echo_async_begin(void);
void echo_async_end(void);

/* Meter and trace callbacks from wrapperSetCtrl, for one exec. */
void echo_ctrl_exec(const char* usrTag);
/* Meter "echo_late" and trace "late" with usrTag (its value only: it is stale by
 * then), and trace "late_null" with NULL, ms milliseconds from now on a detached
 * thread (skipped if wrapperFini comes first); 0 or ECHO_ERR_NOMEM/THREAD. */
int echo_ctrl_later(const char* usrTag, int ms);

/* Config push=true: sessions deliver through the callback of wrapperCreate;
 * otherwise they are read (the loader hands every session a callback). */
int echo_push(void);

/* JSON object of the wrapperInit config (malloc'ed), NULL when out of memory. */
char* echo_config_json(void);

/* ---- params (echo_lists.c) ---- */
const char* echo_param(pParamList params, const char* key);
int echo_param_true(pParamList params, const char* key);
/* *out = integer value of key (left as is when absent); ECHO_ERR_ARG if not one. */
int echo_param_int(pParamList params, const char* key, int* out);

/* ---- lists (echo_lists.c): everything malloc'ed, freed by the *_free ---- */
pParamList echo_params_copy(pParamList in, int* ok);
void echo_params_free(pParamList list);
/* Deep copy of a whole list into *out; 0 or ECHO_ERR_NOMEM. */
int echo_list_copy(pDataList in, pDataList* out);
void echo_list_free(pDataList list);
/* A DataText/DataOnce node holding text. */
pDataList echo_text_node(const char* key, const char* text);
/* {"k":"v",...} in list order, JSON-escaped. */
char* echo_params_json(pParamList params);
/* "3,7" */
char* echo_psr_text(const unsigned int* ids, int n);

#endif /* ECHO_INTERNAL_H */
