/*
 * libstream: the input side of a session -- running statistics per input
 * key, the "stats" output of each input node and the "summary" once every
 * key seen has ended (End or Once). No locks: only the session's own calls,
 * which are sequential, touch a struct inputs.
 */
#define _POSIX_C_SOURCE 200809L
#include "stream_internal.h"

#include <stdlib.h>
#include <string.h>

struct key_state {
    struct key_state* next;
    char* key;
    struct text_stats ts;
    int ended;
};

int inputs_init(struct inputs* in)
{
    *in = (struct inputs){0};
    in->words = words_new();
    return in->words ? 0 : STREAM_ERR_NOMEM;
}

void inputs_free(struct inputs* in)
{
    while (in->keys) {
        struct key_state* k = in->keys;
        in->keys = k->next;
        text_stats_free(&k->ts);
        free(k->key);
        free(k);
    }
    words_free(in->words);
    in->words = NULL;
}

static const char* key_name(const char* key)
{
    return key ? key : "";
}

static struct key_state* key_find(const struct inputs* in, const char* key)
{
    for (struct key_state* k = in->keys; k; k = k->next)
        if (strcmp(k->key, key_name(key)) == 0)
            return k;
    return NULL;
}

static int is_last(DataStatus st)
{
    return st == DataEnd || st == DataOnce;
}

int inputs_check(const struct inputs* in, pDataList req)
{
    for (pDataList d = req; d; d = d->next) {
        if (d->type != DataText)
            return STREAM_ERR_TYPE;
        if ((unsigned)d->status > DataOnce)
            return STREAM_ERR_ARG;
        struct key_state* k = key_find(in, d->key);
        if (in->finished || (k && k->ended))
            return STREAM_ERR_ENDED;
        for (pDataList e = req; e != d; e = e->next) /* ended earlier in this write */
            if (is_last(e->status) && strcmp(key_name(e->key), key_name(d->key)) == 0)
                return STREAM_ERR_ENDED;
    }
    return 0;
}

/* Feeds one input node; *out = its "stats" output. */
static int feed(struct inputs* in, pDataList d, pDataList* out)
{
    struct key_state* k = key_find(in, d->key);
    if (!k) {
        k = calloc(1, sizeof *k);
        if (!k || !(k->key = strdup(key_name(d->key)))) {
            free(k);
            return STREAM_ERR_NOMEM;
        }
        k->next = in->keys;
        in->keys = k;
    }
    int rc = text_feed(&k->ts, in->words, d->data, d->len);
    if (!rc && is_last(d->status)) {
        k->ended = 1;
        in->saw_once |= d->status == DataOnce;
        rc = text_end(&k->ts, in->words);
    }
    char* json = rc ? NULL : stats_json(&k->ts.t);
    DataStatus st = in->outputs ? DataContinue : DataBegin;
    *out = json ? stream_text_node("stats", json, st, "input", k->key) : NULL;
    free(json);
    if (!*out)
        return rc ? rc : STREAM_ERR_NOMEM;
    in->outputs++;
    return 0;
}

void inputs_totals(const struct inputs* in, struct totals* t)
{
    *t = (struct totals){0};
    for (const struct key_state* k = in->keys; k; k = k->next)
        totals_add(t, &k->ts.t);
}

/* The summary when no key is left open, else NULL. */
static int summary(struct inputs* in, pDataList* out)
{
    *out = NULL;
    for (struct key_state* k = in->keys; k; k = k->next)
        if (!k->ended)
            return 0;
    struct totals t;
    inputs_totals(in, &t);
    in->finished = 1;
    char* json = summary_json(&t, in->words);
    /* Once only when the whole session was a single Once chunk. */
    DataStatus st = t.chunks == 1 && in->saw_once ? DataOnce : DataEnd;
    *out = json ? stream_text_node("summary", json, st, NULL, NULL) : NULL;
    free(json);
    return *out ? 0 : STREAM_ERR_NOMEM;
}

int inputs_write(struct inputs* in, pDataList req, pDataList* stats, pDataList* summ)
{
    int rc = 0;
    pDataList* tail = stats;
    *stats = *summ = NULL;
    for (pDataList d = req; d && !rc; d = d->next) {
        rc = feed(in, d, tail);
        if (*tail)
            tail = &(*tail)->next;
    }
    if (!rc)
        rc = summary(in, summ);
    if (rc) {
        stream_list_free(*stats);
        *stats = NULL;
    }
    return rc;
}
