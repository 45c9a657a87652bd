"""Rewrite the README's measured table from the committed results and notebook records, so that no figure in
it is typed by hand. Refuses, naming the file and field, small-budget (smoke) records and values that are
not finite numbers: the table quotes the full run only.

    python benchmarks/measured_table.py           # print the table
    python benchmarks/measured_table.py --write   # replace it in README.md (between the markers)
"""
import argparse
import json
import math
import re
from pathlib import Path

import nbformat
import pandas as pd

from aml.decisions import mean_std

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- measured:start -->", "<!-- measured:end -->"


class NotARecord(ValueError):
    """A file the table quotes holds a small-budget run or a value that is not a finite number."""


def _refuse(name: str):
    raise ValueError(f"it holds {name}, which strict JSON has not")


def full_run(record: dict, path: Path, field: str = "smoke") -> dict:
    if record.get("smoke") is not False:
        raise NotARecord(f"{path}: field {field!r} is {record.get('smoke')!r}, not false: a small-budget (smoke) run "
                         "is no measurement. Run the full make report first.")
    return record


def load(name: str) -> tuple[dict, Path]:
    path = ROOT / "results" / f"{name}.json"
    try:
        res = json.loads(path.read_text(), parse_constant=_refuse)
    except ValueError as e:
        raise NotARecord(f"{path}: {e}; the README's table takes only finite numbers.") from None
    return full_run(res, path), path


def number(res: dict, key: str, path: Path):
    """``res[key]``, a finite number or a non-empty list of them; else NotARecord naming the file and field."""
    value = res.get(key)
    values = value if isinstance(value, list) and value else [value]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise NotARecord(f"{path}: field {key!r} is {value!r}, not a finite number; the README's table quotes it.")
    return value


def pm(res: dict, key: str, path: Path) -> str:
    """``mean ± std (n seeds)`` of the per-seed list ``res[key]``."""
    mean, std = mean_std(number(res, key, path))
    return f"{mean:.3f} ± {std:.3f}"


NAMES = {"adamw": "AdamW", "adam": "Adam", "sgd": "SGD", "onecycle": "one-cycle"}


def q3b_recipe(c: dict, path: Path) -> str:
    """The tested NumPy net's settings (``net_config`` of results/q3b_best.json) in a few words; NotARecord
    names a missing or non-numeric setting."""
    n = lambda key: number(c, key, path)  # noqa: E731
    schedule = {"cosine": "cosine to 0"}.get(c.get("lr_schedule")) or f"x {n('learning_rate_decay'):g} per epoch"
    parts = [f"{n('hidden_size')} hidden units", "inputs / their std" if c.get("preprocess") == "scale" else "",
             f"SGD learning rate {n('learning_rate'):g} ({schedule})", f"L2 {n('reg'):g}", f"dropout {n('dropout'):g}",
             "flips" if c.get("flip") else "", f"batch {n('batch_size')}", f"{n('num_epochs')} epochs"]
    return ", ".join(p for p in parts if p)


def q4_recipe(c: dict, path: Path) -> str:
    """The tested MLP's settings (``config`` of results/q4_best.json) in a few words; NotARecord names a missing
    or non-numeric setting."""
    n = lambda key: number(c, key, path)  # noqa: E731
    hidden, crops = n("hidden_layers"), c.get("crop_padding")
    optimizer, schedule = (NAMES.get(c.get(k), c.get(k)) for k in ("optimizer", "schedule"))
    parts = [f"{len(hidden)} x {hidden[0]} hidden", "BatchNorm" if c.get("batch_norm") else "",
             "He initialisation" if c.get("init") == "kaiming" else "",
             f"{optimizer} (weight decay {n('weight_decay'):g})", f"{schedule} learning rate, peak {n('lr'):g}",
             f"batch {n('batch_size')}", f"{n('num_epochs')} epochs" + " in bfloat16" * bool(c.get("bfloat16")),
             " and ".join(["flips"] * bool(c.get("flip")) + [f"{crops}-pixel crops"] * bool(crops))]
    return ", ".join(p for p in parts if p)


