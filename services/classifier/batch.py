"""Classify JSON lines offline, with the same model call the service makes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import ConfigDict, ValidationError

from classifier.choice import BatchModel, Lexicon
from classifier.examples import GivenMessage

LEXICON_MODEL = Lexicon()


# Lines classified per model call: the model's work is array operations over the whole batch, as in the
# service, where one call per line spends most of its time setting those up (about 1,500 lines/s).
BATCH = 500


class Line(GivenMessage):
    """One input line: an id, the text, and what the channel tells about it."""

    model_config = ConfigDict(extra="allow")

    id: str | int


def classify_lines(
    lines: Iterable[str], model: BatchModel = LEXICON_MODEL, batch: int = BATCH
) -> Iterator[dict[str, Any]]:
    """Yield one result per non-empty input line, in order: the classification, or why the line was refused.

    Lines are decided `batch` at a time, in one model call each: the same call the service makes for a
    poll's messages, so the same decisions.
    """
    pending: list[tuple[int, Line | str]] = []

    def flush() -> Iterator[dict[str, Any]]:
        accepted = [line for _, line in pending if isinstance(line, Line)]
        decided = iter(model.classify_many([line.inbound() for line in accepted]) if accepted else [])
        for number, line in pending:
            if isinstance(line, Line):
                yield {"id": line.id, "classification": next(decided).model_dump(mode="json")}
            else:
                yield {"line": number, "error": line}
        pending.clear()

    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            pending.append((number, Line.model_validate_json(raw)))
        except ValidationError as exc:
            reason = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}" for e in exc.errors())
            pending.append((number, reason))
        if len(pending) >= batch:
            yield from flush()
    yield from flush()


def write_results(
    lines: Iterable[str], out, model: BatchModel = LEXICON_MODEL, batch: int = BATCH
) -> tuple[int, int]:
    """Write one JSON line per result to `out`; return (classified, refused)."""
    classified = refused = 0
    for result in classify_lines(lines, model, batch):
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
        if "error" in result:
            refused += 1
        else:
            classified += 1
    return classified, refused
