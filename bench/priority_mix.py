"""What share of real messages each priority gets, and why a message is P1.

The priority orders the queues and picks the SLA policy (the shipped `urgent` policy gives P1 cases 15
minutes, day and night), so the share of P1 is what an ops team plans staff on. It is decided by
`classifier.cues.priority`: marketing is P4; an outage, or a public complaint that is loud (urgency words,
a sentiment score at or below `STRONG_NEGATIVE`, or an author with `LARGE_AUDIENCE` followers or more),
is P1; another complaint or an urgent message P2; other support P3. This prints, on the labelled test
sets (English: the first sample's test thirds and the second sample; French: those and the third
sample), the mix of priorities over all messages and over the real support ones, and each P1's reason.
The messages come as ingest hands over a public tweet (no follower count).

    .venv/bin/python bench/priority_mix.py [--model learned|lexicon|DIR]
"""

from __future__ import annotations

import argparse
from collections import Counter

from classifier_eval import inbound, test_sets

from classifier import model as baseline
from classifier.choice import LEARNED, load_model
from switchboard.contract import Classification


def reason(decided: Classification) -> str:
    """Name why a P1 message is P1 (the first reason `cues.priority` would find)."""
    if decided.intent == "outage":
        return "outage"
    if decided.sentiment_score <= baseline.STRONG_NEGATIVE:
        return "strongly negative"
    return "urgency words"


def shares(counted: Counter[str], n: int) -> str:
    """Render counts as shares of n, in the counter's key order."""
    return ", ".join(f"{key} {count / n:.1%}" for key, count in sorted(counted.items()))


def main(argv: list[str] | None = None) -> int:
    """Print the priority mix and the reasons for P1 per language."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=LEARNED)
    args = parser.parse_args(argv)
    model = load_model(args.model)
    print(f"model {getattr(model, 'version', args.model)}")
    for lang, items in test_sets().items():
        decided = model.classify_many([inbound(i.dataset, i.text) for i in items])
        support = [d for i, d in zip(items, decided, strict=True) if i.category == "support"]
        first = [d for d in decided if d.priority == "P1"]
        print(f"{lang} ({len(items)} messages, {len(support)} support)")
        print(f"  all messages: {shares(Counter(d.priority for d in decided), len(items))}")
        print(f"  real support: {shares(Counter(d.priority for d in support), len(support))}")
        print(f"  P1 because:   {shares(Counter(reason(d) for d in first), len(items))} (of all messages)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
