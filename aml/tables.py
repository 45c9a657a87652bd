"""Result tables that show as Markdown in a notebook and as booktabs LaTeX in the PDF."""
from __future__ import annotations


def _format_rows(rows: list[dict], columns: dict[str, str] | None):
    """Headers and formatted cells. ``columns`` maps each key to show to its header; a header may
    end in ``|fmt`` (a format spec such as ``.3f`` or ``.1e``) to format that column's values."""
    if not rows:
        raise ValueError("The 'rows' parameter must hold at least one row. Got an empty list instead.")
    columns = columns or {k: k for k in rows[0]}
    heads, fmts = [], []
    for header in columns.values():
        name, _, fmt = header.partition("|")
        heads.append(name)
        fmts.append(fmt)
    body = []
    for row in rows:
        cells = []
        for key, fmt in zip(columns, fmts):
            value = row.get(key, "")
            try:
                cells.append(format(float(value) if fmt and not isinstance(value, bool) else value, fmt))
            except (TypeError, ValueError):
                cells.append(str(value))
        body.append(cells)
    return heads, body


def markdown_table(rows: list[dict], columns: dict[str, str] | None = None) -> str:
    """A Markdown table of ``rows`` (see :func:`_format_rows` for ``columns``)."""
    heads, body = _format_rows(rows, columns)
    lines = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def _latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        text = text.replace(a, b)
    return text


class Table:
    """A results table that shows as Markdown in the notebook and as a booktabs tabular in the PDF
    (pandoc's conversion of wide Markdown tables wraps every cell)."""

    def __init__(self, rows: list[dict], columns: dict[str, str] | None = None):
        self.heads, self.body = _format_rows(rows, columns)
        self.markdown = markdown_table(rows, columns)

    def _repr_markdown_(self) -> str:
        return self.markdown

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
