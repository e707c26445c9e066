"""The classifier's commands of `switchboard`: classify, train, evaluate, and the loop that fits the model
to a contact centre's traffic (corrections, sample, label, retrain, promote).

Each command imports what it needs when it runs, so `switchboard --help` and the other commands stay quick.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

OWN_HELP = (
    "labelled messages of your own traffic (`switchboard label` lines), each counted --own-weight times: "
    "they teach more than written lines"
)
# Measured (bench/own_labels_folds.py): counted 5 times, a brand's own labels beat the same counted once.
OWN_WEIGHT = 5


def add_classifier_commands(sub: Any) -> None:
    """Add the classifier's commands to the `switchboard` command's subparsers; each runs `args.run`."""
    p_classify = sub.add_parser(
        "classify", help="classify JSON lines (id, text, channel) from a file or stdin"
    )
    p_classify.add_argument("file", nargs="?", default="-", help="a JSON-lines file; - or nothing for stdin")
    p_classify.add_argument(
        "--model", help="learned, lexicon or a model directory (default: CLASSIFIER_MODEL)"
    )
    p_train = sub.add_parser(
        "train", help="train the classifier on labelled JSON lines into a model directory"
    )
    p_train.add_argument(
        "--data", nargs="+", type=Path, help="labelled .jsonl files or folders (default: the packaged corpus)"
    )
    add_own_arguments(p_train)
    p_train.add_argument("--out", required=True, type=Path, help="the model directory to write")
    p_train.add_argument("--seed", type=int, default=0, help="draws the held-out split and names the model")
    p_upgrade = sub.add_parser(
        "upgrade-model",
        help="rewrite a model directory written before 2026-12-07 (a pickle) as plain arrays, the same model",
    )
    p_upgrade.add_argument("directory", type=Path, help="the format 1 model directory (one you trust)")
    p_upgrade.add_argument("--out", type=Path, help="write the upgraded model here (default: in place)")
    p_evaluate = sub.add_parser(
        "evaluate", help="print per-class scores, confusion matrices and calibration on labelled JSON lines"
    )
    p_evaluate.add_argument(
        "--model",
        required=True,
        help="a directory from `switchboard train`, `learned` (shipped) or `lexicon`",
    )
    p_evaluate.add_argument("--data", nargs="+", type=Path, help="labelled .jsonl files or folders")
    p_evaluate.add_argument(
        "--against",
        metavar="MODEL",
        help="the model in force (a directory, `learned` or `lexicon`): count, message by message, where "
        "each is right on --data, with McNemar's exact test",
    )
    p_evaluate.add_argument(
        "--behaviour",
        action="store_true",
        help="run the behaviour checks: the labelling guide's rules as short messages, and perturbations "
        "(a link, an emoji, 'thanks') that must not change the category",
    )
    p_evaluate.add_argument("--show", type=int, default=10, help="failing behaviour cases to print")
    p_corrections = sub.add_parser(
        "corrections",
        help="export agents' corrections (cases moved between customer service and marketing) as "
        "category-only labelled JSON lines for `switchboard train --data`",
    )
    p_corrections.add_argument("--out", type=Path, help="the file to write (default: stdout)")
    p_retrain = sub.add_parser(
        "retrain",
        help="train a candidate with agents' corrections and/or your own labelled messages and say whether "
        "it is worth running in shadow (exit 0) or not (exit 3)",
    )
    p_retrain.add_argument(
        "--corrections",
        nargs="+",
        type=Path,
        default=[],
        help="`switchboard corrections` exports (--corrections, --own or both)",
    )
    p_retrain.add_argument("--out", required=True, type=Path, help="the candidate's model directory")
    p_retrain.add_argument(
        "--data", nargs="+", type=Path, help="the written corpus (default: the packaged one)"
    )
    add_own_arguments(p_retrain)
    p_retrain.add_argument(
        "--against", metavar="MODEL", help="the model in force (default: CLASSIFIER_MODEL)"
    )
    p_retrain.add_argument(
        "--sample",
        nargs="+",
        type=Path,
        help="a labelled random sample of your own traffic: the one check of what the candidate breaks",
    )
    p_retrain.add_argument("--folds", type=int, default=5, help="cross-checking folds of the corrections")
    p_retrain.add_argument("--seed", type=int, default=0, help="as for `switchboard train`")
    p_sample = sub.add_parser(
        "sample",
        help="write a random sample of the messages the classifier decided (from the broker), for your team "
        "to label with `switchboard label`",
    )
    p_sample.add_argument("--out", required=True, type=Path, help="the file to write (JSON lines)")
    p_sample.add_argument("--size", type=int, default=300, help="messages to draw")
    p_sample.add_argument("--hours", type=float, default=168, help="from the messages of the last HOURS")
    p_sample.add_argument("--seed", type=int, default=0, help="the same topic and seed draw the same sample")
    p_sample.add_argument("--topic", default="messages.classified", help="the topic of classified messages")
    p_sample.add_argument(
        "--exclude",
        nargs="+",
        type=Path,
        help="samples or labelled files whose messages must not be drawn again (a fresh sample to weigh a "
        "model trained on the last one)",
    )
    p_label = sub.add_parser(
        "label",
        help="ask the category of each sampled message, writing labelled lines for `switchboard retrain "
        "--sample` or `switchboard train`; it can stop and resume",
    )
    p_label.add_argument("file", type=Path, help="a `switchboard sample` file")
    p_label.add_argument("--out", required=True, type=Path, help="the labelled lines (appended to)")
    p_promote = sub.add_parser(
        "promote",
        help="install a model directory into the one the classifier serves (CLASSIFIER_MODEL), checked "
        "first, the model it replaces kept for going back",
    )
    p_promote.add_argument(
        "source",
        help="the model directory to put in force (from train or retrain), or `learned`: the packaged model "
        "(from CLASSIFIER_MODEL_CACHE, trained into it when missing)",
    )
    p_promote.add_argument("--to", required=True, type=Path, help="the directory the classifier serves")
    p_promote.add_argument(
        "--if-empty",
        action="store_true",
        help="leave the directory as it is when it already serves a model: seeds a new volume, and can run "
        "at every start",
    )
    p_classify.set_defaults(run=classify)
    p_train.set_defaults(run=train_model)
    p_upgrade.set_defaults(run=upgrade_model)
    p_evaluate.set_defaults(run=evaluate_model)
    p_corrections.set_defaults(run=export_corrections)
    p_retrain.set_defaults(run=retrain_model)
    p_sample.set_defaults(run=sample_traffic)
    p_label.set_defaults(run=label_sample)
    p_promote.set_defaults(run=promote_model)


def classify(args: argparse.Namespace) -> int:
    """Classify JSON lines from a file or stdin to stdout, as the classifier service would."""
    from classifier.batch import BATCH, write_results
    from classifier.choice import load_model
    from classifier.config import Settings

    settings = Settings()
    model = load_model(args.model or settings.model, settings.model_cache, settings.support_prior)
    source = open(args.file, encoding="utf-8") if args.file != "-" else sys.stdin
    try:
        # Someone typing lines wants each answer at once; a file or a pipe is decided in batches.
        batch = 1 if source.isatty() else BATCH
        classified, refused = write_results(source, sys.stdout, model, batch)
    finally:
        if source is not sys.stdin:
            source.close()
    print(f"classified {classified}, refused {refused}", file=sys.stderr)
    return 1 if refused and not classified else 0


def add_own_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --own and --own-weight to a command that trains."""
    parser.add_argument("--own", nargs="+", type=Path, default=[], help=OWN_HELP)
    parser.add_argument("--own-weight", type=int, default=OWN_WEIGHT, help=f"1 to 100 (default {OWN_WEIGHT})")


