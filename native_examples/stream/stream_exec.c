/*
 * libstream: the one-shot calls. wrapperExec gives the summary of all its
 * inputs in one go -- the same JSON as a session's final summary, each input
 * node counting as one chunk and a text of its own (no word spans two nodes).
 */
#define _POSIX_C_SOURCE 200809L
#include "stream_internal.h"

#include <stdlib.h>

/* *out = the "summary" node for reqData; text inputs only. */
static int summarize(pDataList reqData, pDataList* out)
{
    for (pDataList d = reqData; d; d = d->next)
        if (d->type != DataText)
            return STREAM_ERR_TYPE;
    struct word_table* wt = words_new();
    if (!wt)
        return STREAM_ERR_NOMEM;
    struct totals sum = {0};
    int rc = 0;
    for (pDataList d = reqData; d && !rc; d = d->next) {
        struct text_stats ts = {0};
        rc = text_feed(&ts, wt, d->data, d->len);
        if (!rc)
            rc = text_end(&ts, wt);
        totals_add(&sum, &ts.t);
        text_stats_free(&ts);
    }
    char* json = rc ? NULL : summary_json(&sum, wt);
    words_free(wt);
    *out = json ? stream_text_node("summary", json, DataOnce, NULL, NULL) : NULL;
    free(json);
    return *out ? 0 : rc ? rc : STREAM_ERR_NOMEM;
}

int WrapperAPI wrapperExec(const char* usrTag, pParamList params, pDataList reqData,
                           pDataList* respData, unsigned int psrIds[], int psrCnt)
{
    (void)usrTag;
    (void)params;
    (void)psrIds;
    (void)psrCnt;
    stream_count(C_EXEC, 1, C_END);
    if (!respData)
        return STREAM_ERR_ARG;
    *respData = NULL;
    pDataList out;
    int rc = summarize(reqData, &out);
    if (rc)
        return rc;
    stream_count(C_LIVE_EXEC, 1, C_END);
    *respData = out;
    return 0;
}

int WrapperAPI wrapperExecFree(const char* usrTag, pDataList* respData)
{
    (void)usrTag;
    if (!respData)
        return STREAM_ERR_ARG;
    pDataList list = *respData;
    *respData = NULL;
    stream_list_free(list);
    stream_count(C_EXECFREE, 1, C_LIVE_EXEC, list ? -1 : 0, C_END);
    return 0;
}
