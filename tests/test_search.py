"""The Optuna search: repeatable, pruned by epochs, shared by workers (journal file here, PostgreSQL in CI)."""
import dataclasses
import multiprocessing
import os
import uuid
from pathlib import Path

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from aml import search  # noqa: E402
from aml.data import CIFAR10Split, SealedTest  # noqa: E402

POSTGRES_URL = os.environ.get("AML_TEST_POSTGRES_URL")


def tiny_split(n=600, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n + 200)
    centres = 0.5 * rng.standard_normal((10, 3072))
    X = (rng.standard_normal((n + 200, 3072)) + centres[y]).astype(np.float32)
    X -= X[:n].mean(axis=0)
    return CIFAR10Split(X[:n], y[:n], X[n:], y[n:], SealedTest(X[:0], y[:0]))


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
                                      "params_step_size", "params_reg"}


def test_a_different_seed_gives_different_trials(tmp_path):
    a = search.run_search("q3b", tiny_split(), storage=tmp_path / "a.journal", study_name="s", smoke=True, seed=1,
                          n_trials=2)
    b = search.run_search("q3b", tiny_split(), storage=tmp_path / "b.journal", study_name="s", smoke=True, seed=2,
                          n_trials=2)
    assert a.trials[0].params != b.trials[0].params


def test_best_complete_trial_needs_one(tmp_path):
    study = search.create_study("empty", search.make_storage(tmp_path / "e.journal"),
                                budget=search.budget("q3b", True), seed=0)
    with pytest.raises(RuntimeError, match="no complete trial"):
        search.best_complete_trial(study)
    assert search.trials_table(study).empty and "fail_reason" in search.trials_table(study).columns


def test_q3b_config_fixes_only_the_budget():
    params = {"hidden_size": 40, "learning_rate": 0.01, "reg": 1e-3, "lr_schedule": "cosine", "momentum": 0.9,
              "nesterov": True, "batch_size": 100, "dropout": 0.2, "flip": True, "preprocess": "scale"}
    config = search.q3b_config(params, epochs=7, seed=3)
    flat = config.to_dict()
    assert {k: flat[k] for k in params} == params
    assert (flat["num_epochs"], flat["seed"], flat["std"], flat["keep_best"], flat["sampling"]) == (7, 3, None, True,
                                                                                                    "epoch")


def test_q3b_searches_the_step_size_so_momentum_does_not_multiply_the_step():
    import optuna

    assert search.learning_rate_of(0.05, 0.9) == pytest.approx(0.005)
    assert search.learning_rate_of(0.05, 0.0) == 0.05
    for momentum in (0.0, 0.9):
        trial = optuna.trial.FixedTrial({"momentum": momentum, "step_size": 0.05, "hidden_size": 500, "reg": 1e-3,
                                         "lr_schedule": "cosine", "nesterov": False, "batch_size": 100,
                                         "dropout": 0.0, "flip": False})
        assert search.suggest_q3b(trial)["learning_rate"] == pytest.approx(0.05 * (1 - momentum))
    # a trial's params (as the study stores them) give the same configuration
    params = {"momentum": 0.9, "step_size": 0.05, "hidden_size": 500, "lr_schedule": "cosine"}
    assert search.q3b_config(params, epochs=3).learning_rate == pytest.approx(0.005)
    assert "step_size" in params                                                 # the caller's dict untouched


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
    data = TensorSplits(X[:400], y[:400], X[400:], y[400:], SealedTest(X[:0], y[:0].numpy()))
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


# --- the objective, driven with a stub trainer ------------------------------------------------------------

TRAIN_ACC = [0.50, 0.70, 0.90]          # per epoch; the training accuracy must never reach Optuna
VAL_ACC = [0.30, 0.45, 0.40]            # the monitored (selection/validation) split: best epoch 2, not the last


def _stub_trainer(calls, accuracies=None):
    """A stand-in for the training function: per-epoch histories through the real ``on_epoch``."""
    def train(config, data, *, on_epoch):
        train_acc, val_acc = accuracies.pop(0) if accuracies else (TRAIN_ACC, VAL_ACC)
        history = {"train_acc_history": [], "val_acc_history": []}
        for epoch, (tr, va) in enumerate(zip(train_acc, val_acc), start=1):
            history["train_acc_history"].append(tr)
            history["val_acc_history"].append(va)
            calls.append(epoch)
            on_epoch(epoch, history)
        return history
    return train


