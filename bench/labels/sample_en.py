"""Deterministic sampler for the English GOLD evaluation candidates (Switchboard).

Writes the candidates to the file named on the command line (default en_candidates.jsonl),
one JSON object per line:
    {"dataset": <folder name>, "file": <file name>, "id": <stable row id>, "text": <text as sampled>}

How "id" is defined for each source (all ids are strings):
  - twitter-us-airline-sentiment / Airline-Sentiment-2-w-AA.csv:
        id = the `_unit_id` column. The brief asked for `tweet_id`, but in this file `tweet_id` was
        mangled by a spreadsheet into scientific notation ("5.70E+17": only 3 distinct values over 14,640
        rows), so it cannot identify a row; `_unit_id` is unique (14,640 distinct) and is what
        PROVENANCE.md says to use as the key.
        Stratified by the `airline_sentiment` column: 110 negative, 60 neutral, 90 positive
        (stratification only; labels are given by reading the text).
  - twcs-labelled-kecht2021 / twcs-{AmazonHelp,AppleSupport,SpotifyCares}-200-inbound.csv:
        id = the `tweet_id` column (unique per file; equal to `main_tweet_id`). 40 per file.
  - twacs-airlines-intents / airlines_raw_labelled.csv:
        id = the `first_tweet_id` column (unique over the 491 rows). 60 rows.
        text = `first_utterance` with the "<cust__" / "__cust>" wrapper removed and whitespace collapsed;
        the `__company__` placeholder (redacted airline handle) is kept as is.
  - complaints-preotiuc2019 / complaints-data.csv (no header: tweet_id, text, label, domain):
        id = column 0 (tweet_id). 160 rows from the 9 brand domains only
        (random_tweet / random_reply excluded).
  - ibm-twitter-customer-care-cdp / first_customer_turns_dev_test.csv:
        id = 0-based data row number in the file (header excluded). `tweet_ID` is NOT unique
        (1,022 distinct over 1,025 rows), so the row number is used. 50 rows.
  - brand-product-emotions-sxsw / judge-1377884607_tweet_product_company.csv:
        id = 0-based data row number in the file (header excluded). 100 rows.

Files are read as UTF-8, falling back to latin-1 when they are not valid UTF-8 (the airline and SXSW
files contain mojibake bytes and are read as latin-1; the text is kept exactly as decoded).
Texts that are empty after strip() and exact duplicates of a text already drawn (across all sources) are
skipped. Sampling: one random.Random(20261206); for each source in the fixed order below, the eligible
row indices are shuffled and taken in that order until the quota is filled.
"""

import csv
import io
import json
import os
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from realdata import DATASETS

BASE = str(DATASETS)
OUT = sys.argv[1] if len(sys.argv) > 1 else "en_candidates.jsonl"
SEED = 20261206


def read_text(path):
    raw = open(path, "rb").read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def dict_rows(path):
    return list(csv.DictReader(io.StringIO(read_text(path), newline="")))


def plain_rows(path):
    return list(csv.reader(io.StringIO(read_text(path), newline="")))


def clean_twacs(t):
    t = t.strip()
    t = re.sub(r"^<cust__", "", t)
    t = re.sub(r"__cust>$", "", t)
    return " ".join(t.split())


def main():
    rng = random.Random(SEED)
    seen = set()
    out = []

    def draw(dataset, fname, items, n):
        """items: list of (id, text). Shuffle and take the first n usable ones."""
        idx = list(range(len(items)))
        rng.shuffle(idx)
        taken = 0
        for i in idx:
            if taken == n:
                break
            rid, text = items[i]
            if text is None or not text.strip():
                continue
            if text in seen:
                continue
            seen.add(text)
            out.append({"dataset": dataset, "file": fname, "id": str(rid), "text": text})
            taken += 1
        if taken < n:
            raise SystemExit(f"{dataset}/{fname}: only {taken} of {n}")

    # 1. airline sentiment, stratified
    ds, fn = "twitter-us-airline-sentiment", "Airline-Sentiment-2-w-AA.csv"
    rows = dict_rows(os.path.join(BASE, ds, fn))
    for sent, n in (("negative", 110), ("neutral", 60), ("positive", 90)):
        items = [(r["_unit_id"], r["text"]) for r in rows if r["airline_sentiment"] == sent]
        draw(ds, fn, items, n)

    # 2. kecht, 40 per file
    ds = "twcs-labelled-kecht2021"
    for brand in ("AmazonHelp", "AppleSupport", "SpotifyCares"):
        fn = f"twcs-{brand}-200-inbound.csv"
        rows = dict_rows(os.path.join(BASE, ds, fn))
        draw(ds, fn, [(r["tweet_id"], r["text"]) for r in rows], 40)

    # 3. TwACS
    ds, fn = "twacs-airlines-intents", "airlines_raw_labelled.csv"
    rows = dict_rows(os.path.join(BASE, ds, fn))
    draw(ds, fn, [(r["first_tweet_id"], clean_twacs(r["first_utterance"])) for r in rows], 60)

    # 4. complaints, brand domains only
    ds, fn = "complaints-preotiuc2019", "complaints-data.csv"
    rows = plain_rows(os.path.join(BASE, ds, fn))
    items = [(r[0], r[1]) for r in rows if len(r) == 4 and r[3] not in ("random_tweet", "random_reply")]
    draw(ds, fn, items, 160)

    # 5. IBM first customer turns
    ds, fn = "ibm-twitter-customer-care-cdp", "first_customer_turns_dev_test.csv"
    rows = dict_rows(os.path.join(BASE, ds, fn))
    draw(ds, fn, [(i, r["text"]) for i, r in enumerate(rows)], 50)

    # 6. SXSW brand mentions
    ds, fn = "brand-product-emotions-sxsw", "judge-1377884607_tweet_product_company.csv"
    rows = dict_rows(os.path.join(BASE, ds, fn))
    draw(ds, fn, [(i, r["tweet_text"]) for i, r in enumerate(rows)], 100)

    with open(OUT, "w", encoding="utf-8") as f:
        for o in out:
            f.write(json.dumps(o, ensure_ascii=False) + "\n")
    print(f"wrote {len(out)} candidates to {OUT}")


if __name__ == "__main__":
    main()
