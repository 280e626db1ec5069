/*
 * Internal to libhotwords: shared by its .c files, never exported (the target
 * is built with hidden visibility; only the WrapperAPI functions are public).
 */
#ifndef HOTWORDS_INTERNAL_H
#define HOTWORDS_INTERNAL_H

#include <stddef.h>

#include "wrapper.h"

/* Error codes of the engine; wrapperError gives their text. */
enum {
    HW_ERR_ARG = 40001,        /* no input, bad psrIds, NULL respData */
    HW_ERR_NOMEM = 40002,
    HW_ERR_NOT_LOADED = 40003, /* a psrId / unload id that is not loaded */
    HW_ERR_LOADED = 40004,     /* wrapperLoadRes with an id already loaded */
    HW_ERR_EMPTY = 40005       /* a resource without a single word */
};

/*
 * A hot-word list: the words of a resource, lower-cased, sorted, each
 * NUL-terminated inside one pool. A word is a maximal run of ASCII letters,
 * digits, '_' or bytes >= 0x80 (so UTF-8 words stay whole); anything else
 * (newline, comma, blank, punctuation) separates words.
 */
struct wordlist {
    char* pool;
    char** words;
    size_t count;
};

int hw_is_word_byte(unsigned char c);

/* The words of every node of data; 0, HW_ERR_NOMEM or HW_ERR_EMPTY. */
int hw_words_parse(pDataList data, struct wordlist* out);
void hw_words_free(struct wordlist* list);

/*
 * text with every word found in any of the n lists wrapped in brackets
 * ("turn on the [lamp]"), malloc'ed and NUL-terminated, its length in *out_len;
 * NULL when out of memory.
 */
char* hw_mark(const char* text, size_t len, const struct wordlist* const* lists, size_t n,
              size_t* out_len);

#endif /* HOTWORDS_INTERNAL_H */