def table() -> str:
    runs = {p.stem: full_run(nbformat.read(p, as_version=4).metadata.get("aml_run", {}), p, "aml_run.smoke")
            for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
    times = {name[:2]: number(r, "seconds", ROOT / "notebooks" / f"{name}.ipynb") / 60 for name, r in runs.items()}
    (q2, p2), (q3a, p3a), (q3b, p3b), (q4, p4) = load("q2_checks"), load("q3a_toy"), load("q3b_best"), load("q4_best")
    ledger = pd.read_csv(ROOT / "results" / "test_ledger.csv")
    ledger = ledger[ledger["smoke"].astype(str).str.lower() == "false"].groupby("question").agg(
        evaluations=("accuracy", "size"), configurations=("config_hash", "nunique"))
    m = q3b["machine"]
    rows = [
        ("Q2a-c", "every gradient formula against the backward pass, autograd and finite differences",
         f"largest relative error {number(q2, 'max_error', p2):.1e}", ""),
        ("Q3a", "toy data, final SGD training loss (target below 0.02)", f"{number(q3a, 'final_loss', p3a):.4f}", ""),
        ("Q3b", "NumPy net, the handout's defaults (3 seeds)",
         f"{number(q3b, 'default_val_acc', p3b):.3f} ± {number(q3b, 'default_val_acc_std', p3b):.3f}", ""),
        ("Q3b", f"NumPy net, tuned: {q3b_recipe(q3b.get('net_config', {}), p3b)} (3 seeds; the median seed tested)",
         pm(q3b, "val_acc_seeds", p3b),
         f"{number(q3b, 'test_acc_full', p3b):.3f}"),
        ("Q4b", "two-layer MLP, the handout's settings (3 seeds)", f"{number(q4['handout_mlp'], 'validation', p4):.3f} "
         f"± {number(q4['handout_mlp'], 'validation_std', p4):.3f}", ""),
        ("Q4c", f"MLP depth {q4.get('depth')}, tuned: {q4_recipe(q4.get('config', {}), p4)} (3 seeds; the median seed "
         "tested)", pm(q4, "val_acc_seeds", p4),
         f"{number(q4, 'test_acc_full', p4):.3f}"),
    ]
    looks = ", ".join(f"{q.capitalize()} {r.configurations} ({r.evaluations} evaluations)"
                      for q, r in ledger.iterrows())
    gpu = m["gpu"] or "none"
    notes = [f"Run: `make report FORCE=1` on {m['cpu']}, {m['cpu_count']} cores, GPU: {gpu}, {m['date']}; notebooks "
             f"{sum(times.values()):.1f} min ({', '.join(f'{k}: {v:.1f}' for k, v in times.items())}). Test: the "
             f"10,000 test images. The test-set ledger, configurations tested over all rounds: {looks}."]
    later = sorted(k for k, r in runs.items() if r.get("date") and m.get("date") and r["date"][:10] > m["date"][:10])
    if later:  # notebooks a plain make report re-executed after the full run (their code or text changed)
        notes.append(f"Re-executed since by `make report`: {', '.join(k[:2] for k in later)} (last "
                     f"{max(runs[k]['date'] for k in later)}).")
    return "\n".join(["| question | what | validation (or result) | test |", "|---|---|---|---|",
                      *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows), "", *notes])


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
    new, n = re.subn(re.escape(START) + ".*?" + re.escape(END), f"{START}\n{text}\n{END}", path.read_text(), flags=re.S)
    if n != 1:
        raise SystemExit(f"README.md must hold one {START} ... {END} block; found {n}.")
    path.write_text(new)
    print(f"rewrote the measured table in {path}")


if __name__ == "__main__":
    main()
