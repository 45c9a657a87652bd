"""The search (aml.search) and its workers (tools.search): spaces, the trial, Optuna's storages shared
by workers that start at the same instant (journal, SQLite; PostgreSQL when AML_TEST_POSTGRES_URL is set)."""
import multiprocessing
import os
import signal
import time
import uuid
from types import SimpleNamespace

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")
sqlalchemy = pytest.importorskip("sqlalchemy")

from aml import search  # noqa: E402
from aml.data import CIFAR10Split, SealedTest  # noqa: E402
from tools import search as worker  # noqa: E402

POSTGRES_URL = os.environ.get("AML_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="set AML_TEST_POSTGRES_URL (CI starts PostgreSQL)")
STUB_DATA = SimpleNamespace(normalize="handout")
VAL_ACC = [0.30, 0.45, 0.40]            # the monitored split per epoch: best epoch 2, not the last


def stub_trainer(config, data, *, on_epoch, val_acc=None):
    """A stand-in for training: a history whose accuracy follows ``reg``/``lr`` (so trials differ)."""
    knob = getattr(config, "reg", None) or config.lr
    history = {"train_acc_history": [], "val_acc_history": []}
    for epoch, acc in enumerate(val_acc or [0.1 * e + knob for e in range(1, config.num_epochs + 1)], start=1):
        history["train_acc_history"].append(0.99)                     # must never reach Optuna
        history["val_acc_history"].append(acc)
        on_epoch(epoch, history)
    return history


def _stub_worker(monkeypatch=None, hang=None):
    """Patch the trainers and the data of this process; ``hang``: a file made when training starts, which
    then never ends."""
    def train(config, data, *, on_epoch):
        if hang:
            open(hang, "w").close()
            time.sleep(600)
        return stub_trainer(config, data, on_epoch=on_epoch)
    setattr_ = monkeypatch.setattr if monkeypatch else (lambda obj, name, value: setattr(obj, name, value))
    setattr_(search, "train_q3b", train)
    setattr_(search, "train_q4", train)
    setattr_(worker, "load_data", lambda question, num_train: STUB_DATA)


def _child(barrier, argv, settings):
    hang = settings.pop("hang", None)
    for name, value in settings.items():
        setattr(worker, name, value)
    _stub_worker(hang=hang)
    barrier.wait()                                                    # all start at the same instant
    raise SystemExit(worker.main(argv))


def start_workers(argvs, **settings):
    """Spawned processes that each run ``tools.search.main(argv)`` once a barrier lets them all go."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(argvs))
    procs = [ctx.Process(target=_child, args=(barrier, argv, settings)) for argv in argvs]
    for p in procs:
        p.start()
        p.barrier = barrier                                           # alive until the children have it
    return procs


def run_workers(argvs, **settings):
    procs = start_workers(argvs, **settings)
    for p in procs:
        p.join(timeout=120)
    return [p.exitcode for p in procs]


def argv(storage, question="q3b", n_trials=2, *more):
    return ["--question", question, "--storage", str(storage), "--n-trials", str(n_trials), "--smoke", *more]


def load(storage, name="q3b-smoke"):
    return optuna.load_study(study_name=name, storage=worker.open_storage(str(storage)))


@pytest.fixture
def fresh_postgres():
    """A fresh, empty schema of the CI database (the URL's search_path), dropped afterwards."""
    schema = f"t{uuid.uuid4().hex[:10]}"
    engine = sqlalchemy.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


# --- the spaces and the configs they build ------------------------------------------------------------------

def test_q3b_config_fixes_only_the_budget():
    params = {"hidden_size": 40, "learning_rate": 0.01, "reg": 1e-3, "lr_schedule": "cosine", "momentum": 0.9,
              "nesterov": True, "batch_size": 100, "dropout": 0.2, "flip": True, "preprocess": "scale"}
    flat = search.q3b_config(params, epochs=7, seed=3).to_dict()
    assert {k: flat[k] for k in params} == params
    assert (flat["num_epochs"], flat["seed"], flat["std"], flat["keep_best"], flat["sampling"]) == (7, 3, None, True,
                                                                                                    "epoch")
    assert search.q3b_config({**params, "preprocess": "mean"}, epochs=1).std == 1e-4   # the handout's, unscaled


def test_q3b_searches_the_step_size_so_momentum_does_not_multiply_the_step():
    assert search.learning_rate_of(0.05, 0.9) == pytest.approx(0.005)
    for momentum in (0.0, 0.9):
        trial = optuna.trial.FixedTrial({"momentum": momentum, "step_size": 0.05, "hidden_size": 500, "reg": 1e-3,
                                         "lr_schedule": "cosine", "nesterov": False, "batch_size": 100,
                                         "dropout": 0.0, "flip": False})
        assert search.suggest_q3b(trial)["learning_rate"] == pytest.approx(0.05 * (1 - momentum))
    params = {"momentum": 0.9, "step_size": 0.05, "hidden_size": 500, "lr_schedule": "cosine"}
    assert search.q3b_config(params, epochs=3).learning_rate == pytest.approx(0.005)   # a trial's params
    assert "step_size" in params                                                       # the caller's dict untouched


def test_q3b_config_stretches_a_step_schedule_to_the_promoted_length():
    params = {"hidden_size": 40, "learning_rate": 0.01, "lr_schedule": "step", "learning_rate_decay": 0.8}
    promoted = search.q3b_config(params, epochs=18, screened_epochs=9)
    assert promoted.learning_rate_decay ** 18 == pytest.approx(0.8 ** 9)              # ends where the trial ended
    assert search.q3b_config(params, epochs=18).learning_rate_decay == 0.8
    cosine = {**params, "lr_schedule": "cosine"}
    assert search.q3b_config(cosine, epochs=18, screened_epochs=9).learning_rate_decay == 0.8
    with pytest.raises(ValueError, match="'screened_epochs'"):
        search.q3b_config(params, epochs=18, screened_epochs=0)


def test_q4_config_fixes_flips_and_takes_the_searched_crop():
    params = {"width": 64, "lr": 1e-3, "weight_decay": 0.01, "dropout": 0.1, "batch_size": 128, "crop_padding": 4}
    cfg = search.q4_config(params, depth=3, epochs=5, seed=2)
    assert (cfg.flip, cfg.crop_padding, cfg.hidden_layers, cfg.num_epochs, cfg.seed) == (True, 4, (64, 64), 5, 2)
    assert (cfg.init, cfg.batch_norm, cfg.optimizer, cfg.schedule, cfg.normalize) == ("kaiming", True, "adamw",
                                                                                      "onecycle", "handout")
    assert search.q4_config(params, depth=2, epochs=1, normalize="zca").normalize == "zca"


def test_every_point_of_the_q3b_space_starts_at_a_sane_loss():
    """30 configs of the full space, one minibatch each of CIFAR-like pixels through the real run_config:
    the first data loss is near ln(10) (unscaled pixels with He weights once gave 56-195)."""
    from aml.training import TrainingDiverged
    from aml.tuning import run_config

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (420, 3072)).astype(np.float32)
    X -= X[:400].mean(axis=0)
    y = rng.integers(0, 10, 420)
    data = CIFAR10Split(X[:400], y[:400], X[400:], y[400:], SealedTest(X[:0], y[:0]))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    first_losses = []
    for _ in range(30):
        trial = study.ask()
        config = search.q3b_config(search.suggest_q3b(trial), epochs=1).replace(reg=0.0, num_epochs=None, num_iters=1)
        try:
            history = run_config(config, data).stats
        except TrainingDiverged as e:
            history = e.history
        first_losses.append(float(history["loss_history"][0]))
        study.tell(trial, 0.0)
    assert max(first_losses) < 10, sorted(first_losses)[-5:]


# --- the trial ------------------------------------------------------------------------------------------------

def _run(question, trainer, monkeypatch, n_trials=1, epochs=3):
    monkeypatch.setattr(search, f"train_{question}", trainer)
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.SuccessiveHalvingPruner(
        min_resource=1, reduction_factor=3), sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: search.objective(t, question, STUB_DATA, epochs=epochs, depth=3, smoke=True),
                   n_trials=n_trials, catch=(FloatingPointError,))
    return study


