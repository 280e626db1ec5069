/* aiges's compiled marshalling: a once request's inputs -> ParamList/DataList chains,
 * wrapperExec, the outputs -> Data objects, wrapperExecFree, in one call from Python
 * (aiges_exec); a session's wrapperWrite with its input chain (aiges_write) and
 * wrapperRead with its outputs copied (aiges_read), one call each; and the outputs an
 * engine pushes through its result callback, copied (aiges_outputs).
 *
 * Built at install time by cffi's API mode (aiges/native/marshal_build.py, setup.py's
 * cffi_modules); without a compiler aiges runs the same steps in Python over the
 * ABI-mode library (aiges/native/lists.py), with the same results (tests/unit/
 * test_marshal.py runs both).
 *
 * The engine is only known at run time, so nothing here links it: its entry points come
 * in as addresses taken from the ABI-mode library. The Python objects come in as their
 * addresses too (CPython's id()); the caller holds every one of them for the whole
 * call, so the strings and bytes whose buffers the chains point into stay alive and
 * unchanged. cffi releases the GIL around this call: the Python work takes it back
 * (PyGILState_Ensure) and gives it up again before each engine call, so that other
 * threads run while the engine works, as with an ABI-mode call.
 *
 * Returns the engine's code (0: success), or AIGES_FALLBACK before anything reached
 * the engine (an input this code does not take: the caller runs the Python path), or
 * AIGES_PYERR when copying the outputs failed (out of memory; the outputs are freed).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "wrapper.h"

#define AIGES_FALLBACK (-0x7ffffff0)
#define AIGES_PYERR (-0x7ffffff1)

/* Chains this small are built on the stack; bigger ones in one heap block. */
#define STACK_PARAMS 32
#define STACK_DATA 8
#define STACK_IDS 16

static PyObject *s_key, *s_data, *s_type, *s_status, *s_desc, *s_empty, *s_empty_bytes;

static int intern_names(void)
{
    if (s_key != NULL)
        return 0;
    s_key = PyUnicode_InternFromString("key");
    s_data = PyUnicode_InternFromString("data");
    s_type = PyUnicode_InternFromString("type");
    s_status = PyUnicode_InternFromString("status");
    s_desc = PyUnicode_InternFromString("desc");
    s_empty = PyUnicode_InternFromString("");
    s_empty_bytes = PyBytes_FromStringAndSize(NULL, 0);
    return (s_key && s_data && s_type && s_status && s_desc && s_empty && s_empty_bytes) ? 0 : -1;
}

/* The NUL-terminated UTF-8 of a str (cached by the str itself), or NULL. */
static char *utf8(PyObject *text, Py_ssize_t *size)
{
    if (!PyUnicode_Check(text))
        return NULL;
    return (char *)PyUnicode_AsUTF8AndSize(text, size);
}

/* A dict[str, str] as a chain of nodes taken from ``nodes``; -1 on anything else. */
static int param_chain(PyObject *pairs, struct ParamList *nodes, pParamList *head)
{
    Py_ssize_t pos = 0, i = 0, n = PyDict_GET_SIZE(pairs), vlen;
    PyObject *key, *value;
    *head = NULL;
    while (PyDict_Next(pairs, &pos, &key, &value)) {
        struct ParamList *node = &nodes[i];
        node->key = utf8(key, NULL);
        node->value = utf8(value, &vlen);
        if (node->key == NULL || node->value == NULL)
            return -1;
        node->vlen = (unsigned int)vlen;
        node->next = (++i < n) ? &nodes[i] : NULL;
    }
    if (n)
        *head = nodes;
    return 0;
}

static long int_attr(PyObject *item, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(item, name);
    long result = value != NULL && PyLong_Check(value) ? PyLong_AsLong(value) : -1;
    Py_XDECREF(value);
    return result;
}

/* Everything the inputs need, sized in one pass so that it is one block. */
struct inputs {
    pParamList params;
    pDataList data;
    unsigned int *ids;
    int id_count;
    void *heap;
    struct ParamList stack_params[STACK_PARAMS];
    struct DataList stack_data[STACK_DATA];
    unsigned int stack_ids[STACK_IDS];
};

/* ``items`` (list[Data]), ``params`` (dict or NULL) and ``ids`` (list or NULL): the
 * chains and the id array, pointing into the objects. */
