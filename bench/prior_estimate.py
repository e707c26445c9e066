"""Whether a deployment's share of support, estimated from its unlabelled traffic, should move the decision.

The learned model is trained on balanced classes; `CLASSIFIER_SUPPORT_PRIOR` moves its category odds to
the share of support a deployment expects. This estimates that share from unlabelled messages with the
EM procedure of Saerens, Latinne and Decaestecker (2002): the model's support probabilities, read under
the prior it was trained with (0.5), are reweighted by a candidate prior until the prior equals their
mean. Pools and folds are those of `own_labels_folds.py`: the share is estimated on the other four folds'
texts (labels unused) and the held fold decided with it, pooled and paired with the model as trained.

    .venv/bin/python bench/prior_estimate.py fr|en
"""

from __future__ import annotations

import argparse

from classifier_eval import inbound, macro_f1
from own_labels_folds import FOLDS, POOLS, fold_of, paired, pool

from classifier.choice import LEARNED, load_model

TRAINED_PRIOR = 0.5


def support_probability(classification) -> float:
    """Return a classification's probability of support."""
    if classification.category == "support":
        return classification.confidence
    return 1.0 - classification.confidence


def estimate(probabilities: list[float], tolerance: float = 1e-6, rounds: int = 1000) -> float:
    """Return the share of support that EM finds for posteriors read under the trained prior."""
    prior = TRAINED_PRIOR
    for _ in range(rounds):
        moved = [
            p
            * prior
            / TRAINED_PRIOR
            / (p * prior / TRAINED_PRIOR + (1 - p) * (1 - prior) / (1 - TRAINED_PRIOR))
            for p in probabilities
        ]
        new = sum(moved) / len(moved)
        if abs(new - prior) < tolerance:
            return new
        prior = new
    return prior


def main(argv: list[str] | None = None) -> int:
    """Print the model as trained, then with each fold's estimated prior, paired."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("language", choices=sorted(POOLS))
    args = parser.parse_args(argv)
    items = pool(args.language)
    gold = [i.category for i in items]
    support = sum(g == "support" for g in gold)
    messages = [inbound(i.dataset, i.text) for i in items]
    trained = load_model(LEARNED).classify_many(messages)
    before = [c.category for c in trained]
    predicted = sum(c == "support" for c in before)
    print(
        f"{args.language}: {len(items)} messages, support labelled {support / len(items):.3f}, "
        f"predicted {predicted / len(items):.3f}; as trained {macro_f1(gold, before):.3f}",
        flush=True,
    )
    after = [""] * len(items)
    priors = []
    for k in range(FOLDS):
        held = [n for n, i in enumerate(items) if fold_of(i) == k]
        others = [c for c, i in zip(trained, items, strict=True) if fold_of(i) != k]
        prior = estimate([support_probability(c) for c in others])
        priors.append(prior)
        moved = load_model(LEARNED, support_prior=prior).classify_many([messages[n] for n in held])
        for n, c in zip(held, moved, strict=True):
            after[n] = c.category
    shown = ", ".join(f"{p:.3f}" for p in priors)
    print(f"estimated priors {shown}; moved: {macro_f1(gold, after):.3f} ({paired(gold, after, before)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