@pytest.mark.parametrize("question", ["q3b", "q4"])
def test_the_trial_reports_each_epochs_monitored_accuracy_and_returns_the_best(question, monkeypatch):
    def trainer(config, data, *, on_epoch):
        assert config.num_epochs == 3 and (question == "q3b" or config.hidden_layers in ((32, 32), (64, 64)))
        return stub_trainer(config, data, on_epoch=on_epoch, val_acc=VAL_ACC)
    trial = _run(question, trainer, monkeypatch).trials[0]
    assert trial.intermediate_values == {1: 0.30, 2: 0.45, 3: 0.40}     # the monitored split, never train acc
    assert trial.state.name == "COMPLETE" and trial.value == 0.45


def test_a_clearly_bad_trial_is_pruned_at_the_first_rung(monkeypatch):
    accs = [[0.40 + 0.01 * k, 0.5] for k in range(4)] + [[0.05, 0.06]]
    epochs_run = []

    def trainer(config, data, *, on_epoch):
        def counted(epoch, history):
            epochs_run.append(epoch)
            on_epoch(epoch, history)
        return stub_trainer(config, data, on_epoch=counted, val_acc=accs.pop(0))
    study = _run("q3b", trainer, monkeypatch, n_trials=5, epochs=2)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4 + ["PRUNED"]
    assert epochs_run == [1, 2] * 4 + [1]                                # the bad trial never trained epoch 2