static int build_inputs(struct inputs *in, PyObject *params, PyObject *items,
                        PyObject *ids, PyTypeObject *data_type)
{
    Py_ssize_t n = PyList_GET_SIZE(items), i;
    Py_ssize_t pcount = params != NULL ? PyDict_GET_SIZE(params) : 0;
    Py_ssize_t nids = ids != NULL ? PyList_GET_SIZE(ids) : 0;
    PyObject *descs[STACK_DATA];
    PyObject **desc = n <= STACK_DATA ? descs : PyMem_Malloc(n * sizeof(PyObject *));
    struct ParamList *pnodes;
    struct DataList *dnodes;
    int ok = -1;

    in->heap = NULL;
    if (desc == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        desc[i] = Py_TYPE(item) == data_type ? PyObject_GetAttr(item, s_desc) : NULL;
        if (desc[i] == NULL || !PyDict_CheckExact(desc[i])) {
            Py_XDECREF(desc[i]);
            for (Py_ssize_t j = 0; j < i; j++)
                Py_DECREF(desc[j]);
            goto out_desc;
        }
        pcount += PyDict_GET_SIZE(desc[i]);
    }
    if (pcount <= STACK_PARAMS && n <= STACK_DATA && nids <= STACK_IDS) {
        pnodes = in->stack_params;
        dnodes = in->stack_data;
        in->ids = in->stack_ids;
    } else {
        size_t size = pcount * sizeof(struct ParamList) + n * sizeof(struct DataList) +
                      nids * sizeof(unsigned int);
        char *block = in->heap = PyMem_Calloc(1, size ? size : 1);
        if (block == NULL)
            goto out;
        pnodes = (struct ParamList *)block;
        dnodes = (struct DataList *)(block + pcount * sizeof(struct ParamList));
        in->ids = (unsigned int *)(block + pcount * sizeof(struct ParamList) +
                                   n * sizeof(struct DataList));
    }
    in->params = NULL;
    if (params != NULL) {
        if (param_chain(params, pnodes, &in->params) < 0)
            goto out;
        pnodes += PyDict_GET_SIZE(params);
    }
    in->data = n ? dnodes : NULL;
    for (i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(items, i), *data;
        struct DataList *node = &dnodes[i];
        long type = int_attr(item, s_type), status = int_attr(item, s_status);
        Py_ssize_t key_len;
        node->key = NULL;
        {
            PyObject *key = PyObject_GetAttr(item, s_key);
            if (key == NULL)
                goto out;
            node->key = utf8(key, &key_len);
            Py_DECREF(key);  /* still held by the item */
        }
        data = PyObject_GetAttr(item, s_data);
        if (node->key == NULL || data == NULL || !PyBytes_CheckExact(data) ||
            type < 0 || status < 0 || PyBytes_GET_SIZE(data) > UINT32_MAX) {
            Py_XDECREF(data);
            goto out;
        }
        node->data = PyBytes_GET_SIZE(data) ? PyBytes_AS_STRING(data) : NULL;
        node->len = (unsigned int)PyBytes_GET_SIZE(data);
        Py_DECREF(data);  /* still held by the item */
        node->type = (DataType)type;
        node->status = (DataStatus)status;
        if (param_chain(desc[i], pnodes, &node->desc) < 0)
            goto out;
        pnodes += PyDict_GET_SIZE(desc[i]);
        node->next = i + 1 < n ? &dnodes[i + 1] : NULL;
    }
    for (i = 0; i < nids; i++) {
        PyObject *id = PyList_GET_ITEM(ids, i);
        unsigned long value = PyLong_Check(id) ? PyLong_AsUnsignedLong(id) : (unsigned long)-1;
        if (value > UINT32_MAX)
            goto out;
        in->ids[i] = (unsigned int)value;
    }
    in->id_count = (int)nids;
    if (!nids)
        in->ids = NULL;
    ok = 0;
out:
    for (i = 0; i < n; i++)
        Py_DECREF(desc[i]);  /* still held by the items */
out_desc:
    if (desc != descs)
        PyMem_Free(desc);
    if (ok < 0) {
        PyMem_Free(in->heap);
        in->heap = NULL;
        PyErr_Clear();
    }
    return ok;
}

static PyObject *text(const char *value)
{
    if (value == NULL) {
        Py_INCREF(s_empty);
        return s_empty;
    }
    return PyUnicode_DecodeUTF8(value, strlen(value), "replace");
}

static PyObject *read_params(pParamList head)
{
    PyObject *pairs = PyDict_New();
    for (; pairs != NULL && head != NULL; head = head->next) {
        PyObject *key, *value;
        if (head->key == NULL)
            continue;
        key = text(head->key);
        value = text(head->value);
        if (key == NULL || value == NULL || PyDict_SetItem(pairs, key, value) < 0)
            Py_CLEAR(pairs);
        Py_XDECREF(key);
        Py_XDECREF(value);
    }
    return pairs;
}

