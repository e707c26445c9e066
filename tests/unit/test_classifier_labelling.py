"""`switchboard label`: a person labels a sample at the terminal; stopping loses nothing already said."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifier.sampling import label, unlabelled
from switchboard.cli import main

LINES = [
    json.dumps({"id": f"m{k}", "text": text, "channel": "x", "language": "en"})
    for k, text in enumerate(["my parcel never came", "love the new ad", "is the app down?"])
]


def test_each_line_is_asked_once_with_its_text_and_answers_become_category_only_lines():
    shown: list[str] = []
    answers = iter(["S", "m", "k"])
    labelled = list(label(unlabelled(LINES, set()), lambda _prompt: next(answers), shown.append))
    assert [(line["id"], line["category"]) for line in labelled] == [("m0", "support"), ("m1", "marketing")]
    assert "[1/3] x, en:\nmy parcel never came" in shown[0]
    # Already labelled (by id, or carrying a category) is not asked again.
    pending = unlabelled(
        [*LINES, json.dumps({"id": "m9", "text": "hi", "category": "support"})], {"m0", "m1"}
    )
    again = list(label(pending, lambda _p: "s", shown.append))
    assert [line["id"] for line in again] == ["m2"]


def test_stopping_at_the_terminal_keeps_every_answer_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    sample, out = tmp_path / "sample.jsonl", tmp_path / "labelled.jsonl"
    sample.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    answers = iter(["s"])

    def ask(_prompt: str) -> str:
        try:
            return next(answers)
        except StopIteration:
            raise EOFError from None  # Ctrl-D

    monkeypatch.setattr("builtins.input", ask)
    assert main(["label", str(sample), "--out", str(out)]) == 0
    assert [json.loads(raw)["id"] for raw in out.read_text().splitlines()] == ["m0"]
    assert "labelled 1 more; 1 in" in capsys.readouterr().err
    assert main(["label", str(tmp_path / "missing.jsonl"), "--out", str(out)]) == 1
    refused = capsys.readouterr().err
    assert refused.startswith(f"cannot label {tmp_path / 'missing.jsonl'}:") and "No such file" in refused


def test_a_file_that_is_not_a_sample_is_refused_with_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    sample = tmp_path / "sample.jsonl"
    sample.write_text(LINES[0] + "\n{broken\n", encoding="utf-8")
    assert main(["label", str(sample), "--out", str(tmp_path / "out.jsonl")]) == 1
    assert "line 2 is not a sampled message" in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()


def test_a_damaged_labelled_file_is_refused_with_its_line_not_appended_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    sample, out = tmp_path / "sample.jsonl", tmp_path / "labelled.jsonl"
    sample.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    out.write_text(
        json.dumps({"id": "m0", "text": "x", "category": "support"}) + "\n[1, 2]\n", encoding="utf-8"
    )
    assert main(["label", str(sample), "--out", str(out)]) == 1
    assert f"{out}:2 is not a JSON object" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8").count("\n") == 2
