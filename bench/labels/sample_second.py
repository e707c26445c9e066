"""Deterministic sampler for the second labelled sample: rows of the same sources, none of the first's.

    .venv/bin/python bench/labels/sample_second.py en OUT.jsonl
    .venv/bin/python bench/labels/sample_second.py fr OUT.jsonl

Same sources, quotas and filters as `sample_en.py` and `sample_fr.py` (the airline tweets stratified by
their own sentiment column, Preotiuc's brand domains only, Free's customer authors only, the perfume
chat's real customer turns), with `random.Random(20261207)`, skipping every row the first sample
(`en_tweets.jsonl`, `fr_messages.jsonl`) names, every empty text and every text equal to one already
drawn or labelled. The perfume chat has fewer real turns left than its quota: all of them are taken.
Rows are read with `realdata.READERS`, so ids and texts are the ones `realdata.load` checks.
"""

from __future__ import annotations

import csv
import io
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import realdata

SEED = 20261207
FIRST = {"en": "en_tweets.jsonl", "fr": "fr_messages.jsonl"}
FREE = ("fr-freemobile-tweets", "free_tweet_export.csv")


def rows_of(dataset: str, file: str) -> list[tuple[str, str]]:
    """Return a source file's (id, text) rows as `realdata` reads them."""
    return list(realdata.READERS[dataset](realdata.DATASETS / dataset / file))


def columns(dataset: str, file: str) -> list[dict[str, str]]:
    """Return a source file's rows as dictionaries, for the columns a filter needs."""
    return realdata.dict_rows(realdata.DATASETS / dataset / file)


def free_customer_rows() -> list[tuple[str, str]]:
    """Return the Free tweets' (id, text) rows written by customers, not by the brand's accounts."""
    customers = {
        r["tweet_id"]
        for r in columns(*FREE)
        if r["author"].strip().lower() not in realdata.FREE_NOT_CUSTOMERS
    }
    return [r for r in rows_of(*FREE) if r[0] in customers]


def sources(language: str) -> list[tuple[str, str, list[tuple[str, str]], int | None]]:
    """Return (dataset, file, eligible rows, quota) in drawing order; quota None takes every row."""
    if language == "fr":
        ds, fn = FREE
        ds2, fn2 = "fr-perfume-ecommerce-chat-intents", "nlu_allpmc_utterances.csv"
        real = {
            str(i)
            for i, r in enumerate(columns(ds2, fn2))
            if realdata.real_perfume_turn(r["intent"], r["text"])
        }
        return [
            (ds, fn, free_customer_rows(), 480),
            (ds2, fn2, [r for r in rows_of(ds2, fn2) if r[0] in real], None),
        ]
    airline, air_file = "twitter-us-airline-sentiment", "Airline-Sentiment-2-w-AA.csv"
    tone = {r["_unit_id"]: r["airline_sentiment"] for r in columns(airline, air_file)}
    air = rows_of(airline, air_file)
    out = [
        (airline, air_file, [r for r in air if tone[r[0]] == t], n)
        for t, n in (("negative", 110), ("neutral", 60), ("positive", 90))
    ]
    kecht = "twcs-labelled-kecht2021"
    out += [
        (kecht, f, rows_of(kecht, f), 40)
        for f in (f"twcs-{b}-200-inbound.csv" for b in ("AmazonHelp", "AppleSupport", "SpotifyCares"))
    ]
    out.append(
        (
            "twacs-airlines-intents",
            "airlines_raw_labelled.csv",
            rows_of("twacs-airlines-intents", "airlines_raw_labelled.csv"),
            60,
        )
    )
    preotiuc, pre_file = "complaints-preotiuc2019", "complaints-data.csv"
    brands = {
        r[0]
        for r in csv.reader(
            io.StringIO(realdata.read_text(realdata.DATASETS / preotiuc / pre_file), newline="")
        )
        if len(r) == 4 and r[3] not in ("random_tweet", "random_reply")
    }
    out.append((preotiuc, pre_file, [r for r in rows_of(preotiuc, pre_file) if r[0] in brands], 160))
    out.append(
        (
            "ibm-twitter-customer-care-cdp",
            "first_customer_turns_dev_test.csv",
            rows_of("ibm-twitter-customer-care-cdp", "first_customer_turns_dev_test.csv"),
            50,
        )
    )
    sxsw = "brand-product-emotions-sxsw"
    out.append(
        (
            sxsw,
            "judge-1377884607_tweet_product_company.csv",
            rows_of(sxsw, "judge-1377884607_tweet_product_company.csv"),
            100,
        )
    )
    return out


def draw(
    language: str, earlier: list[realdata.Labelled], seed: int, skip: tuple[str, ...] = ()
) -> list[dict[str, str]]:
    """Draw a sample of one language with `seed`: the sources' quotas in order (but the datasets in
    `skip`), none of `earlier`'s rows, no empty text and no text equal to one already drawn or labelled."""
    taken = {(item.dataset, item.id) for item in earlier}
    seen = {item.text for item in earlier}
    rng = random.Random(seed)
    drawn = []
    for dataset, file, rows, quota in sources(language):
        if dataset in skip:
            continue
        order = list(range(len(rows)))
        rng.shuffle(order)
        count = 0
        for k in order:
            if quota is not None and count == quota:
                break
            row_id, text = rows[k]
            if (dataset, row_id) in taken or not text.strip() or text in seen:
                continue
            seen.add(text)
            drawn.append({"dataset": dataset, "file": file, "id": row_id, "text": text})
            count += 1
        if quota is not None and count < quota:
            raise SystemExit(f"{dataset}/{file}: only {count} of {quota} rows left")
    return drawn


def main() -> int:
    """Draw the second sample of one language and write its candidates as JSON lines."""
    language, out = sys.argv[1], Path(sys.argv[2])
    drawn = draw(language, realdata.load(realdata.LABELS / FIRST[language]), SEED)
    out.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in drawn), encoding="utf-8")
    print(f"wrote {len(drawn)} {language} candidates to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
