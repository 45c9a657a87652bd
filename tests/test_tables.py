"""The results table: headers from the DataFrame, formats per column, Markdown and escaped booktabs LaTeX."""
import math

import pandas as pd
import pytest

from aml.plots import Table


def test_table_renders_markdown_and_escaped_latex():
    t = Table(pd.DataFrame({"run": ["a_b & c"], "val acc": [0.61234]}), {"val acc": ".3f"})
    assert t._repr_markdown_().splitlines() == ["| run | val acc |", "|---|---|", "| a_b & c | 0.612 |"]
    latex = t._repr_latex_()
    assert r"\begin{tabular}{lr}" in latex and r"a\_b \& c & 0.612 \\" in latex


def test_table_formats_only_numbers_and_leaves_missing_cells_empty():
    t = Table([{"x": 0.5, "flag": True, "name": "n"}, {"x": math.nan, "flag": False, "name": None}],
              {"x": ".1e", "flag": ".3f", "name": ".3f"})
    assert t.body == [["5.0e-01", "True", "n"], ["", "False", ""]]


def test_table_refuses_an_empty_table_and_unknown_format_columns():
    with pytest.raises(ValueError, match="at least one row"):
        Table([])
    with pytest.raises(ValueError, match=r"names columns \['nope'\]"):
        Table([{"a": 1}], {"nope": ".3f"})


def test_table_passes_a_cell_that_is_one_formula_and_escapes_dollars_elsewhere():
    latex = Table([{"q": r"$\partial\tilde J/\partial W_2$"}, {"q": "$5 and $6"}, {"q": "$"}, {"q": ""}])._repr_latex_()
    assert r"$\partial\tilde J/\partial W_2$ \\" in latex
    assert r"\$5 and \$6 \\" in latex and "\n\\$ \\\\" in latex