def own_lines(args: argparse.Namespace) -> list:
    """Read the --own labelled lines, each weighted --own-weight."""
    from classifier.examples import read_examples, weighted

    return weighted(read_examples(args.own), args.own_weight)


def train_model(args: argparse.Namespace) -> int:
    """Train the learned classifier on labelled JSON lines and write a versioned model directory."""
    from classifier.artefact import META_FILE, MODEL_FILE, save
    from classifier.examples import CORPUS, read_examples
    from classifier.training import train

    try:
        examples = [*read_examples(args.data or [CORPUS]), *own_lines(args)]
        model = train(examples, seed=args.seed)
    except ValueError as exc:
        print(f"cannot train: {exc}", file=sys.stderr)
        return 1
    directory = save(model, args.out)
    print(f"trained {model.version} on {len(examples)} examples into {directory}")
    # The same data and seed give the same file: compare two trainings by this.
    print(f"{MODEL_FILE} sha256 {json.loads((directory / META_FILE).read_text())['model_sha256']}")
    measured = model.evaluation or {}
    if "macro_f1" in measured:
        scores = ", ".join(f"{head} {f1:.3f}" for head, f1 in measured["macro_f1"].items())
        held, ece = measured["size"], measured["category_ece"]
        print(f"held out {held}: macro-F1 {scores}; category calibration error {ece:.3f}")
    if "behaviour" in measured:
        checked = measured["behaviour"]
        print(
            f"behaviour checks: {checked['failed']} of {checked['cases']} cases failed, perturbations "
            f"flipped {checked['flipped']} of {checked['perturbed']} (`switchboard evaluate --behaviour`)"
        )
    return 0


