"""The test-set ledger (aml.ledger): every evaluation on test appends exactly one row, under a lock and
never by rewriting the file; every row is checked when the ledger is read; the test split reaches a
model only as a SealedTest. Every test writes under tmp_path (AML_OUTPUT_DIR)."""
import csv
import hashlib
import json
import multiprocessing
import os
import re
import subprocess

import numpy as np
import pytest

from aml import ledger
from aml.data import SealedTest

H1, H2, H3 = "aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"


@pytest.fixture
def out(tmp_path, monkeypatch):
    monkeypatch.setenv("AML_OUTPUT_DIR", str(tmp_path))
    monkeypatch.setattr(ledger, "current_commit", lambda: "abc1234+dirty")
    return tmp_path


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _row(question="Q3", h=H1, utc="2024-01-02T10:00:00Z", *, acc=0.5, smoke=False, seed=0, n_test=10):
    return dict(zip(ledger.COLUMNS, [utc, question, h, seed, n_test, acc, "abc1234", smoke]))


def test_ledger_path_follows_the_output_dir(out):
    assert ledger.ledger_path() == out / "results" / "test_ledger.csv"


def test_config_hash_ignores_seed_and_key_order_but_not_values():
    a = ledger.config_hash({"lr": 0.1, "hidden": [50], "seed": 0})
    assert re.fullmatch(r"[0-9a-f]{12}", a)
    assert ledger.config_hash({"seed": 7, "hidden": [50], "lr": 0.1}) == a
    assert ledger.config_hash({"hidden": (50,), "lr": np.float64(0.1)}) == a       # canonical JSON
    assert ledger.config_hash({"lr": 0.2, "hidden": [50], "seed": 0}) != a
    assert ledger.config_hash({"lr": 0.1, "hidden": [50], "seeds": 0}) != a         # only "seed" is dropped
    assert a == hashlib.sha256(json.dumps({"hidden": [50], "lr": 0.1}, sort_keys=True).encode()).hexdigest()[:12]


