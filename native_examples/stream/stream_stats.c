/*
 * libstream: the actual work -- running counts of bytes, lines and words over
 * text that arrives in chunks, a word frequency table, and the JSON texts of
 * the outputs. Nothing here locks: a text_stats and a word_table belong to one
 * session (whose calls are sequential) or to one wrapperExec call.
 */
#define _POSIX_C_SOURCE 200809L
#include "stream_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOP_N 5

struct word {
    struct word* next; /* bucket chain */
    unsigned long long count;
    uint32_t hash;
    size_t len;
    char text[]; /* len bytes, lowercased; may hold any byte but whitespace */
};

struct word_table {
    struct word** buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
};

/* ASCII whitespace, the bytes Python's bytes.split() splits on; the C
 * locale's isspace would make the counts depend on setlocale. */
static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static uint32_t fnv1a(const char* s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

struct word_table* words_new(void)
{
    struct word_table* wt = calloc(1, sizeof *wt);
    if (wt) {
        wt->nbuckets = 64;
        wt->buckets = calloc(wt->nbuckets, sizeof *wt->buckets);
        if (!wt->buckets) {
            free(wt);
            wt = NULL;
        }
    }
    return wt;
}

void words_free(struct word_table* wt)
{
    if (!wt)
        return;
    for (size_t i = 0; i < wt->nbuckets; i++)
        for (struct word* w = wt->buckets[i]; w;) {
            struct word* next = w->next;
            free(w);
            w = next;
        }
    free(wt->buckets);
    free(wt);
}

/* Doubles the buckets; on failure the table just stays denser. */
static void words_grow(struct word_table* wt)
{
    size_t n = wt->nbuckets * 2;
    struct word** b = calloc(n, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < wt->nbuckets; i++)
        for (struct word* w = wt->buckets[i]; w;) {
            struct word* next = w->next;
            w->next = b[w->hash & (n - 1)];
            b[w->hash & (n - 1)] = w;
            w = next;
        }
    free(wt->buckets);
    wt->buckets = b;
    wt->nbuckets = n;
}

static int words_add(struct word_table* wt, const char* s, size_t n)
{
    uint32_t h = fnv1a(s, n);
    struct word** slot = &wt->buckets[h & (wt->nbuckets - 1)];
    for (struct word* w = *slot; w; w = w->next)
        if (w->hash == h && w->len == n && memcmp(w->text, s, n) == 0) {
            w->count++;
            return 0;
        }
    struct word* w = malloc(sizeof *w + n);
    if (!w)
        return STREAM_ERR_NOMEM;
    w->count = 1;
    w->hash = h;
    w->len = n;
    memcpy(w->text, s, n);
    w->next = *slot;
    *slot = w;
    if (++wt->count > wt->nbuckets / 4 * 3)
        words_grow(wt);
    return 0;
}

/* Appends data[0..n) lowercased to the word in progress. */
static int word_append(struct text_stats* ts, const unsigned char* data, size_t n)
{
    if (ts->wlen + n > ts->wcap) {
        size_t cap = ts->wcap ? ts->wcap : 32;
        while (cap < ts->wlen + n)
            cap *= 2;
        char* p = realloc(ts->word, cap);
        if (!p)
            return STREAM_ERR_NOMEM;
        ts->word = p;
        ts->wcap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = data[i];
        ts->word[ts->wlen++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    return 0;
}

static int word_done(struct text_stats* ts, struct word_table* wt)
{
    int rc = ts->wlen ? words_add(wt, ts->word, ts->wlen) : 0;
    ts->wlen = 0;
    ts->in_word = 0;
    return rc;
}

int text_feed(struct text_stats* ts, struct word_table* wt, const void* data, size_t len)
{
    const unsigned char* p = data;
    if (!p)
        len = 0;
    ts->t.chunks++;
    ts->t.bytes += len;
    size_t start = 0; /* of the current run; 0 also continues a word cut by the last chunk */
    for (size_t i = 0; i < len; i++) {
        if (!is_space(p[i])) {
            if (!ts->in_word) {
                ts->in_word = 1;
                ts->t.words++;
                start = i;
            }
            continue;
        }
        ts->t.lines += p[i] == '\n';
        if (ts->in_word) {
            int rc = word_append(ts, p + start, i - start);
            if (!rc)
                rc = word_done(ts, wt);
            if (rc)
                return rc;
        }
    }
    return ts->in_word ? word_append(ts, p + start, len - start) : 0;
}

int text_end(struct text_stats* ts, struct word_table* wt)
{
    return word_done(ts, wt);
}

void text_stats_free(struct text_stats* ts)
{
    free(ts->word);
    ts->word = NULL;
    ts->wlen = ts->wcap = 0;
}

void totals_add(struct totals* sum, const struct totals* t)
{
    sum->chunks += t->chunks;
    sum->bytes += t->bytes;
    sum->words += t->words;
    sum->lines += t->lines;
}

char* stats_json(const struct totals* t)
{
    char buf[160];
    snprintf(buf, sizeof buf, "{\"chunk\":%llu,\"bytes\":%llu,\"words\":%llu,\"lines\":%llu}",
             t->chunks, t->bytes, t->words, t->lines);
    return strdup(buf);
}

/* ---- summary ---- */

/* Is a before b in the top list: more frequent, or as frequent and
 * alphabetically (bytewise) first? */
static int ranks_before(const struct word* a, const struct word* b)
{
    if (a->count != b->count)
        return a->count > b->count;
    int c = memcmp(a->text, b->text, a->len < b->len ? a->len : b->len);
    return c ? c < 0 : a->len < b->len;
}

static int top_words(const struct word_table* wt, const struct word* top[TOP_N])
{
    int n = 0;
    for (size_t i = 0; i < wt->nbuckets; i++)
        for (const struct word* w = wt->buckets[i]; w; w = w->next) {
            if (n == TOP_N && !ranks_before(w, top[n - 1]))
                continue;
            int j = n < TOP_N ? n++ : n - 1;
            for (; j > 0 && ranks_before(w, top[j - 1]); j--)
                top[j] = top[j - 1];
            top[j] = w;
        }
    return n;
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
        size_t cap = b->cap ? b->cap : 128;
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

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char* s, size_t n)
{
    size_t need = s[0] < 0x80 ? 1 : s[0] >= 0xC2 && s[0] <= 0xDF ? 2
                  : s[0] >= 0xE0 && s[0] <= 0xEF                ? 3
                  : s[0] >= 0xF0 && s[0] <= 0xF4                ? 4
                                                                : 0;
    if (need == 0 || need > n)
        return 0;
    unsigned long cp = s[0] & (0x7Fu >> need);
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if ((need == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return need;
}

/* Words are raw input bytes: escape what JSON needs and replace invalid
 * UTF-8 with U+FFFD, so the summary is always valid JSON text. */
static void sb_json_str(sbuf* b, const char* s, size_t n)
{
    const unsigned char* c = (const unsigned char*)s;
    sb_put(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(c + i, n - i);
        char esc[8];
        if (k == 0) {
            sb_put(b, "\\ufffd", 6);
            k = 1;
        } else if (c[i] == '"' || c[i] == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c[i];
            sb_put(b, esc, 2);
        } else if (c[i] < 0x20 || c[i] == 0x7F) {
            snprintf(esc, sizeof esc, "\\u%04x", c[i]);
            sb_put(b, esc, 6);
        } else {
            sb_put(b, s + i, k);
        }
        i += k;
    }
    sb_put(b, "\"", 1);
}

char* summary_json(const struct totals* t, const struct word_table* wt)
{
    sbuf b = {0};
    char num[160];
    int len = snprintf(num, sizeof num,
                       "{\"chunks\":%llu,\"bytes\":%llu,\"words\":%llu,\"lines\":%llu,\"top\":[",
                       t->chunks, t->bytes, t->words, t->lines);
    sb_put(&b, num, (size_t)len);
    const struct word* top[TOP_N];
    int n = top_words(wt, top);
    for (int i = 0; i < n; i++) {
        sb_put(&b, i ? ",[" : "[", i ? 2 : 1);
        sb_json_str(&b, top[i]->text, top[i]->len);
        len = snprintf(num, sizeof num, ",%llu]", top[i]->count);
        sb_put(&b, num, (size_t)len);
    }
    sb_put(&b, "]}", 2);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