def test_a_diverged_trial_fails_and_the_search_goes_on(monkeypatch):
    from aml.training import TrainingDiverged
    calls = []

    def trainer(config, data, *, on_epoch):
        calls.append(1)
        if len(calls) == 1:
            raise TrainingDiverged("Training diverged", iteration=3, history={}, restored="last finite")
        return stub_trainer(config, data, on_epoch=on_epoch)
    study = _run("q3b", trainer, monkeypatch, n_trials=2)
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]


def test_best_complete_trial_and_the_table(monkeypatch):
    study = optuna.create_study(direction="maximize")
    with pytest.raises(RuntimeError, match="no complete trial"):
        search.best_complete_trial(study)
    study = _run("q3b", lambda c, d, *, on_epoch: stub_trainer(c, d, on_epoch=on_epoch), monkeypatch, n_trials=3)
    best = search.best_complete_trial(study)
    assert best.value == max(t.value for t in study.trials)
    table = search.trials_table(study)
    assert {"number", "state", "value", "duration", "params_reg"} <= set(table.columns) and len(table) == 3


# --- workers that start together -------------------------------------------------------------------------

def _check_shared(storage, n_workers, n_trials):
    study = load(storage)
    assert sorted(t.number for t in study.trials) == list(range(n_workers * n_trials))   # --n-trials: each worker's
    assert {t.state.name for t in study.trials} <= {"COMPLETE", "PRUNED"}
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == len(study.trials)   # distinct params
    assert len({t.user_attrs["sampler_seed"] for t in study.trials}) == n_workers               # a seed each


@pytest.mark.parametrize("kind", ["journal", "sqlite", pytest.param("postgresql", marks=needs_postgres)])
def test_three_workers_started_at_once_with_one_command_share_a_fresh_study(kind, tmp_path, request):
    storage = {"journal": lambda: tmp_path / "s.journal", "sqlite": lambda: f"sqlite:///{tmp_path / 's.db'}",
               "postgresql": lambda: request.getfixturevalue("fresh_postgres")}[kind]()
    assert run_workers([argv(storage)] * 3) == [0, 0, 0]
    _check_shared(storage, 3, 2)


