"""aml.mlp.depth_study on a hand-made rows list: one row per run, summaries per (setting, depth)."""
import json
import math

import pytest

from aml.mlp import MLPConfig
from aml.mlp.depth_study import result_row, summarise, val_accs


def _row(setting, depth, seed, train_acc, val_acc, seconds=1.0):
    # the selection accuracy is set 0.1 above validation, so a summary that mixes them up shows
    return {"depth": depth, "setting": setting, "seed": seed, "train_acc": train_acc, "sel_acc": val_acc + 0.1,
            "val_acc": val_acc,
            "epochs": 3, "seconds": seconds, "config": "{}"}


ROWS = [_row("handout", 3, 0, 0.60, 0.40, 2.0), _row("handout", 2, 0, 0.70, 0.50, 1.0),
        _row("handout", 3, 1, 0.64, 0.44, 4.0), _row("tuned", 3, 0, 0.80, 0.55, 6.0),
        _row("handout", 2, 1, 0.72, 0.54, 3.0), _row("handout", 3, 2, 0.68, 0.42, 6.0)]


def test_result_row_reads_the_last_epoch_of_the_history():
    config = MLPConfig(hidden_layers=(8, 4), seed=7)
    history = {"train_acc_history": [0.1, 0.3, 0.35], "val_acc_history": [0.2, 0.25, 0.3125],
               "train_seconds": 12.345}
    row = result_row("tuned", config, history, val_acc=0.28)
    assert row == {"depth": 3, "setting": "tuned", "seed": 7, "train_acc": 0.35, "sel_acc": 0.3125, "val_acc": 0.28,
                   "epochs": 3, "seconds": 12.3, "config": json.dumps(config.to_dict(), sort_keys=True)}
    assert MLPConfig.from_dict(json.loads(row["config"])) == config
    assert type(row["train_acc"]) is float and type(row["val_acc"]) is float
    assert result_row("x", config, {**history, "train_seconds": 0.06}, val_acc=0.2)["seconds"] == 0.1


def test_summarise_groups_by_setting_and_depth_in_first_seen_order():
    out = summarise(ROWS)
    assert [(s["setting"], s["depth"], s["seeds"]) for s in out] == [("handout", 3, 3), ("handout", 2, 2),
                                                                       ("tuned", 3, 1)]
    h3, h2, t3 = out
    # handout depth 3: val 0.40, 0.44, 0.42 (mean 0.42, s = 0.02); train 0.60, 0.64, 0.68 (mean 0.64, s = 0.04)
    assert h3 == {"setting": "handout", "depth": 3, "seeds": 3, "train_mean": pytest.approx(0.64),
                  "train_std": pytest.approx(0.04), "sel_mean": pytest.approx(0.52), "sel_std": pytest.approx(0.02),
                  "val_mean": pytest.approx(0.42), "val_std": pytest.approx(0.02), "seconds": pytest.approx(4.0)}
    # handout depth 2: val 0.50, 0.54 (s = sqrt(0.0008)); train 0.70, 0.72
    assert (h2["val_mean"], h2["val_std"]) == (pytest.approx(0.52), pytest.approx(math.sqrt(0.0008)))
    assert (h2["train_mean"], h2["train_std"], h2["seconds"]) == (pytest.approx(0.71), pytest.approx(math.sqrt(0.0002)),
                                                                  2.0)
    # one seed: no spread
    assert (t3["val_mean"], t3["val_std"], t3["train_std"], t3["seconds"]) == (0.55, 0.0, 0.0, 6.0)
    assert summarise([]) == []


def test_val_accs_selects_one_setting_and_depth_in_row_order():
    assert val_accs(ROWS, "handout", 3) == [0.40, 0.44, 0.42]
    assert val_accs(ROWS, "handout", 2) == [0.50, 0.54]
    assert val_accs(ROWS, "tuned", 3) == [0.55]
    assert val_accs(ROWS, "tuned", 2) == []
