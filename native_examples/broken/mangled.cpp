/*
 * libmangled: the classic mistake -- an engine that includes only type.h and
 * defines the wrapper functions as plain C++ functions, so they are exported
 * under mangled names (_Z11wrapperInitP9ParamList, ...) and dlsym("wrapperInit")
 * finds nothing. The loader must say the definitions lack extern "C".
 * Deliberately NOT including wrapper.h: its extern "C" block would fix it.
 */
#include "type.h"

// Exported and kept even if someone builds with -fvisibility=hidden or LTO.
#define MANGLED_EXPORT __attribute__((visibility("default"), used))

MANGLED_EXPORT int wrapperInit(pConfig cfg)
{
    (void)cfg;
    return 0;
}

MANGLED_EXPORT int wrapperFini()
{
    return 0;
}

MANGLED_EXPORT int wrapperExec(const char* usrTag, pParamList params, pDataList reqData,
                               pDataList* respData, unsigned int psrIds[], int psrCnt)
{
    (void)usrTag, (void)params, (void)reqData, (void)psrIds, (void)psrCnt;
    *respData = nullptr;
    return 0;
}

MANGLED_EXPORT int wrapperExecFree(const char* usrTag, pDataList* respData)
{
    (void)usrTag;
    *respData = nullptr;
    return 0;
}

MANGLED_EXPORT const void* wrapperCreate(const char* usrTag, pParamList params,
                                         wrapperCallback cb, unsigned int psrIds[],
                                         int psrCnt, int* errNum)
{
    (void)usrTag, (void)params, (void)cb, (void)psrIds, (void)psrCnt;
    *errNum = 1;
    return nullptr;
}
