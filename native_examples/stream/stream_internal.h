/*
 * Internal to libstream: shared by its .c files, never exported (the target is
 * built with hidden visibility; only the WrapperAPI functions are public).
 */
#ifndef STREAM_INTERNAL_H
#define STREAM_INTERNAL_H

#include <stddef.h>

#include "wrapper.h"

/* Error codes of the engine; wrapperError names each one. */
enum {
    STREAM_ERR_HANDLE = 40001, /* unknown or NULL session handle */
    STREAM_ERR_ARG = 40002,    /* bad argument, param value or data status */
    STREAM_ERR_NOMEM = 40003,
    STREAM_ERR_THREAD = 40004, /* pthread_create failed */
    STREAM_ERR_TYPE = 40005,   /* an input that is not DataText */
    STREAM_ERR_ENDED = 40006,  /* input for a key (or session) that has ended */
    STREAM_ERR_CANCELLED = 40007, /* a write cut short: wrapperCancel named its session */
    /* fail_at_chunk=K makes write K return STREAM_ERR_FAIL + K, so that
     * wrapperError can name the chunk without any shared state. */
    STREAM_ERR_FAIL = 41000,
    STREAM_FAIL_MAX = 9999 /* largest K */
};

/* Counters in counters_file, in the order of the line (the same line as
 * libecho's; live_sessions is derived: create - destroy). */
enum {
    C_INIT, C_FINI, C_EXEC, C_EXECFREE, C_LIVE_EXEC, C_ASYNC, C_CALLBACKS,
    C_CREATE, C_DESTROY, C_LOADRES, C_UNLOADRES, C_CANCELS, C_CANCELLED, C_COUNT
};
#define C_END (-1)

/* stream_count(C_X, dx, C_Y, dy, ..., C_END): one atomic change of several
 * counters, so a reader of counters_file never sees half of it. */
void stream_count(int counter, ...);

/* Config push=true: sessions deliver through the callback of wrapperCreate;
 * otherwise they are read (the loader hands every session a callback). */
int stream_push(void);

/* Waits ms for the session `tag` (a copy of its usrTag): 0 when the time is up,
 * STREAM_ERR_CANCELLED (counted in "cancelled") as soon as wrapperCancel(tag) comes,
 * or at once if it came already (stream_state.c). */
int stream_sleep_tag_ms(const char* tag, int ms);

/* ---- params and lists (stream_state.c) ---- */
/* *out = integer value of key in [0, max] (left as is when absent);
 * STREAM_ERR_ARG if it is anything else. */
int stream_param_int(pParamList params, const char* key, int max, int* out);
/* A DataText node holding text (plus a NUL byte), with one desc pair when
 * desc_key is not NULL. */
pDataList stream_text_node(const char* key, const char* text, DataStatus status,
                           const char* desc_key, const char* desc_value);
void stream_list_free(pDataList list);

/* ---- text statistics (stream_stats.c) ---- */
struct totals {
    unsigned long long chunks, bytes, words, lines;
};

/* Running statistics of one text written in chunks. A word is a maximal run
 * of non-whitespace bytes; one cut by a chunk boundary is carried over in
 * `word` and counted once. */
struct text_stats {
    struct totals t;
    int in_word;
    char* word; /* lowercased bytes of the word in progress */
    size_t wlen, wcap;
};

/* Word -> count, words lowercased (ASCII). */
struct word_table;
struct word_table* words_new(void);
void words_free(struct word_table* wt);

/* Count one chunk; complete words go to wt. 0 or STREAM_ERR_NOMEM. */
int text_feed(struct text_stats* ts, struct word_table* wt, const void* data, size_t len);
/* End of the text: the word in progress is complete. */
int text_end(struct text_stats* ts, struct word_table* wt);
void text_stats_free(struct text_stats* ts);
void totals_add(struct totals* sum, const struct totals* t);

/* JSON texts (malloc'ed; NULL when out of memory):
 * {"chunk":3,"bytes":120,"words":21,"lines":2}
 * {"chunks":3,"bytes":120,"words":21,"lines":2,"top":[["the",12],...]} */
char* stats_json(const struct totals* t);
char* summary_json(const struct totals* t, const struct word_table* wt);

/* ---- a session's inputs (stream_inputs.c) ---- */
struct key_state;
struct inputs {
    struct key_state* keys;   /* per input key: its text_stats, ended or not */
    struct word_table* words; /* all keys together, for the summary */
    unsigned long long outputs;
    int finished, saw_once;
};
int inputs_init(struct inputs* in);
void inputs_free(struct inputs* in);
/* Checks a whole write before any of it counts: text only, valid statuses,
 * nothing for a key (or session) that has ended. */
int inputs_check(const struct inputs* in, pDataList req);
/* Feeds a checked write. *stats = one "stats" output per node (status Begin
 * for the session's first output, then Continue, desc input=<key>);
 * *summary = the "summary" if no key is left open, else NULL. */
int inputs_write(struct inputs* in, pDataList req, pDataList* stats, pDataList* summary);
void inputs_totals(const struct inputs* in, struct totals* t);

#endif /* STREAM_INTERNAL_H */
