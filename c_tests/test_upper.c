/* libupper, the upstream-style C++ engine, through the once-sync sequence:
 * Init, Exec -> copy -> ExecFree, Fini. */
#include "test_util.h"
#include "wrapper.h"

int main(int argc, char** argv)
{
    REQUIRE(argc == 2, "usage: test_upper libupper.so");
    void* lib = open_lib(argv[1]);
    wrapperInitPtr init;
    wrapperFiniPtr fini;
    wrapperErrorPtr error;
    wrapperVersionPtr version;
    wrapperExecPtr exec;
    wrapperExecFreePtr exec_free;
    LOAD(lib, init, "wrapperInit");
    LOAD(lib, fini, "wrapperFini");
    LOAD(lib, error, "wrapperError");
    LOAD(lib, version, "wrapperVersion");
    LOAD(lib, exec, "wrapperExec");
    LOAD(lib, exec_free, "wrapperExecFree");

    CHECK(init(NULL) == 0, "wrapperInit(NULL) failed");
    CHECK(strcmp(version(), "upper/1.0.0") == 0, "version is %s", version());

    struct ParamList pn[1];
    pParamList params = make_params(pn, (const char*[]){"sid", "s1"}, 1);
    struct DataList in[2];
    set_data(&in[1], "b", "World 42!", DataOnce, NULL);
    set_data(&in[0], "a", "hello", DataOnce, &in[1]);
    pDataList out = NULL;
    CHECK(exec("tag", params, in, &out, NULL, 0) == 0, "exec failed");
    CHECK(list_len(out) == 2, "want 2 outputs, got %d", list_len(out));
    CHECK(node_is(out, "a", "HELLO"), "first output is not a=HELLO");
    CHECK(out && node_is(out->next, "b", "WORLD 42!"), "second output is not b=WORLD 42!");
    CHECK(out && out->type == DataText && out->status == DataOnce, "output type/status");
    CHECK(exec_free("tag", &out) == 0 && out == NULL, "execFree did not clear the list");

    pParamList failing = make_params(pn, (const char*[]){"fail", "77"}, 1);
    out = NULL;
    int rc = exec("tag", failing, in, &out, NULL, 0);
    CHECK(rc == 77, "fail=77 returned %d", rc);
    CHECK(out == NULL, "a failed exec returned output");
    CHECK(strcmp(error(77), "upper: failure requested") == 0, "error(77) is %s", error(77));

    CHECK(fini() == 0, "wrapperFini failed");
    return test_exit("test_upper");
}
