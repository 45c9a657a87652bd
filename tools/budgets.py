"""``python -m tools.budgets``: print the design's size budgets (lines with docstrings; a function's
code lines without blank, comment and docstring lines; ``aml`` modules a notebook imports); exit 1 if over."""
import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMITS = {"aml/ lines": 2800, "tools/ lines": 500, "longest function (code lines)": 50, "aml modules per notebook": 6}


def code_lines(node: ast.AST, source: list[str]) -> int:
    """Lines of ``node`` that hold code: not blank, not a comment, not inside a docstring."""
    doc = {n for sub in ast.walk(node) if (body := getattr(sub, "body", None)) and isinstance(body, list)
           and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str)
           for n in range(body[0].lineno, body[0].end_lineno + 1)}
    return sum(1 for n in range(node.lineno, node.end_lineno + 1)
               if n not in doc and source[n - 1].strip() and not source[n - 1].strip().startswith("#"))


def longest_functions() -> list[tuple[int, str]]:
    found = []
    for path in sorted([*(ROOT / "aml").rglob("*.py"), *(ROOT / "tools").rglob("*.py")]):
        source = path.read_text().splitlines()
        found += [(code_lines(node, source), f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
                  for node in ast.walk(ast.parse("\n".join(source))) if isinstance(node, ast.FunctionDef)]
    return sorted(found, reverse=True)


def notebook_modules(path: Path) -> set[str]:
    """``import aml`` counts as ``aml``, ``from aml.mlp import x`` as ``aml.mlp``, ``from aml import plots`` too."""
    code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    found = set(re.findall(r"^\s*(?:from|import)\s+(aml(?:\.\w+)*)", code, flags=re.M))
    for package, names in re.findall(r"^\s*from\s+(aml(?:\.\w+)*)\s+import\s+\(?([\w\s,]+)", code, flags=re.M):
        folder = ROOT / package.replace(".", "/")
        found |= {f"{package}.{n}" for n in re.findall(r"\w+", names) if (folder / f"{n}.py").is_file()}
    return found


def figures() -> tuple[dict, list, dict]:
    """The figures compared with :data:`LIMITS`, the longest functions, each notebook's ``aml`` modules."""
    functions = longest_functions()
    per_notebook = {p.name: notebook_modules(p) for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
    lines = {k: sum(len(p.read_text().splitlines()) for p in (ROOT / k).rglob("*.py")) for k in ("aml", "tools")}
    values = {"aml/ lines": lines["aml"], "tools/ lines": lines["tools"], "longest function (code lines)":
              functions[0][0], "aml modules per notebook": max(map(len, per_notebook.values()))}
    return values, functions, per_notebook


def main() -> int:
    values, functions, per_notebook = figures()
    for key, value in values.items():
        print(f"{key:32s} {value:6d}  (limit {LIMITS[key]}){'  OVER' if value > LIMITS[key] else ''}")
    print("longest functions: " + "; ".join(f"{name} {n}" for n, name in functions[:3]))
    for name, modules in per_notebook.items():
        print(f"{name}: {len(modules)} aml modules: {', '.join(sorted(modules))}")
    return int(any(v > LIMITS[k] for k, v in values.items()))


if __name__ == "__main__":
    sys.exit(main())
