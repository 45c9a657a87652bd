"""The Optuna search: repeatable, pruned by epochs, shared by workers (journal file here, PostgreSQL in CI)."""
import multiprocessing
import os
import uuid

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from aml import search  # noqa: E402
from aml.data import CIFAR10Split  # noqa: E402

POSTGRES_URL = os.environ.get("AML_TEST_POSTGRES_URL")


def tiny_split(n=600, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n + 200)
    centres = 0.5 * rng.standard_normal((10, 3072))
    X = (rng.standard_normal((n + 200, 3072)) + centres[y]).astype(np.float32)
    X -= X[:n].mean(axis=0)
    return CIFAR10Split(X[:n], y[:n], X[n:], y[n:], X[:0], y[:0], None)


def _table_without_timings(study):
    return search.trials_table(study).drop(columns=["seconds"])


def test_sequential_runs_with_one_seed_give_the_same_trials(tmp_path):
    tables = []
    for run in range(2):
        study = search.run_search("q3b", tiny_split(), storage=tmp_path / f"run{run}.journal", study_name="q3b",
                                  smoke=True, seed=7, n_trials=5)
        tables.append(_table_without_timings(study))
    assert len(tables[0]) == 5
    assert tables[0].equals(tables[1])
    assert set(tables[0].columns) >= {"number", "state", "value", "epochs", "params_hidden_size",
                                      "params_learning_rate", "params_reg"}


def test_a_different_seed_gives_different_trials(tmp_path):
    a = search.run_search("q3b", tiny_split(), storage=tmp_path / "a.journal", study_name="s", smoke=True, seed=1,
                          n_trials=2)
    b = search.run_search("q3b", tiny_split(), storage=tmp_path / "b.journal", study_name="s", smoke=True, seed=2,
                          n_trials=2)
    assert a.trials[0].params != b.trials[0].params


def test_successive_halving_prunes_by_epoch_and_failures_are_recorded(tmp_path):
    storage = search.fresh_storage(tmp_path / "p.journal")
    budget = search.Budget(n_trials=12, max_epochs=9, min_epochs=1, num_train=10, final_epochs=1)
    study = search.create_study("p", storage, budget=budget, seed=0)

    def objective(trial):
        x = trial.suggest_float("x", 0, 1)
        if x > 0.9:
            raise FloatingPointError("diverged")
        for epoch in range(1, budget.max_epochs + 1):
            trial.set_user_attr("epochs", epoch)
            trial.set_user_attr("seconds", 0.0)
            trial.report(x * epoch / 9, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return x
    search.optimize(study, objective, 12)
    table = search.trials_table(study)
    states = set(table["state"])
    assert "PRUNED" in states and "COMPLETE" in states
    pruned = table[table["state"] == "PRUNED"]
    assert (pruned["epochs"] < budget.max_epochs).all()
    best = search.best_complete_trial(study)
    assert best.value == table[table["state"] == "COMPLETE"]["value"].max()


def test_best_complete_trial_needs_one(tmp_path):
    study = search.create_study("empty", search.fresh_storage(tmp_path / "e.journal"),
                                budget=search.budget("q3b", True), seed=0)
    with pytest.raises(RuntimeError, match="no complete trial"):
        search.best_complete_trial(study)


def test_fresh_storage_starts_over(tmp_path):
    path = tmp_path / "f.journal"
    for _ in range(2):
        study = search.run_search("q3b", tiny_split(), storage=search.fresh_storage(path), study_name="f", smoke=True,
                                  n_trials=1)
        assert len(study.trials) == 1


def test_q3b_config_fixes_only_the_budget():
    params = {"hidden_size": 40, "learning_rate": 0.01, "reg": 1e-3, "lr_schedule": "cosine", "momentum": 0.9,
              "nesterov": True, "batch_size": 100, "dropout": 0.2, "flip": True, "preprocess": "scale"}
    config = search.q3b_config(params, epochs=7, seed=3)
    flat = config.to_dict()
    assert {k: flat[k] for k in params} == params
    assert (flat["num_epochs"], flat["seed"], flat["std"], flat["keep_best"], flat["sampling"]) == (7, 3, None, True,
                                                                                                    "epoch")


def test_q3b_config_stretches_a_step_schedule_to_the_promoted_length():
    params = {"hidden_size": 40, "learning_rate": 0.01, "lr_schedule": "step", "learning_rate_decay": 0.8}
    promoted = search.q3b_config(params, epochs=18, screened_epochs=9).to_dict()
    assert promoted["learning_rate_decay"] == pytest.approx(0.8 ** 0.5)
    assert promoted["learning_rate_decay"] ** 18 == pytest.approx(0.8 ** 9)      # ends where the trial ended
    assert search.q3b_config(params, epochs=18).to_dict()["learning_rate_decay"] == 0.8
    assert params["learning_rate_decay"] == 0.8                                     # the caller's dict untouched
    cosine = {**params, "lr_schedule": "cosine"}
    assert search.q3b_config(cosine, epochs=18, screened_epochs=9).to_dict()["learning_rate_decay"] == 0.8
    with pytest.raises(ValueError, match="'screened_epochs'"):
        search.q3b_config(params, epochs=18, screened_epochs=0)


def test_q4_config_fixes_flips_and_takes_the_searched_crop():
    params = {"width": 64, "lr": 1e-3, "weight_decay": 0.01, "dropout": 0.1, "batch_size": 128, "crop_padding": 4}
    cfg = search.q4_config(params, depth=3, epochs=5, seed=2)
    assert (cfg.flip, cfg.crop_padding, cfg.hidden_layers, cfg.num_epochs, cfg.seed) == (True, 4, (64, 64), 5, 2)
    assert (cfg.init, cfg.batch_norm, cfg.optimizer, cfg.schedule) == ("kaiming", True, "adamw", "onecycle")
    assert search.q4_config({**params, "flip": False}, depth=2, epochs=1).flip is False   # old studies' params
    assert cfg.normalize == "handout"
    assert search.q4_config(params, depth=2, epochs=1, normalize="zca").normalize == "zca"


def test_budgets_are_validated_and_picked_by_machine():
    assert search.budget("q4", False, gpu=True) == search.BUDGETS[("q4", "gpu")]
    assert search.budget("q4", True, gpu=True) == search.BUDGETS[("q4", "smoke")]
    assert search.budget("q3b", False, gpu=True) == search.BUDGETS[("q3b", "cpu")]
    with pytest.raises(ValueError, match="'question'"):
        search.budget("q5", False)
    with pytest.raises(ValueError, match="'min_epochs'"):
        search.Budget(n_trials=1, max_epochs=2, min_epochs=3, num_train=1, final_epochs=1)
    with pytest.raises(ValueError, match="'promote_epochs'"):
        search.Budget(n_trials=1, max_epochs=2, min_epochs=1, num_train=1, final_epochs=1, promote_epochs=-1)
    for b in search.BUDGETS.values():
        assert b.promote_epochs == 0 or b.promote_epochs > b.final_epochs


def test_q4_search_runs_at_a_depth(tmp_path):
    import torch

    from aml.mlp import TensorSplits
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (500,), generator=g)
    X = torch.randn(500, 3, 32, 32, generator=g) + (y.float() / 5 - 1).view(-1, 1, 1, 1)
    data = TensorSplits(X[:400], y[:400], X[400:], y[400:], X[:0], y[:0])
    study = search.run_search("q4", data, storage=tmp_path / "q4.journal", study_name="q4-d3", smoke=True, depth=3,
                              n_trials=2)
    assert len(study.trials) == 2
    with pytest.raises(ValueError, match="'depth'"):
        search.run_search("q4", data, storage=tmp_path / "x.journal", study_name="x", smoke=True)