def _objective(question, budget):
    from types import SimpleNamespace
    data = SimpleNamespace(normalize="handout")
    if question == "q3b":
        return search.q3b_objective(data, budget, smoke=True)
    return search.q4_objective(data, budget, depth=3, smoke=True)


STUB_BUDGET = search.Budget(n_trials=6, max_epochs=3, min_epochs=1, num_train=10, final_epochs=1)


@pytest.mark.parametrize("question", ["q3b", "q4"])
def test_the_objective_reports_each_epochs_monitored_accuracy_and_returns_the_best(question, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(search, f"_train_{question}", _stub_trainer(calls))
    study = search.create_study("stub", tmp_path / "stub.journal", budget=STUB_BUDGET, seed=0)
    search.optimize(study, _objective(question, STUB_BUDGET), 1)
    trial = study.trials[0]
    assert calls == [1, 2, 3]
    assert trial.intermediate_values == {1: 0.30, 2: 0.45, 3: 0.40}     # the val history, not TRAIN_ACC
    assert trial.state.name == "COMPLETE" and trial.value == 0.45        # the best epoch, as documented
    assert trial.user_attrs["epochs"] == 3


@pytest.mark.parametrize("question", ["q3b", "q4"])
def test_a_clearly_bad_trial_is_pruned_at_the_first_rung(question, tmp_path, monkeypatch):
    budget = dataclasses.replace(STUB_BUDGET, max_epochs=2)         # one rung, at epoch 1
    good = [([0.9, 0.9], [0.40 + 0.01 * k, 0.5]) for k in range(4)]
    bad = ([0.9, 0.9], [0.05, 0.06])                                 # a high training accuracy must not save it
    calls = []
    monkeypatch.setattr(search, f"_train_{question}", _stub_trainer(calls, [*good, bad]))
    study = search.create_study("prune", tmp_path / "prune.journal", budget=budget, seed=0)
    search.optimize(study, _objective(question, budget), 5)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE"] * 4 + ["PRUNED"]
    last = study.trials[-1]
    assert last.intermediate_values == {1: 0.05} and last.user_attrs["epochs"] == 1
    assert calls == [1, 2] * 4 + [1]                                   # the bad trial never trained epoch 2


def test_a_diverged_trial_fails_with_its_reason_and_the_search_goes_on(tmp_path, monkeypatch):
    from aml.training import TrainingDiverged

    calls = []
    stub = _stub_trainer(calls)

    def train(config, data, *, on_epoch):
        if not calls:
            calls.append("diverged")
            raise TrainingDiverged("Training diverged: the training loss became nan at iteration 3", iteration=3,
                                   history={}, restored="last finite")
        return stub(config, data, on_epoch=on_epoch)
    monkeypatch.setattr(search, "_train_q3b", train)
    study = search.create_study("fail", tmp_path / "fail.journal", budget=STUB_BUDGET, seed=0)
    search.optimize(study, _objective("q3b", STUB_BUDGET), 2)
    table = search.trials_table(study)
    assert list(table["state"]) == ["FAIL", "COMPLETE"]
    assert table["fail_reason"][0] == "TrainingDiverged: Training diverged: the training loss became nan at iteration 3"
    assert table["fail_reason"][1] == ""


# --- the Q3b search space ------------------------------------------------------------------------------------

def test_every_point_of_the_q3b_space_starts_at_a_sane_loss():
    """50 configs of the full (not smoke) space, each built and run for one minibatch of random CIFAR-like
    pixels (mean-subtracted 0-255, as load_cifar10 gives them) through the real run_config; that first
    minibatch's data loss (reg set to 0 for the measurement: the L2 penalty is not the model's fit) must be
    sane. Before the input scale was tied to the initialisation, unscaled pixels with He weights gave 56-195."""
    from aml.training import TrainingDiverged
    from aml.tuning import run_config

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (420, 3072)).astype(np.float32)
    X -= X[:400].mean(axis=0)
    y = rng.integers(0, 10, 420)
    data = CIFAR10Split(X[:400], y[:400], X[400:], y[400:], SealedTest(X[:0], y[:0]))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    first_losses = []
    for _ in range(50):
        trial = study.ask()
        config = search.q3b_config(search.suggest_q3b(trial), epochs=1).replace(reg=0.0, num_epochs=None, num_iters=1)
        try:
            history = run_config(config, data).stats
        except TrainingDiverged as e:
            history = e.history
        first_losses.append(float(history["loss_history"][0]))
        study.tell(trial, 0.0)
    assert max(first_losses) < 10, sorted(first_losses)[-5:]


