"""Where a real conversation's messages end up: each routed alone, or following its case.

Two public sets keep whole conversations between customers and brands on X, with the customer's later
turns (`../shared/datasets/`, never trained on):

- ibm-twitter-customer-care-cdp (dev and test): 1,025 conversations with 25 support accounts, each
  ending with the agent sending a help document: every one is a support case, so every customer message
  in it belongs with customer service.
- twacs-airlines-intents: 491 airline conversations, the customer's first tweet and, in `context`, the
  turns that followed (the rep's turns skipped); not labelled by us.

Every customer turn is classified by the shipped model (one batch), and each set is routed through the
router's real path (`route_messages`, the shipped rules, `RedisCaseStore` against a real Redis under a
key prefix of its own, deleted afterwards), once with the rules' `follow_the_case` on (the default) and
once off. Only conversations with two customer turns or more are routed: for the others the two ways
are the same. Printed, per set and way: where the customer messages went, how many conversations were
split between queues, and (IBM) the support messages handed to marketing.

    .venv/bin/python bench/case_routing.py [--redis redis://127.0.0.1:6379/0] [--model learned]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import realdata
from classifier_eval import predictor
from redis.asyncio import Redis

from classifier.examples import Inbound
from ingest.channels.x import as_written
from router.handlers import Deps, route_messages
from router.rules import SHIPPED_RULES, RuleSet, parse_rules
from router.store import RedisCaseStore
from switchboard.contract import ESCALATED, FOLLOW_CASE, Author, Message, RoutedCase
from switchboard.testing import message_classified

# A Thursday at 11:00 in Paris: no after-hours rule of the shipped rules applies.
NOW = datetime(2026, 11, 19, 10, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Conversation:
    """A customer's turns in one conversation with a brand, in order, as ingest gives them (tweets: X's
    `&amp;`, `&lt;` and `&gt;` undone)."""

    key: str
    turns: list[str]


def ibm(datasets=realdata.DATASETS) -> list[Conversation]:
    """The IBM customer-care conversations: the customer's turns (`client`), in order."""
    out = []
    for split in ("dev", "test"):
        path = datasets / "ibm-twitter-customer-care-cdp" / f"{split}.json"
        for index, conversation in enumerate(json.loads(realdata.read_text(path))):
            turns = [as_written(t["message"]) for t in conversation["dialogContent"] if "client" in t]
            out.append(Conversation(f"ibm-{split}-{index}", turns))
    return out


def twacs(datasets=realdata.DATASETS) -> list[Conversation]:
    """The TwACS airline conversations: the first tweet, then the customer's turns of the context."""
    path = datasets / "twacs-airlines-intents" / "airlines_raw_labelled.csv"
    out = []
    for row in realdata.dict_rows(path):
        later = re.findall(r"<cust__(.*?)__cust>", row["context"], re.S)
        turns = [realdata.clean_twacs(row["first_utterance"])] + [realdata.clean_twacs(t) for t in later]
        out.append(Conversation(f"twacs-{row['first_tweet_id']}", [as_written(t) for t in turns if t]))
    return out


def follow_rules(on: bool) -> RuleSet:
    """The shipped rules, with `follow_the_case` set as asked."""
    text = SHIPPED_RULES.read_text(encoding="utf-8")
    text, count = re.subn(r"(?m)^follow_the_case: \w+$", f"follow_the_case: {str(on).lower()}", text)
    if count != 1:
        raise SystemExit("the shipped rules no longer set follow_the_case at the top level")
    return parse_rules(text)


async def route(
    conversations: list[Conversation], classify, rules: RuleSet, redis: Redis
) -> list[list[RoutedCase]]:
    """Route every turn through the router's real path; return each conversation's routings."""
    texts = [t for c in conversations for t in c.turns]
    decided = iter(classify([Inbound(t, "x", "public") for t in texts]))
    events, owners = [], []
    for n, conversation in enumerate(conversations):
        for i, text in enumerate(conversation.turns):
            at = NOW + timedelta(minutes=i)
            message = Message(
                message_id=f"{conversation.key}-{i}",
                channel="x",
                external_id=f"{conversation.key}-{i}",
                conversation_id=conversation.key,
                author=Author(id=f"x:{conversation.key}", handle=f"@customer{n}"),
                text=text,
                created_at=at,
                received_at=at,
                visibility="public",
            )
            events.append(message_classified(message, next(decided)))
            owners.append(n)
    prefix = f"bench:{uuid.uuid4().hex[:10]}:"
    deps = Deps(
        cases=RedisCaseStore(redis, prefix), rules=lambda: rules, window_seconds=3600, clock=lambda: NOW
    )
    try:
        routed = await route_messages(events, deps)
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
    out: list[list[RoutedCase]] = [[] for _ in conversations]
    for owner, (event,) in zip(owners, routed, strict=True):
        out[owner].append(event.data)
    return out


def summary(routed: list[list[RoutedCase]]) -> dict:
    """Where the messages went, first turns and later ones, and how many conversations were split."""
    first = Counter(r[0].queue.value for r in routed)
    later = Counter(m.queue.value for r in routed for m in r[1:])
    return {
        "conversations": len(routed),
        "messages": sum(len(r) for r in routed),
        "first": dict(first),
        "later": dict(later),
        "split": sum(1 for r in routed if len({m.queue for m in r}) > 1),
        "escalated": sum(1 for r in routed for m in r if ESCALATED in m.tags),
        "followed": sum(1 for r in routed for m in r if m.rule == FOLLOW_CASE),
    }


def share(counts: dict, queue: str) -> str:
    total = sum(counts.values())
    return f"{counts.get(queue, 0) / total:.1%} ({counts.get(queue, 0)}/{total})" if total else "-"


def render(name: str, way: str, s: dict) -> None:
    later = s["later"]
    print(
        f"| {name} | {way} | {s['conversations']} | {s['messages']} "
        f"| {share(later, 'marketing')} | {share(later, 'review')} | {share(later, 'customer-service')} "
        f"| {s['split']} | {s['escalated']} | {s['followed']} |"
    )


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--model", default="learned")
    args = parser.parse_args(argv)
    batch, version = predictor(args.model, None)
    redis = Redis.from_url(args.redis)
    sets = {"ibm (all support)": ibm(), "twacs airlines": twacs()}
    results = {}
    print(f"model {version}, shipped rules; conversations with 2+ customer turns only\n")
    print(
        "| set | way | conversations | messages | later turns to marketing | to review | to customer service "
        "| conversations split between queues | escalated | followed the case |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    try:
        for name, conversations in sets.items():
            several = [c for c in conversations if len(c.turns) >= 2]
            for way, on in (("alone", False), ("follow the case", True)):
                s = summary(await route(several, batch, follow_rules(on), redis))
                results[f"{name}/{way}"] = s
                render(name, way, s)
    finally:
        await redis.aclose()
    print()
    for name in sets:
        for way in ("alone", "follow the case"):
            s = results[f"{name}/{way}"]
            every = Counter(s["first"]) + Counter(s["later"])
            print(
                f"{name}, {way}: all customer messages to marketing {share(dict(every), 'marketing')}, "
                f"to review {share(dict(every), 'review')}; "
                f"first turns to marketing {share(s['first'], 'marketing')}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
