/* BM25's inner loop in C: one posting list's weights added to a score per doc.
 *
 * `bot.matching.index.scoring` sums a query's posting lists with it when it is built, and
 * with numpy otherwise. The arithmetic is numpy's, step for step: for each posting,
 * w = (tf * c) / (norm[row] + tf), then w *= weight unless weight is 1, then
 * out[row] += w; compiled without floating-point contraction, so the floats are the
 * same. numpy takes four passes over the list and two temporary arrays; this takes one.
 * `add_weights_at` does the same for some rows only, finding them in the posting list.
 * Rows out of the docs are refused (IndexError), never read or written.
 * The arrays come in through the buffer protocol: no numpy headers are needed to build.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const char *name;
    char kind; /* 'i' signed integer, 'u' unsigned integer, 'f' floating point */
    Py_ssize_t itemsize;
    int writable;
} Spec;

/* Whether a buffer holds items of this kind and size, whatever letter the platform gives
 * them (numpy's int64 is "l" on Linux and "q" on Windows, its int32 "i" or "l"), with or
 * without a byte-order prefix ("<i"). */
static int is_type(const Py_buffer *view, char kind, Py_ssize_t itemsize)
{
    const char *format = view->format ? view->format : "B";
    while (*format == '<' || *format == '=' || *format == '@')
        format++;
    if (format[0] == '\0' || format[1] != '\0' || view->itemsize != itemsize)
        return 0;
    const char *letters = kind == 'i' ? "bhilq" : kind == 'u' ? "BHILQ" : "efd";
    return strchr(letters, format[0]) != NULL;
}

static void release_all(Py_buffer *views, int n)
{
    for (int k = 0; k < n; k++)
        PyBuffer_Release(&views[k]);
}

/* The buffers of `objects`, 1-d, contiguous and of the types `specs` say: all of them
 * (0), or none and an exception set (-1). */
static int take_all(PyObject **objects, const Spec *specs, Py_buffer *views, int n)
{
    for (int k = 0; k < n; k++) {
        int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (specs[k].writable ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(objects[k], &views[k], flags) < 0) {
            release_all(views, k);
            return -1;
        }
        if (views[k].ndim != 1 || !is_type(&views[k], specs[k].kind, specs[k].itemsize)) {
            static const char *kinds[] = {"int", "uint", "float"};
            const char *kind = kinds[specs[k].kind == 'i' ? 0 : specs[k].kind == 'u' ? 1 : 2];
            PyErr_Format(PyExc_TypeError, "%s: a 1-d contiguous array of %s%zd is needed",
                         specs[k].name, kind, 8 * specs[k].itemsize);
            release_all(views, k + 1);
            return -1;
        }
    }
    return 0;
}

static const Spec SUM_SPECS[] = {
    {"out", 'f', 8, 1}, {"rows", 'i', 4, 0}, {"tf", 'u', 2, 0}, {"norm", 'f', 8, 0}};

