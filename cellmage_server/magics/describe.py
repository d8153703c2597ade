"""A kernel variable described for a model (``--var NAME``), not dumped: a DataFrame as its shape,
column types and first rows as a Markdown table (pandas, and polars where installed), a NumPy
array as its shape, type and a sample, anything else as its ``repr`` cut to size.

Light to import (``%load_ext`` loads it): pandas, polars and NumPy are recognised by their types'
modules and used only when the variable is one of theirs.
"""

from __future__ import annotations

from typing import Any

ROWS = 5  # first rows of a table
REPR_CHARS = 2000


def _cell(value: Any) -> str:
    text = str(value).replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= 60 else text[:59] + "…"


def markdown_table(columns: list[str], rows: list[list[Any]]) -> str:
    head = "| " + " | ".join(_cell(c) for c in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def _module(value: Any) -> str:
    return type(value).__module__.split(".", 1)[0]


def describe(name: str, value: Any) -> str:
    kind = _module(value)
    cls = type(value).__name__
    if kind == "pandas" and cls == "DataFrame":
        rows, cols = value.shape
        dtypes = ", ".join(f"{c}: {t}" for c, t in list(value.dtypes.astype(str).items())[:50])
        head = value.head(ROWS)
        index = [str(i) for i in head.index]
        table = markdown_table(["", *[str(c) for c in head.columns]], [[i, *r] for i, r in zip(index, head.values.tolist())])
        return f"pandas DataFrame `{name}`: {rows} rows × {cols} columns.\nColumn types: {dtypes}.\nFirst {min(ROWS, rows)} rows:\n\n{table}"
    if kind == "pandas" and cls == "Series":
        head = value.head(ROWS)
        table = markdown_table(["", str(value.name or name)], [[str(i), v] for i, v in head.items()])
        return f"pandas Series `{name}`: {len(value)} values of type {value.dtype}.\nFirst {min(ROWS, len(value))}:\n\n{table}"
    if kind == "polars" and cls == "DataFrame":
        rows, cols = value.shape
        dtypes = ", ".join(f"{c}: {t}" for c, t in list(zip(value.columns, map(str, value.dtypes)))[:50])
        head = value.head(ROWS)
        table = markdown_table(list(head.columns), [list(r) for r in head.rows()])
        return f"polars DataFrame `{name}`: {rows} rows × {cols} columns.\nColumn types: {dtypes}.\nFirst {min(ROWS, rows)} rows:\n\n{table}"
    if kind == "numpy" and cls == "ndarray":
        import numpy

        sample = numpy.array2string(value, threshold=50, edgeitems=3, max_line_width=100)
        return f"NumPy array `{name}`: shape {value.shape}, dtype {value.dtype}.\nSample:\n{sample}"
    # reprlib: a long list or string is cut as it is written, not written whole and then cut.
    import reprlib

    short = reprlib.Repr()
    short.maxlist = short.maxtuple = short.maxset = short.maxdict = short.maxdeque = 50
    short.maxlevel, short.maxstring, short.maxother, short.maxlong = 4, REPR_CHARS, REPR_CHARS, 200
    text = short.repr(value)
    if len(text) > REPR_CHARS:
        text = text[:REPR_CHARS] + f"… [{len(text) - REPR_CHARS} more characters of its repr cut]"
    size = f", {len(value)} items" if isinstance(value, (list, tuple, dict, set, str, bytes)) else ""
    return f"`{name}` ({cls}{size}): {text}"
