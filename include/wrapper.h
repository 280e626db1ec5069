/*
 * AIGES wrapper ABI: the functions an engine exports.
 *
 * Required: wrapperInit and one complete mode -- once-sync (wrapperExec +
 * wrapperExecFree), once-async (wrapperExecAsync) or session (wrapperCreate +
 * wrapperWrite + wrapperRead + wrapperDestroy). Everything else is optional.
 * Every function returns 0 on success; anything else is an engine error code
 * whose text wrapperError gives.
 *
 * Inputs (config, params, data, desc) belong to the loader and are valid only
 * during the call: copy what you keep. An empty list is passed as NULL.
 */
#ifndef __AIGES_WRAPPER_H__
#define __AIGES_WRAPPER_H__

#include "type.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Service callbacks handed over by wrapperSetCtrl. */
typedef int (*wrapperMeterCustom)(const void* usrTag, const char* meterKey, int count);
typedef int (*wrapperTraceLog)(const char* usrTag, const char* key, const char* value);

/* Receive a service callback (func is a wrapperMeterCustom or wrapperTraceLog). */
int WrapperAPI wrapperSetCtrl(CtrlType type, void* func);
typedef int (*wrapperSetCtrlPtr)(CtrlType type, void* func);

/* Once at start-up, with the [wrapper] config pairs. Non-zero fails start-up. */
int WrapperAPI wrapperInit(pConfig cfg);
typedef int (*wrapperInitPtr)(pConfig cfg);

/* Once at shutdown. */
int WrapperAPI wrapperFini(void);
typedef int (*wrapperFiniPtr)(void);

/* Text for an engine error code. */
WrapperAPI const char* wrapperError(int errNum);
typedef const char* (*wrapperErrorPtr)(int errNum);

/* Engine version string. */
WrapperAPI const char* wrapperVersion(void);
typedef const char* (*wrapperVersionPtr)(void);

/* Load / unload a personalization resource under resId. */
int WrapperAPI wrapperLoadRes(pDataList perData, unsigned int resId);
typedef int (*wrapperLoadResPtr)(pDataList perData, unsigned int resId);

int WrapperAPI wrapperUnloadRes(unsigned int resId);
typedef int (*wrapperUnloadResPtr)(unsigned int resId);

/* Open a session. cb NULL: results are polled with wrapperRead; otherwise they
 * are pushed through cb with usrTag. Returns an opaque handle, error in *errNum. */
WrapperAPI const void* wrapperCreate(const char* usrTag, pParamList params, wrapperCallback cb,
                                     unsigned int psrIds[], int psrCnt, int* errNum);
typedef const void* (*wrapperCreatePtr)(const char* usrTag, pParamList params, wrapperCallback cb,
                                        unsigned int psrIds[], int psrCnt, int* errNum);

/* Push session input. */
int WrapperAPI wrapperWrite(const void* handle, pDataList reqData);
typedef int (*wrapperWritePtr)(const void* handle, pDataList reqData);

/* Poll session output. The memory stays the engine's and is valid until the
 * next read or destroy on that handle; 0 with *respData NULL = nothing yet. */
int WrapperAPI wrapperRead(const void* handle, pDataList* respData);
typedef int (*wrapperReadPtr)(const void* handle, pDataList* respData);

/* Close the session. */
int WrapperAPI wrapperDestroy(const void* handle);
typedef int (*wrapperDestroyPtr)(const void* handle);

/* One-shot, blocking; the engine allocates *respData, freed by wrapperExecFree. */
int WrapperAPI wrapperExec(const char* usrTag, pParamList params, pDataList reqData,
                           pDataList* respData, unsigned int psrIds[], int psrCnt);
typedef int (*wrapperExecPtr)(const char* usrTag, pParamList params, pDataList reqData,
                              pDataList* respData, unsigned int psrIds[], int psrCnt);

/* Free what wrapperExec returned. */
int WrapperAPI wrapperExecFree(const char* usrTag, pDataList* respData);
typedef int (*wrapperExecFreePtr)(const char* usrTag, pDataList* respData);

/* One-shot, returns at once; the result comes through cb. timeout in ms. */
int WrapperAPI wrapperExecAsync(const char* usrTag, pParamList params, pDataList reqData,
                                wrapperCallback cb, int timeout, unsigned int psrIds[], int psrCnt);
typedef int (*wrapperExecAsyncPtr)(const char* usrTag, pParamList params, pDataList reqData,
                                   wrapperCallback cb, int timeout, unsigned int psrIds[], int psrCnt);

/* aiges extension (upstream AIGES has no such call; engines without it are served
 * one request per call, as before). Optional. One call for n once requests, each
 * exactly as wrapperExec would get it (no psrIds: requests naming resources are
 * never batched). Fills respData[i] and errs[i] (0 or the engine's error code for
 * item i) for every i. Returns 0 when the call ran (per-item results in errs),
 * non-zero when the whole batch failed. Each respData[i] is released with
 * wrapperExecFree(usrTags[i], &respData[i]). Used when [batch] maxSize > 1. */
int WrapperAPI wrapperExecBatch(unsigned int n, const char* usrTags[], pParamList params[],
                                pDataList reqData[], pDataList respData[], int errs[]);
typedef int (*wrapperExecBatchPtr)(unsigned int n, const char* usrTags[], pParamList params[],
                                   pDataList reqData[], pDataList respData[], int errs[]);

/* aiges extension (upstream AIGES has no such call; engines without it never
 * notice). Optional. 0 = healthy; non-zero = not (e.g. a CUDA error). Writes a short
 * reason into detail (at most detailLen bytes with its NUL). Polled every
 * [aiges] healthIntervalS from a thread of its own, concurrently with other calls,
 * never two at once: /ready answers 503 with the reason while it fails. */
int WrapperAPI wrapperHealth(char* detail, unsigned int detailLen);
typedef int (*wrapperHealthPtr)(char* detail, unsigned int detailLen);

/* aiges extension (upstream AIGES has no such call; engines without it never
 * notice). Optional. The request or session with this usrTag is no longer wanted
 * (client left, timeout, shutdown). The engine may return early from calls running
 * for it, with any error code. Any thread may call it.
 * usrTag is the tag of wrapperExec/wrapperExecAsync (a once request's sid) or of
 * wrapperCreate (the session's sid); it is valid only during this call, and may name
 * a call that has already returned, or one not yet started. Keep it quick: record the
 * tag, wake what waits, return (0; the loader ignores other codes). The loader calls it
 * off its event loop, at most once per request and reason, and still calls
 * wrapperExecFree / wrapperDestroy as usual afterwards. */
int WrapperAPI wrapperCancel(const char* usrTag);
typedef int (*wrapperCancelPtr)(const char* usrTag);

/* Debug text for a session, called once before wrapperDestroy. */
WrapperAPI const char* wrapperDebugInfo(const void* handle);
typedef const char* (*wrapperDebugInfoPtr)(const void* handle);

#ifdef __cplusplus
}
#endif

#endif /* __AIGES_WRAPPER_H__ */
