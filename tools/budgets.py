"""``python -m tools.budgets``: print the design's size budgets (lines with docstrings; a function's
code lines without blank, comment and docstring lines; ``aml`` modules a notebook imports); exit 1 if over."""
from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMITS = {"aml/ lines": 2800, "tools/ lines": 500, "longest function (code lines)": 50, "aml modules per notebook": 6}


def lines(folder: str) -> int:
    return sum(len(p.read_text().splitlines()) for p in sorted((ROOT / folder).rglob("*.py")))


def code_lines(node: ast.AST, source: list[str]) -> int:
    """Lines of ``node`` that hold code: not blank, not a comment, not inside a docstring."""
    doc = set()
    for sub in ast.walk(node):
        body = getattr(sub, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            doc.update(range(body[0].lineno, body[0].end_lineno + 1))
    return sum(1 for n in range(node.lineno, node.end_lineno + 1)
               if n not in doc and source[n - 1].strip() and not source[n - 1].strip().startswith("#"))


def longest_functions(folders=("aml", "tools")) -> list[tuple[int, str]]:
    found = []
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            source = path.read_text().splitlines()
            for node in ast.walk(ast.parse("\n".join(source))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    found.append((code_lines(node, source), f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"))
    return sorted(found, reverse=True)


def notebook_modules(path: Path) -> set[str]:
    cells = json.loads(path.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    found = set(re.findall(r"^\s*(?:from|import)\s+(aml(?:\.\w+)*)", code, flags=re.M))
    for package, names in re.findall(r"^\s*from\s+(aml(?:\.\w+)*)\s+import\s+\(?([\w\s,]+)", code, flags=re.M):
        folder = ROOT / package.replace(".", "/")
        found |= {f"{package}.{n}" for n in re.findall(r"\w+", names)
                  if (folder / f"{n}.py").is_file() or (folder / n).is_dir()}
    return found


def main() -> int:
    functions = longest_functions()
    per_notebook = {p.name: notebook_modules(p) for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
    figures = {"aml/ lines": lines("aml"), "tools/ lines": lines("tools"),
               "longest function (code lines)": functions[0][0] if functions else 0,
               "aml modules per notebook": max((len(m) for m in per_notebook.values()), default=0)}
    over = [k for k, v in figures.items() if v > LIMITS[k]]
    for key, value in figures.items():
        print(f"{key:32s} {value:6d}  (limit {LIMITS[key]}){'  OVER' if key in over else ''}")
    print("longest functions: " + "; ".join(f"{name} {n}" for n, name in functions[:3]))
    for name, modules in per_notebook.items():
        print(f"{name}: {len(modules)} aml modules: {', '.join(sorted(modules))}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
