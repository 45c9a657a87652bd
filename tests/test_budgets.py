"""The design's size budgets (tools/budgets.py): a thin package, small tools, short functions, thin notebooks."""
import ast

import pytest

from tools import budgets

VALUES = budgets.figures()[0]


@pytest.mark.parametrize("budget", list(budgets.LIMITS))
def test_the_budget_holds(budget):
    assert VALUES[budget] <= budgets.LIMITS[budget], budgets.main()



def test_code_lines_skip_docstrings_comments_and_blank_lines():
    source = 'def f():\n    """Doc\n    string."""\n    # comment\n\n    x = 1\n    return x\n'
    node = ast.parse(source).body[0]
    assert budgets.code_lines(node, source.splitlines()) == 3      # def, x = 1, return
