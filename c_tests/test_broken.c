/* The broken libraries look to dlsym the way the loader's start-up check
 * expects: missing symbols are missing, mangled ones only exist mangled. */
#include "test_util.h"
#include "wrapper.h"

int main(int argc, char** argv)
{
    REQUIRE(argc == 5, "usage: test_broken libmissing.so libmangled.so libnoinit.so libinitfail.so");

    void* missing = open_lib(argv[1]);
    CHECK(dlsym(missing, "wrapperInit") != NULL, "libmissing lacks wrapperInit");
    CHECK(dlsym(missing, "wrapperExec") != NULL, "libmissing lacks wrapperExec");
    CHECK(dlsym(missing, "wrapperExecFree") == NULL, "libmissing exports wrapperExecFree");
    CHECK(dlsym(missing, "wrapperExecAsync") == NULL, "libmissing exports wrapperExecAsync");
    CHECK(dlsym(missing, "wrapperCreate") == NULL, "libmissing exports wrapperCreate");

    void* mangled = open_lib(argv[2]);
    static const char* const names[][2] = {
        {"wrapperInit", "_Z11wrapperInitP9ParamList"},
        {"wrapperFini", "_Z11wrapperFiniv"},
        {"wrapperExec", "_Z11wrapperExecPKcP9ParamListP8DataListPS4_Pji"},
        {"wrapperExecFree", "_Z15wrapperExecFreePKcPP8DataList"},
        {"wrapperCreate", "_Z13wrapperCreatePKcP9ParamListPFiPKvP8DataListiEPjiPi"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        CHECK(dlsym(mangled, names[i][0]) == NULL, "libmangled exports plain %s", names[i][0]);
        CHECK(dlsym(mangled, names[i][1]) != NULL, "libmangled lacks %s", names[i][1]);
    }

    void* noinit = open_lib(argv[3]);
    CHECK(dlsym(noinit, "wrapperInit") == NULL, "libnoinit exports wrapperInit");
    CHECK(dlsym(noinit, "wrapperExec") != NULL, "libnoinit lacks wrapperExec");
    CHECK(dlsym(noinit, "wrapperExecFree") != NULL, "libnoinit lacks wrapperExecFree");

    void* initfail = open_lib(argv[4]);
    wrapperInitPtr init;
    wrapperErrorPtr error;
    LOAD(initfail, init, "wrapperInit");
    LOAD(initfail, error, "wrapperError");
    int rc = init(NULL);
    CHECK(rc == 12345, "libinitfail wrapperInit returned %d", rc);
    CHECK(strcmp(error(rc), "initfail: model file not found") == 0, "error text %s", error(rc));

    dlclose(missing);
    dlclose(mangled);
    dlclose(noinit);
    dlclose(initfail);
    return test_exit("test_broken");
}
