/*
 * AIGES wrapper ABI: types shared by the loader and engines.
 *
 * Layout-compatible (LP64) with the upstream AIGES loader, so an engine written
 * for it compiles unchanged with `-I include`. This file is also the single
 * source of the declarations the Python loader hands to cffi: keep it plain C
 * (no macros in declarations beyond WrapperAPI).
 */
#ifndef __AIGES_TYPE_H__
#define __AIGES_TYPE_H__

#if defined(_WIN32)
#define WrapperAPI __stdcall
#else
#define WrapperAPI __attribute__((visibility("default")))
#endif

/* Kind of service callback handed to the engine through wrapperSetCtrl. */
typedef enum {
    CTMeterCustom = 0,  /* wrapperMeterCustom: count a custom meter */
    CTMetricsLog  = 1,  /* reserved */
    CTTraceLog    = 2   /* wrapperTraceLog: key/value trace line for a request */
} CtrlType;

typedef enum {
    DataText  = 0,
    DataAudio = 1,
    DataImage = 2,
    DataVideo = 3,
    DataPer   = 4   /* personalization data (wrapperLoadRes) */
} DataType;

typedef enum {
    DataBegin    = 0,  /* first frame of a stream */
    DataContinue = 1,  /* middle frame */
    DataEnd      = 2,  /* last frame */
    DataOnce     = 3   /* a whole one-shot input */
} DataStatus;

/* Key/value pairs: config for wrapperInit, request params, data descriptions.
 * value is NUL-terminated and vlen == strlen(value). */
typedef struct ParamList {
    char* key;
    char* value;
    unsigned int vlen;
    struct ParamList* next;
} *pConfig, *pParamList, *pDescList;

/* One piece of input or output data; data is len bytes, not NUL-terminated. */
typedef struct DataList {
    char* key;
    void* data;
    unsigned int len;
    DataType type;
    DataStatus status;
    pDescList desc;
    struct DataList* next;
} *pDataList;

/* Implemented by the loader. The engine calls it from any thread with a result
 * (ret == 0) or an error code (ret != 0). The loader copies respData before it
 * returns, so the engine may free it afterwards. */
typedef int (*wrapperCallback)(const void* usrTag, pDataList respData, int ret);

#endif /* __AIGES_TYPE_H__ */
