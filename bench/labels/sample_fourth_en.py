"""Deterministic sampler for the fourth English sample: three more draws of the second sample's sources
and quotas, none of the first three samples' rows.

    .venv/bin/python bench/labels/sample_fourth_en.py OUT.jsonl

Drawn to decide one change under a rule written (2026-12-07, 23:18 UTC) before the sample existed; the
rule is in the classifier README ("A support intent is support", the fourth sample). It has to be large:
on the third sample the change disagreed with the model in force on 32 of 750 tweets, and a simulation
of the paired test at that rate gives a real gain of two wins in three about a 60% chance of showing at
1,500 tweets and 80% at 2,100. So three blocks are drawn, each with `sample_second.draw` (the second
sample's sources, quotas and filters) and its own seed (20261210, 20261211, 20261212), each block
skipping every earlier row and text; Kecht et al.'s 600 inbound tweets are used up after two blocks, so
the third block leaves that source out. The output holds the texts: keep it out of the repository.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import realdata
from sample_second import draw

SEEDS = (20261210, 20261211, 20261212)
EARLIER = ("en_tweets.jsonl", "en_tweets_2.jsonl", "en_tweets_3.jsonl")
USED_UP = "twcs-labelled-kecht2021"


def main() -> int:
    """Draw the fourth English sample and write its candidates as JSON lines."""
    out = Path(sys.argv[1])
    earlier = [item for file in EARLIER for item in realdata.load(realdata.LABELS / file)]
    drawn: list[dict[str, str]] = []
    for block, seed in enumerate(SEEDS):
        skip = (USED_UP,) if block == len(SEEDS) - 1 else ()
        new = draw("en", earlier, seed, skip=skip)
        drawn += new
        earlier += [realdata.Labelled(d["dataset"], d["id"], d["text"], "", False, False) for d in new]
    out.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in drawn), encoding="utf-8")
    print(f"wrote {len(drawn)} English candidates to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