def test_q3b_config_ties_the_initial_weights_to_the_input_scale():
    params = {"hidden_size": 40, "learning_rate": 0.01}
    assert search.q3b_config(params, epochs=1).to_dict()["preprocess"] == "scale"
    assert search.q3b_config(params, epochs=1).to_dict()["std"] is None                       # He on unit-scale inputs
    assert search.q3b_config({**params, "preprocess": "mean"}, epochs=1).to_dict()["std"] == 1e-4   # the handout's


# --- workers: the study's fixed arguments ---------------------------------------------------------------------

def test_a_study_stores_its_fixed_arguments_and_refuses_a_worker_that_differs(tmp_path):
    journal = tmp_path / "attrs.journal"
    study = search.run_search("q3b", tiny_split(), storage=journal, study_name="a", smoke=True, n_trials=1)
    assert study.user_attrs == {"question": "q3b", "depth": None, "budget": "smoke", "smoke": True, "max_epochs": 2,
                                "min_epochs": 1, "num_train": 500, "monitor": "val", "num_monitor": 200}
    with pytest.raises(search.StudyMismatch) as info:
        search.run_search("q3b", tiny_split(n=300), storage=journal, study_name="a", smoke=True, n_trials=1)
    message = str(info.value)
    assert "num_train=500" in message and "num_train=300" in message and "\n" not in message
    assert len(optuna.load_study(study_name="a", storage=search.make_storage(journal)).trials) == 1   # nothing ran


def test_the_monitored_split_is_the_selection_split_when_the_data_has_one():
    from types import SimpleNamespace
    data = SimpleNamespace(X_train=np.zeros((50, 4)), X_val=np.zeros((20, 4)), X_sel=np.zeros((30, 4)))
    attrs = search.study_attrs("q3b", data, search.budget("q3b", True), smoke=True)
    assert (attrs["monitor"], attrs["num_monitor"]) == ("sel", 30)


