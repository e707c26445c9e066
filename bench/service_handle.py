"""Messages written to a brand's service handle, routed with and without a rule on the account written to.

The classifier reads words only; where a message was sent is a fact it does not see. Kecht et al.'s
tweets (to AmazonHelp, AppleSupport, SpotifyCares) and IBM's customer-care first turns were all written
to service handles, as a contact centre's own support account receives them. This routes the ones in the
English test sets (the first sample's test thirds, the second and third samples) with the shipped rules,
then with the shipped rules plus the example rule of `rules.yaml` switched on (`service-handle`: what
the classifier calls marketing, written to the service account, goes to customer service), and prints
where the labelled support and marketing messages land.

    .venv/bin/python bench/service_handle.py [--model learned|DIR]
"""

from __future__ import annotations

import argparse
from collections import Counter

from classifier_eval import inbound, routed_queue, test_sets

from classifier.choice import LEARNED, load_model
from router.rules import SHIPPED_RULES, parse_rules

SERVICE_HANDLES = ("twcs-labelled-kecht2021", "ibm-twitter-customer-care-cdp")
ACCOUNT = {"for_user_id": "service"}
RULE = """\
  - name: service-handle
    when:
      account: "x:service"
      category: marketing
    queue: customer-service
    skill_group: general-{language}

"""


def main(argv: list[str] | None = None) -> int:
    """Print where the service handles' labelled messages land with and without the account rule."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=LEARNED)
    args = parser.parse_args(argv)
    model = load_model(args.model)
    text = SHIPPED_RULES.read_text(encoding="utf-8")
    anchor = "# When no rule matched."
    assert text.count(anchor) == 1
    ways = {
        "shipped rules": parse_rules(text),
        "with service-handle": parse_rules(text.replace(anchor, RULE + anchor)),
    }
    items = [i for i in test_sets()["en"] if i.dataset in SERVICE_HANDLES]
    decided = model.classify_many([inbound(i.dataset, i.text) for i in items])
    gold = Counter(i.category for i in items)
    print(f"model {model.version}: {len(items)} messages to service handles ({dict(gold)})")
    for name, rules in ways.items():
        landed: dict[str, Counter[str]] = {"support": Counter(), "marketing": Counter()}
        for k, (item, classification) in enumerate(zip(items, decided, strict=True)):
            landed[item.category][routed_queue(item, classification, rules, k, ACCOUNT).value] += 1
        shares = {
            category: ", ".join(f"{queue} {n / gold[category]:.1%}" for queue, n in sorted(queues.items()))
            for category, queues in landed.items()
        }
        print(f"  {name}: support -> {shares['support']}; marketing -> {shares['marketing']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
