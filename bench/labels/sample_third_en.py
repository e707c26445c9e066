"""Deterministic sampler for the third English sample: the second sample's sources and quotas, none of
the first two samples' rows.

    .venv/bin/python bench/labels/sample_third_en.py OUT.jsonl

Drawn to decide one change under a rule written before it existed (the classifier README, "A support
intent is support"): `random.Random(20261209)`, the sources, quotas and filters of `sample_second.py`,
skipping every row `en_tweets.jsonl` or `en_tweets_2.jsonl` names, every empty text and every text equal
to one already drawn or labelled. The output holds the texts: keep it out of the repository.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import realdata
from sample_second import draw

SEED = 20261209
EARLIER = ("en_tweets.jsonl", "en_tweets_2.jsonl")


def main() -> int:
    """Draw the third English sample and write its candidates as JSON lines."""
    out = Path(sys.argv[1])
    earlier = [item for file in EARLIER for item in realdata.load(realdata.LABELS / file)]
    drawn = draw("en", earlier, SEED)
    out.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in drawn), encoding="utf-8")
    print(f"wrote {len(drawn)} English candidates to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