/* The engine's outputs appended to ``out`` as Data objects (copies: the engine frees
 * its own right after), as lists.read_data makes them. */
static int read_outputs(pDataList head, PyObject *data_type, PyObject *out)
{
    for (; head != NULL; head = head->next) {
        PyObject *args[5], *item;
        int i, failed;
        args[0] = text(head->key);
        if (head->len && head->data != NULL) {
            args[1] = PyBytes_FromStringAndSize(head->data, head->len);
        } else {
            Py_INCREF(s_empty_bytes);
            args[1] = s_empty_bytes;
        }
        args[2] = PyLong_FromLong(head->type);
        args[3] = PyLong_FromLong(head->status);
        args[4] = head->desc != NULL ? read_params(head->desc) : PyDict_New();
        failed = !args[0] || !args[1] || !args[2] || !args[3] || !args[4];
        item = failed ? NULL : PyObject_Vectorcall(data_type, args, 5, NULL);
        for (i = 0; i < 5; i++)
            Py_XDECREF(args[i]);
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            return -1;
        }
        Py_DECREF(item);
    }
    return 0;
}

/* The engine's meter callback (CTMeterCustom), kept in C during a compiled call: a
 * cffi callback into Python costs more than a whole small exec (about 1.3 us, even
 * one that does nothing). Each engine gets one of METER_SLOTS trampolines; while a
 * compiled call of that engine runs on this thread, its meter calls are recorded here
 * (key copied) and handed to Python after the call, with the call's own sid. Any other
 * call (another thread, after the call, a long key, too many) goes to the engine's
 * Python callback, as without this. Engines past METER_SLOTS get that callback itself. */
#define METER_SLOTS 16
#define METER_KEY_MAX 64
#define METER_MAX 8

typedef int (*meter_fn)(const void *usrTag, const char *key, int count);

struct call_meters {
    int slot, n;
    int counts[METER_MAX];
    char keys[METER_MAX][METER_KEY_MAX];
};

static meter_fn meter_fallback[METER_SLOTS];
static int meter_slots_used;
static __thread struct call_meters *current_meters;

static int meter_at(int slot, const void *tag, const char *key, int count)
{
    struct call_meters *c = current_meters;
    if (c != NULL && c->slot == slot && key != NULL && c->n < METER_MAX) {
        size_t len = strnlen(key, METER_KEY_MAX);
        if (len < METER_KEY_MAX) {
            memcpy(c->keys[c->n], key, len + 1);
            c->counts[c->n++] = count;
            return 0;
        }
    }
    return meter_fallback[slot](tag, key, count);
}

#define METER_ENTRY(i) \
    static int meter_##i(const void *t, const char *k, int n) { return meter_at(i, t, k, n); }
METER_ENTRY(0) METER_ENTRY(1) METER_ENTRY(2) METER_ENTRY(3) METER_ENTRY(4) METER_ENTRY(5)
METER_ENTRY(6) METER_ENTRY(7) METER_ENTRY(8) METER_ENTRY(9) METER_ENTRY(10) METER_ENTRY(11)
METER_ENTRY(12) METER_ENTRY(13) METER_ENTRY(14) METER_ENTRY(15)

static const meter_fn meter_entries[METER_SLOTS] = {
    meter_0, meter_1, meter_2, meter_3, meter_4, meter_5, meter_6, meter_7,
    meter_8, meter_9, meter_10, meter_11, meter_12, meter_13, meter_14, meter_15};

/* A slot for an engine whose Python meter callback is ``fallback``: its number, or -1
 * when every slot is taken. Slots are never given back: the engine may keep calling. */
int aiges_meter_slot(uintptr_t fallback)
{
    int slot = __atomic_fetch_add(&meter_slots_used, 1, __ATOMIC_SEQ_CST);
    if (slot >= METER_SLOTS)
        return -1;
    meter_fallback[slot] = (meter_fn)fallback;
    return slot;
}

/* The trampoline to hand the engine for ``slot``. */
uintptr_t aiges_meter_entry(int slot)
{
    return slot >= 0 && slot < METER_SLOTS ? (uintptr_t)meter_entries[slot] : 0;
}

/* The meter calls recorded during a call, appended to ``out`` as (key, count). */
static int read_meters(const struct call_meters *c, PyObject *out)
{
    for (int i = 0; i < c->n; i++) {
        PyObject *pair = Py_BuildValue("(Ni)", PyUnicode_DecodeUTF8(
            c->keys[i], strlen(c->keys[i]), "replace"), c->counts[i]);
        if (pair == NULL || PyList_Append(out, pair) < 0) {
            Py_XDECREF(pair);
            return -1;
        }
        Py_DECREF(pair);
    }
    return 0;
}