def upgrade_model(args: argparse.Namespace) -> int:
    """Rewrite a model directory of format 1 (a pickle) as plain arrays, the same model."""
    from classifier.artefact import upgrade

    try:
        model = upgrade(args.directory, args.out)
    except ValueError as exc:
        print(f"cannot upgrade: {exc}", file=sys.stderr)
        return 1
    print(f"rewrote {model.version} into {args.out or args.directory} (format 2: plain arrays, no pickle)")
    return 0


def promote_model(args: argparse.Namespace) -> int:
    """Install a checked model into the directory the classifier serves, keeping the one it replaces."""
    import tempfile

    from classifier.artefact import PREVIOUS, ArtefactError, default_model, install, load, save
    from classifier.config import Settings

    if args.if_empty:
        try:
            served = load(args.to)
        except ArtefactError:
            pass
        else:
            print(f"{args.to} already serves {served.version}: left as it is")
            return 0
    try:
        if args.source == "learned" and not Path(args.source).exists():
            with tempfile.TemporaryDirectory(prefix="switchboard-promote-") as tmp:
                packaged = save(default_model(Settings().model_cache), Path(tmp) / "learned")
                model, replaced = install(packaged, args.to)
        else:
            model, replaced = install(Path(args.source), args.to)
    except (ValueError, OSError) as exc:
        print(f"cannot promote: {exc}", file=sys.stderr)
        return 1
    print(f"promoted {model.version} into {args.to}")
    if replaced is not None:
        back = args.to / PREVIOUS
        print(
            f"it replaces {replaced}, kept in {back}; going back: switchboard promote {back} --to {args.to}"
        )
    print(
        "a classifier serving that directory loads it at its next check (CLASSIFIER_MODEL_POLL_SECONDS) "
        "or at once on POST /v1/model/reload"
    )
    return 0


def evaluate_model(args: argparse.Namespace) -> int:
    """Print a model's per-class scores, confusion matrices and calibration on labelled JSON lines, and
    its behaviour checks (`classifier/behaviour.yaml`) when asked."""
    from classifier import behaviour
    from classifier.choice import load_model
    from classifier.config import Settings
    from classifier.evaluation import compare, evaluate, render, render_paired
    from classifier.examples import read_examples

    if not args.data and not args.behaviour:
        print("cannot evaluate: give --data FILE..., --behaviour, or both", file=sys.stderr)
        return 2
    if args.against and not args.data:
        print("cannot evaluate: --against compares two models on --data FILE...", file=sys.stderr)
        return 2
    cache = Settings().model_cache  # read for `learned` only
    try:
        examples = read_examples(args.data) if args.data else []
        # ArtefactError is a ValueError: a damaged or mismatching artefact is reported, not raised.
        model = load_model(args.model, cache)
        current = load_model(args.against, cache) if args.against else None
    except ValueError as exc:
        print(f"cannot evaluate: {exc}", file=sys.stderr)
        return 1
    if examples:
        print(render(evaluate(model, examples)))
    if examples and current is not None:
        print()
        print(render_paired(compare(model, current, examples)))
    if args.behaviour:
        print(
            behaviour.render(
                behaviour.check(model.classify_many, behaviour.load(), model.version), show=args.show
            )
        )
    return 0


