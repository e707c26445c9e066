"""Deterministic sampler for the third labelled sample: every French customer tweet to Free not yet labelled.

    .venv/bin/python bench/labels/sample_third.py OUT.jsonl

The first two samples hold 88 French marketing messages in their test parts, too few for a paired test
to see a change of a few messages. This takes every customer tweet of `fr-freemobile-tweets` (the brand's
own accounts left out, as before) that neither sample names, skipping empty texts and texts equal to
one already drawn or labelled, in the order of `random.Random(20261208)`. English is not sampled again:
its sources are far from used up, and its two samples already hold 427 marketing test messages.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import realdata
from sample_second import FREE, free_customer_rows

SEED = 20261208
EARLIER = ("fr_messages.jsonl", "fr_messages_2.jsonl")


def main() -> int:
    """Draw the third sample and write its candidates as JSON lines."""
    out = Path(sys.argv[1])
    dataset, file = FREE
    earlier = [item for name in EARLIER for item in realdata.load(realdata.LABELS / name)]
    taken = {(item.dataset, item.id) for item in earlier}
    seen = {item.text for item in earlier}
    rows = free_customer_rows()
    random.Random(SEED).shuffle(rows)
    drawn = []
    for row_id, text in rows:
        if (dataset, row_id) in taken or not text.strip() or text in seen:
            continue
        seen.add(text)
        drawn.append({"dataset": dataset, "file": file, "id": row_id, "text": text})
    out.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in drawn), encoding="utf-8")
    print(f"wrote {len(drawn)} French candidates to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
