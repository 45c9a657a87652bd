"""The test-set ledger (aml.ledger): every evaluation on test appends exactly one row, under a lock and
never by rewriting the file; every row is checked when the ledger is read. Every test writes under
tmp_path (AML_OUTPUT_DIR)."""
import csv
import hashlib
import json
import multiprocessing
import re
import subprocess

import numpy as np
import pytest

from aml import ledger
from aml.data import SealedTest

H1, H2, H3 = "aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"
GOOD = "2024-01-02T10:00:00Z,Q3,aaaaaaaaaaaa,0,10,0.5,abc1234,False"


@pytest.fixture
def out(tmp_path, monkeypatch):
    monkeypatch.setenv("AML_OUTPUT_DIR", str(tmp_path))
    monkeypatch.setattr(ledger, "current_commit", lambda: "abc1234+dirty")
    return tmp_path / "results" / "test_ledger.csv"


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _evaluate(question="Q3", config=None, seed=0, accuracy=1.0, n=4, smoke=False, **kwargs):
    """One ledgered evaluation of n images whose predictions are right for the first ``accuracy`` share."""
    y = np.arange(n) % 3
    right = int(round(accuracy * n))
    return ledger.evaluate_on_test(question, config or {"h": question}, seed,
                                   lambda X: np.r_[y[:right], (y[right:] + 1) % 3], SealedTest(np.zeros((n, 2)), y),
                                   smoke=smoke, **kwargs)


def test_config_hash_ignores_seed_and_key_order_but_not_values():
    a = ledger.config_hash({"lr": 0.1, "hidden": [50], "seed": 0})
    assert ledger.config_hash({"seed": 7, "hidden": (50,), "lr": np.float64(0.1)}) == a       # canonical JSON
    assert ledger.config_hash({"lr": 0.2, "hidden": [50]}) != a
    assert ledger.config_hash({"lr": 0.1, "hidden": [50], "seeds": 0}) != a                  # only "seed" is dropped
    assert a == hashlib.sha256(json.dumps({"hidden": [50], "lr": 0.1}, sort_keys=True).encode()).hexdigest()[:12]
    with pytest.raises(TypeError, match="The 'config' parameter must be a dict. Got list instead."):
        ledger.config_hash([("lr", 0.1)])


def test_evaluate_on_test_appends_exactly_one_row_before_it_returns(out):
    X, y = np.zeros((4, 3)), np.array([0, 1, 2, 1])
    seen = []

    def predict(X):
        seen.append(X)
        assert not out.exists() or len(_rows(out)) == 2          # the row is appended after predicting
        return np.array([0, 1, 0, 1])

    ev = ledger.evaluate_on_test("Q3", {"lr": 0.1, "seed": 5}, 5, predict, SealedTest(X, y))
    assert len(seen) == 1 and seen[0] is X and ev.accuracy == 0.75
    np.testing.assert_array_equal(ev.predictions, [0, 1, 0, 1])
    np.testing.assert_array_equal(ev.labels, y)
    rows = _rows(out)
    assert rows[0] == list(ledger.COLUMNS) == ["utc", "question", "config_hash", "seed", "n_test", "accuracy",
                                               "commit", "smoke"] and len(rows) == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows[1][0])
    assert rows[1][1:] == ["Q3", ledger.config_hash({"lr": 0.1}), "5", "4", "0.75", "abc1234+dirty", "False"]
    assert ev.row == {"utc": rows[1][0], "question": "Q3", "config_hash": rows[1][2], "seed": 5, "n_test": 4,
                      "accuracy": 0.75, "commit": "abc1234+dirty", "smoke": False}
    before = out.read_bytes()
    _evaluate("Q4", accuracy=0, smoke=True)
    assert out.read_bytes().startswith(before) and _rows(out)[2][1:] == ["Q4", ledger.config_hash({"h": "Q4"}), "0",
                                                                         "4", "0.0", "abc1234+dirty", "True"]
    assert out.read_bytes().endswith(b",True\r\n")


def test_accuracy_is_rounded_to_four_places_and_nan_for_an_empty_test_set(out):
    assert _evaluate(accuracy=1 / 3, n=3).row["accuracy"] == 0.3333
    ev = _evaluate(n=0)
    assert np.isnan(ev.accuracy) and ev.row["n_test"] == 0 and np.isnan(ledger.read_ledger()["accuracy"][1])


@pytest.mark.parametrize("predictions,error,words", [
    (np.array([[0], [1], [2], [1]]), ValueError, "'predictions' parameter must have shape \\(4,\\)"),
    (np.array([0, 1, 2]), ValueError, "'predictions' parameter must have shape \\(4,\\)"),
    (np.array([0.0, 1.0, 2.0, 1.0]), TypeError, "'predictions' parameter must be an integer"),
    (np.array([True, False, True, True]), TypeError, "'predictions' parameter must be an integer"),
])
def test_predictions_must_be_integer_labels_one_per_test_image(out, predictions, error, words):
    # a (N, 1) column from a perfect model broadcasts against the labels and scores 0.25 here (0.10 on CIFAR-10)
    with pytest.raises(error, match=words):
        ledger.evaluate_on_test("Q3", {}, 0, lambda X: predictions, SealedTest(np.zeros((4, 2)), np.arange(4) % 3))
    assert not out.exists()


