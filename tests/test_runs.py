"""aml.runs: where a run's files go (never the committed record), and the one reader of AML_SMOKE."""
import json
import os
import subprocess
import sys

import nbformat
import numpy as np
import pytest

from aml import runs


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A copied checkout (``aml/__init__.py``, ``notebooks/``, a committed ``results/`` with a ledger
    of one row and a git-ignored checkpoint), no AML_OUTPUT_DIR or AML_SMOKE, working in its notebooks/."""
    root = tmp_path / "copy"
    (root / "aml").mkdir(parents=True)
    (root / "aml" / "__init__.py").write_text("")
    (root / "notebooks").mkdir()
    (root / "results" / "checkpoints").mkdir(parents=True)
    (root / "results" / "q3a_toy.json").write_text('{"final_loss": 0.01, "smoke": false}\n')
    (root / "results" / "test_ledger.csv").write_text(
        "utc,question,config_hash,seed,n_test,accuracy,commit,smoke\n"
        "2030-01-01T00:00:00Z,q3b,abcdef012345,0,10,0.5,c0ffee,False\n")
    (root / "results" / "checkpoints" / "big.npz").write_bytes(b"weights")
    for name in ("AML_OUTPUT_DIR", "AML_SMOKE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(root / "notebooks")
    return root


def committed(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "results").rglob("*")) if p.is_file()}


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "Yes", "on", " 1", "1\n", "\ttrue "])
def test_smoke_accepts_the_true_words(value):
    assert runs.smoke({"AML_SMOKE": value}) is True


@pytest.mark.parametrize("value", ["0", "false", "False", "no", "OFF", "", "  ", " 0 "])
def test_smoke_accepts_the_false_words_and_unset(value):
    assert runs.smoke({"AML_SMOKE": value}) is False
    assert runs.smoke({}) is False


@pytest.mark.parametrize("value", ["2", "y", "enabled", "1.0", "tru"])
def test_smoke_refuses_anything_else_naming_the_variable_the_values_and_what_came(value):
    with pytest.raises(ValueError) as info:
        runs.smoke({"AML_SMOKE": value})
    message = str(info.value)
    assert message.startswith("AML_SMOKE must be one of 1, true, yes, on") and "0, false, no, off" in message
    assert f"Got {value!r} instead." in message


def test_smoke_reads_the_environment(monkeypatch):
    monkeypatch.setenv("AML_SMOKE", "yes")
    assert runs.smoke() is True


def test_checkout_is_found_from_the_working_folder(checkout, tmp_path):
    assert runs.checkout() == checkout
    assert runs.checkout(checkout / "runs" / "20300101T000000Z" / "notebooks") == checkout
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert runs.checkout(outside) == runs.Path(runs.__file__).resolve().parents[1]   # the package's parent


def test_outputs_go_to_the_interactive_run_folder_seeded_with_the_committed_results(checkout):
    before = committed(checkout)
    assert runs.results_dir() == checkout / "runs" / "interactive" / "results"
    assert runs.imgs_dir() == checkout / "runs" / "interactive" / "imgs"
    seeded = runs.results_dir()
    assert (seeded / "q3a_toy.json").read_bytes() == before["results/q3a_toy.json"]
    assert (seeded / "test_ledger.csv").read_bytes() == before["results/test_ledger.csv"]
    assert not (seeded / "checkpoints").exists()        # git-ignored sub-folders are not copied
    runs.write_json(runs.results_dir() / "q3a_toy.json", {"final_loss": 9.0})
    assert committed(checkout) == before


def test_run_folders_are_git_ignored():
    root = runs.Path(__file__).resolve().parents[1]
    done = subprocess.run(["git", "check-ignore", "-q", "runs/20300101T000000Z/results/q3a_toy.json"], cwd=root)
    assert done.returncode == 0


def test_small_budget_outputs_go_to_their_own_run_folder(checkout, monkeypatch):
    monkeypatch.setenv("AML_SMOKE", "1")
    assert runs.results_dir() == checkout / "runs" / "smoke" / "results"
    monkeypatch.setenv("AML_OUTPUT_DIR", str(checkout / "ci"))
    assert runs.results_dir() == checkout / "ci" / "results"


def test_a_copied_checkout_writes_into_its_own_run_folder_whatever_the_install_points_at(checkout):
    env = {k: v for k, v in os.environ.items() if k not in ("AML_OUTPUT_DIR", "AML_SMOKE", "PYTHONPATH")}
    script = "import aml.runs as r; print(r.__file__); print(r.results_dir())"
    done = subprocess.run([sys.executable, "-c", script], cwd=checkout / "notebooks", env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    package, results = done.stdout.split("\n")[:2]
    assert not package.startswith(str(checkout))          # aml comes from the install (another checkout) ...
    assert results == str(checkout / "runs" / "interactive" / "results")   # ... yet writes here


def test_smoke_nbval_run_leaves_the_committed_results(checkout):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(
        "from aml.runs import results_dir, smoke, write_json\n"
        "write_json(results_dir() / 'q3a_toy.json', {'final_loss': 0.5, 'smoke': smoke()})")]
    nbformat.write(notebook, checkout / "notebooks" / "02_toy.ipynb")
    before = committed(checkout)
    env = {k: v for k, v in os.environ.items() if k not in ("AML_OUTPUT_DIR", "PYTHONPATH")}
    env["AML_SMOKE"] = "1"
    done = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
                           "02_toy.ipynb"], cwd=checkout / "notebooks", env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert committed(checkout) == before
    assert json.loads((checkout / "runs" / "smoke" / "results" / "q3a_toy.json").read_text())["smoke"] is True


def test_seeding_copies_the_committed_files_once(checkout, tmp_path):
    run = runs.seed_run_folder(tmp_path / "run", source=checkout)
    assert sorted(p.name for p in (run / "results").iterdir()) == ["q3a_toy.json", "test_ledger.csv"]
    (checkout / "results" / "q3a_toy.json").write_text("{}")
    runs.seed_run_folder(run, source=checkout)            # seeded once: a second call changes nothing
    assert (run / "results" / "q3a_toy.json").read_text() != "{}"
    assert not [p for p in run.iterdir() if p.name.startswith(".")]   # no staging folder left behind


def test_writes_are_atomic_and_json_is_strict(tmp_path):
    path = runs.write_json(tmp_path / "r.json", {"x": np.float32(0.5), "ids": np.arange(2), "p": tmp_path})
    assert json.loads(path.read_text()) == {"x": 0.5, "ids": [0, 1], "p": str(tmp_path)}
    with pytest.raises(ValueError, match=r"r.json: Out of range float values .*strict JSON has no NaN"):
        runs.write_json(path, {"x": float("nan")})
    assert json.loads(path.read_text())["x"] == 0.5 and [p.name for p in tmp_path.iterdir()] == ["r.json"]
    runs.write_csv([{"a": 1}, {"a": 2, "b": "x"}], tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().splitlines() == ["a,b", "1,", "2,x"]
    with pytest.raises(ValueError, match="'rows' parameter must hold at least one row"):
        runs.write_csv([], tmp_path / "t.csv")
    with pytest.raises(OSError), runs.atomic_path(tmp_path / "t.csv") as tmp:
        tmp.write_text("half")
        raise OSError("disk full")
    assert (tmp_path / "t.csv").read_text().startswith("a,b") and len(list(tmp_path.iterdir())) == 2


def test_set_seed_seeds_numpy_and_torch_and_checks_the_seed():
    import torch

    runs.set_seed(3)
    a, t = np.random.rand(), torch.rand(1)
    runs.set_seed(3)
    assert a == np.random.rand() and torch.equal(t, torch.rand(1))
    with pytest.raises((TypeError, ValueError), match="seed"):
        runs.set_seed(-1)


def test_machine_info_names_the_machine():
    info = runs.machine_info()
    assert {"date", "cpu", "cpu_count", "python", "numpy", "torch", "gpu"} <= set(info) and info["cpu"]


def _measured_table(monkeypatch, tmp_path):
    """benchmarks/measured_table.py pointed at a checkout holding a copy of the committed results and
    five tiny notebooks whose records are full runs."""
    import importlib.util
    import shutil

    repo = runs.Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("measured_table", repo / "benchmarks" / "measured_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    root = tmp_path / "checkout"
    shutil.copytree(repo / "results", root / "results", ignore=shutil.ignore_patterns("checkpoints", "optuna"))
    (root / "notebooks").mkdir()
    for i in range(1, 6):
        nb = nbformat.v4.new_notebook()
        nb.metadata["aml_run"] = {"smoke": False, "seconds": 60.0 * i}
        nbformat.write(nb, root / "notebooks" / f"0{i}_x.ipynb")
    monkeypatch.setattr(module, "ROOT", root)
    return module, root


def test_measured_table_quotes_full_runs(monkeypatch, tmp_path):
    module, _ = _measured_table(monkeypatch, tmp_path)
    text = module.table()
    assert "notebooks 15.0 min (01: 1.0, 02: 2.0, 03: 3.0, 04: 4.0, 05: 5.0)" in text
    assert text.startswith("| question | what | validation (or result) | test |")


def test_measured_table_refuses_smoke_results_naming_the_file(monkeypatch, tmp_path):
    module, root = _measured_table(monkeypatch, tmp_path)
    path = root / "results" / "q3a_toy.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "smoke": True}))
    with pytest.raises(module.NotARecord, match=r"q3a_toy.json: field 'smoke' is True, not false"):
        module.table()


def test_measured_table_refuses_a_smoke_notebook(monkeypatch, tmp_path):
    module, root = _measured_table(monkeypatch, tmp_path)
    nb = nbformat.read(root / "notebooks" / "03_x.ipynb", as_version=4)
    nb.metadata["aml_run"]["smoke"] = True
    nbformat.write(nb, root / "notebooks" / "03_x.ipynb")
    with pytest.raises(module.NotARecord, match=r"03_x.ipynb: field 'aml_run.smoke' is True"):
        module.table()


@pytest.mark.parametrize("key, value, message", [
    ("test_acc_full", float("nan"), "q3b_best.json: it holds NaN"),
    ("test_acc_full", None, "q3b_best.json: field 'test_acc_full' is None, not a finite number"),
    ("val_acc_seeds", [0.6, "nan"], "q3b_best.json: field 'val_acc_seeds' is \\[0.6, 'nan'\\]"),
])
def test_measured_table_refuses_values_that_are_not_finite(monkeypatch, tmp_path, key, value, message):
    module, root = _measured_table(monkeypatch, tmp_path)
    path = root / "results" / "q3b_best.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), key: value}))   # json.dumps writes NaN as NaN
    with pytest.raises(module.NotARecord, match=message):
        module.table()


def test_measured_table_recipes_say_what_the_records_hold(monkeypatch, tmp_path):
    module, root = _measured_table(monkeypatch, tmp_path)
    p3b, p4 = root / "results" / "q3b_best.json", root / "results" / "q4_best.json"
    c = {"hidden_layers": [512, 512, 512], "batch_norm": False, "init": "handout", "optimizer": "adam",
         "weight_decay": 1e-3, "schedule": "step", "lr": 1e-3, "batch_size": 200, "num_epochs": 10,
         "bfloat16": False, "flip": False, "crop_padding": 0}
    assert module.q4_recipe(c, p4) == ("3 x 512 hidden, Adam (weight decay 0.001), step learning rate, peak 0.001, "
                                       "batch 200, 10 epochs")
    c |= {"batch_norm": True, "init": "kaiming", "bfloat16": True, "flip": True, "crop_padding": 2}
    assert "BatchNorm, He initialisation" in module.q4_recipe(c, p4)
    assert module.q4_recipe(c, p4).endswith("10 epochs in bfloat16, flips and 2-pixel crops")
    net = {"hidden_size": 50, "preprocess": "none", "learning_rate": 1e-4, "lr_schedule": "step",
           "learning_rate_decay": 0.95, "reg": 0.25, "dropout": 0.0, "flip": False, "batch_size": 200, "num_epochs": 4}
    assert module.q3b_recipe(net, p3b) == ("50 hidden units, SGD learning rate 0.0001 (x 0.95 per epoch), L2 0.25, "
                                           "dropout 0, batch 200, 4 epochs")
    assert "inputs / their std" in module.q3b_recipe(net | {"preprocess": "scale"}, p3b)
    committed = json.loads(p3b.read_text())["net_config"]
    assert f"NumPy net, tuned: {module.q3b_recipe(committed, p3b)} (3 seeds" in module.table()

def test_measured_table_refuses_a_recipe_without_a_setting_naming_it(monkeypatch, tmp_path):
    module, root = _measured_table(monkeypatch, tmp_path)
    path = root / "results" / "q4_best.json"
    record = json.loads(path.read_text())
    del record["config"]["lr"]
    path.write_text(json.dumps(record))
    with pytest.raises(module.NotARecord, match=r"q4_best.json: field 'lr' is None, not a finite number"):
        module.table()
