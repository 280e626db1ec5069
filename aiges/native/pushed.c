/* Results an engine pushes through a session's result callback, queued in C: the
 * engine's thread copies the outputs and queues them without taking the GIL, and the
 * event loop takes them in batches (aiges_push_take), woken by an eventfd written once
 * per batch. Compiled after marshal.c, in the same unit (marshal_build.py).
 *
 * Why: a Python callback takes the GIL on the engine's thread for every result, and
 * on a busy core every hand-over of the GIL is a switch between the engine's thread
 * and the loop's. The hold (aiges_push_hold) keeps an engine's thread from delivering
 * while the loop writes a burst of frames: the thread delivers the burst's results
 * together once the burst is written (waiting for the GIL instead, it ran once per
 * frame, as the GIL is given up around every engine call). A hold is never waited on for more than
 * PUSH_HOLD_NS, so an engine whose write waits for its own thread is delayed, not
 * deadlocked; the thread that holds never waits (an engine may call back inline).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define PUSH_HOLD_NS 1000000L

struct pushed {
    struct pushed *next;
    uintptr_t tag;
    int ret;
    pDataList list; /* the copy, or NULL */
};

static pthread_mutex_t push_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t push_free; /* its clock: CLOCK_MONOTONIC (push_init) */
static pthread_once_t push_once = PTHREAD_ONCE_INIT;
static struct pushed *push_head, **push_tail = &push_head;
static int push_held, push_notified, push_fd = -1;
static unsigned long push_ignored; /* callbacks for no open session, since the last take */
static pthread_t push_holder;
static pid_t push_pid;

static void free_params(pParamList p)
{
    while (p != NULL) {
        pParamList next = p->next;
        free(p);
        p = next;
    }
}

static void free_list(pDataList d)
{
    while (d != NULL) {
        pDataList next = d->next;
        free_params(d->desc);
        free(d);
        d = next;
    }
}

/* The usrTags of open sessions, so that a late or unknown one is answered -1 at once
 * (SPEC 1), as the Python callback does: a set of addresses, open addressing, under
 * push_mu. Never read through. 0: an empty slot, 1: a removed one. */
static uintptr_t *live;
static size_t live_cap, live_used, live_removed;

static size_t live_slot(uintptr_t tag, size_t cap)
{
    return (size_t)(((unsigned long long)tag >> 4) * 0x9E3779B97F4A7C15ULL) & (cap - 1);
}

static size_t live_find(uintptr_t tag) /* its slot, or live_cap */
{
    size_t i, n;
    if (live_cap == 0)
        return 0;
    for (i = live_slot(tag, live_cap), n = 0; n < live_cap; i = (i + 1) & (live_cap - 1), n++) {
        if (live[i] == tag)
            return i;
        if (live[i] == 0)
            break;
    }
    return live_cap;
}

static int live_add(uintptr_t tag)
{
    size_t i;
    if ((live_used + live_removed + 1) * 2 > live_cap) { /* grow (or clear removed) */
        size_t cap = live_cap ? live_cap : 64, j;
        uintptr_t *old = live;
        while ((live_used + 1) * 2 > cap)
            cap *= 2;
        live = calloc(cap, sizeof *live);
        if (live == NULL) {
            live = old;
            return -1;
        }
        for (j = 0; j < live_cap; j++)
            if (old[j] > 1) {
                for (i = live_slot(old[j], cap); live[i]; i = (i + 1) & (cap - 1))
                    ;
                live[i] = old[j];
            }
        free(old);
        live_cap = cap;
        live_removed = 0;
    }
    for (i = live_slot(tag, live_cap); live[i] > 1; i = (i + 1) & (live_cap - 1))
        ;
    if (live[i] == 1)
        live_removed--;
    live[i] = tag;
    live_used++;
    return 0;
}

static void push_init(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* a wall-clock jump: no longer hold */
    pthread_cond_init(&push_free, &attr);
    pthread_condattr_destroy(&attr);
}

/* A copy of ``s`` in one block with its text after it, or NULL (out of memory). */
static char *copy_text(const char *s, char **room)
{
    size_t n;
    char *at = *room;
    if (s == NULL)
        return NULL;
    n = strlen(s) + 1;
    memcpy(at, s, n);
    *room += n;
    return at;
}

static pParamList copy_params(pParamList src, int *failed)
{
    pParamList head = NULL, *tail = &head;
    for (; src != NULL; src = src->next) {
        size_t size = sizeof(struct ParamList) + (src->key ? strlen(src->key) + 1 : 0) +
                      (src->value ? strlen(src->value) + 1 : 0);
        pParamList p = malloc(size);
        char *room;
        if (p == NULL) {
            *failed = 1;
            break;
        }
        room = (char *)(p + 1);
        p->key = copy_text(src->key, &room);
        p->value = copy_text(src->value, &room);
        p->vlen = src->vlen;
        p->next = NULL;
        *tail = p;
        tail = &p->next;
    }
    return head;
}

/* A deep copy of an engine's output chain (each node one block with its key and
 * data), or NULL with *failed set when memory ran out. */
static pDataList copy_list(pDataList src, int *failed)
{
    pDataList head = NULL, *tail = &head;
    for (; src != NULL && !*failed; src = src->next) {
        size_t len = src->data != NULL ? src->len : 0;
        pDataList d = malloc(sizeof(struct DataList) + len +
                             (src->key ? strlen(src->key) + 1 : 0));
        char *room;
        if (d == NULL) {
            *failed = 1;
            break;
        }
        room = (char *)(d + 1);
        d->data = len ? memcpy(room, src->data, len) : NULL;
        room += len;
        d->len = (unsigned int)len;
        d->key = copy_text(src->key, &room);
        d->type = src->type;
        d->status = src->status;
        d->next = NULL;
        d->desc = copy_params(src->desc, failed);
        *tail = d;
        tail = &d->next;
    }
    if (*failed) {
        free_list(head);
        return NULL;
    }
    return head;
}

