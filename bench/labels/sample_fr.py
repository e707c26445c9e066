"""Deterministic sampler for the French GOLD evaluation candidates.

Writes the candidates to the file named on the command line (default fr_candidates.jsonl),
one JSON object per line:
  {"dataset": <folder>, "file": <file>, "id": <stable row id>, "text": <text as in the source>}

Sources (read-only, under /work/shared/datasets/):
  * fr-freemobile-tweets/free_tweet_export.csv
      - customer authors only: the brand accounts named in PROVENANCE.md (Freebox, free, Free_1337,
        UniversFreebox, GroupeIliad) are excluded, plus other accounts that are clearly the brand
        (FreeFoot, OQEEbyFree: Free's football / TV-service accounts) and two non-customer
        publisher/bot accounts (FreenewsActu: news site; zoneadsl_panne: automated outage-report bot).
      - empty texts and exact duplicate texts skipped (first occurrence in file order kept).
      - 480 sampled; id = the tweet_id column. Text kept exactly as in the file (lower-cased,
        line breaks flattened to the letter "n").
  * fr-perfume-ecommerce-chat-intents/nlu_allpmc_utterances.csv
      - id = 0-based data row number (header row not counted), as a string.
      - drops the developer-written dialogue-management intents (Reset, Oui, Non, Saluer; exact
        intent match, so real turns tagged e.g. "Oui+CustomerComplaint" are kept) and, in the
        slot-filling "Rien" intent, the made-up e-mail addresses the developer typed as entity examples
        (e.g. "email@email.com"; real addresses in the source are pseudonymised as EmailN / _EmailN_).
      - exact duplicate texts skipped (first occurrence kept); empty texts skipped.
      - if more than 200 remain, 200 are sampled.
Both samples use one random.Random(20261206) (tweets first, then perfume); output is in source-row order.
"""

import csv
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from realdata import DATASETS, FREE_NOT_CUSTOMERS, real_perfume_turn

BASE = DATASETS
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "fr_candidates.jsonl")
rng = random.Random(20261206)

N_TWEETS, N_PERFUME = 480, 200

# ---- tweets
ds, fn = "fr-freemobile-tweets", "free_tweet_export.csv"
with open(BASE / ds / fn, encoding="utf-8", newline="") as f:
    rows = list(csv.DictReader(f))
pool, seen = [], set()
for order, r in enumerate(rows):
    if r["author"].strip().lower() in FREE_NOT_CUSTOMERS:
        continue
    t = r["text"]
    if not t or not t.strip() or t in seen:
        continue
    seen.add(t)
    pool.append((order, {"dataset": ds, "file": fn, "id": r["tweet_id"], "text": t}))
print(f"{ds}: {len(rows)} rows, {len(pool)} unique non-empty customer tweets in pool")
tweets = [c for _, c in sorted(rng.sample(pool, N_TWEETS), key=lambda x: x[0])]

# ---- perfume chat
ds2, fn2 = "fr-perfume-ecommerce-chat-intents", "nlu_allpmc_utterances.csv"
with open(BASE / ds2 / fn2, encoding="utf-8", newline="") as f:
    rows2 = list(csv.DictReader(f))
pool2, seen2 = [], set()
for i, r in enumerate(rows2):  # i = 0-based data row number (header excluded)
    t = r["text"]
    if not real_perfume_turn(r["intent"], t):
        continue
    if not t or not t.strip() or t in seen2:
        continue
    seen2.add(t)
    pool2.append((i, {"dataset": ds2, "file": fn2, "id": str(i), "text": t}))
print(f"{ds2}: {len(rows2)} rows, {len(pool2)} real unique customer utterances in pool")
if len(pool2) > N_PERFUME:
    pool2 = sorted(rng.sample(pool2, N_PERFUME), key=lambda x: x[0])
perfume = [c for _, c in pool2]

with open(OUT, "w", encoding="utf-8") as f:
    for c in tweets + perfume:
        f.write(json.dumps(c, ensure_ascii=False) + "\n")
print(f"candidates: {ds}={len(tweets)}  {ds2}={len(perfume)}  total={len(tweets) + len(perfume)} -> {OUT}")
