"""Measure the classifier's other decisions on real labelled messages: sentiment, intent and priority.

`classifier_eval.py` measures the category and the complaint flag; a contact centre also reads the
sentiment (it feeds the priority), the intent (it names the case) and the priority (it orders the
queue). Each yardstick uses a public dataset's own labels, zero-shot (the model never saw them):
- sentiment (negative / neutral / positive), macro-F1: the 14,640 tweets to six US airlines (crowd
  labels), the 3,448 tweets to brands of X-CI (Singh et al. 2023, the Preotiuc-Pietro tweets with
  polarity), and the 870 general French tweets of the DEFT 2017 test split (balanced; XLM-T reports
  54.8 for FastText and 72.0 for XLM-R trained on its training split: ours is not trained on it);
- intent: the first tweets to Amazon, Apple and Spotify support of twcs-labelled-kecht2021, whose
  hand-labelled topics name a process one of our intents covers (`TOPIC_INTENTS`; product names such as
  "iPhone" or "Prime" name none); a row is right when the intent given is one of its topics'; split by
  a hash of the tweet id into a development third and a test two thirds, as `classifier_eval.py` does;
- priority against X-CI's complaint severity (1, no explicit reproach, to 4, blame; an assumed reading
  of Jin & Aletras 2021): the Spearman correlation over the complaints and the share of each severity
  given P1 or P2. Severity is how hard the customer reproaches, not how urgent the case is: a weak
  agreement is expected, none would be a defect.

    .venv/bin/python bench/classifier_fields.py                 # the shipped model and the lexicon
    .venv/bin/python bench/classifier_fields.py --model DIR     # an artefact from `switchboard train`
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import realdata
from classifier_eval import inbound, macro_f1, predictor
from scipy.stats import spearmanr

from classifier.choice import LEARNED, LEXICON

# Kecht et al.'s topics that name a process, as the intents that cover it.
TOPIC_INTENTS = {
    "Delivery": {"delivery"},
    "Packaging": {"delivery"},
    "Return": {"returns_refund"},
    "Refund": {"returns_refund"},
    "Replacement": {"returns_refund"},
    "Order Cancellation": {"returns_refund"},
    "Account": {"account"},
    "Billing/Payment": {"billing"},
    "Bad Support": {"complaint"},
    "Service Praise": {"praise"},
    "Update": {"technical"},
    "Battery": {"technical"},
    "Unresponsive/Freezing Device": {"technical"},
    "App": {"technical"},
}
URGENCY = {"P1": 4, "P2": 3, "P3": 2, "P4": 1}
KECHT = "twcs-labelled-kecht2021"


def sentiment_f1(predict, rows: Sequence[tuple[str, str]], dataset: str) -> float:
    """Return the three-class sentiment macro-F1 on (text, sentiment) rows."""
    predicted = predict([inbound(dataset, text) for text, _ in rows])
    return macro_f1([gold for _, gold in rows], [p.sentiment for p in predicted])


def measure(predict) -> dict[str, float]:
    """Run every yardstick with one predictor."""
    report = {
        "sentiment_airlines": sentiment_f1(
            predict, realdata.airline_sentiment(), "twitter-us-airline-sentiment"
        ),
        "sentiment_deft2017": sentiment_f1(predict, realdata.deft2017(), "fr-deft2017-sentiment-umsab"),
    }
    xci = realdata.xci()
    predicted = predict([inbound("complaints-preotiuc2019", text) for text, _, _ in xci])
    report["sentiment_xci"] = macro_f1([s for _, s, _ in xci], [p.sentiment for p in predicted])
    complaints = [(severity, p) for (_, _, severity), p in zip(xci, predicted, strict=True) if severity]
    rho = spearmanr([s for s, _ in complaints], [URGENCY[p.priority] for _, p in complaints]).statistic
    report["priority_severity_spearman"] = float(rho)
    for level in (1, 2, 3, 4):
        given = [p for s, p in complaints if s == level]
        report[f"severity_{level}_p1_p2"] = sum(p.priority in ("P1", "P2") for p in given) / len(given)
    kecht = [
        (
            realdata.is_dev_row(KECHT, row_id),
            text,
            set().union(*(TOPIC_INTENTS.get(t, set()) for t in topics)),
        )
        for row_id, text, topics in realdata.kecht_topics()
    ]
    mapped = [row for row in kecht if row[2]]
    predicted = predict([inbound(KECHT, text) for _, text, _ in mapped])
    right = [(dev, p.intent in gold) for (dev, _, gold), p in zip(mapped, predicted, strict=True)]
    for part, keep in (("dev", True), ("test", False)):
        kept = [ok for dev, ok in right if dev == keep]
        report[f"intent_kecht_{part}"], report[f"intent_kecht_{part}_n"] = sum(kept) / len(kept), len(kept)
    return report


ROWS = (
    ("sentiment macro-F1, 14,640 tweets to US airlines", "sentiment_airlines"),
    ("sentiment macro-F1, X-CI 3,448 tweets to brands", "sentiment_xci"),
    ("sentiment macro-F1, DEFT 2017 French test (870, general tweets)", "sentiment_deft2017"),
    ("intent accuracy, Kecht et al. rows with a process topic, dev (n={dev})", "intent_kecht_dev"),
    ("intent accuracy, Kecht et al. rows with a process topic, test (n={test})", "intent_kecht_test"),
    ("priority vs X-CI complaint severity, Spearman", "priority_severity_spearman"),
    ("complaints of severity 1 given P1/P2", "severity_1_p1_p2"),
    ("complaints of severity 2 given P1/P2", "severity_2_p1_p2"),
    ("complaints of severity 3 given P1/P2", "severity_3_p1_p2"),
    ("complaints of severity 4 given P1/P2", "severity_4_p1_p2"),
)


def main(argv: list[str] | None = None) -> int:
    """Measure the chosen model and the lexicon baseline and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=LEARNED, help="learned (default), lexicon, or a model directory")
    args = parser.parse_args(argv)
    models = {"model": predictor(args.model, None), "lexicon": predictor(LEXICON, None)}
    reports = {name: measure(predict) for name, (predict, _) in models.items()}
    print("| yardstick | " + " | ".join(f"{n} ({v})" for n, (_, v) in models.items()) + " |")
    print("|---|" + "---|" * len(models))
    for label, key in ROWS:
        label = label.format(
            dev=reports["model"]["intent_kecht_dev_n"], test=reports["model"]["intent_kecht_test_n"]
        )
        print(f"| {label} | " + " | ".join(f"{r[key]:.3f}" for r in reports.values()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
