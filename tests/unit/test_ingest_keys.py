"""API keys: only hashes in settings, entries read strictly, a helper that shows a new key once."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from pydantic import ValidationError

from ingest.config import Settings
from ingest.keys import ApiKey, KeyRing, hash_key, main, new_key, parse_entries, parse_entry

DIGEST = "ab" * 32


def test_an_entry_names_a_key_by_its_hash_and_may_give_its_rate():
    assert parse_entry(f"webchat:{DIGEST}") == ApiKey("webchat", DIGEST, None)
    assert parse_entry(f" crm.prod:{DIGEST.upper()}:120 ") == ApiKey("crm.prod", DIGEST, 120)


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("webchat", "name:sha256hex"),
        (f"web chat:{DIGEST}", "name"),
        ("webchat:sbk_the-key-itself", "SHA-256"),
        (f"webchat:{DIGEST[:-2]}", "SHA-256"),
        (f"webchat:{DIGEST}:0", "rate"),
        (f"webchat:{DIGEST}:fast", "rate"),
        (f"webchat:{DIGEST}:60:extra", "name:sha256hex"),
    ],
)
def test_a_bad_entry_is_refused_with_what_is_wrong(entry, says):
    with pytest.raises(ValueError, match=says):
        parse_entry(entry)


def test_the_setting_reads_entries_separated_by_commas_or_whitespace():
    other = "cd" * 32
    keys = parse_entries(f"webchat:{DIGEST}:60,\n crm:{other}")
    assert [k.name for k in keys] == ["webchat", "crm"]
    assert parse_entries("") == []
    assert parse_entries([f"webchat:{DIGEST}"]) == [ApiKey("webchat", DIGEST)]


def test_two_keys_with_one_name_are_refused():
    with pytest.raises(ValueError, match="twice: webchat"):
        parse_entries(f"webchat:{DIGEST},webchat:{'cd' * 32}")


def test_settings_read_api_keys_from_the_environment(monkeypatch):
    monkeypatch.setenv("INGEST_API_KEYS", f"webchat:{DIGEST}:60,crm:{'cd' * 32}")
    settings = Settings()
    assert settings.api_keys == [ApiKey("webchat", DIGEST, 60), ApiKey("crm", "cd" * 32)]


def test_a_key_pasted_in_place_of_its_hash_is_refused_without_being_echoed(monkeypatch):
    monkeypatch.setenv("INGEST_API_KEYS", "webchat:sbk_secret-value-123")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "sbk_secret-value-123" not in str(caught.value)


def test_a_new_key_is_random_and_its_entry_holds_only_its_hash():
    key, entry = new_key("webchat", 120)
    again, _ = new_key("webchat")
    assert key != again and key.startswith("sbk_") and len(key) > 40
    assert entry == ApiKey("webchat", hashlib.sha256(key.encode()).hexdigest(), 120)
    assert key not in entry.entry()
    assert parse_entry(entry.entry()) == entry


def test_the_key_ring_knows_a_configured_key_and_nothing_else():
    key, entry = new_key("webchat")
    ring = KeyRing([entry, ApiKey("crm", hash_key("another"))])
    assert ring.identify(key) == entry
    assert ring.identify("another").name == "crm"
    assert ring.identify(key + "x") is None
    assert ring.identify(entry.sha256) is None
    assert not KeyRing([])


def test_the_command_prints_the_key_once_and_the_entry_to_configure(capsys):
    assert main(["new", "webchat", "--rate", "90"]) == 0
    out = capsys.readouterr().out.splitlines()
    key = out[0].removeprefix("key:").strip()
    entry = parse_entry(out[1].removeprefix("entry:").strip())
    assert entry == ApiKey("webchat", hash_key(key), 90)


def test_the_command_refuses_a_bad_name_before_showing_a_key(capsys):
    assert main(["new", "web chat"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "name" in captured.err


def test_the_module_runs_as_a_command():
    done = subprocess.run(
        [sys.executable, "-m", "ingest.keys", "new", "crm"], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[1].startswith("entry: crm:")
