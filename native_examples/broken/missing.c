/* libmissing: wrapperExec without wrapperExecFree, and no other mode. The
 * loader must refuse it at start-up, naming wrapperExecFree. */
#include "wrapper.h"

#include <stddef.h>

int WrapperAPI wrapperInit(pConfig cfg)
{
    (void)cfg;
    return 0;
}

int WrapperAPI wrapperFini(void)
{
    return 0;
}

int WrapperAPI wrapperExec(const char* usrTag, pParamList params, pDataList reqData,
                           pDataList* respData, unsigned int psrIds[], int psrCnt)
{
    (void)usrTag, (void)params, (void)reqData, (void)psrIds, (void)psrCnt;
    *respData = NULL;
    return 0;
}
