"""The design's size budgets hold (tools/budgets.py): a thin package, small tools, short functions."""
import ast

from tools import budgets


def test_the_budgets_hold(capsys):
    assert budgets.main() == 0, capsys.readouterr().out


def test_code_lines_skip_docstrings_comments_and_blank_lines():
    source = 'def f():\n    """Doc\n    string."""\n    # comment\n\n    x = 1\n    return x\n'
    node = ast.parse(source).body[0]
    assert budgets.code_lines(node, source.splitlines()) == 3      # def, x = 1, return
