"""Live configuration: a valid file replaces the one in force, an invalid one never does."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.live import ConfigError, LiveConfig
from switchboard.testing import eventually, running


def parse(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def test_the_bundled_example_is_used_without_a_file():
    live = LiveConfig("numbers", None, lambda: "7", parse)
    assert live.current == 7
    assert live.describe()["source"] == "the bundled example"


def test_an_invalid_file_at_start_is_refused_with_its_path(tmp_path: Path):
    path = tmp_path / "n.txt"
    path.write_text("-1")
    with pytest.raises(ConfigError, match="must not be negative"):
        LiveConfig("numbers", str(path), lambda: "0", parse)


def test_a_rejected_reload_keeps_the_previous_configuration_and_says_why(tmp_path: Path):
    path = tmp_path / "n.txt"
    path.write_text("1")
    outcomes: list[str] = []
    live = LiveConfig("numbers", str(path), lambda: "0", parse, outcomes.append)
    path.write_text("oops")
    with pytest.raises(ConfigError):
        live.reload()
    assert live.current == 1
    assert "oops" in live.describe()["last_error"]
    path.write_text("2")
    assert live.reload() == 2
    assert live.describe()["last_error"] is None
    assert outcomes == ["rejected", "loaded"]


async def test_the_watcher_picks_up_a_changed_file_and_skips_a_broken_one(tmp_path: Path):
    path = tmp_path / "n.txt"
    path.write_text("1")
    live = LiveConfig("numbers", str(path), lambda: "0", parse)
    async with running(live.watch(0.02)):
        path.write_text("-5")
        await eventually(lambda: live.last_error is not None, timeout=5)
        assert live.current == 1
        path.write_text("3")
        await eventually(lambda: live.current == 3, timeout=5)
