"""Measure the classifier on real messages it was never trained on, against the lexicon baseline.

The yardsticks, all zero-shot (the shipped model is trained only on the project's own corpus):
- marketing vs support on real English tweets to brands (`bench/labels/en_tweets.jsonl`, 750 labelled by
  reading each one) and real French messages (`bench/labels/fr_messages.jsonl`, 680: tweets to a telecom
  operator and live-chat turns of a perfume shop); macro-F1 over the two categories;
- complaint detection on the whole Preotiuc-Pietro et al. (ACL 2019) corpus (3,449 tweets, macro-F1; the
  paper's best is 79 with in-domain 10-fold cross-validation, transformers later about 87), and on its
  1,974 brand-addressed tweets;
- complaint detection on our labelled English and French sets;
- the behaviour checks (`services/classifier/behaviour.yaml`): the labelling guide's rules as short
  written messages, and perturbations (a link, an emoji, "thanks") that must not change the category;
- what a contact centre sees (test split): each labelled message routed by the shipped rules
  (`services/router/rules.yaml`, at 10:00 on a Wednesday): how many real support messages land in the
  marketing queue (a customer left waiting in public), how many marketing ones in customer service, and
  how many go to the review queue (below the rules' `review_below_confidence`) instead.

The labelled sets are split by a hash of the row into a development third (where errors may be read to
improve the corpus) and a test two thirds (reported, never read one by one); both are printed.

    .venv/bin/python bench/classifier_eval.py                         # the shipped model vs the lexicon
    .venv/bin/python bench/classifier_eval.py --model DIR             # an artefact from `switchboard train`
    .venv/bin/python bench/classifier_eval.py --train services/classifier/corpus other.jsonl
    .venv/bin/python bench/classifier_eval.py --errors dev            # print the dev set's errors
    .venv/bin/python bench/classifier_eval.py --review-below 0.55 0.7  # the routed rates at other thresholds
    .venv/bin/python bench/classifier_eval.py --review-marketing-below 0.9  # a threshold for marketing only
    .venv/bin/python bench/classifier_eval.py --corrections  # what agents' corrections would buy (~30 s)
    .venv/bin/python bench/classifier_eval.py --train DIR --against learned  # more than chance?
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import realdata
from sklearn.metrics import confusion_matrix, f1_score

from classifier import behaviour, evaluation
from classifier import model as lexicon_model
from classifier.choice import LEARNED, LEXICON, load_classifier
from classifier.examples import CORPUS, Example, Inbound, read_examples
from classifier.training import train
from ingest.channels.x import as_written
from router.rules import SHIPPED_RULES, RuleSet, load_rules
from switchboard.contract import (
    Author,
    Channel,
    Classification,
    ClassifiedMessage,
    Message,
    Queue,
    default_visibility,
)

RESULTS = Path(__file__).resolve().parent / "results"
# The channel each source's messages arrived on, as ingest would have normalised them.
CHANNEL = {"fr-perfume-ecommerce-chat-intents": "chat"}
TARGETS = {"en_category": 0.88, "fr_category": 0.82, "preotiuc_complaint": 0.79}
# The labelled samples, by language (bench/labels/README.md): the first (development third and test),
# the second, the third and English's fourth (test only: nobody reads their errors).
FIRST = {"en": "en_tweets.jsonl", "fr": "fr_messages.jsonl"}
SECOND = {"en": "en_tweets_2.jsonl", "fr": "fr_messages_2.jsonl"}
THIRD = {"en": "en_tweets_3.jsonl", "fr": "fr_messages_3.jsonl"}
FOURTH = {"en": "en_tweets_4.jsonl"}
LATER = {"second": SECOND, "third": THIRD, "fourth": FOURTH}
# A weekday in business hours (Europe/Paris), so the shipped rules' after-hours rules stay out of it.
ROUTED_AT = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)

Predict = Callable[[Sequence[Inbound]], list[Classification]]


def predictor(spec: str, train_paths: list[str] | None) -> tuple[Predict, str]:
    """Return a batch predictor and its model version, for `learned`, `lexicon`, a directory or a training."""
    if train_paths:
        started = time.perf_counter()
        trained = train(read_examples(train_paths), holdout=0)
        print(f"trained {trained.version} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        return trained.classify_many, trained.version
    if spec == LEXICON:
        return (
            lambda items: [
                lexicon_model.classify(i.text, channel=i.channel, visibility=i.visibility) for i in items
            ],
            lexicon_model.MODEL_VERSION,
        )
    classify, version = load_classifier(spec)
    many = getattr(getattr(classify, "__self__", None), "classify_many", None)
    if many is None:
        return lambda items: [
            classify(i.text, channel=i.channel, visibility=i.visibility) for i in items
        ], version
    return many, version


def inbound(dataset: str, text: str) -> Inbound:
    """Shape a real message as ingest would hand it to the classifier (a tweet's text as written: the
    public datasets keep X's `&amp;`, which ingest's X adapter undoes)."""
    channel = CHANNEL.get(dataset, "x")
    if channel == "x":
        text = as_written(text)
    return Inbound(text, channel, default_visibility(channel))


def test_sets() -> dict[str, list[realdata.Labelled]]:
    """Return the labelled test messages per language: the first sample's test thirds, then the later
    samples the language has (the figures to quote)."""
    sets = {}
    for lang, file in FIRST.items():
        items = [i for i in realdata.load(realdata.LABELS / file) if not realdata.is_dev(i)]
        for later in LATER.values():
            if lang in later:
                items += realdata.load(realdata.LABELS / later[lang])
        sets[lang] = items
    return sets


def macro_f1(gold: Sequence, predicted: Sequence) -> float:
    """Return the macro-averaged F1 over the labels present in gold or predictions."""
    return float(f1_score(gold, predicted, average="macro", zero_division=0))


def score_labelled(items: list[realdata.Labelled], predicted: list[Classification]) -> dict:
    """Score category and complaint decisions on a labelled set, overall and per source."""
    gold_cat = [i.category for i in items]
    pred_cat = [p.category for p in predicted]
    gold_c = [i.is_complaint for i in items]
    pred_c = [p.is_complaint for p in predicted]
    per_source = {}
    for dataset in dict.fromkeys(i.dataset for i in items):
        idx = [k for k, i in enumerate(items) if i.dataset == dataset]
        per_source[dataset] = {
            "n": len(idx),
            "category_accuracy": sum(gold_cat[k] == pred_cat[k] for k in idx) / len(idx),
            "support_share_gold": sum(gold_cat[k] == "support" for k in idx) / len(idx),
            "support_share_predicted": sum(pred_cat[k] == "support" for k in idx) / len(idx),
        }
    labels = ["support", "marketing"]
    return {
        "n": len(items),
        "category_macro_f1": macro_f1(gold_cat, pred_cat),
        "category_confusion": {
            "labels": labels,
            "matrix": confusion_matrix(gold_cat, pred_cat, labels=labels).tolist(),
        },
        "complaint_macro_f1": macro_f1(gold_c, pred_c),
        "per_source": per_source,
    }


def routed_queue(
    item: realdata.Labelled,
    classification: Classification,
    rules: RuleSet,
    k: int = 0,
    metadata: dict | None = None,
) -> Queue:
    """Return the queue the rules hand a labelled message to, as the opener of a case, with its decision
    (and the channel adapter's `metadata`, when given)."""
    channel = Channel(inbound(item.dataset, item.text).channel)
    message = Message(
        message_id=f"eval-{k}",
        channel=channel,
        external_id=str(item.id),
        conversation_id=f"eval-{k}",
        author=Author(id=f"eval-author-{k}"),
        text=item.text,
        created_at=ROUTED_AT,
        received_at=ROUTED_AT,
        visibility=default_visibility(channel),
        metadata=metadata or {},
    )
    return rules.decide(ClassifiedMessage(message=message, classification=classification), ROUTED_AT).queue


def as_routed(items: list[realdata.Labelled], predicted: list[Classification], rules: RuleSet) -> dict:
    """Route each labelled message by the rules and count where the real support and marketing ones land."""
    queues: dict[str, Counter[str]] = {"support": Counter(), "marketing": Counter()}
    for k, (item, classification) in enumerate(zip(items, predicted, strict=True)):
        queues[item.category][routed_queue(item, classification, rules, k).value] += 1
    support, marketing = queues["support"].total(), queues["marketing"].total()
    return {
        "support_n": support,
        "marketing_n": marketing,
        "queues": {category: dict(landed) for category, landed in queues.items()},
        "support_to_marketing": queues["support"][Queue.MARKETING.value] / max(1, support),
        "marketing_to_customer_service": queues["marketing"][Queue.CUSTOMER_SERVICE.value]
        / max(1, marketing),
        "to_review": (queues["support"] + queues["marketing"])[Queue.REVIEW.value]
        / max(1, support + marketing),
    }


def evaluate(predict: Predict) -> dict:
    """Run every yardstick with one predictor."""
    report: dict = {}
    rules = load_rules(SHIPPED_RULES)
    for name, file in FIRST.items():
        items = realdata.load(realdata.LABELS / file)
        predicted = predict([inbound(i.dataset, i.text) for i in items])
        report[name] = {
            part: score_labelled(
                [i for i in items if keep(i)], [p for i, p in zip(items, predicted, strict=True) if keep(i)]
            )
            for part, keep in (
                ("all", lambda _i: True),
                ("dev", realdata.is_dev),
                ("test", lambda i: not realdata.is_dev(i)),
                ("sure", lambda i: not i.unsure),
            )
        }
        test = [(i, p) for i, p in zip(items, predicted, strict=True) if not realdata.is_dev(i)]
        report[name]["routed_test"] = as_routed([i for i, _ in test], [p for _, p in test], rules)
        report[name]["_errors"] = [
            {
                "dataset": i.dataset,
                "id": i.id,
                "gold": i.category,
                "predicted": p.category,
                "dev": realdata.is_dev(i),
            }
            for i, p in zip(items, predicted, strict=True)
            if i.category != p.category
        ]
        report[name]["_items"] = (items, predicted)
        for sample, files in LATER.items():
            path = realdata.LABELS / files.get(name, "-")
            if path.is_file():
                # The later samples are test only: scored and routed, never listed by --errors.
                more = realdata.load(path)
                decided = predict([inbound(i.dataset, i.text) for i in more])
                report[name][sample] = score_labelled(more, decided)
                report[name][f"routed_{sample}"] = as_routed(more, decided, rules)
                report[name][f"_{sample}"] = (more, decided)
        # The test messages (the first test third, then the second sample), their decisions, and how many
        # come from the first sample (simulate_corrections scores them again).
        more, decided = report[name].get("_second", ([], []))
        both = [*(i for i, _ in test), *more], [*(p for _, p in test), *decided]
        report[name]["_test"] = (*both, len(test))
        if more:
            report[name]["test_and_second"] = score_labelled(*both)
        beyond = [report[name][f"_{s}"] for s in list(LATER)[1:] if f"_{s}" in report[name]]
        if beyond:
            report[name]["all_test"] = score_labelled(
                [*both[0], *(i for more, _ in beyond for i in more)],
                [*both[1], *(p for _, decided in beyond for p in decided)],
            )
    rows = realdata.preotiuc()
    predicted = predict([inbound("complaints-preotiuc2019", text) for text, _, _ in rows])
    brand = [k for k, (_, _, domain) in enumerate(rows) if not domain.startswith("random")]
    gold = [c for _, c, _ in rows]
    pred = [p.is_complaint for p in predicted]
    report["preotiuc"] = {
        "_decisions": (gold, pred),
        "n": len(rows),
        "complaint_macro_f1": macro_f1(gold, pred),
        "brand_n": len(brand),
        "brand_complaint_macro_f1": macro_f1([gold[k] for k in brand], [pred[k] for k in brand]),
        "support_share_of_random_tweets": sum(
            predicted[k].category == "support" for k, (_, _, d) in enumerate(rows) if d.startswith("random")
        )
        / max(1, sum(d.startswith("random") for _, _, d in rows)),
    }
    report["behaviour"] = behaviour.summary(behaviour.check(predict, behaviour.load(), ""))
    return report


def render(reports: dict[str, dict], versions: dict[str, str]) -> str:
    """Return the comparison as a markdown table, one column per model."""
    names = list(reports)
    lines = [
        "| yardstick | " + " | ".join(f"{n} ({versions[n]})" for n in names) + " | target |",
        "|---|" + "---|" * (len(names) + 1),
    ]

    def row(label: str, get: Callable[[dict], float], target: float | None = None) -> None:
        cells = [f"{get(reports[n]):.3f}" for n in names]
        lines.append(
            f"| {label} | " + " | ".join(cells) + f" | {'' if target is None else f'{target:.2f}'} |"
        )

    for lang in ("en", "fr"):
        parts = ("all", "test", "dev", "sure", "second", "test_and_second", "third", "fourth", "all_test")
        for part in (p for p in parts if p in reports[names[0]][lang]):
            n = reports[names[0]][lang][part]["n"]
            target = TARGETS[f"{lang}_category"] if part == "all" else None
            where = {
                "second": "second sample",
                "test_and_second": "test + second sample",
                "third": "third sample",
                "fourth": "fourth sample",
                "all_test": "every test sample",
            }.get(part, part)
            row(
                f"{lang} marketing/support macro-F1, {where} (n={n})",
                lambda r, lang=lang, part=part: r[lang][part]["category_macro_f1"],
                target,
            )
        row(f"{lang} complaint macro-F1, all", lambda r, lang=lang: r[lang]["all"]["complaint_macro_f1"])
    row(
        "Preotiuc complaint macro-F1, all 3,449",
        lambda r: r["preotiuc"]["complaint_macro_f1"],
        TARGETS["preotiuc_complaint"],
    )
    row("Preotiuc complaint macro-F1, 1,974 to brands", lambda r: r["preotiuc"]["brand_complaint_macro_f1"])
    row(
        "Preotiuc random tweets called support (lower is better)",
        lambda r: r["preotiuc"]["support_share_of_random_tweets"],
    )
    for lang in ("en", "fr"):
        for key, where in (
            ("routed_test", "test"),
            ("routed_second", "second sample"),
            ("routed_third", "third sample"),
            ("routed_fourth", "fourth sample"),
        ):
            if key not in reports[names[0]][lang]:
                continue
            routed = reports[names[0]][lang][key]
            label = (
                f"{lang} {where} routed by the shipped rules "
                f"({routed['support_n']} support, {routed['marketing_n']} marketing)"
            )
            row(
                f"{label}: support put in marketing",
                lambda r, lang=lang, k=key: r[lang][k]["support_to_marketing"],
            )
            row(
                f"{label}: marketing put in customer service",
                lambda r, lang=lang, k=key: r[lang][k]["marketing_to_customer_service"],
            )
            row(f"{label}: sent to review", lambda r, lang=lang, k=key: r[lang][k]["to_review"])
    checks = reports[names[0]]["behaviour"]
    row(
        f"behaviour checks failed (of {checks['cases']}, lower is better)",
        lambda r: r["behaviour"]["failure_rate"],
    )
    row(
        f"behaviour perturbations that flipped a right answer (of about {checks['perturbed']})",
        lambda r: r["behaviour"]["flip_rate"],
    )
    lines.append("")
    for n in names:
        for lang in ("en", "fr"):
            lines.append(f"{n} {lang} per source (accuracy, gold support share, predicted support share):")
            for dataset, s in reports[n][lang]["all"]["per_source"].items():
                lines.append(
                    f"  {dataset:<36} n={s['n']:<4} acc {s['category_accuracy']:.3f}  gold support "
                    f"{s['support_share_gold']:.2f}  predicted {s['support_share_predicted']:.2f}"
                )
    return "\n".join(lines)


def print_errors(report: dict, part: str) -> None:
    """Print the misclassified messages of the development (or every) split."""
    for lang in ("en", "fr"):
        items, predicted = report[lang]["_items"]
        for item, p in zip(items, predicted, strict=True):
            if item.category == p.category or (part == "dev" and not realdata.is_dev(item)):
                continue
            flag = " (unsure)" if item.unsure else ""
            where = (
                f"{lang} {item.dataset[:12]} gold {item.category}{flag} -> {p.category} {p.confidence:.2f}"
            )
            print(f"[{where}] {item.text[:200]!r}")


def print_review_curve(report: dict, variants: list[tuple[str, RuleSet]]) -> None:
    """Print where the labelled messages land, on both splits, with each variant of the shipped rules."""
    print("\nrouted by variants of the shipped rules (split, variant):")
    for lang in ("en", "fr"):
        items, predicted = report[lang]["_items"]
        for split, keep in (("dev", realdata.is_dev), ("test", lambda i: not realdata.is_dev(i))):
            kept = [(i, p) for i, p in zip(items, predicted, strict=True) if keep(i)]
            for label, rules in variants:
                r = as_routed([i for i, _ in kept], [p for _, p in kept], rules)
                print(
                    f"  {lang} {split:<4} {label}: support put in marketing "
                    f"{r['support_to_marketing']:.3f}, marketing put in customer service "
                    f"{r['marketing_to_customer_service']:.3f}, sent to review {r['to_review']:.3f} "
                    f"(n={r['support_n']}+{r['marketing_n']})"
                )


def simulate_corrections(report: dict, corpus: list[Example]) -> None:
    """Retrain with the development third fed back as agents' corrections and print the test figures.

    What a deployment's own corrections buy (`switchboard corrections` then `switchboard train`): the
    development messages become category-only lines, as a reassignment records them: those the model got
    wrong (what agents move), those the shipped rules send to review (what triage settles), then all of
    them (a team that labels a sample). The models trained here are measured and thrown away: the shipped
    one never sees a real message.
    """
    rules = load_rules(SHIPPED_RULES)
    fed = {
        # What agents move: the messages the model got wrong.
        "the errors only": lambda item, p: item.category != p.category,
        # What triage yields for free: the messages the shipped rules sent to review, each settled by hand.
        "the review queue only": lambda item, p: routed_queue(item, p, rules) is Queue.REVIEW,
        # A team that labels a sample.
        "every development message": lambda _item, _p: True,
    }
    print("\nthe development third fed back as agents' corrections (category-only lines), macro-F1 on the")
    print("first sample's test third / on it with the second sample (the figure to quote):")
    shipped = {lang: report[lang]["_test"] for lang in ("en", "fr")}
    print(f"  none (the model above): {_scores(shipped)}")
    for label, keep in fed.items():
        lines = [
            Example(
                text=item.text,
                channel=inbound(item.dataset, item.text).channel,
                language=lang,
                category=item.category,
            )
            for lang in ("en", "fr")
            for item, p in zip(*report[lang]["_items"], strict=True)
            if realdata.is_dev(item) and keep(item, p)
        ]
        model = train([*corpus, *lines], holdout=0)
        retrained = {}
        for lang, (items, _, first) in shipped.items():
            retrained[lang] = items, model.classify_many([inbound(i.dataset, i.text) for i in items]), first
        print(f"  {label} ({len(lines)} lines): {_scores(retrained)}")


def _scores(decided: dict[str, tuple[list, list, int]]) -> str:
    """Format each language's macro-F1 on the first test third and on it with the second sample."""
    out = []
    for lang, (items, predicted, first) in decided.items():
        gold, chosen = [i.category for i in items], [p.category for p in predicted]
        out.append(f"{lang} {macro_f1(gold[:first], chosen[:first]):.3f} / {macro_f1(gold, chosen):.3f}")
    return ", ".join(out)


def print_paired(reports: dict[str, dict], versions: dict[str, str]) -> None:
    """Print, message by message, where the model and the one it is compared with are right."""
    print("\npaired against the current model (category, then complaints on Preotiuc):")
    new, old = reports["model"], reports["against"]
    runs = []  # (label, labelled items, candidate's decisions, current's decisions)
    for lang in ("en", "fr"):
        (items, ours), (_, theirs) = new[lang]["_items"], old[lang]["_items"]
        tested = []  # the language's test runs: the first sample's test split, then the later samples
        for split, keep in (("dev", True), ("test", False)):
            kept = [k for k, item in enumerate(items) if realdata.is_dev(item) == keep]
            runs.append(
                (
                    f"{lang} {split}",
                    [items[k] for k in kept],
                    [ours[k] for k in kept],
                    [theirs[k] for k in kept],
                )
            )
        tested.append(runs[-1])
        for sample in LATER:
            if f"_{sample}" in new[lang]:
                (more, ours), (_, theirs) = new[lang][f"_{sample}"], old[lang][f"_{sample}"]
                runs.append((f"{lang} {sample}", more, ours, theirs))
                tested.append(runs[-1])
        if len(tested) > 2:
            # Every test message of the language at once: the French figure to quote.
            runs.append((f"{lang} all test", *([x for run in tested for x in run[k]] for k in (1, 2, 3))))
    pairs = (versions["model"], versions["against"])
    for label, items, ours, theirs in runs:
        result = evaluation.paired(
            [i.category for i in items], [p.category for p in ours], [p.category for p in theirs], pairs
        )
        print(f"[{label}] " + evaluation.render_paired(result).replace("\n", "\n  "))
    (gold, ours), (_, theirs) = new["preotiuc"]["_decisions"], old["preotiuc"]["_decisions"]
    result = evaluation.paired(gold, ours, theirs, pairs)
    print("[Preotiuc] " + evaluation.render_paired(result, "complaint").replace("\n", "\n  "))


def review_variants(both: list[float] | None, marketing: list[float] | None) -> list[tuple[str, RuleSet]]:
    """Return the shipped rules with other review thresholds: for both categories, or for marketing only."""
    rules = load_rules(SHIPPED_RULES)
    variants = [
        (
            f"review below {t:.2f}",
            dataclasses.replace(rules, review_below_confidence=t, review_marketing_below_confidence=None),
        )
        for t in both or ()
    ]
    variants += [
        (
            f"review below {rules.review_below_confidence:.2f}, marketing below {t:.2f}",
            dataclasses.replace(rules, review_marketing_below_confidence=t),
        )
        for t in marketing or ()
    ]
    return variants


def main(argv: list[str] | None = None) -> int:
    """Evaluate the chosen model and the lexicon baseline; print and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=LEARNED, help="learned (default), lexicon, or a model directory")
    parser.add_argument("--train", nargs="*", help="train on these corpus files or directories instead")
    parser.add_argument("--no-baseline", action="store_true", help="skip the lexicon baseline")
    parser.add_argument("--errors", choices=("dev", "all"), help="print the model's category errors")
    parser.add_argument(
        "--review-below",
        type=float,
        nargs="+",
        metavar="T",
        help="also route the labelled sets with these review thresholds instead of the shipped rules' one",
    )
    parser.add_argument(
        "--against",
        metavar="MODEL",
        help="compare message by message with this model (learned, lexicon or a directory), with "
        "McNemar's exact test: is the difference more than chance?",
    )
    parser.add_argument(
        "--corrections",
        action="store_true",
        help="also retrain with the development third fed back as agents' corrections (not shipped)",
    )
    parser.add_argument(
        "--review-marketing-below",
        type=float,
        nargs="+",
        metavar="T",
        help="also route them with these thresholds for messages the model calls marketing only",
    )
    args = parser.parse_args(argv)
    predict, version = predictor(args.model, args.train)
    models = {"model": (predict, version)}
    if args.against:
        models["against"] = predictor(args.against, None)
    if not args.no_baseline:
        models["lexicon"] = predictor(LEXICON, None)
    reports, versions = {}, {}
    for name, (fn, ver) in models.items():
        started = time.perf_counter()
        reports[name], versions[name] = evaluate(fn), ver
        print(f"evaluated {name} ({ver}) in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    table = render(reports, versions)
    print(table)
    if args.errors:
        print_errors(reports["model"], args.errors)
    if args.against:
        print_paired(reports, versions)
    if args.corrections:
        simulate_corrections(reports["model"], read_examples(args.train or [CORPUS]))
    if args.review_below or args.review_marketing_below:
        variants = review_variants(args.review_below, args.review_marketing_below)
        print_review_curve(reports["model"], variants)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"classifier-{stamp}.json"
    clean = {n: {k: v for k, v in r.items()} for n, r in reports.items()}
    for r in clean.values():
        for part in ("en", "fr", "preotiuc"):
            r[part] = {k: v for k, v in r[part].items() if not k.startswith("_")}
    path.write_text(
        json.dumps(
            {"command": " ".join(sys.argv), "versions": versions, "corpus": str(CORPUS), "reports": clean},
            indent=2,
            default=str,
        )
    )
    print(f"wrote {path.relative_to(RESULTS.parent.parent)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
