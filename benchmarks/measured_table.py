"""Rewrite the README's measured table from the committed run's results files and notebook metadata,
so that no figure in it is typed by hand. Refuses (naming the file and the field) small-budget (smoke)
results and notebooks, and values that are not finite numbers: the table quotes the full run only.

    python benchmarks/measured_table.py           # print the table
    python benchmarks/measured_table.py --write   # replace it in README.md (between the markers)
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import re
from pathlib import Path

import nbformat

from aml.ledger import summary
from aml.metrics import mean_std

#: The checkout this script belongs to: its committed record is what the README describes
ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- measured:start -->", "<!-- measured:end -->"


class NotARecord(ValueError):
    """A file the table would quote holds a small-budget run or a value that is not a finite number."""


def _refuse_constant(name: str):
    raise ValueError(f"it holds {name}, which strict JSON has not")


def load_result(path: Path) -> dict:
    """A committed results file, refused (naming the file and field) if it is a small-budget run."""
    try:
        res = json.loads(path.read_text(), parse_constant=_refuse_constant)
    except ValueError as e:
        raise NotARecord(f"{path}: {e}; the README's table takes only finite numbers.") from None
    if res.get("smoke") is not False:
        raise NotARecord(f"{path}: field 'smoke' is {res.get('smoke')!r}, not false: a small-budget (smoke) run is "
                         "no measurement. Run the full make report first.")
    return res


def number(res: dict, key: str, path: Path):
    """``res[key]``: a finite number or a non-empty list of them; otherwise ``NotARecord`` naming the file and field."""
    value = res.get(key)
    values = value if isinstance(value, list) and value else [value]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise NotARecord(f"{path}: field {key!r} is {value!r}, not a finite number; the README's table quotes it.")
    return value


def notebook_runs() -> dict[str, dict]:
    """Each notebook's ``aml_run`` record, refused (naming the notebook) unless a full run with a finite time."""
    found = {}
    for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        run = nbformat.read(p, as_version=4).metadata.get("aml_run", {})
        if run.get("smoke") is not False:
            raise NotARecord(f"{p}: field 'aml_run.smoke' is {run.get('smoke')!r}, not false: its outputs are not "
                             "those of a full run. Run the full make report first.")
        number(run, "seconds", p)
        found[p.stem] = run
    return found


def depth_study(path: Path, depth: int) -> list[float]:
    """Validation accuracies of the depth study's ``fixed`` setting at ``depth``, one per seed."""
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["setting"] == "fixed" and int(r["depth"]) == depth]
    if not rows:
        raise NotARecord(f"{path}: no row of setting 'fixed' at depth {depth}; the README's table quotes them.")
    return number({"val_acc": [float(r["val_acc"]) for r in rows]}, "val_acc", path)


def table() -> str:
    paths = {name: ROOT / "results" / f"{name}.json" for name in ("q3a_toy", "q3b_best", "q4_best")}
    res = {name: load_result(path) for name, path in paths.items()}
    runs = notebook_runs()
    q3a, q3b, q4 = res["q3a_toy"], res["q3b_best"], res["q4_best"]
    for name, keys in (("q3a_toy", ("final_loss",)),
                       ("q3b_best", ("default_val_acc", "selection_acc_seeds", "val_acc_seeds", "test_acc",
                                     "test_acc_full", "train_seconds")),
                       ("q4_best", ("selection_acc_seeds", "val_acc_seeds", "test_acc", "test_acc_full",
                                    "train_seconds"))):
        for key in keys:
            number(res[name], key, paths[name])
    machine = q3b["machine"]
    total = sum(r["seconds"] for r in runs.values())
    per_nb = ", ".join(f"{name[:2]}: {r['seconds'] / 60:.1f} min" for name, r in runs.items())

    def pm(values):
        mean, std = mean_std(values)
        return f"{mean:.3f} ± {std:.3f}"

    fixed = depth_study(ROOT / "results" / "q4_depth.csv", q4["depth"])
    looks = {r["question"]: r for r in summary(ROOT / "results" / "test_ledger.csv")}   # full runs' rows only
    rows = [
        ("machine of the committed run",
         f"{machine['cpu']}, {machine['cpu_count']} cores, GPU: {machine['gpu'] or 'none'}; {machine['date']}"),
        ("notebooks of `make report` (full budget)", f"{total / 60:.1f} min ({per_nb})"),
        ("Q3a toy SGD, final loss", f"{q3a['final_loss']:.4f} (handout: below 0.02)"),
        ("Q3b default hyper-parameters, validation", f"{q3b['default_val_acc']:.3f} (handout: about 0.29)"),
        ("Q3b tuned NumPy net, selection / validation over seeds",
         f"{pm(q3b['selection_acc_seeds'])} / {pm(q3b['val_acc_seeds'])} ({len(q3b['val_acc_seeds'])} seeds; "
         f"search trial {q3b['search_trial']})"),
        ("Q3b tested model, test 1,000 / 10,000", f"{q3b['test_acc']:.3f} / {q3b['test_acc_full']:.3f} (seed "
         f"{q3b['tested_seed']}, {q3b['train_seconds']:.0f} s of training)"),
        ("Q4c chosen depth, validation over seeds (depth study, fixed setting)",
         f"depth {q4['depth']}: {pm(fixed)} at {q4['depth_study_epochs']} epochs"
         + (f" (tied: depths {', '.join(map(str, q4['tied_depths']))})" if q4["tied_depths"] else "")),
        ("Q4c chosen depth promoted, selection / validation over seeds",
         f"{pm(q4['selection_acc_seeds'])} / {pm(q4['val_acc_seeds'])} ({len(q4['val_acc_seeds'])} seeds, "
         f"{q4['promote_epochs']} epochs)"),
        ("Q4c tested model, test 1,000 / 10,000", f"{q4['test_acc']:.3f} / {q4['test_acc_full']:.3f} (seed "
         f"{q4['tested_seed']}, {q4['train_seconds']:.0f} s on {q4['device']}, {q4['budget']} budget)"),
        ("test-set ledger: distinct configurations tested", ", ".join(
            f"{q.capitalize()} {r['configurations']} ({r['evaluations']} evaluations)" for q, r in looks.items())),
    ]
    return "\n".join(["| what | figure |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    try:
        text = table()
    except NotARecord as e:
        raise SystemExit(f"measured_table: {e}") from None
    if not args.write:
        print(text)
        return
    path = ROOT / "README.md"
    readme = path.read_text()
    new, n = re.subn(re.escape(START) + ".*?" + re.escape(END), f"{START}\n{text}\n{END}", readme, flags=re.S)
    if n != 1:
        raise SystemExit(f"README.md must hold one {START} ... {END} block; found {n}.")
    path.write_text(new)
    print(f"rewrote the measured table in {path}")


if __name__ == "__main__":
    main()