def test_workers_of_other_depths_started_at_once_never_share_a_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'd.db'}"
    assert run_workers([argv(storage, "q4", 1, "--depth", "2"), argv(storage, "q4", 1, "--depth", "3"),
                        argv(storage, "q3b", 1)]) == [0, 0, 0]
    for name, depth in (("q4-depth2-smoke", 2), ("q4-depth3-smoke", 3), ("q3b-smoke", None)):
        study = load(storage, name)
        assert len(study.trials) == 1 and study.user_attrs["depth"] == depth
        assert ("width" in study.trials[0].params) == (depth is not None)


def test_a_study_of_other_fixed_arguments_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    _stub_worker(monkeypatch)
    journal = tmp_path / "v.journal"
    assert worker.main(argv(journal, "q3b", 1)) == 0
    monkeypatch.setattr(search, "SPACE_VERSION", search.SPACE_VERSION + 1)
    capsys.readouterr()
    assert worker.main(argv(journal, "q3b", 1)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"space_version={search.SPACE_VERSION - 1}" in err and str(journal) in err
    assert len(load(journal).trials) == 1                                             # nothing ran


def test_n_trials_counts_this_workers_trials_and_seeds_are_recorded(tmp_path, monkeypatch, capsys):
    _stub_worker(monkeypatch)
    monkeypatch.setattr(optuna.pruners, "SuccessiveHalvingPruner", lambda **kw: optuna.pruners.NopPruner())
    journal = tmp_path / "n.journal"
    assert worker.main(argv(journal, "q3b", 3, "--seed", "5")) == 0
    assert worker.main(argv(journal, "q3b", 2, "--seed", "6")) == 0
    assert "sampler seed 6" in capsys.readouterr().out
    study = load(journal)
    assert [t.user_attrs["sampler_seed"] for t in study.trials] == [5, 5, 5, 6, 6]    # 3 + 2, not 2 in all
    assert worker.main(argv(journal, "q3b", 1, "--seed", "6")) == 1                   # would repeat seed 6's draws
    assert "seed 6 already ran" in capsys.readouterr().err
    assert worker.main(argv(tmp_path / "again.journal", "q3b", 3, "--seed", "5")) == 0   # a run repeated
    assert [t.params for t in load(tmp_path / "again.journal").trials] == [t.params for t in study.trials[:3]]


# --- storage errors: one line naming the storage, exit 2 --------------------------------------------------------

def _closed_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


STORAGE_ERRORS = {
    "in-memory sqlite": (lambda p: "sqlite://", "in-memory database keeps nothing"),
    "in-memory sqlite, named": (lambda p: "sqlite:///:memory:", "in-memory database keeps nothing"),
    "malformed postgresql URL": (lambda p: "postgresql://aml:secret@db-host:port/aml", "not a database URL"),
    "unknown scheme": (lambda p: "foo://somewhere/db", "unknown scheme 'foo'"),
    "a directory": (lambda p: str(p), "Is a directory"),
    "unreachable host": (lambda p: f"postgresql://aml:secret@127.0.0.1:{_closed_port()}/aml", "refused"),
}


@pytest.mark.parametrize("case", list(STORAGE_ERRORS))
def test_every_storage_error_is_one_line_naming_the_storage(case, tmp_path, monkeypatch, capsys):
    _stub_worker(monkeypatch)
    make_spec, reason = STORAGE_ERRORS[case]
    spec = make_spec(tmp_path)
    start = time.monotonic()
    assert worker.main(argv(spec, "q3b", 1)) == 2
    assert time.monotonic() - start < 5                                              # refused at once, not retried
    err = capsys.readouterr().err
    assert err.startswith(f"tools.search: cannot use storage {worker.shown(spec)}: ") and reason in err
    assert err.count("\n") == 1 and "secret" not in err and "int()" not in err


def test_a_database_host_that_never_answers_fails_within_the_connect_timeout(monkeypatch, capsys):
    import socket
    monkeypatch.setattr(worker, "CONNECT_TIMEOUT_S", 2)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)                                                             # accepts, never answers
        spec = f"postgresql://aml:secret@127.0.0.1:{server.getsockname()[1]}/aml"
        start = time.monotonic()
        assert worker.main(argv(spec, "q3b", 1)) == 2
    assert time.monotonic() - start < 8
    err = capsys.readouterr().err
    assert err.startswith("tools.search: cannot use storage postgresql://aml:***@127.0.0.1:") and "\n" not in err[:-1]