/* ``meter_slot``: the engine's (aiges_meter_slot) or -1; its meter calls during
 * wrapperExec are appended to ``meters`` as (key, count). */
int aiges_exec(uintptr_t exec_fn, uintptr_t free_fn, uintptr_t tag, uintptr_t params_obj,
               uintptr_t items_obj, uintptr_t ids_obj, uintptr_t data_type, uintptr_t out_obj,
               int meter_slot, uintptr_t meters_obj)
{
    PyObject *params = (PyObject *)params_obj, *items = (PyObject *)items_obj;
    PyObject *ids = (PyObject *)ids_obj, *out = (PyObject *)out_obj;
    PyObject *meters = (PyObject *)meters_obj;
    struct inputs in;
    struct call_meters counted = {meter_slot, 0};
    pDataList resp = NULL;
    int ret, built;
    PyGILState_STATE gil = PyGILState_Ensure();

    built = intern_names() == 0 && PyDict_CheckExact(params) && PyList_CheckExact(items) &&
            PyList_CheckExact(ids) && PyList_CheckExact(out) && PyList_CheckExact(meters) ?
            build_inputs(&in, params, items, ids, (PyTypeObject *)data_type) : -1;
    if (built < 0)
        PyErr_Clear();
    PyGILState_Release(gil);
    if (built < 0)
        return AIGES_FALLBACK;

    current_meters = meter_slot >= 0 ? &counted : NULL;
    ret = ((wrapperExecPtr)exec_fn)((const char *)tag, in.params, in.data, &resp, in.ids,
                                     in.id_count);
    current_meters = NULL;

    gil = PyGILState_Ensure();
    PyMem_Free(in.heap);
    if (read_meters(&counted, meters) < 0 ||
        (ret == 0 && read_outputs(resp, (PyObject *)data_type, out) < 0)) {
        PyErr_Clear();
        ret = AIGES_PYERR;
    }
    PyGILState_Release(gil);
    if (resp != NULL)
        ((wrapperExecFreePtr)free_fn)((const char *)tag, &resp);
    return ret;
}

/* A session's input (wrapperWrite) in one crossing: the DataList built from ``items``.
 * Returns the engine's code, or AIGES_FALLBACK. */
int aiges_write(uintptr_t write_fn, uintptr_t handle, uintptr_t items_obj, uintptr_t data_type)
{
    PyObject *items = (PyObject *)items_obj;
    struct inputs in;
    int ret, built;
    PyGILState_STATE gil = PyGILState_Ensure();

    built = intern_names() == 0 && PyList_CheckExact(items) ?
            build_inputs(&in, NULL, items, NULL, (PyTypeObject *)data_type) : -1;
    if (built < 0)
        PyErr_Clear();
    PyGILState_Release(gil);
    if (built < 0)
        return AIGES_FALLBACK;

    ret = ((wrapperWritePtr)write_fn)((const void *)handle, in.data);

    if (in.heap != NULL) {
        gil = PyGILState_Ensure();
        PyMem_Free(in.heap);
        PyGILState_Release(gil);
    }
    return ret;
}

/* An engine's output chain appended to ``out`` as Data objects, the GIL taken for it:
 * what wrapperRead returned, or what an engine hands its result callback
 * (wrapperCallback's respData, valid only during the call; copied here on the
 * engine's thread, which then holds the GIL for less time than the Python path
 * takes). Returns 0, or AIGES_PYERR (``out`` then holds what was copied before). */
int aiges_outputs(uintptr_t resp, uintptr_t data_type, uintptr_t out_obj)
{
    int ret = 0;
    PyGILState_STATE gil = PyGILState_Ensure();

    if (intern_names() != 0 || !PyList_CheckExact((PyObject *)out_obj) ||
        read_outputs((pDataList)resp, (PyObject *)data_type, (PyObject *)out_obj) < 0) {
        PyErr_Clear();
        ret = AIGES_PYERR;
    }
    PyGILState_Release(gil);
    return ret;
}

/* A session's output (wrapperRead) in one crossing: what the engine returned appended
 * to ``out`` as Data objects (left empty when it returned nothing). The engine keeps
 * its memory (valid until its next read or destroy). Returns the engine's code, or
 * AIGES_PYERR. */
int aiges_read(uintptr_t read_fn, uintptr_t handle, uintptr_t data_type, uintptr_t out_obj)
{
    pDataList resp = NULL;
    int ret = ((wrapperReadPtr)read_fn)((const void *)handle, &resp);

    if (ret != 0 || resp == NULL)
        return ret;
    return aiges_outputs((uintptr_t)resp, data_type, out_obj);
}
