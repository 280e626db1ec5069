/* libinitfail: loads fine, but wrapperInit fails the way a real engine does
 * when its model is missing. The loader must not become ready and must report
 * "initfail: model file not found;code=12345". */
#include "wrapper.h"

#include <stddef.h>

#define INITFAIL_NO_MODEL 12345

int WrapperAPI wrapperInit(pConfig cfg)
{
    (void)cfg;
    return INITFAIL_NO_MODEL;
}

int WrapperAPI wrapperFini(void)
{
    return 0;
}

WrapperAPI const char* wrapperError(int errNum)
{
    return errNum == INITFAIL_NO_MODEL ? "initfail: model file not found" : "initfail: unknown error";
}

int WrapperAPI wrapperExec(const char* usrTag, pParamList params, pDataList reqData,
                           pDataList* respData, unsigned int psrIds[], int psrCnt)
{
    (void)usrTag, (void)params, (void)reqData, (void)psrIds, (void)psrCnt;
    *respData = NULL;
    return 0;
}

int WrapperAPI wrapperExecFree(const char* usrTag, pDataList* respData)
{
    (void)usrTag;
    *respData = NULL;
    return 0;
}
