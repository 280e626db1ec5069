/* libnoinit: a complete once-sync mode but no wrapperInit, which is always
 * required. The loader must refuse it at start-up, naming wrapperInit. */
#include "wrapper.h"

#include <stddef.h>

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