@pytest.mark.parametrize("kwargs,error,words", [
    (dict(question=""), ValueError, "The ledger row: 'question' must be a non-empty line. Got ''."),
    (dict(question="two\nlines"), ValueError, "'question' must be a non-empty line"),
    (dict(seed=-1), ValueError, "'seed'"),
    (dict(smoke="no"), TypeError, "'smoke'"),
    (dict(config=[("lr", 0.1)]), TypeError, "'config'"),
])
def test_evaluate_on_test_checks_its_arguments(out, kwargs, error, words):
    with pytest.raises(error, match=words):
        _evaluate(**kwargs)
    assert not out.exists()


def test_evaluate_on_test_takes_only_the_sealed_test_split(out):
    with pytest.raises(TypeError, match="The 'sealed_test' parameter must be a SealedTest. Got ndarray instead."):
        ledger.evaluate_on_test("Q3", {}, 0, lambda X: np.zeros(3, int), np.zeros((3, 1)))
    assert not out.exists()


def _append_many(path, worker, count):
    for i in range(count):
        _evaluate(f"w{worker}", seed=i, smoke=True, path=path)


def test_concurrent_appends_keep_every_row(out):
    ctx = multiprocessing.get_context("fork")      # separate processes, each opening the file itself
    workers = [ctx.Process(target=_append_many, args=(out, w, 15)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
    assert [p.exitcode for p in workers] == [0] * 4
    rows = ledger.read_ledger(out)
    assert len(rows) == 60
    for w in range(4):                             # each worker's rows, complete and in the order it wrote them
        assert rows[rows["question"] == f"w{w}"]["seed"].tolist() == list(range(15))


@pytest.mark.parametrize("text,words", [
    (f"utc,question\r\n{GOOD}\r\n", "line 1: the header must be"),
    (f"{ledger.HEADER}\r\n{GOOD[:-3]}", "last line: it is cut off. Nothing was appended."),
    (f"{ledger.HEADER}\r\n{GOOD.replace('False', 'FALSE')}\r\n", "line 2: 'smoke' must be exactly True or False"),
])
def test_append_refuses_a_ledger_that_is_not_valid_and_leaves_it_as_it_was(out, text, words):
    out.parent.mkdir(parents=True)
    out.write_bytes(text.encode())
    with pytest.raises(ValueError, match=f"The test-set ledger {re.escape(str(out))}, {words}"):
        _evaluate()
    assert out.read_bytes() == text.encode()


@pytest.mark.parametrize("lines,number,words", [
    ([GOOD], 1, "the header must be 'utc,question,config_hash,seed,n_test,accuracy,commit,smoke'"),
    ([ledger.HEADER, GOOD, GOOD.replace("False", "FALSE")], 3, "'smoke' must be exactly True or False. Got 'FALSE'."),
    ([ledger.HEADER, GOOD.replace("False", "")], 2, "'smoke' must be exactly True or False. Got ''."),
    ([ledger.HEADER, GOOD.replace("2024-01-02T", "2024-13-02T")], 2, "'utc' must be a UTC time YYYY-MM-DDTHH:MM:SSZ"),
    ([ledger.HEADER, GOOD.replace("Q3", " ")], 2, "'question' must be a non-empty line. Got ' '."),
    ([ledger.HEADER, GOOD.replace(H1, H1[1:])], 2, "'config_hash' must be 12 lower-case hex digits"),
    ([ledger.HEADER, GOOD.replace(",0,10,", ",1.5,10,")], 2, "'seed' must be an int >= 0. Got '1.5'."),
    ([ledger.HEADER, GOOD.replace(",0,10,", ",0,-1,")], 2, "'n_test' must be an int >= 0. Got '-1'."),
    ([ledger.HEADER, GOOD.replace("0.5", "1.2")], 2, "'accuracy' must be a float in \\[0, 1\\]"),
    ([ledger.HEADER, GOOD.replace("abc1234", "")], 2, "'commit' must be a short git hash"),
    ([ledger.HEADER, GOOD, GOOD + ",extra"], None, "ParserError: .*Expected 8 fields in line 3, saw 9"),
    ([ledger.HEADER, GOOD + ",extra", GOOD], 1, "the header must be .* and line 2 have 8 fields"),
    ([ledger.HEADER, GOOD[:30]], 2, "'config_hash' must be 12 lower-case hex digits. Got 'aaaaaa'."),
    ([ledger.HEADER, "", GOOD], 2, "'utc' must be a UTC time"),
])
def test_read_ledger_checks_every_row_and_names_file_and_line(tmp_path, lines, number, words):
    path = tmp_path / "ledger.csv"
    path.write_bytes("".join(line + "\r\n" for line in lines).encode())
    where = f", line {number}" if number else ""
    with pytest.raises(ValueError, match=f"^The test-set ledger {re.escape(str(path))}{where}: {words}"):
        ledger.read_ledger(path)
    with pytest.raises(ValueError, match=words):
        ledger.looks("Q3", H1, path)


def test_read_ledger_refuses_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "ledger.csv"
    path.write_bytes(f"{ledger.HEADER}\r\n{GOOD}\r\n".encode() + GOOD.replace("Q3", "Q\xe9").encode("latin-1") + b"\n")
    with pytest.raises(ValueError, match=f"^The test-set ledger {re.escape(str(path))}: UnicodeDecodeError"):
        ledger.read_ledger(path)


def test_read_ledger_returns_typed_rows(tmp_path):
    path = tmp_path / "ledger.csv"
    empty = ledger.read_ledger(path)                                  # no file: no evaluation yet
    assert list(empty.columns) == list(ledger.COLUMNS) and len(empty) == 0 and empty["smoke"].dtype == bool
    path.write_text(f"{ledger.HEADER}\n{GOOD}\n" + GOOD.replace("False", "True").replace("0.5", "1.0") + "\r\n")
    assert ledger.read_ledger(path).to_dict("records") == [
        {"utc": "2024-01-02T10:00:00Z", "question": "Q3", "config_hash": H1, "seed": 0, "n_test": 10,
         "accuracy": 0.5, "commit": "abc1234", "smoke": False},
        {"utc": "2024-01-02T10:00:00Z", "question": "Q3", "config_hash": H1, "seed": 0, "n_test": 10,
         "accuracy": 1.0, "commit": "abc1234", "smoke": True}]


def test_the_committed_ledger_is_valid():
    from aml.runs import checkout
    path = checkout() / "results" / "test_ledger.csv"
    if not path.is_file():
        pytest.skip("no committed ledger")
    assert len(ledger.read_ledger(path)) > 0 and not ledger.read_ledger(path)["question"].eq("").any()


def test_looks_counts_a_question_and_one_configuration_s_evaluations(out):
    for question, config, acc, smoke in [("Q3", H1, 0.5, False), ("Q4", H1, 0.75, False), ("Q3", H2, 0.25, False),
                                         ("Q3", H1, 0.5, False), ("Q3", H1, 0.25, True), ("Q3", H3, 0.75, False)]:
        _evaluate(question, {"h": config}, accuracy=acc, smoke=smoke)
    h1, h3 = ledger.config_hash({"h": H1}), ledger.config_hash({"h": H3})
    looked = ledger.looks("Q3", h1)
    assert {k: v for k, v in looked.items() if k != "first_utc"} == {
        "evaluations": 4, "configurations": 3, "this_config": 2, "accuracies": [0.5], "configurations_before": 0,
        "first_accuracy": 0.5}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", looked["first_utc"])
    assert ledger.looks("Q3", h3)["configurations_before"] == 2                          # H1 and H2 came before
    assert ledger.looks("Q3", h1, include_smoke=True)["accuracies"] == [0.25, 0.5]
    q4 = ledger.looks("Q4", "zzz")
    assert (q4["evaluations"], q4["this_config"], q4["accuracies"], q4["configurations_before"]) == (1, 0, [], 1)
    assert ledger.looks("Q5", h1) == {"evaluations": 0, "configurations": 0, "this_config": 0, "accuracies": [],
                                      "configurations_before": 0, "first_accuracy": None, "first_utc": None}


def test_describe_looks_counts_the_configurations_before_this_one():
    looked = {"configurations_before": 0, "this_config": 1}
    assert ledger.describe_looks("Q4", looked) == ("Before this configuration, 0 other configurations of Q4 had been "
                                                   "evaluated on the test set; this one was evaluated once.")
    assert ledger.describe_looks("Q3b", {"configurations_before": 1, "this_config": 3}).startswith(
        "Before this configuration, 1 other configuration of Q3b had been evaluated on the test set; this one was "
        "evaluated 3 times.")
    same = {"configurations_before": 2, "this_config": 2, "accuracies": [0.6587]}
    assert ledger.describe_looks("Q4", same).endswith(
        "evaluated 2 times, each full run retraining and re-testing it: every time 0.659.")
    differ = {"configurations_before": 2, "this_config": 3, "accuracies": [0.58, 0.6]}
    assert ledger.describe_looks("Q4", differ).endswith("evaluated 3 times, scoring 0.580 to 0.600.")


def _git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_current_commit_is_recorded_only_for_the_project_s_own_repository(monkeypatch, tmp_path):
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_CEILING_DIRECTORIES"):
        monkeypatch.delenv(name, raising=False)
    outer = tmp_path / "outer"
    (outer / "copy").mkdir(parents=True)          # a copy of the project without .git, inside a repository
    _git(outer, "init", "-q")
    (outer / "tracked.txt").write_text("x")
    _git(outer, "add", "tracked.txt")
    _git(outer, "commit", "-q", "-m", "init")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=outer, capture_output=True, text=True,
                          check=True).stdout.strip()
    assert ledger.current_commit(outer / "copy") == "unknown"           # not the outer repository's commit
    assert ledger.current_commit(outer) == head
    (outer / "tracked.txt").write_text("changed")
    assert ledger.current_commit(outer) == head + "+dirty"
    assert ledger.current_commit(tmp_path / "nowhere") == "unknown"
