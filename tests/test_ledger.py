"""The test-set ledger (aml.ledger): every evaluation on test appends exactly one row, and the summary
counts distinct configurations per question. Every test writes under tmp_path (AML_OUTPUT_DIR)."""
import csv
import re

import numpy as np
import pytest

from aml import ledger


@pytest.fixture
def out(tmp_path, monkeypatch):
    monkeypatch.setenv("AML_OUTPUT_DIR", str(tmp_path))
    monkeypatch.setattr(ledger, "current_commit", lambda: "abc1234+dirty")
    return tmp_path


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_ledger_path_follows_the_output_dir(out):
    assert ledger.ledger_path() == out / "results" / "test_ledger.csv"


def test_config_hash_ignores_seed_and_key_order_but_not_values():
    a = ledger.config_hash({"lr": 0.1, "hidden": [50], "seed": 0})
    assert re.fullmatch(r"[0-9a-f]{12}", a)
    assert ledger.config_hash({"seed": 7, "hidden": [50], "lr": 0.1}) == a
    assert ledger.config_hash({"hidden": (50,), "lr": np.float64(0.1)}) == a       # canonical JSON
    assert ledger.config_hash({"lr": 0.2, "hidden": [50], "seed": 0}) != a
    assert ledger.config_hash({"lr": 0.1, "hidden": [50], "seeds": 0}) != a         # only "seed" is dropped
    import hashlib
    import json
    assert a == hashlib.sha256(json.dumps({"hidden": [50], "lr": 0.1}, sort_keys=True).encode()).hexdigest()[:12]


def test_evaluate_on_test_appends_exactly_one_row_with_every_column(out):
    y = np.array([0, 1, 2, 1])
    seen = []

    def predict(X):
        seen.append(X)
        return np.array([0, 1, 0, 1])

    X = np.zeros((4, 3))
    ev = ledger.evaluate_on_test("Q3", {"lr": 0.1, "seed": 5}, 5, predict, X, y, smoke=False)
    assert seen == [X] and ev.accuracy == 0.75
    np.testing.assert_array_equal(ev.predictions, [0, 1, 0, 1])
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
    ledger.evaluate_on_test("Q4", {"lr": 0.2}, 1, lambda X: np.array([1, 0, 0]), X[:3], y[:3], smoke=True)
    rows2 = _rows(out / "results" / "test_ledger.csv")
    assert rows2[:2] == rows and len(rows2) == 3
    assert rows2[2][1] == "Q4" and rows2[2][5] == "0.0" and rows2[2][7] == "True"


def test_accuracy_is_rounded_to_four_places_and_labels_must_match(out):
    y = np.zeros(3, dtype=int)
    ev = ledger.evaluate_on_test("Q3", {}, 0, lambda X: np.array([0, 1, 1]), np.zeros((3, 1)), y, smoke=True)
    assert ev.accuracy == pytest.approx(1 / 3) and ev.row["accuracy"] == 0.3333
    with pytest.raises(ValueError, match="'y_test'"):
        ledger.evaluate_on_test("Q3", {}, 0, lambda X: np.zeros(3, int), np.zeros((3, 1)), np.zeros(2, int),
                                smoke=True)
    assert len(_rows(ledger.ledger_path())) == 2         # the refused evaluation wrote nothing


def test_empty_test_set_has_nan_accuracy(out):
    ev = ledger.evaluate_on_test("Q3", {}, 0, lambda X: np.zeros(0, int), np.zeros((0, 1)), np.zeros(0, int),
                                 smoke=True)
    assert np.isnan(ev.accuracy) and ev.row["n_test"] == 0


def test_append_row_to_an_explicit_path_keeps_earlier_rows(tmp_path):
    path = tmp_path / "sub" / "ledger.csv"
    row = dict(zip(ledger.COLUMNS, ["t", "Q1", "h", 0, 1, 1.0, "c", False]))
    ledger.append_row(row, path)
    ledger.append_row({**row, "question": "Q2"}, path)
    rows = _rows(path)
    assert rows[0] == list(ledger.COLUMNS) and [r[1] for r in rows[1:]] == ["Q1", "Q2"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["ledger.csv"]     # no temp file left


def test_summary_counts_distinct_configs_per_question_ignoring_smoke_rows(out):
    def row(q, h, utc, smoke=False):
        return dict(zip(ledger.COLUMNS, [utc, q, h, 0, 10, 0.5, "c", smoke]))

    for r in [row("Q3", "aaa", "2024-01-02T10:00:00Z"), row("Q4", "xxx", "2024-01-03T00:00:00Z"),
              row("Q3", "aaa", "2024-01-05T10:00:00Z"), row("Q3", "bbb", "2024-01-09T10:00:00Z"),
              row("Q3", "ccc", "2024-02-01T00:00:00Z", smoke=True), row("Q5", "zzz", "2024-03-01T00:00:00Z", True)]:
        ledger.append_row(r)
    assert ledger.summary() == [
        {"question": "Q3", "evaluations": 3, "configurations": 2, "first": "2024-01-02", "last": "2024-01-09"},
        {"question": "Q4", "evaluations": 1, "configurations": 1, "first": "2024-01-03", "last": "2024-01-03"},
    ]
    assert ledger.summary(out / "results" / "test_ledger.csv") == ledger.summary()


def test_looks_counts_a_question_and_one_configuration_s_evaluations(out):
    def row(q, h, acc, smoke=False):
        return dict(zip(ledger.COLUMNS, ["2024-01-02T10:00:00Z", q, h, 0, 10, acc, "c", smoke]))

    for r in [row("Q3", "aaa", 0.5), row("Q4", "aaa", 0.7), row("Q3", "bbb", 0.6), row("Q3", "aaa", 0.5),
              row("Q3", "aaa", 0.4, smoke=True), row("Q3", "ccc", 0.55)]:
        ledger.append_row(r)
    assert ledger.looks("Q3", "aaa") == {"evaluations": 4, "configurations": 3, "this_config": 2, "accuracies": [0.5]}
    assert ledger.looks("Q3", "aaa", include_smoke=True)["accuracies"] == [0.4, 0.5]
    assert ledger.looks("Q4", "zzz") == {"evaluations": 1, "configurations": 1, "this_config": 0, "accuracies": []}
    assert ledger.looks("Q5", "aaa", out / "nowhere.csv")["evaluations"] == 0


def test_summary_of_a_missing_ledger_is_empty(out):
    assert ledger.summary() == []


def test_current_commit(monkeypatch, tmp_path):
    commit = ledger.current_commit()
    assert re.fullmatch(r"([0-9a-f]{4,40}(\+dirty)?|unknown)", commit)
    monkeypatch.setattr(ledger, "REPO_ROOT", tmp_path)                # not a git repository
    assert ledger.current_commit() == "unknown"


def test_describe_looks_says_whether_the_test_was_seen_before():
    first = {"evaluations": 1, "configurations": 1, "this_config": 1, "accuracies": [0.5]}
    assert ledger.describe_looks("Q4", first) == ("The ledger now holds 1 test evaluation for Q4, of 1 "
                                                  "configuration; this one was evaluated 1 time.")
    again = {"evaluations": 5, "configurations": 2, "this_config": 3, "accuracies": [0.5]}
    text = ledger.describe_looks("Q3b", again)
    assert "5 test evaluations for Q3b, of 2 configurations; this one was evaluated 3 times, always" in text
    assert "not a first look" in text
    assert "always" not in ledger.describe_looks("Q3b", {**again, "accuracies": [0.4, 0.5]})
