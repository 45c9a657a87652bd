"""Rewrite the README's measured table from the committed run's results files and notebook metadata,
so that no figure in it is typed by hand.

    python benchmarks/measured_table.py           # print the table
    python benchmarks/measured_table.py --write   # replace it in README.md (between the markers)
"""
from __future__ import annotations

import argparse
import json
import re

import nbformat

from aml.ledger import summary
from aml.metrics import mean_std
from aml.runs import REPO_ROOT

START, END = "<!-- measured:start -->", "<!-- measured:end -->"


def notebook_runs() -> dict[str, dict]:
    return {p.stem: nbformat.read(p, as_version=4).metadata.get("aml_run", {})
            for p in sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}


def table() -> str:
    res = {name: json.loads((REPO_ROOT / "results" / f"{name}.json").read_text())
           for name in ("q3a_toy", "q3b_best", "q4_best")}
    runs = notebook_runs()
    q3a, q3b, q4 = res["q3a_toy"], res["q3b_best"], res["q4_best"]
    machine = q3b["machine"]
    total = sum(r.get("seconds", 0) for r in runs.values())
    per_nb = ", ".join(f"{name[:2]}: {r['seconds'] / 60:.1f} min" for name, r in runs.items() if "seconds" in r)
    b_mean, b_std = mean_std(q3b["val_acc_seeds"])
    m_mean, m_std = mean_std(q4["val_acc_seeds"])
    d_mean, d_std = mean_std(q4["depth_study_val_acc_seeds"])
    looks = {r["question"]: r for r in summary()}
    rows = [
        ("machine of the committed run",
         f"{machine['cpu']}, {machine['cpu_count']} cores, GPU: {machine['gpu'] or 'none'}; {machine['date']}"),
        ("notebooks of `make report` (full budget)", f"{total / 60:.1f} min ({per_nb})"),
        ("Q3a toy SGD, final loss", f"{q3a['final_loss']:.4f} (handout: below 0.02)"),
        ("Q3b default hyper-parameters, validation", f"{q3b['default_val_acc']:.3f} (handout: about 0.29)"),
        ("Q3b tuned NumPy net, validation over seeds",
         f"{b_mean:.3f} ± {b_std:.3f} ({len(q3b['val_acc_seeds'])} seeds; search trial {q3b['search_trial']})"),
        ("Q3b tested model, test 1,000 / 10,000", f"{q3b['test_acc']:.3f} / {q3b['test_acc_full']:.3f} (seed "
         f"{q3b['tested_seed']}, {q3b['train_seconds']:.0f} s of training)"),
        ("Q4c best depth, validation over seeds (depth study)",
         f"depth {q4['depth']}: {d_mean:.3f} ± {d_std:.3f} at {q4['depth_study_epochs']} epochs"
         + (f" (ties: depth {', '.join(map(str, q4['tied_depths']))})" if q4["tied_depths"] else "")),
        ("Q4c chosen depth promoted, validation over seeds",
         f"{m_mean:.3f} ± {m_std:.3f} ({len(q4['val_acc_seeds'])} seeds, {q4['promote_epochs']} epochs)"),
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
    text = table()
    if not args.write:
        print(text)
        return
    path = REPO_ROOT / "README.md"
    readme = path.read_text()
    new, n = re.subn(re.escape(START) + ".*?" + re.escape(END), f"{START}\n{text}\n{END}", readme, flags=re.S)
    if n != 1:
        raise SystemExit(f"README.md must hold one {START} ... {END} block; found {n}.")
    path.write_text(new)
    print(f"rewrote the measured table in {path}")


if __name__ == "__main__":
    main()