def retrain_model(args: argparse.Namespace) -> int:
    """Train a candidate with the agents' corrections, write it, and say whether to run it in shadow."""
    from classifier.artefact import save
    from classifier.choice import load_model
    from classifier.config import Settings
    from classifier.examples import CORPUS, read_examples
    from classifier.retraining import render, retrain

    settings = Settings()
    try:
        corpus = read_examples(args.data or [CORPUS])
        own = own_lines(args)
        corrections = read_examples(args.corrections)
        sample = read_examples(args.sample) if args.sample else []
        current = load_model(args.against or settings.model, settings.model_cache)
        trainings = 4 + args.folds * (bool(corrections) + bool(own))
        print(
            f"retraining with {len(corrections)} corrections and {len(own)} own labelled lines: "
            f"{trainings} models to train (about 10 s each)",
            file=sys.stderr,
        )
        retrained = retrain(corpus, corrections, current, sample, args.folds, args.seed, own)
    except ValueError as exc:
        print(f"cannot retrain: {exc}", file=sys.stderr)
        return 1
    directory = save(retrained.candidate, args.out)
    print(f"wrote candidate {retrained.candidate.version} into {directory}")
    print(render(retrained))
    # Written either way, so it can be inspected; the exit status tells a script which way it went.
    return 0 if retrained.worth_shadowing else 3


def export_corrections(args: argparse.Namespace) -> int:
    """Write the agents' corrections kept in Redis as labelled JSON lines `switchboard train` reads."""
    from redis.exceptions import RedisError

    from classifier.config import Settings
    from classifier.store import RedisCorrectionStore
    from switchboard.service import redis_client

    settings = Settings()

    async def export(out) -> int:
        redis = redis_client(settings)
        retention = settings.corrections_retention_days * 86400
        store = RedisCorrectionStore(redis, settings.redis.key_prefix, retention)
        count = 0
        try:
            async for line in store.export():
                out.write(line + "\n")
                count += 1
        finally:
            await redis.aclose()
        return count

    try:
        if args.out is None:
            count = asyncio.run(export(sys.stdout))
        else:
            with open(args.out, "w", encoding="utf-8") as out:
                count = asyncio.run(export(out))
    except (OSError, RedisError) as exc:
        print(f"cannot export the corrections: {exc}", file=sys.stderr)
        return 1
    where = f" to {args.out}" if args.out else ""
    print(f"exported {count} corrections{where}", file=sys.stderr)
    return 0


def sample_traffic(args: argparse.Namespace) -> int:
    """Write a random sample of the messages the classifier decided, for a person to label."""
    from datetime import UTC, datetime, timedelta

    from aiokafka.errors import KafkaError

    from classifier.sampling import draw, ids_in
    from switchboard.config import KafkaSettings

    since = datetime.now(UTC) - timedelta(hours=args.hours)
    try:
        exclude = ids_in(args.exclude or ())
        sample = asyncio.run(draw(KafkaSettings(), args.size, since, args.seed, args.topic, exclude))
    except (OSError, ValueError, KafkaError) as exc:
        print(f"cannot sample: {exc}", file=sys.stderr)
        return 1
    with open(args.out, "w", encoding="utf-8") as out:
        out.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in sample.lines)
    skipped = (
        f", {sample.undecodable} drawn records were not classified messages" if sample.undecodable else ""
    )
    print(
        f"wrote {len(sample.lines)} messages of the {sample.read} classified in the last {args.hours:g} "
        f"hours to {args.out}{skipped}; label them with `switchboard label {args.out} --out LABELLED`",
        file=sys.stderr,
    )
    return 0


def label_sample(args: argparse.Namespace) -> int:
    """Ask a person the category of each sampled message; append each answer to the labelled file."""
    from classifier.sampling import ids_in, label, unlabelled

    try:
        done = ids_in([args.out] if args.out.exists() else [])
        pending = unlabelled(args.file.read_text(encoding="utf-8").splitlines(), done)
    except (OSError, ValueError) as exc:
        print(f"cannot label {args.file}: {exc}", file=sys.stderr)
        return 1
    count = 0
    with open(args.out, "a", encoding="utf-8") as out:
        try:
            for line in label(pending, input, print):
                # Each answer is written at once: stopping (q, Ctrl-C) loses nothing already said.
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                out.flush()
                count += 1
        except (EOFError, KeyboardInterrupt):
            print()
    print(f"labelled {count} more; {len(done) + count} in {args.out}", file=sys.stderr)
    return 0
