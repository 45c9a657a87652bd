"""A results table that shows as Markdown in a notebook and as a booktabs tabular in the PDF.

The table is a pandas ``DataFrame`` whose column names are the headers a reader sees; ``formats``
maps a column to a format spec (``".3f"``, ``".1e"``) for its numbers. pandoc's conversion of wide
Markdown tables wraps every cell, so the PDF gets LaTeX instead.

    Table(frame.rename(columns={"val_acc": "validation"}), {"validation": ".3f"})
"""
from __future__ import annotations

import math
import numbers

import pandas as pd


def _cell(value, fmt: str | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if fmt and isinstance(value, numbers.Number) and not isinstance(value, bool):
        return format(value, fmt)
    return str(value)


def _latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        text = text.replace(a, b)
    return text


class Table:
    """A DataFrame (or anything ``pd.DataFrame`` takes, such as a list of dicts) shown with its
    column names as headers and ``formats`` applied to the named columns.

    Parameters
    ----------
    data : DataFrame or list of dict
        The rows; its index is not shown.
    formats : dict, optional
        Column name -> format spec for that column's numbers (booleans and text are left as they are).
    """

    def __init__(self, data, formats: dict[str, str] | None = None):
        frame = pd.DataFrame(data).reset_index(drop=True)
        if frame.empty:
            raise ValueError("The 'data' parameter must hold at least one row. Got an empty table instead.")
        formats = dict(formats or {})
        unknown = sorted(set(formats) - set(frame.columns))
        if unknown:
            raise ValueError(f"The 'formats' parameter names columns {unknown} that the table does not have "
                             f"(columns: {list(frame.columns)}).")
        self.frame = frame
        self.heads = [str(c) for c in frame.columns]
        self.body = [[_cell(v, formats.get(c)) for c, v in zip(frame.columns, row)]
                     for row in frame.itertuples(index=False, name=None)]

    def _repr_markdown_(self) -> str:
        lines = ["| " + " | ".join(self.heads) + " |", "|" + "|".join("---" for _ in self.heads) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in self.body]
        return "\n".join(lines)

    def _repr_latex_(self) -> str:
        def numeric(j):
            return all(c.replace(".", "", 1).replace("-", "", 1).replace("+", "").replace("e", "", 1).isdigit()
                       for c in (row[j] for row in self.body) if c)
        spec = "".join("r" if numeric(j) else "l" for j in range(len(self.heads)))
        lines = [r"\begin{center}\small", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
                 " & ".join(_latex_escape(h) for h in self.heads) + r" \\", r"\midrule"]
        lines += [" & ".join(_latex_escape(c) for c in cells) + r" \\" for cells in self.body]
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{center}"]
        return "\n".join(lines)