def test_the_command_line_refuses_a_worker_with_other_arguments(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(search, "_load_data", lambda question: tiny_split())
    journal = str(tmp_path / "cli.journal")
    assert search.main(["--question", "q3b", "--storage", journal, "--study", "s", "--n-trials", "1", "--smoke"]) == 0
    capsys.readouterr()
    assert search.main(["--question", "q3b", "--storage", journal, "--study", "s", "--n-trials", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "budget='smoke'" in err and "budget='cpu'" in err


# --- workers: storage errors ----------------------------------------------------------------------------------

def _silent_server():
    """A TCP server on 127.0.0.1 that accepts connections and never answers; returns (port, close)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return
    threading.Thread(target=accept, daemon=True).start()

    def close():
        server.close()
        for conn in held:
            conn.close()
    return server.getsockname()[1], close


def _closed_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_a_database_host_that_never_answers_fails_within_the_connect_timeout():
    pytest.importorskip("psycopg")
    import time
    port, close = _silent_server()
    try:
        start = time.monotonic()
        with pytest.raises(search.StorageError) as info:
            search.make_storage(f"postgresql://aml:secret@127.0.0.1:{port}/aml")
        elapsed = time.monotonic() - start
    finally:
        close()
    assert elapsed < 15
    message = str(info.value)
    assert message.startswith(f"cannot open storage postgresql://aml:***@127.0.0.1:{port}/aml: ")
    assert "timeout" in message and "secret" not in message and "\n" not in message


def _read_only_journal(tmp_path):
    path = tmp_path / "done.journal"
    search.make_storage(path)
    path.chmod(0o444)
    return str(path)


STORAGE_ERRORS = {
    "unreachable host": (lambda tmp_path: f"postgresql://aml:secret@127.0.0.1:{_closed_port()}/aml", "refused"),
    "unknown scheme": (lambda tmp_path: "foo://somewhere/db", "unknown scheme 'foo'"),
    "a directory": (lambda tmp_path: str(tmp_path), "it is a directory"),
    "a read-only journal": (_read_only_journal, "read-only"),
}


@pytest.mark.parametrize("case", list(STORAGE_ERRORS))
def test_every_storage_error_is_one_line(case, tmp_path, monkeypatch, capsys):
    if case == "unreachable host":
        pytest.importorskip("psycopg")
    import time
    make_url, reason = STORAGE_ERRORS[case]
    url = make_url(tmp_path)
    shown = search.shown_url(url)
    start = time.monotonic()
    with pytest.raises(search.StorageError) as info:                 # as a library call
        search.run_search("q3b", tiny_split(), storage=url, study_name="s", smoke=True, n_trials=1)
    assert time.monotonic() - start < 3                                # refused at once, not retried 5 times
    assert isinstance(info.value, RuntimeError) and info.value.__cause__ is None
    assert str(info.value).startswith(f"cannot open storage {shown}: ") and reason in str(info.value)

    monkeypatch.setattr(search, "_load_data", lambda question: tiny_split())
    assert search.main(["--question", "q3b", "--storage", url, "--study", "s", "--n-trials", "1", "--smoke"]) == 2
    err = capsys.readouterr().err
    assert err == f"aml.search: {info.value}\n"
    assert "Traceback" not in err and "secret" not in err


# --- workers: killed writers and workers --------------------------------------------------------------------

def _journal_with_trials(tmp_path, monkeypatch, n_trials=2):
    monkeypatch.setattr(search, "_train_q3b", _stub_trainer([]))
    path = tmp_path / "cut.journal"
    search.run_search("q3b", tiny_split(), storage=path, study_name="cut", smoke=True, n_trials=n_trials)
    return path


def test_a_journal_cut_by_a_killed_writer_is_repaired_and_takes_the_next_append(tmp_path, monkeypatch, capsys):
    path = _journal_with_trials(tmp_path, monkeypatch)
    lines = path.read_bytes().count(b"\n")
    with open(path, "ab") as f:
        f.write(b'{"op_code":5,"worker_id":"x","trial_id":1,"sta')     # a line without its end
    capsys.readouterr()
    study = search.run_search("q3b", tiny_split(), storage=path, study_name="cut", smoke=True, n_trials=2)
    err = capsys.readouterr().err
    assert f"repaired journal {path}" in err and f"last line {lines + 1} " in err
    assert path.read_bytes().endswith(b"\n")
    reloaded = optuna.load_study(study_name="cut", storage=search.make_storage(path))   # every line reads
    assert [t.number for t in reloaded.trials] == [0, 1, 2, 3]
    assert all(t.state.name == "COMPLETE" for t in reloaded.trials) and len(study.trials) == 4


def test_a_journal_with_a_broken_line_inside_is_refused_naming_the_line(tmp_path, monkeypatch):
    path = _journal_with_trials(tmp_path, monkeypatch, n_trials=1)
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(2, b"not json\n")
    path.write_bytes(b"".join(lines))
    with pytest.raises(search.StorageError, match=f"cannot open storage {path}: line 3 is not a journal entry"):
        search.make_storage(path)


def _dead_pid():
    import subprocess
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_the_journal_stale_trial_rule_fails_and_retries_trials_of_dead_local_workers(tmp_path, monkeypatch):
    import socket
    monkeypatch.setattr(search, "_train_q3b", _stub_trainer([]))
    path = tmp_path / "stale.journal"
    study = search.create_study("stale", path, budget=search.budget("q3b", True), seed=0)
    host = socket.gethostname()
    workers = {"dead": f"{host}:{_dead_pid()}", "alive": f"{host}:{os.getpid()}", "elsewhere": "other-host:1"}
    for worker in workers.values():
        trial = study.ask()
        trial.suggest_float("learning_rate", 1e-3, 1e-1, log=True)
        trial.set_user_attr("worker", worker)
    assert search.fail_stale_trials(study) == []                      # younger than STALE_AFTER_S: left alone
    assert search.fail_stale_trials(study, min_age_s=0) == [0]
    states = {t.number: t.state.name for t in study.trials}
    assert states == {0: "FAIL", 1: "RUNNING", 2: "RUNNING", 3: "WAITING"}
    assert study.trials[3].params == study.trials[0].params           # the retry keeps the parameters

    monkeypatch.setattr(search, "STALE_AFTER_S", 0)
    study = search.run_search("q3b", tiny_split(), storage=path, study_name="stale", smoke=True, n_trials=1)
    table = search.trials_table(study).set_index("number")
    assert table.loc[0, "fail_reason"] == f"worker {workers['dead']} stopped (stale-trial rule)"
    assert table.loc[3, "state"] == "COMPLETE" and table.loc[3, "fail_reason"] == ""   # the retry ran first


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_an_rdb_trial_whose_worker_stopped_is_failed_by_the_heartbeat_and_retried(tmp_path, monkeypatch):
    import time
    monkeypatch.setattr(search, "_train_q3b", _stub_trainer([]))
    storage = search.make_storage(f"sqlite:///{tmp_path / 'hb.db'}", heartbeat_interval=1, grace_period=2)
    study = search.create_study("hb", storage, budget=search.budget("q3b", True), seed=0)
    trial = study.ask()
    trial.suggest_float("learning_rate", 1e-3, 1e-1, log=True)
    storage.record_heartbeat(trial._trial_id)                         # a worker that beat once, then was killed
    time.sleep(3)
    study = search.run_search("q3b", tiny_split(), storage=storage, study_name="hb", smoke=True, n_trials=1)
    table = search.trials_table(study).set_index("number")
    assert table.loc[0, "state"] == "FAIL"
    assert table.loc[0, "fail_reason"] == "worker stopped (no heartbeat within the grace period)"
    retry = study.trials[1]
    assert retry.system_attrs["failed_trial"] == 0 and retry.params["learning_rate"] == trial.params["learning_rate"]
    assert retry.state.name == "COMPLETE"


# --- notebooks -------------------------------------------------------------------------------------------------

def test_notebook_storage_is_fresh_and_never_in_the_workers_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(search, "_train_q3b", _stub_trainer([]))
    for _ in range(2):
        storage = search.notebook_storage("q3b", run_dir=tmp_path)
        study = search.run_search("q3b", tiny_split(), storage=storage, study_name="q3b", smoke=True, n_trials=1)
        assert len(study.trials) == 1                                  # a re-run repeats, not extends, the search
    assert (tmp_path / "optuna" / "q3b.journal").exists()
    temporary = search.shown_url(search.notebook_storage("q3b"))
    assert not Path(temporary).resolve().is_relative_to(search.WORKER_DIR.resolve())
    with pytest.raises(ValueError, match="'run_dir'"):
        search.notebook_storage("q3b", run_dir=search.REPO_ROOT / "results")
    with pytest.raises(ValueError, match="'name'"):
        search.notebook_storage("../q3b")


# --- importances -------------------------------------------------------------------------------------------------

def _study_with_first_rung_values(num_trials, num_complete):
    """Trials whose epoch-1 value follows the learning rate; the later ones pruned at epoch 1."""
    study = optuna.create_study(direction="maximize")
    dists = {"learning_rate": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True),
             "batch_size": optuna.distributions.CategoricalDistribution([100, 200, 400])}
    rng = np.random.default_rng(0)
    for i in range(num_trials):
        lr = float(10 ** rng.uniform(-3, -1))
        params = {"learning_rate": lr, "batch_size": int(rng.choice([100, 200, 400]))}
        first = 0.1 + 0.2 * (np.log10(lr) + 3)
        if i < num_complete:
            study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=first + 0.1,
                                                      intermediate_values={1: first, 2: first + 0.1}))
        else:
            study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=first,
                                                      state=optuna.trial.TrialState.PRUNED,
                                                      intermediate_values={1: first}))
    return study


def test_importances_use_the_first_rung_of_every_trial_pruned_ones_included():
    imp = search.importances(_study_with_first_rung_values(24, 3))
    assert imp is not None and (imp.num_trials, imp.epoch) == (24, 1)
    assert "epoch 1" in imp.basis and "21 of them pruned" in imp.basis
    assert set(imp) == {"learning_rate", "batch_size"} and imp["learning_rate"] > imp["batch_size"]


def test_importances_are_none_from_fewer_than_20_trials():
    assert search.importances(_study_with_first_rung_values(19, 19)) is None
    assert search.importances(_study_with_first_rung_values(20, 3)) is not None
