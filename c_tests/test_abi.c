/* The ABI headers compile as C and have the LP64 layout of upstream AIGES
 * (SPEC section 1); the Python side's cffi declarations are checked against
 * the same numbers. */
#include <stddef.h>
#include <stdint.h>

#include "test_util.h"
#include "wrapper.h"

#define CHECK_EQ(actual, expected) \
    CHECK((size_t)(actual) == (size_t)(expected), "%s is %zu, want %zu", #actual, (size_t)(actual), (size_t)(expected))

/* _Generic does not evaluate its operand, so this compares each prototype's
 * type with its Ptr typedef without needing the symbol at link time. */
#define SAME_TYPE(fn) CHECK(_Generic(&fn, fn##Ptr: 1, default: 0), #fn "Ptr does not match " #fn)

int main(void)
{
    CHECK_EQ(sizeof(void*), 8);

    CHECK_EQ(sizeof(struct ParamList), 32);
    CHECK_EQ(offsetof(struct ParamList, key), 0);
    CHECK_EQ(offsetof(struct ParamList, value), 8);
    CHECK_EQ(offsetof(struct ParamList, vlen), 16);
    CHECK_EQ(offsetof(struct ParamList, next), 24);

    CHECK_EQ(sizeof(struct DataList), 48);
    CHECK_EQ(offsetof(struct DataList, key), 0);
    CHECK_EQ(offsetof(struct DataList, data), 8);
    CHECK_EQ(offsetof(struct DataList, len), 16);
    CHECK_EQ(offsetof(struct DataList, type), 20);
    CHECK_EQ(offsetof(struct DataList, status), 24);
    CHECK_EQ(offsetof(struct DataList, desc), 32);
    CHECK_EQ(offsetof(struct DataList, next), 40);

    CHECK_EQ(sizeof(DataType), 4);
    CHECK_EQ(sizeof(DataStatus), 4);
    CHECK_EQ(sizeof(CtrlType), 4);
    CHECK_EQ(sizeof(unsigned int), 4);

    CHECK_EQ(CTMeterCustom, 0);
    CHECK_EQ(CTMetricsLog, 1);
    CHECK_EQ(CTTraceLog, 2);
    CHECK_EQ(DataText, 0);
    CHECK_EQ(DataAudio, 1);
    CHECK_EQ(DataImage, 2);
    CHECK_EQ(DataVideo, 3);
    CHECK_EQ(DataPer, 4);
    CHECK_EQ(DataBegin, 0);
    CHECK_EQ(DataContinue, 1);
    CHECK_EQ(DataEnd, 2);
    CHECK_EQ(DataOnce, 3);

    /* The three pointer typedefs name one struct. */
    pConfig cfg = NULL;
    pParamList params = cfg;
    pDescList desc = params;
    (void)desc;

    SAME_TYPE(wrapperSetCtrl);
    SAME_TYPE(wrapperInit);
    SAME_TYPE(wrapperFini);
    SAME_TYPE(wrapperError);
    SAME_TYPE(wrapperVersion);
    SAME_TYPE(wrapperLoadRes);
    SAME_TYPE(wrapperUnloadRes);
    SAME_TYPE(wrapperCreate);
    SAME_TYPE(wrapperWrite);
    SAME_TYPE(wrapperRead);
    SAME_TYPE(wrapperDestroy);
    SAME_TYPE(wrapperExec);
    SAME_TYPE(wrapperExecFree);
    SAME_TYPE(wrapperExecAsync);
    SAME_TYPE(wrapperDebugInfo);
    SAME_TYPE(wrapperExecBatch);
    SAME_TYPE(wrapperHealth);
    SAME_TYPE(wrapperCancel);

    return test_exit("test_abi");
}