def _worker(storage: str, study_name: str, n_trials: int) -> None:
    search.run_search("q3b", tiny_split(), storage=storage, study_name=study_name, smoke=True, n_trials=n_trials)


def _two_workers_at_once(storage: str, study_name: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_worker, args=(storage, study_name, 3)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
    assert [w.exitcode for w in workers] == [0, 0]


def _check_all_trials_landed_once(storage, study_name: str) -> None:
    study = optuna.load_study(study_name=study_name, storage=search.make_storage(storage))
    numbers = sorted(t.number for t in study.trials)
    assert numbers == list(range(6))                     # all six trials, each once, none lost
    assert all(t.state.is_finished() for t in study.trials)


def test_two_workers_share_a_journal_study(tmp_path):
    storage = str(tmp_path / "shared.journal")
    _two_workers_at_once(storage, "shared")
    _check_all_trials_landed_once(storage, "shared")


@pytest.mark.skipif(not POSTGRES_URL, reason="set AML_TEST_POSTGRES_URL (CI starts a PostgreSQL server)")
def test_two_workers_share_a_postgresql_study():
    name = f"ci-{uuid.uuid4().hex[:8]}"
    _two_workers_at_once(POSTGRES_URL, name)
    _check_all_trials_landed_once(POSTGRES_URL, name)
    optuna.delete_study(study_name=name, storage=POSTGRES_URL)


def test_worker_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(search, "_load_data", lambda question: tiny_split())
    journal = tmp_path / "cli.journal"
    assert search.main(["--question", "q3b", "--storage", str(journal), "--study", "cli", "--n-trials", "2",
                        "--smoke"]) == 0
    assert search.main(["--question", "q3b", "--storage", str(journal), "--study", "cli", "--n-trials", "1",
                        "--smoke"]) == 0          # a second worker joins the same study
    assert "3 trials in all" in capsys.readouterr().out
    assert search.main(["--question", "q3b", "--storage", str(journal), "--study", "cli", "--n-trials", "0",
                        "--smoke"]) == 1
    assert "'n_trials'" in capsys.readouterr().err
