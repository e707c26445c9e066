"""`switchboard promote`: a checked model put in force in the served directory, the one it replaced kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifier import artefact
from classifier.artefact import META_FILE, MODEL_FILE, PREVIOUS, ArtefactError, install
from classifier.choice import load_model
from classifier.examples import corpus_files, read_examples
from classifier.holder import ModelHolder
from classifier.training import train
from switchboard.cli import main
from switchboard.testing import eventually, running


@pytest.fixture(scope="module")
def shelf(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two small models, as `switchboard train` writes them (the seed names each: two versions)."""
    corpus = read_examples(corpus_files())[::12]
    root = tmp_path_factory.mktemp("models")
    return {
        name: artefact.save(train(corpus, seed=seed, holdout=0), root / name)
        for name, seed in (("a", 1), ("b", 2))
    }


def pair(directory: Path) -> tuple[bytes, bytes]:
    return (directory / MODEL_FILE).read_bytes(), (directory / META_FILE).read_bytes()


def test_a_model_goes_in_force_and_the_one_it_replaces_is_kept_for_going_back(shelf: dict, tmp_path: Path):
    served = tmp_path / "live"
    first, replaced = install(shelf["a"], served)
    assert replaced is None and not (served / PREVIOUS).exists()
    assert pair(served) == pair(shelf["a"]) and artefact.load(served).version == first.version
    second, replaced = install(shelf["b"], served)
    assert replaced == first.version != second.version
    assert pair(served) == pair(shelf["b"]) and pair(served / PREVIOUS) == pair(shelf["a"])
    # Going back swaps them: the previous model is read before it is overwritten.
    back, replaced = install(served / PREVIOUS, served)
    assert (back.version, replaced) == (first.version, second.version)
    assert pair(served) == pair(shelf["a"]) and pair(served / PREVIOUS) == pair(shelf["b"])
    assert sorted(p.name for p in served.iterdir()) == [META_FILE, MODEL_FILE, PREVIOUS]


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda d: (d / MODEL_FILE).write_bytes((d / MODEL_FILE).read_bytes()[:-10]), "does not match"),
        (lambda d: (d / META_FILE).unlink(), "not a model artefact"),
    ],
)
def test_a_model_the_service_would_refuse_never_lands(shelf: dict, tmp_path: Path, spoil, reason: str):
    served, bad = tmp_path / "live", tmp_path / "bad"
    install(shelf["a"], served)
    before = pair(served)
    artefact.save(artefact.load(shelf["b"]), bad)
    spoil(bad)
    with pytest.raises(ArtefactError, match=reason):
        install(bad, served)
    assert pair(served) == before and not (served / PREVIOUS).exists()
    with pytest.raises(ArtefactError, match="the directory it would be installed into"):
        install(served, served)


async def test_the_service_watching_the_directory_swaps_to_the_promoted_model_without_a_refusal(
    shelf: dict, tmp_path: Path
):
    served = tmp_path / "live"
    install(shelf["a"], served)
    reloads: list[tuple[str, str]] = []
    live = ModelHolder("live", str(served), load_model, on_reload=lambda r, o: reloads.append((r, o)))
    first = live.model.version
    async with running(live.watch(0.01)):
        assert main(["promote", str(shelf["b"]), "--to", str(served)]) == 0
        await eventually(lambda: live.model.version != first, timeout=10)
        assert live.model.version == artefact.load(shelf["b"]).version
        assert main(["promote", str(served / PREVIOUS), "--to", str(served)]) == 0
        await eventually(lambda: live.model.version == first, timeout=10)
        # Each file lands whole and the model before its meta.json: the watcher never saw a broken pair.
        assert reloads == [("live", "loaded"), ("live", "loaded")]


def test_the_command_says_what_it_replaced_and_how_to_go_back(
    shelf: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    served = tmp_path / "live"
    assert main(["promote", str(shelf["a"]), "--to", str(served)]) == 0
    assert "promoted" in capsys.readouterr().out
    assert main(["promote", str(shelf["b"]), "--to", str(served)]) == 0
    printed = capsys.readouterr().out
    a, b = artefact.load(shelf["a"]).version, artefact.load(shelf["b"]).version
    assert f"promoted {b} into {served}" in printed
    assert f"it replaces {a}, kept in {served / PREVIOUS}; going back: switchboard promote" in printed
    assert main(["promote", str(tmp_path / "nothing"), "--to", str(served)]) == 1
    assert "cannot promote:" in capsys.readouterr().err


def test_the_packaged_model_seeds_an_empty_directory_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shelf: dict
):
    from classifier.artefact import default_model
    from classifier.config import Settings

    served = tmp_path / "volume" / "live"
    # What an init container runs at every start: the first seeds the volume with the packaged model.
    assert main(["promote", "learned", "--to", str(served), "--if-empty"]) == 0
    packaged = default_model(Settings().model_cache)
    assert artefact.load(served).fingerprint() == packaged.fingerprint()
    assert f"promoted {packaged.version} into {served}" in capsys.readouterr().out
    # A model promoted since is what the next start finds: left in force, not replaced by the packaged one.
    assert main(["promote", str(shelf["a"]), "--to", str(served)]) == 0
    assert main(["promote", "learned", "--to", str(served), "--if-empty"]) == 0
    assert pair(served) == pair(shelf["a"])
    assert (
        f"{served} already serves {artefact.load(shelf['a']).version}: left as it is"
        in capsys.readouterr().out
    )
    # Without --if-empty the packaged model goes in force like any other, the one it replaces kept.
    assert main(["promote", "learned", "--to", str(served)]) == 0
    assert artefact.load(served).version == packaged.version and pair(served / PREVIOUS) == pair(shelf["a"])
