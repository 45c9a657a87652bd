"""Q4c's depth study as a table: one row per run, and the mean and spread over seeds per setting and depth."""
from __future__ import annotations

import json

from ..metrics import mean_std
from .config import MLPConfig


def result_row(setting: str, config: MLPConfig, history: dict, *, val_acc: float) -> dict:
    """One run: ``depth``, ``setting``, ``seed``, final ``train_acc`` (eval mode, 5,000 training
    images), ``sel_acc`` (the last epoch's accuracy on the split the run monitored, the selection
    split), ``val_acc`` (the handout's validation images, which no choice sees: measured by the
    caller), ``epochs``, ``seconds`` and the config as JSON."""
    return {"depth": config.depth, "setting": setting, "seed": config.seed,
            "train_acc": float(history["train_acc_history"][-1]), "sel_acc": float(history["val_acc_history"][-1]),
            "val_acc": float(val_acc),
            "epochs": len(history["val_acc_history"]), "seconds": round(float(history["train_seconds"]), 1),
            "config": json.dumps(config.to_dict(), sort_keys=True)}


def summarise(rows: list[dict]) -> list[dict]:
    """Per (setting, depth), in first-seen order: seeds, and mean and standard deviation of the
    train, selection and validation accuracies."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["setting"], row["depth"]), []).append(row)
    out = []
    for (setting, depth), runs in groups.items():
        train_mean, train_std = mean_std(r["train_acc"] for r in runs)
        sel_mean, sel_std = mean_std(r["sel_acc"] for r in runs)
        val_mean, val_std = mean_std(r["val_acc"] for r in runs)
        out.append({"setting": setting, "depth": depth, "seeds": len(runs), "train_mean": train_mean,
                    "train_std": train_std, "sel_mean": sel_mean, "sel_std": sel_std, "val_mean": val_mean,
                    "val_std": val_std,
                    "seconds": sum(r["seconds"] for r in runs) / len(runs)})
    return out


def val_accs(rows: list[dict], setting: str, depth: int) -> list[float]:
    """The validation accuracies of one (setting, depth), one per seed, in the rows' order."""
    return [r["val_acc"] for r in rows if r["setting"] == setting and r["depth"] == depth]