def test_a_storage_lost_mid_search_is_one_line(tmp_path, monkeypatch, capsys):
    _stub_worker(monkeypatch)

    def lost(*args, **kwargs):
        raise sqlalchemy.exc.OperationalError("UPDATE trials", {}, Exception("server closed the connection\nmore"))
    monkeypatch.setattr(search, "objective", lost)
    assert worker.main(argv(f"sqlite:///{tmp_path / 'l.db'}", "q3b", 1)) == 2
    assert capsys.readouterr().err.endswith(": server closed the connection\n")


def test_the_command_line_checks_its_arguments(tmp_path):
    for bad in (argv(tmp_path / "a.journal", "q4", 1), argv(tmp_path / "a.journal", "q3b", 1, "--depth", "2"),
                argv(tmp_path / "a.journal", "q3b", 0), argv(tmp_path / "a.journal", "q4", 1, "--depth", "1")):
        with pytest.raises(SystemExit) as info:
            worker.parse_args(bad)
        assert info.value.code == 2
    assert not (tmp_path / "a.journal").exists()


# --- workers that stop -------------------------------------------------------------------------------------------

def test_a_journal_cut_by_a_killed_writer_takes_the_next_worker(tmp_path, monkeypatch, capsys):
    _stub_worker(monkeypatch)
    journal = tmp_path / "cut.journal"
    assert worker.main(argv(journal, "q3b", 1)) == 0
    with open(journal, "ab") as f:
        f.write(b'{"op_code":5,"worker_id":"x","trial_id":1,"sta')                  # a line without its end
    assert worker.main(argv(journal, "q3b", 1)) == 0
    assert "removed the unfinished last line" in capsys.readouterr().err
    assert len(load(journal).trials) == 2 and all(t.state.is_finished() for t in load(journal).trials)


def test_a_journal_keeps_a_dead_workers_trial_running_and_the_others_go_on(tmp_path, monkeypatch):
    _stub_worker(monkeypatch)
    journal = tmp_path / "dead.journal"
    assert worker.main(argv(journal, "q3b", 1)) == 0
    load(journal).ask()                                                            # a worker that died mid-trial
    assert worker.main(argv(journal, "q3b", 2)) == 0
    states = [t.state.name for t in load(journal).trials]
    assert len(states) == 4 and states[1] == "RUNNING"                            # Optuna's journal: no heartbeat
    assert {states[0], *states[2:]} <= {"COMPLETE", "PRUNED"}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=needs_postgres)])
def test_an_rdb_trial_whose_worker_was_killed_is_failed_by_the_heartbeat_and_retried(kind, tmp_path, monkeypatch,
                                                                                       request):
    storage = f"sqlite:///{tmp_path / 'hb.db'}" if kind == "sqlite" else request.getfixturevalue("fresh_postgres")
    beat = {"HEARTBEAT_INTERVAL_S": 1, "GRACE_PERIOD_S": 2}
    for name, value in beat.items():
        monkeypatch.setattr(worker, name, value)
    training = tmp_path / "training"
    [proc] = start_workers([argv(storage, "q3b", 1)], hang=str(training), **beat)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not training.exists():
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)                                              # killed mid-trial
    proc.join()
    time.sleep(3)                                                                  # past the grace period
    _stub_worker(monkeypatch)
    assert worker.main(argv(storage, "q3b", 1)) == 0
    killed, retry = load(storage).trials
    assert killed.state.name == "FAIL" and retry.state.name == "COMPLETE"
    assert retry.system_attrs["failed_trial"] == 0 and retry.params == killed.params

