"""`switchboard classify`: JSON lines in, one classification or one reason per line out."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from classifier.batch import classify_lines
from classifier.choice import Lexicon
from switchboard.cli import main


class Spy(Lexicon):
    """The lexicon, counting the messages of each model call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def classify_many(self, items):
        self.calls.append(len(items))
        return super().classify_many(items)


MIXED = [
    json.dumps({"id": k, "text": text, "channel": channel, **extra})
    for k, (text, channel, extra) in enumerate(
        [
            ("Mon colis n'est toujours pas arrivé", "x", {"followers": 90_000}),
            ("Bravo pour la campagne 😍", "instagram", {}),
            ("still no refund for my cancelled order, disappointed", "review", {}),
            ("still no refund for my cancelled order, disappointed", "review", {"visibility": "private"}),
            ("my app crashes at login", "email", {"language": "en"}),
        ]
        * 5
    )
]


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


def test_lines_are_decided_in_batches_with_the_same_results_and_order_as_one_by_one():
    lines = [*MIXED[:7], "{broken", json.dumps({"id": "x"}), *MIXED[7:], ""]
    one_by_one, batched = Spy(), Spy()
    expected = list(classify_lines(lines, one_by_one, batch=1))
    assert list(classify_lines(lines, batched, batch=10)) == expected
    # 25 lines to classify and 2 refused among the first ten: those are answered, not sent to the model.
    assert one_by_one.calls == [1] * 25 and batched.calls == [8, 10, 7]
    assert [r.get("line") for r in expected if "error" in r] == [8, 9]
    priorities = [r["classification"]["priority"] for r in expected[:7] if "classification" in r]
    # What the channel tells counts as in the service: a public review, the same text in private.
    assert priorities[2:4] == ["P1", "P2"]


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"visibility": "secret"}, "visibility: Input should be 'public' or 'private'"),
        ({"language": "de"}, "language: Input should be 'fr', 'en' or 'other'"),
        ({"followers": -5}, "followers: Input should be greater than or equal to 0"),
    ],
)
def test_a_line_that_says_something_wrong_about_its_channel_is_refused_with_the_reason(extra, reason):
    (result,) = classify_lines([json.dumps({"id": 1, "text": "help", **extra})])
    assert result == {"line": 1, "error": reason}


@pytest.mark.parametrize(("tty", "calls"), [(False, [25]), (True, [1] * 25)])
def test_the_command_answers_a_typed_line_at_once_and_a_piped_file_in_batches(
    tty: bool, calls: list[int], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    class Input(io.StringIO):
        def isatty(self) -> bool:
            return tty

    spy = Spy()
    monkeypatch.setattr("classifier.choice.load_model", lambda *_args, **_kw: spy)
    monkeypatch.setattr("sys.stdin", Input("\n".join(MIXED) + "\n"))
    assert main(["classify"]) == 0
    assert spy.calls == calls
    assert len(capsys.readouterr().out.splitlines()) == 25
