/*
 * libhotwords: hot-word lists (parsing, lookup) and the bracketing of a text.
 * Pure functions over their arguments: the caller holds whatever lock it needs.
 */
#include "hotwords_internal.h"

#include <stdlib.h>
#include <string.h>

int hw_is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c >= 0x80;
}

static char lower(unsigned char c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
}

static int compare_words(const void* a, const void* b)
{
    return strcmp(*(char* const*)a, *(char* const*)b);
}

/* Calls visit(word, len, ctx) for every word of the bytes. */
static void each_word(const unsigned char* p, size_t len,
                      void (*visit)(const unsigned char*, size_t, void*), void* ctx)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && !hw_is_word_byte(p[i]))
            i++;
        size_t start = i;
        while (i < len && hw_is_word_byte(p[i]))
            i++;
        if (i > start)
            visit(p + start, i - start, ctx);
    }
}

struct builder {
    size_t count, bytes; /* sizing pass */
    struct wordlist* list; /* filling pass, NULL while sizing */
    char* next;
};

static void add_word(const unsigned char* word, size_t len, void* ctx)
{
    struct builder* b = ctx;
    if (!b->list) {
        b->count++;
        b->bytes += len + 1;
        return;
    }
    char* copy = b->next;
    for (size_t i = 0; i < len; i++)
        copy[i] = lower(word[i]);
    copy[len] = '\0';
    b->next += len + 1;
    b->list->words[b->list->count++] = copy;
}

int hw_words_parse(pDataList data, struct wordlist* out)
{
    memset(out, 0, sizeof *out);
    struct builder b = {0};
    for (pDataList d = data; d; d = d->next)
        if (d->data)
            each_word(d->data, d->len, add_word, &b);
    if (b.count == 0)
        return HW_ERR_EMPTY;
    out->pool = malloc(b.bytes);
    out->words = malloc(b.count * sizeof *out->words);
    if (!out->pool || !out->words) {
        hw_words_free(out);
        return HW_ERR_NOMEM;
    }
    b.list = out;
    b.next = out->pool;
    for (pDataList d = data; d; d = d->next)
        if (d->data)
            each_word(d->data, d->len, add_word, &b);
    qsort(out->words, out->count, sizeof *out->words, compare_words);
    return 0;
}

void hw_words_free(struct wordlist* list)
{
    free(list->pool);
    free(list->words);
    memset(list, 0, sizeof *list);
}

static int is_hot(const char* word, const struct wordlist* const* lists, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (bsearch(&word, lists[i]->words, lists[i]->count, sizeof(char*), compare_words))
            return 1;
    return 0;
}

char* hw_mark(const char* text, size_t len, const struct wordlist* const* lists, size_t n,
              size_t* out_len)
{
    const unsigned char* p = (const unsigned char*)text;
    /* Words are separated by at least one byte: at most (len + 1) / 2 of them,
     * two brackets each. */
    char* out = malloc(2 * len + 2);
    char* word = malloc(len + 1);
    if (!out || !word) {
        free(out);
        free(word);
        return NULL;
    }
    size_t used = 0, i = 0;
    while (i < len) {
        if (!hw_is_word_byte(p[i])) {
            out[used++] = text[i++];
            continue;
        }
        size_t start = i;
        while (i < len && hw_is_word_byte(p[i])) {
            word[i - start] = lower(p[i]);
            i++;
        }
        word[i - start] = '\0';
        int hot = n > 0 && is_hot(word, lists, n);
        if (hot)
            out[used++] = '[';
        memcpy(out + used, text + start, i - start);
        used += i - start;
        if (hot)
            out[used++] = ']';
    }
    out[used] = '\0';
    free(word);
    *out_len = used;
    return out;
}
