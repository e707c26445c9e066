"""Agents' corrections in the real Redis: kept once per message, expiring, exported for training."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from classifier.examples import corpus_files, counts, read_examples
from classifier.store import Correction, RedisCorrectionStore
from classifier.training import train
from switchboard.cli import main

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 19, 10, 0, tzinfo=UTC)
DAY = 86400


def correction(message_id: str, category: str = "support", minutes: int = 0, event: str | None = None):
    return Correction(
        event_id=event or f"ev-{message_id}-{minutes}",
        message_id=message_id,
        case_id=f"case-{message_id}",
        text=f"Toujours pas reçu ma commande {message_id}, vous pouvez vérifier ?",
        channel="x",
        language="fr",
        category=category,
        model_category="marketing" if category == "support" else "support",
        model_version="tfidf-lr-abc-s0",
        at=NOW + timedelta(minutes=minutes),
    )


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW + timedelta(minutes=10))


@pytest.fixture
def store(redis: Redis, key_prefix: str, clock: Clock) -> RedisCorrectionStore:
    return RedisCorrectionStore(redis, key_prefix, 90 * DAY, clock=clock)


async def exported(store: RedisCorrectionStore) -> list[dict]:
    return [json.loads(line) async for line in store.export()]


async def test_corrections_are_kept_once_per_message_and_exported_oldest_first(store: RedisCorrectionStore):
    assert await store.record_many(
        [correction("m2", minutes=2), correction("m1", "marketing", minutes=1)]
    ) == [
        True,
        True,
    ]
    # The same events again (a redelivered batch): nothing new.
    assert await store.record_many(
        [correction("m2", minutes=2), correction("m1", "marketing", minutes=1)]
    ) == [
        False,
        False,
    ]
    lines = await exported(store)
    assert [(line["message_id"], line["category"]) for line in lines] == [
        ("m1", "marketing"),
        ("m2", "support"),
    ]
    first = lines[0]
    assert first == {
        "text": "Toujours pas reçu ma commande m1, vous pouvez vérifier ?",
        "channel": "x",
        "language": "fr",
        "category": "marketing",
        "message_id": "m1",
        "case_id": "case-m1",
        "model_category": "support",
        "model_version": "tfidf-lr-abc-s0",
        "corrected_at": (NOW + timedelta(minutes=1)).isoformat(),
    }


async def test_a_later_move_of_the_same_message_replaces_the_earlier_and_an_older_one_does_not(
    store: RedisCorrectionStore,
):
    assert await store.record_many([correction("m1", "support", minutes=1)]) == [True]
    assert await store.record_many([correction("m1", "marketing", minutes=3)]) == [True]
    assert await store.record_many([correction("m1", "support", minutes=2)]) == [False]
    assert [(line["message_id"], line["category"]) for line in await exported(store)] == [("m1", "marketing")]


async def test_each_correction_expires_when_its_retention_ends(
    redis: Redis, key_prefix: str, store: RedisCorrectionStore, clock: Clock
):
    await store.record_many([correction("m1")])
    ttl = await redis.pttl(f"{key_prefix}classifier:correction:m1")
    expected = (NOW + timedelta(days=90) - datetime.now(UTC)).total_seconds() * 1000
    assert ttl == pytest.approx(expected, abs=60_000)
    # One already older than the retention is not kept at all.
    clock.at = NOW + timedelta(days=91)
    assert await store.record_many([correction("m0", minutes=-10)]) == [False]
    assert not await redis.exists(f"{key_prefix}classifier:correction:m0")


async def test_the_export_skips_and_forgets_corrections_that_expired(
    redis: Redis, key_prefix: str, store: RedisCorrectionStore
):
    await store.record_many([correction(f"m{i}", minutes=i) for i in range(3)])
    await redis.delete(f"{key_prefix}classifier:correction:m1")
    assert [line["message_id"] for line in await exported(store)] == ["m0", "m2"]
    assert await redis.zrange(f"{key_prefix}classifier:corrections", 0, -1) == [b"m0", b"m2"]


async def test_the_corrections_command_writes_lines_switchboard_train_accepts(
    redis: Redis,
    redis_url: str,
    key_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    # Stamped now, so the export's store and the retention agree whatever day the test runs.
    store = RedisCorrectionStore(redis, key_prefix, 90 * DAY)
    now = datetime.now(UTC)
    kept = [
        Correction(
            event_id=f"ev{i}",
            message_id=f"m{i}",
            case_id=f"c{i}",
            text=text,
            channel="instagram",
            language="fr",
            category=category,
            model_category="marketing" if category == "support" else "support",
            model_version="v1",
            at=now - timedelta(minutes=10 - i),
        )
        for i, (text, category) in enumerate(
            [
                ("Bravo pour la livraison… trois semaines de retard 👏", "support"),
                ("Votre appli plante encore, génial", "support"),
                ("Trop hâte de voir la collab avec vous 😍", "marketing"),
            ]
        )
    ]
    await store.record_many(kept)
    monkeypatch.setenv("SWITCHBOARD_REDIS_URL", redis_url)
    monkeypatch.setenv("SWITCHBOARD_REDIS_KEY_PREFIX", key_prefix)
    out = tmp_path / "corrections.jsonl"
    # The command runs its own event loop, as it does from a shell.
    assert await asyncio.to_thread(main, ["corrections", "--out", str(out)]) == 0
    assert "exported 3 corrections" in capsys.readouterr().err
    examples = read_examples([out])
    assert [e.category for e in examples] == ["support", "support", "marketing"]
    assert all(e.category_only for e in examples)
    assert await asyncio.to_thread(main, ["corrections"]) == 0
    assert capsys.readouterr().out == out.read_text(encoding="utf-8")

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(e.model_dump_json() + "\n" for e in read_examples(corpus_files())[::8]), encoding="utf-8"
    )
    model_dir = tmp_path / "model"
    assert main(["train", "--data", str(corpus), str(out), "--out", str(model_dir), "--seed", "1"]) == 0
    trained = train(read_examples([corpus, out]), seed=1, holdout=0)
    printed = capsys.readouterr().out
    assert f"trained {trained.version}" in printed
    # Trained again from the same data and seed: the same file, as the command says.
    again = tmp_path / "again"
    assert main(["train", "--data", str(corpus), str(out), "--out", str(again), "--seed", "1"]) == 0
    assert (again / "model.npz").read_bytes() == (model_dir / "model.npz").read_bytes()
    digest = hashlib.sha256((model_dir / "model.npz").read_bytes()).hexdigest()
    assert f"model.npz sha256 {digest}" in printed
    assert f"model.npz sha256 {digest}" in capsys.readouterr().out
    assert trained.counts["category"]["support"] == counts(read_examples([corpus]))["category"]["support"] + 2
    assert main(["evaluate", "--model", str(model_dir), "--data", str(out)]) == 0
    report = capsys.readouterr().out
    assert "on 3 labelled messages" in report and "category: accuracy" in report
    assert "intent:" not in report
    # The same export weighed by `switchboard retrain` against the model trained without it: the
    # candidate it writes is the model `switchboard train` wrote from the same data and seed.
    current = tmp_path / "current"
    assert main(["train", "--data", str(corpus), "--out", str(current), "--seed", "1"]) == 0
    capsys.readouterr()
    candidate = tmp_path / "candidate"
    retrain = ["retrain", "--data", str(corpus), "--corrections", str(out), "--against", str(current)]
    verdict = main([*retrain, "--out", str(candidate), "--seed", "1", "--folds", "3"])
    printed = capsys.readouterr().out
    assert f"wrote candidate {trained.version}" in printed
    assert "On the corrections, each decided by a candidate trained without it" in printed
    assert (verdict, "worth running in shadow" in printed) in ((0, True), (3, False))
    assert (candidate / "model.npz").read_bytes() == (model_dir / "model.npz").read_bytes()
