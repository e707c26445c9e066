"""Classify JSON lines offline, with the same model call the service makes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from classifier import model
from classifier.choice import Classify
from switchboard.contract import Channel, default_visibility


class Line(BaseModel):
    """One input line: an id, the text, and what the channel tells about it."""

    model_config = ConfigDict(extra="allow")

    id: str | int
    text: str = Field(min_length=1)
    channel: Channel = Channel.CHAT
    visibility: str | None = None
    followers: int | None = None
    language: str | None = None


def classify_lines(lines: Iterable[str], classify: Classify = model.classify) -> Iterator[dict[str, Any]]:
    """Yield one result per non-empty input line: the classification, or the reason the line was refused."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            line = Line.model_validate_json(raw)
        except ValidationError as exc:
            reason = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}" for e in exc.errors())
            yield {"line": number, "error": reason}
            continue
        visibility = line.visibility or default_visibility(line.channel)
        classification = classify(
            line.text,
            channel=line.channel.value,
            visibility=visibility,
            followers=line.followers,
            language_hint=line.language,
        )
        yield {"id": line.id, "classification": classification.model_dump(mode="json")}


def write_results(lines: Iterable[str], out, classify: Classify = model.classify) -> tuple[int, int]:
    """Write one JSON line per result to `out`; return (classified, refused)."""
    classified = refused = 0
    for result in classify_lines(lines, classify):
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
        if "error" in result:
            refused += 1
        else:
            classified += 1
    return classified, refused
