/*
 * libupper: a once-sync engine written exactly like an upstream AIGES engine
 * (C++, only `#include "wrapper.h"`), to prove such engines load unchanged.
 * Each input node comes back under the same key with its bytes ASCII
 * upper-cased, as DataText/DataOnce. Param fail=N makes wrapperExec return N.
 */
#include "wrapper.h"

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

namespace {

const int kErrNoMem = 20001;
const int kErrArg = 20002;

std::string param(pParamList params, const char* key)
{
    for (; params; params = params->next)
        if (params->key && params->value && std::strcmp(params->key, key) == 0)
            return params->value;
    return "";
}

char* dup_bytes(const std::string& s)
{
    char* p = new char[s.size() + 1];
    std::memcpy(p, s.c_str(), s.size() + 1); // keeps a NUL after the data
    return p;
}

void free_list(pDataList list)
{
    while (list) {
        pDataList next = list->next;
        delete[] list->key;
        delete[] static_cast<char*>(list->data);
        delete list;
        list = next;
    }
}

} // namespace

int WrapperAPI wrapperInit(pConfig cfg)
{
    (void)cfg;
    return 0;
}

int WrapperAPI wrapperFini(void)
{
    return 0;
}

// WrapperAPI before the return type: after `const char*` GCC reads it as
// an attribute of the pointer type and warns.
WrapperAPI const char* wrapperError(int errNum)
{
    if (errNum == kErrNoMem)
        return "upper: out of memory";
    if (errNum == kErrArg)
        return "upper: invalid argument";
    return "upper: failure requested";
}

WrapperAPI const char* wrapperVersion(void)
{
    return "upper/1.0.0";
}

int WrapperAPI wrapperExec(const char* usrTag, pParamList params, pDataList reqData,
                           pDataList* respData, unsigned int psrIds[], int psrCnt)
{
    (void)usrTag;
    (void)psrIds;
    (void)psrCnt;
    if (!respData)
        return kErrArg;
    *respData = nullptr;
    int fail = std::atoi(param(params, "fail").c_str());
    if (fail)
        return fail;
    pDataList head = nullptr;
    pDataList* tail = &head;
    try { // no exception may cross the C ABI
        for (pDataList in = reqData; in; in = in->next) {
            std::string text(static_cast<const char*>(in->data), in->data ? in->len : 0);
            for (char& c : text)
                c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            pDataList out = new DataList();
            *tail = out; // linked first, so free_list cleans up on a throw below
            tail = &out->next;
            out->key = dup_bytes(in->key ? in->key : "");
            out->data = dup_bytes(text);
            out->len = static_cast<unsigned int>(text.size());
            out->type = DataText;
            out->status = DataOnce;
        }
    } catch (const std::bad_alloc&) {
        free_list(head);
        return kErrNoMem;
    }
    *respData = head;
    return 0;
}

int WrapperAPI wrapperExecFree(const char* usrTag, pDataList* respData)
{
    (void)usrTag;
    if (!respData)
        return kErrArg;
    free_list(*respData);
    *respData = nullptr;
    return 0;
}
