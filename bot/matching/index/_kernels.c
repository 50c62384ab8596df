/* BM25's inner loop in C: one posting list's weights added to a score per doc.
 *
 * `bot.matching.index.scoring` sums a query's posting lists with it when it is built, and
 * with numpy otherwise. The arithmetic is numpy's, step for step: for each posting,
 * w = (tf * c) / (norm[row] + tf), then w *= weight unless weight is 1, then
 * out[row] += w; compiled without floating-point contraction, so the floats are the
 * same. numpy takes four passes over the list and two temporary arrays; this takes one.
 * `add_weights_at` does the same for some rows only, finding them in the posting list.
 * The arrays come in through the buffer protocol: no numpy headers are needed to build.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* The buffer's item type without its byte-order prefix: "d", "i", "H". */
static const char *item_type(const Py_buffer *view)
{
    const char *format = view->format ? view->format : "B";
    while (*format == '<' || *format == '=' || *format == '@')
        format++;
    return format;
}

static int take(PyObject *object, Py_buffer *view, int writable, const char *type,
                Py_ssize_t itemsize, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(object, view, flags) < 0)
        return -1;
    if (view->ndim != 1 || view->itemsize != itemsize || strcmp(item_type(view), type) != 0) {
        PyErr_Format(PyExc_TypeError, "%s: a 1-d contiguous array of '%s' is needed", name, type);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *add_weights(PyObject *self, PyObject *args)
{
    PyObject *out_obj, *rows_obj, *tf_obj, *norm_obj;
    double c, weight;
    Py_buffer out, rows, tf, norm;
    if (!PyArg_ParseTuple(args, "OOOOdd", &out_obj, &rows_obj, &tf_obj, &norm_obj, &c, &weight))
        return NULL;
    if (take(out_obj, &out, 1, "d", 8, "out") < 0)
        return NULL;
    if (take(rows_obj, &rows, 0, "i", 4, "rows") < 0)
        goto release_out;
    if (take(tf_obj, &tf, 0, "H", 2, "tf") < 0)
        goto release_rows;
    if (take(norm_obj, &norm, 0, "d", 8, "norm") < 0)
        goto release_tf;
    Py_ssize_t n_docs = out.len / 8, n = rows.len / 4, bad = -1;
    if (tf.len / 2 != n || norm.len / 8 != n_docs) {
        PyErr_SetString(PyExc_ValueError, "rows and tf, out and norm: lengths differ");
        goto release_norm;
    }
    double *sums = (double *)out.buf;
    const int32_t *at = (const int32_t *)rows.buf;
    const uint16_t *count = (const uint16_t *)tf.buf;
    const double *below = (const double *)norm.buf;
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
    if (bad >= 0)
        PyErr_Format(PyExc_IndexError, "posting %zd: row %d is not a doc", bad, (int)at[bad]);
release_norm:
    PyBuffer_Release(&norm);
release_tf:
    PyBuffer_Release(&tf);
release_rows:
    PyBuffer_Release(&rows);
release_out:
    PyBuffer_Release(&out);
    if (PyErr_Occurred())
        return NULL;
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

static PyObject *add_weights_at(PyObject *self, PyObject *args)
{
    PyObject *out_obj, *rows_obj, *posted_obj, *tf_obj, *norm_obj;
    double c, weight;
    Py_buffer out, rows, posted, tf, norm;
    if (!PyArg_ParseTuple(args, "OOOOOdd", &out_obj, &rows_obj, &posted_obj, &tf_obj,
                          &norm_obj, &c, &weight))
        return NULL;
    if (take(out_obj, &out, 1, "d", 8, "out") < 0)
        return NULL;
    if (take(rows_obj, &rows, 0, "l", 8, "rows") < 0)
        goto release_out;
    if (take(posted_obj, &posted, 0, "i", 4, "posted") < 0)
        goto release_rows;
    if (take(tf_obj, &tf, 0, "H", 2, "tf") < 0)
        goto release_posted;
    if (take(norm_obj, &norm, 0, "d", 8, "norm") < 0)
        goto release_tf;
    Py_ssize_t n_rows = rows.len / 8, n = posted.len / 4, n_docs = norm.len / 8, bad = -1;
    if (out.len / 8 != n_rows || tf.len / 2 != n) {
        PyErr_SetString(PyExc_ValueError, "rows and out, posted and tf: lengths differ");
        goto release_norm;
    }
    double *sums = (double *)out.buf;
    const int64_t *wanted = (const int64_t *)rows.buf;
    const int32_t *at = (const int32_t *)posted.buf;
    const uint16_t *count = (const uint16_t *)tf.buf;
    const double *below = (const double *)norm.buf;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t i = 0;
    for (Py_ssize_t j = 0; j < n_rows && i < n; j++) {
        int64_t row = wanted[j];
        if (row < 0 || row >= n_docs || (j && row <= wanted[j - 1])) {
            bad = j;
            break;
        }
        i = seek(at, n, i, row);
        if (i < n && at[i] == row) {
            double t = (double)count[i];
            sums[j] += weight * ((t * c) / (below[row] + t));
        }
    }
    Py_END_ALLOW_THREADS
    if (bad >= 0)
        PyErr_Format(PyExc_IndexError, "rows[%zd]: not an ascending row of a doc", bad);
release_norm:
    PyBuffer_Release(&norm);
release_tf:
    PyBuffer_Release(&tf);
release_posted:
    PyBuffer_Release(&posted);
release_rows:
    PyBuffer_Release(&rows);
release_out:
    PyBuffer_Release(&out);
    if (PyErr_Occurred())
        return NULL;
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