def test_evaluate_on_test_appends_exactly_one_row_with_every_column(out):
    X, y = np.zeros((4, 3)), np.array([0, 1, 2, 1])
    seen = []

    def predict(X):
        seen.append(X)
        return np.array([0, 1, 0, 1])

    ev = ledger.evaluate_on_test("Q3", {"lr": 0.1, "seed": 5}, 5, predict, SealedTest(X, y), smoke=False)
    assert len(seen) == 1 and seen[0] is X and ev.accuracy == 0.75           # predict saw the sealed images
    np.testing.assert_array_equal(ev.predictions, [0, 1, 0, 1])
    np.testing.assert_array_equal(ev.labels, y)                               # released with the result
    rows = _rows(out / "results" / "test_ledger.csv")
    assert rows[0] == list(ledger.COLUMNS) == ["utc", "question", "config_hash", "seed", "n_test", "accuracy",
                                               "commit", "smoke"]
    assert len(rows) == 2
    utc, question, h, seed, n, acc, commit, smoke = rows[1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", utc)
    assert (question, h, seed, n, acc, commit, smoke) == ("Q3", ledger.config_hash({"lr": 0.1}), "5", "4", "0.75",
                                                          "abc1234+dirty", "False")
    assert ev.row == {"utc": utc, "question": "Q3", "config_hash": h, "seed": 5, "n_test": 4, "accuracy": 0.75,
                      "commit": "abc1234+dirty", "smoke": False}
    # a second evaluation appends a second row and keeps the first
    ledger.evaluate_on_test("Q4", {"lr": 0.2}, 1, lambda X: np.array([1, 0, 0]), SealedTest(X[:3], y[:3]),
                            smoke=True)
    rows2 = _rows(out / "results" / "test_ledger.csv")
    assert rows2[:2] == rows and len(rows2) == 3
    assert rows2[2][1] == "Q4" and rows2[2][5] == "0.0" and rows2[2][7] == "True"


def test_accuracy_is_rounded_to_four_places(out):
    ev = ledger.evaluate_on_test("Q3", {}, 0, lambda X: np.array([0, 1, 1]),
                                 SealedTest(np.zeros((3, 1)), np.zeros(3, int)), smoke=True)
    assert ev.accuracy == pytest.approx(1 / 3) and ev.row["accuracy"] == 0.3333


def test_evaluate_on_test_takes_only_the_sealed_test_split(out):
    X, y = np.zeros((3, 1)), np.zeros(3, int)
    with pytest.raises(TypeError, match="The 'test' parameter must be an aml.data.SealedTest.*Got ndarray instead"):
        ledger.evaluate_on_test("Q3", {}, 0, lambda X: np.zeros(3, int), X, smoke=True)
    with pytest.raises(TypeError):                     # the old call, with X_test and y_test, is refused as well
        ledger.evaluate_on_test("Q3", {}, 0, lambda X: np.zeros(3, int), X, y, smoke=True)
    assert not ledger.ledger_path().exists()


@pytest.mark.parametrize("predictions,error,words", [
    (np.array([[0], [1], [2], [1]]), ValueError, "'predictions' .*must have shape \\(4,\\), one label per test "
                                                 "image. Got shape \\(4, 1\\) instead"),
    (np.array([0, 1, 2]), ValueError, "'predictions' .*Got shape \\(3,\\) instead"),
    (np.array(1), ValueError, "'predictions' .*Got shape \\(\\) instead"),
    (np.array([0.0, 1.0, 2.0, 1.0]), TypeError, "'predictions' .*integer class labels. Got dtype float64"),
    (np.array([True, False, True, True]), TypeError, "'predictions' .*Got dtype bool"),
])
def test_predictions_must_be_integer_labels_one_per_test_image(out, predictions, error, words):
    # a (N, 1) column from a perfect model broadcast against the labels and scored 0.25 here (0.10 on CIFAR-10)
    y = np.array([0, 1, 2, 1])
    with pytest.raises(error, match=words):
        ledger.evaluate_on_test("Q3", {}, 0, lambda X: predictions, SealedTest(np.zeros((4, 2)), y), smoke=True)
    assert not ledger.ledger_path().exists()           # the refused evaluation wrote nothing


@pytest.mark.parametrize("kwargs,error,words", [
    (dict(question=""), ValueError, "'question'"),
    (dict(question="  "), ValueError, "'question'"),
    (dict(seed=-1), ValueError, "'seed'"),
    (dict(smoke="no"), TypeError, "'smoke'"),
    (dict(config=[("lr", 0.1)]), TypeError, "'config'"),
])
def test_evaluate_on_test_checks_its_arguments(out, kwargs, error, words):
    args = dict(question="Q3", config={}, seed=0, smoke=False) | kwargs
    with pytest.raises(error, match=words):
        ledger.evaluate_on_test(args["question"], args["config"], args["seed"], lambda X: np.zeros(2, int),
                                SealedTest(np.zeros((2, 1)), np.zeros(2, int)), smoke=args["smoke"])
    assert not ledger.ledger_path().exists()


def test_empty_test_set_has_nan_accuracy(out):
    ev = ledger.evaluate_on_test("Q3", {}, 0, lambda X: np.zeros(0, int),
                                 SealedTest(np.zeros((0, 1)), np.zeros(0, int)), smoke=True)
    assert np.isnan(ev.accuracy) and ev.row["n_test"] == 0
    assert np.isnan(ledger.read_ledger()[0]["accuracy"])


def test_append_row_to_an_explicit_path_keeps_earlier_rows(tmp_path):
    path = tmp_path / "sub" / "ledger.csv"
    ledger.append_row(_row("Q1"), path)
    ledger.append_row(_row("Q2"), path)
    rows = _rows(path)
    assert rows[0] == list(ledger.COLUMNS) and [r[1] for r in rows[1:]] == ["Q1", "Q2"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["ledger.csv"]     # no temp file left
    assert path.read_bytes().endswith(b",False\r\n")                          # one complete line per row


def test_append_adds_bytes_and_never_rewrites_the_file(tmp_path):
    path = tmp_path / "ledger.csv"
    ledger.append_row(_row("Q1"), path)
    before, inode = path.read_bytes(), path.stat().st_ino
    ledger.append_row(_row("Q2"), path)
    after = path.read_bytes()
    assert path.stat().st_ino == inode                    # the same file, not a new one renamed over it
    assert after.startswith(before) and after[len(before):].count(b"\n") == 1


def _append_many(path, worker, count):
    for i in range(count):
        ledger.append_row(_row(f"w{worker}", seed=i), path)


def test_concurrent_appends_keep_every_row(tmp_path):
    path = tmp_path / "ledger.csv"
    # separate processes, each opening the file itself (fork where there is one: spawn re-imports numpy, seconds)
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    workers = [ctx.Process(target=_append_many, args=(path, w, 40)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
    assert [p.exitcode for p in workers] == [0] * 4
    rows = ledger.read_ledger(path)                          # every line valid
    assert len(rows) == 160
    assert sorted((r["question"], r["seed"]) for r in rows) == sorted((f"w{w}", i) for w in range(4) for i in range(40))
    for w in range(4):                                       # each worker's rows in the order it wrote them
        assert [r["seed"] for r in rows if r["question"] == f"w{w}"] == list(range(40))


def test_read_only_ledger_is_not_replaced(tmp_path):
    path = tmp_path / "ledger.csv"
    ledger.append_row(_row("Q1"), path)
    before = path.read_bytes()
    path.chmod(0o444)
    try:
        with pytest.raises(PermissionError, match=f"The test-set ledger {re.escape(str(path))} is read-only "
                                                  "\\(mode 444\\); nothing was appended"):
            ledger.append_row(_row("Q2"), path)
        assert path.read_bytes() == before and oct(path.stat().st_mode & 0o777) == "0o444"
    finally:
        path.chmod(0o644)


def test_ledger_that_cannot_be_opened_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "ledger.csv"

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(os, "open", refuse)         # as for a user without write access to the folder
    with pytest.raises(PermissionError, match=f"The test-set ledger {re.escape(str(path))} cannot be opened for "
                                              "appending \\(Permission denied\\); nothing was appended"):
        ledger.append_row(_row("Q1"), path)


@pytest.mark.parametrize("text,words", [
    ("2024-01-02T10:00:00Z,Q3,aaaaaaaaaaaa,0,10,0.5,abc1234,False\r\n", "line 1: the header must be exactly"),
    ("utc,question\r\n", "line 1: the header must be exactly"),
    ("utc,question,config_hash,seed,n_test,accuracy,commit,smoke\r\n2024-01-02T10:00:00Z,Q3,aaaa",
     "last line: the row is cut off"),
])
def test_append_refuses_a_file_without_header_or_with_a_cut_last_row(tmp_path, text, words):
    path = tmp_path / "ledger.csv"
    path.write_text(text, newline="")
    with pytest.raises(ledger.LedgerError, match=f"The test-set ledger {re.escape(str(path))}, {words}"):
        ledger.append_row(_row("Q1"), path)
    assert path.read_bytes() == text.encode()


@pytest.mark.parametrize("change,words", [
    (dict(smoke="FALSE"), "'smoke' must be exactly 'True' or 'False'. Got 'FALSE'"),
    (dict(question=""), "'question' must be non-empty"),
    (dict(question="two\nlines"), "'question' must be one line"),
    (dict(config_hash="abc"), "'config_hash' must be 12 lower-case hex digits"),
    (dict(accuracy=1.5), "'accuracy' must be a float in \\[0, 1\\]"),
    (dict(seed=True), "'seed' must be an int >= 0. Got 'True'"),
    (dict(utc="yesterday"), "'utc' must be a UTC time"),
    (dict(extra=1), "must be a dict with exactly the keys"),
])
def test_append_row_refuses_an_invalid_row(tmp_path, change, words):
    path = tmp_path / "ledger.csv"
    with pytest.raises(ValueError, match=words):
        ledger.append_row(_row() | change, path)
    assert not path.exists()


GOOD = "2024-01-02T10:00:00Z,Q3,aaaaaaaaaaaa,0,10,0.5,abc1234,False"


@pytest.mark.parametrize("lines,number,words", [
    ([GOOD], 1, "the header must be exactly 'utc,question,config_hash,seed,n_test,accuracy,commit,smoke'. Got "
                "'2024-01-02T10:00:00Z,Q3,aaaaaaaaaaaa,0,10,0.5,abc1234,False' instead"),
    (["utc,question,config_hash,seed,n_test,accuracy,commit", GOOD], 1, "the header must be exactly"),
    (["\ufeff" + ledger.HEADER, GOOD], 1, "the header must be exactly .*Got '\\\\ufeffutc"),
    ([ledger.HEADER, GOOD, GOOD.replace("False", "FALSE")], 3,
     "'smoke' must be exactly 'True' or 'False'. Got 'FALSE' instead \\(a spreadsheet rewrites True/False so\\)"),
    ([ledger.HEADER, GOOD.replace("False", "false")], 2, "'smoke' must be exactly 'True' or 'False'. Got 'false'"),
    ([ledger.HEADER, GOOD.replace("False", "")], 2, "'smoke' must be exactly 'True' or 'False'. Got ''"),
    ([ledger.HEADER, GOOD.replace("2024-01-02T10:00:00Z", "2024-01-02 10:00")], 2, "'utc' must be a UTC time "
                                                                                   "YYYY-MM-DDTHH:MM:SSZ"),
    ([ledger.HEADER, GOOD.replace("2024-01-02", "2024-13-02")], 2, "'utc' must be a UTC time"),
    ([ledger.HEADER, GOOD.replace("Q3", " ")], 2, "'question' must be non-empty. Got ' '"),
    ([ledger.HEADER, GOOD.replace("aaaaaaaaaaaa", "aaaaaaaaaaa")], 2, "'config_hash' must be 12 lower-case hex"),
    ([ledger.HEADER, GOOD.replace(",0,10,", ",1.5,10,")], 2, "'seed' must be an int >= 0. Got '1.5'"),
    ([ledger.HEADER, GOOD.replace(",0,10,", ",0,-1,")], 2, "'n_test' must be an int >= 0. Got '-1'"),
    ([ledger.HEADER, GOOD.replace("0.5", "1.2")], 2, "'accuracy' must be a float in \\[0, 1\\].*Got '1.2'"),
    ([ledger.HEADER, GOOD.replace("0.5", "high")], 2, "'accuracy' must be a float.*Got 'high'"),
    ([ledger.HEADER, GOOD.replace("0.5", "nan")], 2, "'accuracy' must be nan exactly when 'n_test' is 0"),
    ([ledger.HEADER, GOOD.replace("abc1234", "")], 2, "'commit' must be a short git hash"),
    ([ledger.HEADER, GOOD, GOOD + ",extra"], 3, "a row must have 8 fields .*Got 9 instead"),
    ([ledger.HEADER, GOOD[:30]], 2, "a row must have 8 fields .*Got 3 instead"),
    ([ledger.HEADER, "", GOOD], 2, "the line is empty"),
    ([ledger.HEADER, GOOD.replace("Q3", '"Q3')], 2, "the line is not valid CSV"),
])
def test_read_ledger_checks_every_row_and_names_file_and_line(tmp_path, lines, number, words):
    path = tmp_path / "ledger.csv"
    path.write_text("".join(line + "\r\n" for line in lines), newline="", encoding="utf-8")
    with pytest.raises(ledger.LedgerError, match=f"^The test-set ledger {re.escape(str(path))}, line {number}: "
                                                 f"{words}") as e:
        ledger.read_ledger(path)
    assert isinstance(e.value, ValueError)
    for reader in (ledger.summary, lambda p: ledger.looks("Q3", H1, p), lambda p: ledger.first_look("Q3", p)):
        with pytest.raises(ledger.LedgerError, match=f"line {number}: "):
            reader(path)


def test_read_ledger_refuses_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "ledger.csv"
    path.write_bytes(f"{ledger.HEADER}\r\n{GOOD}\r\n".encode() + GOOD.replace("Q3", "Q\xe9").encode("latin-1")
                     + b"\r\n")
    with pytest.raises(ledger.LedgerError, match=f"^The test-set ledger {re.escape(str(path))}, line 3: the file "
                                                 "must be UTF-8. Got the byte 0xe9 instead.$"):
        ledger.read_ledger(path)


def test_read_ledger_refuses_a_cut_last_row(tmp_path):
    path = tmp_path / "ledger.csv"
    path.write_text(f"{ledger.HEADER}\r\n{GOOD}\r\n{GOOD[:-2]}", newline="")     # 'Fal': the write was cut
    with pytest.raises(ledger.LedgerError, match=f"^The test-set ledger {re.escape(str(path))}, line 3: the row is "
                                                 "cut off \\(the file does not end with a line break"):
        ledger.read_ledger(path)


def test_read_ledger_returns_typed_rows(tmp_path):
    path = tmp_path / "ledger.csv"
    assert ledger.read_ledger(path) == []                                    # no file: no evaluation yet
    path.write_text(f"{ledger.HEADER}\n{GOOD}\n" + GOOD.replace("False", "True").replace("0.5", "1.0") + "\r\n")
    assert ledger.read_ledger(path) == [
        {"utc": "2024-01-02T10:00:00Z", "question": "Q3", "config_hash": H1, "seed": 0, "n_test": 10,
         "accuracy": 0.5, "commit": "abc1234", "smoke": False},
        {"utc": "2024-01-02T10:00:00Z", "question": "Q3", "config_hash": H1, "seed": 0, "n_test": 10,
         "accuracy": 1.0, "commit": "abc1234", "smoke": True}]


def test_summary_counts_distinct_configs_per_question_ignoring_smoke_rows(out):
    for r in [_row("Q3", H1, "2024-01-02T10:00:00Z"), _row("Q4", H3, "2024-01-03T00:00:00Z"),
              _row("Q3", H1, "2024-01-05T10:00:00Z"), _row("Q3", H2, "2024-01-09T10:00:00Z"),
              _row("Q3", H3, "2024-02-01T00:00:00Z", smoke=True), _row("Q5", H3, "2024-03-01T00:00:00Z", smoke=True)]:
        ledger.append_row(r)
    assert ledger.summary() == [
        {"question": "Q3", "evaluations": 3, "configurations": 2, "first": "2024-01-02", "last": "2024-01-09"},
        {"question": "Q4", "evaluations": 1, "configurations": 1, "first": "2024-01-03", "last": "2024-01-03"},
    ]
    assert ledger.summary(out / "results" / "test_ledger.csv") == ledger.summary()
    assert [s["question"] for s in ledger.summary(include_smoke=True)] == ["Q3", "Q4", "Q5"]


def test_looks_counts_a_question_and_one_configuration_s_evaluations(out):
    for r in [_row("Q3", H1, acc=0.5), _row("Q4", H1, acc=0.7), _row("Q3", H2, acc=0.6), _row("Q3", H1, acc=0.5),
              _row("Q3", H1, acc=0.4, smoke=True), _row("Q3", H3, acc=0.55)]:
        ledger.append_row(r)
    looked = ledger.looks("Q3", H1)
    assert {k: looked[k] for k in ("evaluations", "configurations", "this_config", "accuracies")} == \
        {"evaluations": 4, "configurations": 3, "this_config": 2, "accuracies": [0.5]}
    assert looked["configurations_before"] == 0 and looked["first_accuracy"] == 0.5     # H1 was the first look
    assert ledger.looks("Q3", H3)["configurations_before"] == 2                          # H1 and H2 came before
    assert ledger.looks("Q3", H1, include_smoke=True)["accuracies"] == [0.4, 0.5]
    q4 = ledger.looks("Q4", "zzz")
    assert (q4["evaluations"], q4["configurations"], q4["this_config"], q4["accuracies"]) == (1, 1, 0, [])
    assert q4["configurations_before"] == 1                                             # a new config: all came before
    assert ledger.looks("Q5", H1, out / "nowhere.csv")["evaluations"] == 0
    assert looked["first_utc"] == "2024-01-02"                                          # the date of the first look
    assert ledger.looks("Q5", H1)["first_utc"] is None and ledger.looks("Q5", H1)["first_accuracy"] is None


def test_first_look_is_the_first_non_smoke_row_of_the_question(out):
    for r in [_row("Q4", H1, "2024-01-01T00:00:00Z", acc=0.7),
              _row("Q3", H3, "2024-01-02T00:00:00Z", acc=0.2, smoke=True),
              _row("Q3", H2, "2024-01-03T00:00:00Z", acc=0.6, seed=2),
              _row("Q3", H1, "2024-01-04T00:00:00Z", acc=0.65)]:
        ledger.append_row(r)
    assert ledger.first_look("Q3") == {"accuracy": 0.6, "config_hash": H2, "seed": 2, "n_test": 10,
                                       "utc": "2024-01-03T00:00:00Z", "commit": "abc1234"}
    assert ledger.first_look("Q3", include_smoke=True)["config_hash"] == H3
    assert ledger.first_look("Q9") is None
    assert ledger.first_look("Q3", out / "nowhere.csv") is None


def test_summary_of_a_missing_ledger_is_empty(out):
    assert ledger.summary() == []


def _git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_current_commit_is_recorded_only_for_the_project_s_own_repository(monkeypatch, tmp_path):
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_CEILING_DIRECTORIES"):
        monkeypatch.delenv(name, raising=False)
    outer = tmp_path / "outer"
    (outer / "copy" / "aml").mkdir(parents=True)          # a copy of the project without .git, inside a repository
    _git(outer, "init", "-q")
    (outer / "tracked.txt").write_text("x")
    _git(outer, "add", "tracked.txt")
    _git(outer, "commit", "-q", "-m", "init")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=outer, capture_output=True, text=True,
                          check=True).stdout.strip()
    monkeypatch.setattr(ledger, "REPO_ROOT", outer / "copy")
    assert ledger.current_commit() == "unknown"           # not the outer repository's commit
    monkeypatch.setattr(ledger, "REPO_ROOT", outer)
    assert ledger.current_commit() == head
    (outer / "tracked.txt").write_text("changed")
    assert ledger.current_commit() == head + "+dirty"
    monkeypatch.setattr(ledger, "REPO_ROOT", tmp_path / "nowhere")
    assert ledger.current_commit() == "unknown"


def test_describe_looks_gives_the_configurations_before_and_the_first_look():
    first = {"evaluations": 1, "configurations": 1, "this_config": 1, "accuracies": [0.5],
             "configurations_before": 0, "first_accuracy": 0.5, "first_utc": "2026-11-26"}
    assert ledger.describe_looks("Q4", first) == ("This is the first look at the test set for Q4: the ledger "
                                                  "holds no other evaluation.")
    again = {"evaluations": 5, "configurations": 2, "this_config": 3, "accuracies": [0.5],
             "configurations_before": 1, "first_accuracy": 0.5957, "first_utc": "2026-11-26"}
    text = ledger.describe_looks("Q3b", again)
    assert text.startswith("Before this configuration, 1 other configuration of Q3b had been evaluated on the "
                           "test set; the first look (2026-11-26) gave 0.596.")
    assert "5 evaluations of 2 configurations; this one was evaluated 3 times, always" in text
    assert "always" not in ledger.describe_looks("Q3b", {**again, "accuracies": [0.4, 0.5]})
    # a re-run of the only configuration is not a first look
    assert "first look (" in ledger.describe_looks("Q4", {**first, "this_config": 2, "evaluations": 2})


def test_describe_looks_says_always_only_for_a_repeated_configuration():
    base = {"evaluations": 2, "configurations": 2, "accuracies": [0.5], "configurations_before": 1,
            "first_accuracy": 0.4, "first_utc": "2026-11-26"}
    once = ledger.describe_looks("Q3b", {**base, "this_config": 1})
    twice = ledger.describe_looks("Q3b", {**base, "this_config": 2})
    assert once.endswith("this one was evaluated 1 time.") and "always" not in once
    assert twice.endswith("evaluated 2 times, always with the same result (re-runs of the same code).")


def test_a_row_that_is_not_a_dict_is_refused_naming_its_type(tmp_path):
    with pytest.raises(ValueError, match="exactly the keys .*Got list instead"):
        ledger.append_row([1, 2], tmp_path / "l.csv")
    with pytest.raises(ValueError, match=r"Got \['seed'\] instead"):
        ledger.append_row({"seed": 0}, tmp_path / "l.csv")


def test_a_ledger_with_plain_line_breaks_takes_the_next_row(tmp_path):
    # a ledger saved by an editor with "\n" line ends (as git may check it out) still takes appends
    path = tmp_path / "l.csv"
    ledger.append_row(_row("Q1"), path)
    path.write_bytes(path.read_bytes().replace(b"\r\n", b"\n"))
    ledger.append_row(_row("Q2"), path)
    assert [r["question"] for r in ledger.read_ledger(path)] == ["Q1", "Q2"]