/* The wrapperCallback given to engines for sessions: any thread, never the GIL. */
static int aiges_pushed(const void *usrTag, pDataList resp, int ret)
{
    struct pushed *p = malloc(sizeof *p);
    int failed = 0, wake;
    if (p == NULL)
        return -1;
    p->next = NULL;
    p->tag = (uintptr_t)usrTag;
    p->ret = ret;
    p->list = ret == 0 ? copy_list(resp, &failed) : NULL;
    if (failed)
        p->ret = AIGES_PYERR;

    pthread_mutex_lock(&push_mu);
    if (live_find(p->tag) == live_cap) {
        push_ignored++;
        pthread_mutex_unlock(&push_mu);
        free_list(p->list);
        free(p);
        return -1;
    }
    if (push_held && !pthread_equal(push_holder, pthread_self())) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += PUSH_HOLD_NS;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (push_held && pthread_cond_timedwait(&push_free, &push_mu, &until) != ETIMEDOUT)
            ;
    }
    *push_tail = p;
    push_tail = &p->next;
    wake = !push_notified && push_fd >= 0;
    push_notified = 1;
    pthread_mutex_unlock(&push_mu);
    if (wake) {
        uint64_t one = 1;
        ssize_t n = write(push_fd, &one, sizeof one); /* EAGAIN: already readable */
        (void)n;
    }
    return 0;
}

uintptr_t aiges_push_entry(void)
{
    return (uintptr_t)aiges_pushed;
}

/* The eventfd the loop reads (readable when results wait), made once per process (a
 * forked worker makes its own); -1 when it cannot be made. */
int aiges_push_fd(void)
{
    pthread_once(&push_once, push_init); /* before the entry is handed out */
    pthread_mutex_lock(&push_mu);
    if (push_fd < 0 || push_pid != getpid()) {
        push_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        push_pid = getpid();
        push_notified = 0;
    }
    pthread_mutex_unlock(&push_mu);
    return push_fd;
}

/* A session's usrTag, open from before wrapperCreate until its results are taken
 * after wrapperDestroy. Returns 0, or -1 (out of memory). */
int aiges_push_open(uintptr_t tag)
{
    int ret;
    pthread_mutex_lock(&push_mu);
    ret = live_find(tag) < live_cap ? 0 : live_add(tag);
    pthread_mutex_unlock(&push_mu);
    return ret;
}

void aiges_push_close(uintptr_t tag)
{
    size_t i;
    pthread_mutex_lock(&push_mu);
    i = live_find(tag);
    if (i < live_cap) {
        live[i] = 1;
        live_used--;
        live_removed++;
    }
    pthread_mutex_unlock(&push_mu);
}

/* While held, engine threads wait (up to PUSH_HOLD_NS each) before queueing. */
void aiges_push_hold(int held)
{
    pthread_once(&push_once, push_init);
    pthread_mutex_lock(&push_mu);
    push_held = held;
    if (held)
        push_holder = pthread_self();
    else
        pthread_cond_broadcast(&push_free);
    pthread_mutex_unlock(&push_mu);
}

/* Every queued result appended to ``out`` as (tag, code, [Data, ...] or None), in the
 * order they came; the GIL taken for it. ``readable``: the caller saw the eventfd
 * readable, which is then cleared whatever the queue's state (a write that came after
 * the take before this one). Returns how many callbacks were answered -1 since the
 * last take (their usrTag named no open session), or AIGES_PYERR (what was not
 * converted is dropped). */
int aiges_push_take(uintptr_t data_type, uintptr_t out_obj, int readable)
{
    struct pushed *p, *next;
    PyObject *out = (PyObject *)out_obj;
    int failed = 0, ignored;
    PyGILState_STATE gil;

    pthread_mutex_lock(&push_mu);
    if ((push_notified || readable) && push_fd >= 0) {
        /* The eventfd was written for what is taken here: cleared now, so that the
         * loop is not woken again for nothing (under the lock: a result queued after
         * this take writes it again). A write still on its way only wakes it once. */
        uint64_t count;
        ssize_t n = read(push_fd, &count, sizeof count);
        (void)n;
    }
    p = push_head;
    push_head = NULL;
    push_tail = &push_head;
    push_notified = 0;
    ignored = push_ignored > 0x7fffffff ? 0x7fffffff : (int)push_ignored;
    push_ignored = 0;
    pthread_mutex_unlock(&push_mu);
    if (p == NULL)
        return ignored;

    gil = PyGILState_Ensure();
    if (intern_names() != 0)
        failed = 1;
    for (; p != NULL; p = next) {
        next = p->next;
        if (!failed) {
            PyObject *items = Py_None, *entry;
            Py_INCREF(items);
            if (p->list != NULL) {
                Py_DECREF(items);
                items = PyList_New(0);
                if (items != NULL && read_outputs(p->list, (PyObject *)data_type, items) < 0)
                    Py_CLEAR(items);
            }
            entry = items ? Py_BuildValue("(KiN)", (unsigned long long)p->tag, p->ret, items)
                          : NULL;
            if (entry == NULL || PyList_Append(out, entry) < 0)
                failed = 1;
            Py_XDECREF(entry);
        }
        free_list(p->list);
        free(p);
    }
    if (failed)
        PyErr_Clear();
    PyGILState_Release(gil);
    return failed ? AIGES_PYERR : ignored;
}
