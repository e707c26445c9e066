"""Whether the other heads should vouch for support, as the complaint head does ("a complaint is support").

The category head decides support or marketing; the shipped recipe lets a complaint the complaint head
sees make a message support, and since 2026-12-07 the intent head's support intents too, when they sum
to 0.5 or more (measured here as the rule `intent` and decided on the fourth English sample: run that
measurement at commit e9a2958, before the recipe took it). This measures more such rules on the
shipped model's own probabilities, each alone, paired against the shipped decision (McNemar's exact
test):
- `negative`: the sentiment head's p(negative) >= 0.5 makes the message support, as sure as that;
and two that vouch for marketing where the complaint head sees no complaint, as unsure as that:
- `positive`: the sentiment head's p(positive) >= 0.5;
- `praise`: the intent head's p(praise) >= 0.5.

    .venv/bin/python bench/vouching.py            # development thirds only
    .venv/bin/python bench/vouching.py --test     # the test sets, Preotiuc and the routed shares
    .venv/bin/python bench/vouching.py --sample bench/labels/en_tweets_4.jsonl --rules negative
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import realdata
from classifier_eval import FIRST, as_routed, inbound, macro_f1, test_sets
from own_labels_folds import paired

from classifier.choice import LEARNED, load_model
from classifier.examples import Inbound
from classifier.learning import HEADS, RECIPE, TrainedModel, parse
from router.rules import SHIPPED_RULES, load_rules
from switchboard.contract import Classification

RULES = ("negative", "positive", "praise")
# The rules that vouch for marketing rather than support, where the complaint head sees no complaint.
FOR_MARKETING = ("positive", "praise")


def probabilities(model: TrainedModel, items: Sequence[Inbound]) -> dict[str, np.ndarray]:
    """Return every head's probabilities as `classify_many` computes them, before its rules."""
    matrix, _ = model._featurise([parse(i.text) for i in items])
    scores = matrix @ model._weights + model._bias
    scores[:, model._columns["category"].start] += model.support_shift
    return {head: model._probabilities(scores, head) for head in HEADS}


def vouched(model: TrainedModel, items: Sequence[Inbound], rule: str) -> list[Classification]:
    """Return the shipped decisions with `rule` also vouching for support (category and confidence)."""
    shipped = model.classify_many(items)
    p = probabilities(model, items)
    support = p["category"][:, model._support]
    complained = p["is_complaint"][:, model._complaint_true]
    support = np.where(complained >= 0.5, np.maximum(support, complained), support)
    if RECIPE["support_intent_is_support"]:
        asked = p["intent"][:, model._support_intents].sum(axis=1)
        support = np.where(asked >= 0.5, np.maximum(support, asked), support)
    if rule == "negative":
        voucher = p["sentiment"][:, model._negative]
    elif rule == "positive":
        voucher = p["sentiment"][:, model._positive]
    else:
        voucher = p["intent"][:, model._classes["intent"].index("praise")]
    if rule in FOR_MARKETING:
        vouches = (voucher >= 0.5) & (complained < 0.5)
        after = np.where(vouches, np.minimum(support, 1.0 - voucher), support)
    else:
        after = np.where(voucher >= 0.5, np.maximum(support, voucher), support)
    out = []
    for c, before, now in zip(shipped, support.tolist(), after.tolist(), strict=True):
        # The shipped decision must be the one recomputed here, or the comparison means nothing.
        assert c.category == ("support" if before >= 0.5 else "marketing"), (c, before)
        if now == before:
            out.append(c)
            continue
        confidence = max(now, 1.0 - now)
        if c.confidence < round(max(before, 1.0 - before), 4) - 1e-4:  # capped: another language, unread
            confidence = min(confidence, c.confidence)
        category = "support" if now >= 0.5 else "marketing"
        update = {"category": category, "confidence": round(confidence, 4)}
        if category != c.category:
            if category == "marketing":
                update.update(intent="praise", is_complaint=False)
            else:
                update["intent"] = "complaint" if c.is_complaint else "product_question"
        out.append(c.model_copy(update=update))
    return out


def sets(test: bool) -> dict[str, list[realdata.Labelled]]:
    """Return the development thirds, or the test sets per language."""
    if test:
        return {f"{lang} test sets": items for lang, items in test_sets().items()}
    return {
        f"{lang} dev": [i for i in realdata.load(realdata.LABELS / file) if realdata.is_dev(i)]
        for lang, file in FIRST.items()
    }


def main(argv: list[str] | None = None) -> int:
    """Print each rule's paired difference with the shipped decisions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=LEARNED)
    parser.add_argument("--test", action="store_true")
    parser.add_argument("--sample", type=Path, help="a labelled file instead (`bench/labels/`), routed too")
    parser.add_argument("--rules", nargs="*", default=list(RULES), choices=RULES)
    args = parser.parse_args(argv)
    model = load_model(args.model)
    routing = load_rules(SHIPPED_RULES)
    chosen = {args.sample.name: realdata.load(args.sample)} if args.sample else sets(args.test)
    routed = args.test or args.sample is not None
    for name, items in chosen.items():
        gold = [i.category for i in items]
        inbounds = [inbound(i.dataset, i.text) for i in items]
        shipped = model.classify_many(inbounds)
        base = [c.category for c in shipped]
        print(f"{name} (n={len(items)}): shipped {macro_f1(gold, base):.3f}")
        for rule in args.rules:
            decided = vouched(model, inbounds, rule)
            after = [c.category for c in decided]
            line = f"  {rule}: {macro_f1(gold, after):.3f} ({paired(gold, after, base)})"
            if routed:
                was, now = as_routed(items, shipped, routing), as_routed(items, decided, routing)
                line += (
                    f"; support to marketing {was['support_to_marketing']:.3f} -> "
                    f"{now['support_to_marketing']:.3f}"
                    f", marketing to customer service {was['marketing_to_customer_service']:.3f} -> "
                    f"{now['marketing_to_customer_service']:.3f}, to review {was['to_review']:.3f} -> "
                    f"{now['to_review']:.3f}"
                )
            print(line, flush=True)
    if args.test:
        rows = realdata.preotiuc()
        inbounds = [inbound("complaints-preotiuc2019", text) for text, _, _ in rows]
        gold = [c for _, c, _ in rows]
        base = [c.is_complaint for c in model.classify_many(inbounds)]
        print(f"preotiuc complaint (n={len(rows)}): shipped {macro_f1(gold, base):.3f}")
        for rule in args.rules:
            after = [c.is_complaint for c in vouched(model, inbounds, rule)]
            print(f"  {rule}: {macro_f1(gold, after):.3f} ({paired(gold, after, base)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