static PyObject *add_weights(PyObject *self, PyObject *args)
{
    PyObject *objects[4];
    Py_buffer views[4];
    double c, weight;
    if (!PyArg_ParseTuple(args, "OOOOdd", &objects[0], &objects[1], &objects[2], &objects[3],
                          &c, &weight))
        return NULL;
    if (take_all(objects, SUM_SPECS, views, 4) < 0)
        return NULL;
    Py_ssize_t n_docs = views[0].len / 8, n = views[1].len / 4, bad = -1;
    if (views[2].len / 2 != n || views[3].len / 8 != n_docs) {
        release_all(views, 4);
        PyErr_SetString(PyExc_ValueError, "rows and tf, out and norm: lengths differ");
        return NULL;
    }
    double *sums = (double *)views[0].buf;
    const int32_t *at = (const int32_t *)views[1].buf;
    const uint16_t *count = (const uint16_t *)views[2].buf;
    const double *below = (const double *)views[3].buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int32_t row = at[i];
        if (row < 0 || row >= n_docs) {
            bad = i;
            break;
        }
        double t = (double)count[i];
        double w = (t * c) / (below[row] + t);
        if (weight != 1.0)
            w *= weight;
        sums[row] += w;
    }
    Py_END_ALLOW_THREADS
    int32_t bad_row = bad >= 0 ? at[bad] : 0;
    release_all(views, 4);
    if (bad >= 0) {
        PyErr_Format(PyExc_IndexError, "posting %zd: row %d is not a doc", bad, (int)bad_row);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* The first position at or after `from` where posted[position] >= row (galloping, then
 * a binary search): rows come ascending, so each search starts where the last ended. */
static Py_ssize_t seek(const int32_t *posted, Py_ssize_t n, Py_ssize_t from, int64_t row)
{
    Py_ssize_t low = from, step = 1, high = from;
    while (high < n && posted[high] < row) {
        low = high + 1;
        high += step;
        step *= 2;
    }
    if (high > n)
        high = n;
    while (low < high) {
        Py_ssize_t mid = low + (high - low) / 2;
        if (posted[mid] < row)
            low = mid + 1;
        else
            high = mid;
    }
    return low;
}

static const Spec AT_SPECS[] = {{"out", 'f', 8, 1},
                                {"rows", 'i', 8, 0},
                                {"posted", 'i', 4, 0},
                                {"tf", 'u', 2, 0},
                                {"norm", 'f', 8, 0}};

static PyObject *add_weights_at(PyObject *self, PyObject *args)
{
    PyObject *objects[5];
    Py_buffer views[5];
    double c, weight;
    if (!PyArg_ParseTuple(args, "OOOOOdd", &objects[0], &objects[1], &objects[2], &objects[3],
                          &objects[4], &c, &weight))
        return NULL;
    if (take_all(objects, AT_SPECS, views, 5) < 0)
        return NULL;
    Py_ssize_t n_rows = views[1].len / 8, n = views[2].len / 4, n_docs = views[4].len / 8;
    Py_ssize_t bad = -1;
    if (views[0].len / 8 != n_rows || views[3].len / 2 != n) {
        release_all(views, 5);
        PyErr_SetString(PyExc_ValueError, "rows and out, posted and tf: lengths differ");
        return NULL;
    }
    double *sums = (double *)views[0].buf;
    const int64_t *wanted = (const int64_t *)views[1].buf;
    const int32_t *at = (const int32_t *)views[2].buf;
    const uint16_t *count = (const uint16_t *)views[3].buf;
    const double *below = (const double *)views[4].buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < n_rows; j++) { /* every row, whatever the list holds */
        if (wanted[j] < 0 || wanted[j] >= n_docs || (j && wanted[j] <= wanted[j - 1])) {
            bad = j;
            break;
        }
    }
    Py_ssize_t i = 0;
    for (Py_ssize_t j = 0; bad < 0 && j < n_rows && i < n; j++) {
        int64_t row = wanted[j];
        i = seek(at, n, i, row);
        if (i < n && at[i] == row) {
            double t = (double)count[i];
            sums[j] += weight * ((t * c) / (below[row] + t));
        }
    }
    Py_END_ALLOW_THREADS
    release_all(views, 5);
    if (bad >= 0) {
        PyErr_Format(PyExc_IndexError, "rows[%zd]: not an ascending row of a doc", bad);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"add_weights", add_weights, METH_VARARGS,
     "add_weights(out, rows, tf, norm, c, weight): out[rows[i]] += weight * (tf[i] * c) / "
     "(norm[rows[i]] + tf[i]) for each posting (float64 out and norm, int32 rows, uint16 tf)."},
    {"add_weights_at", add_weights_at, METH_VARARGS,
     "add_weights_at(out, rows, posted, tf, norm, c, weight): for each of `rows` (int64, "
     "ascending) found in the posting list `posted` (int32, ascending) with `tf`, "
     "out[j] += weight * (tf * c) / (norm[row] + tf)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels", "BM25's inner loop in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__kernels(void)
{
    return PyModule_Create(&module);
}
