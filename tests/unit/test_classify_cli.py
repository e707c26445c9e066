"""`switchboard classify`: JSON lines in, one classification or one reason per line out."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from classifier.batch import classify_lines
from switchboard.cli import main


def test_each_line_gets_the_classification_the_service_would_give():
    lines = [
        json.dumps(
            {"id": "a", "text": "Mon colis n'est toujours pas arrivé, commande #A-1234", "channel": "x"}
        ),
        json.dumps(
            {
                "id": "b",
                "text": "Bravo pour la nouvelle campagne, elle est magnifique 😍",
                "channel": "instagram",
            }
        ),
    ]
    results = list(classify_lines(lines))
    assert [r["id"] for r in results] == ["a", "b"]
    assert results[0]["classification"]["category"] == "support"
    assert results[0]["classification"]["language"] == "fr"
    assert results[1]["classification"]["category"] == "marketing"
    assert results[0]["classification"]["model_version"]


def test_a_bad_line_gets_its_reason_and_the_others_still_go_through():
    results = list(
        classify_lines(["{broken", "", json.dumps({"id": 7}), json.dumps({"id": 8, "text": "help pls"})])
    )
    assert results[0]["line"] == 1 and "Invalid JSON" in results[0]["error"]
    assert results[1]["line"] == 3 and "text" in results[1]["error"]
    assert results[2]["id"] == 8


def test_the_command_reads_a_file_and_writes_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": 1, "text": "my card was charged twice, refund please"}) + "\n")
    assert main(["classify", str(source)]) == 0
    out = capsys.readouterr()
    (line,) = out.out.splitlines()
    assert json.loads(line)["classification"]["intent"] in ("billing", "returns_refund")
    assert "classified 1, refused 0" in out.err


def test_the_command_fails_when_no_line_could_be_classified(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("nope\n"))
    assert main(["classify"]) == 1
