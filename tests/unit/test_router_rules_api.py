"""The router's rules endpoints: what is in force, a dry run, and reloads that never break routing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from router.app import bundled_rules, create_app
from router.config import Settings

SAMPLE = {
    "channel": "x",
    "text": "Je veux être remboursée, vous m'avez facturé deux fois",
    "classification": {
        "category": "support",
        "intent": "billing",
        "is_complaint": True,
        "language": "fr",
        "sentiment": "negative",
        "sentiment_score": -0.6,
        "priority": "P2",
        "reply_privately": True,
        "confidence": 0.91,
        "model_version": "sample",
    },
}


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(bundled_rules())
    return path


@pytest.fixture
async def client(rules_file: Path):
    app = create_app(Settings(rules_file=str(rules_file)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router") as c:
        yield c


async def test_the_rules_in_force_name_their_source_and_order(client, rules_file: Path):
    body = (await client.get("/v1/rules")).json()
    assert body["source"] == str(rules_file)
    assert body["rules"]["rules"]
    assert body["last_error"] is None


async def test_a_dry_run_says_where_a_sample_would_go(client):
    body = (await client.post("/v1/rules/test", json=SAMPLE)).json()
    assert body["queue"] == "customer-service"
    assert body["skill_group"] == "billing-fr"


async def test_a_dry_run_takes_the_account_written_to(client, rules_file: Path):
    # The shipped example rule for a service handle, switched on with an account of this test's own.
    text = rules_file.read_text()
    rule = "  # - name: service-handle"
    on = "\n".join(
        line.replace("  # ", "  ", 1) if line.startswith("  #  ") or line.startswith(rule) else line
        for line in text.splitlines()
    )
    rules_file.write_text(on.replace('["x:1234567890", "email:sav@brand.example"]', '"x:1234567890"'))
    assert (await client.post("/v1/rules/reload")).status_code == 200
    praise = {
        **SAMPLE,
        "text": "thanks, all sorted!",
        "classification": {
            **SAMPLE["classification"],
            "category": "marketing",
            "intent": "praise",
            "is_complaint": False,
            "confidence": 0.97,
        },
    }

    to_service = (await client.post("/v1/rules/test", json={**praise, "account": "1234567890"})).json()
    to_brand = (await client.post("/v1/rules/test", json={**praise, "account": "999"})).json()

    assert (to_service["rule"], to_service["queue"]) == ("service-handle", "customer-service")
    assert to_brand["queue"] == "marketing"


async def test_an_unsure_sample_goes_to_review(client):
    unsure = {**SAMPLE, "classification": {**SAMPLE["classification"], "confidence": 0.2}}
    assert (await client.post("/v1/rules/test", json=unsure)).json()["queue"] == "review"


async def test_a_dry_run_of_a_later_message_keeps_its_cases_skill_group_unless_it_escalates(client):
    chatter = {
        **SAMPLE,
        "text": "merci !",
        "classification": {
            **SAMPLE["classification"],
            **{"category": "marketing", "intent": "chatter", "is_complaint": False, "priority": "P4"},
            **{"sentiment": "positive", "sentiment_score": 0.5, "reply_privately": False},
        },
    }
    followed = {**chatter, "case_queue": "customer-service", "case_skill_group": "billing-fr"}
    body = (await client.post("/v1/rules/test", json=followed)).json()
    assert (body["queue"], body["rule"], body["skill_group"]) == (
        "customer-service",
        "follow-case",
        "billing-fr",
    )
    # A message the rules send to customer service moves a marketing case there, under its own rule.
    escalating = {**SAMPLE, "case_queue": "marketing", "case_skill_group": "press"}
    body = (await client.post("/v1/rules/test", json=escalating)).json()
    assert (body["queue"], body["skill_group"]) == ("customer-service", "billing-fr")
    assert "escalated" in body["tags"]


async def test_a_dry_run_refuses_a_cases_skill_group_without_its_queue(client):
    response = await client.post("/v1/rules/test", json={**SAMPLE, "case_skill_group": "billing-fr"})
    assert response.status_code == 422
    assert "give case_queue too" in response.text


async def test_an_invalid_file_is_rejected_with_its_reason_and_the_previous_rules_stay(
    client, rules_file: Path
):
    before = (await client.get("/v1/rules")).json()
    rules_file.write_text(bundled_rules().replace("queue: marketing", "queue: nowhere", 1))
    response = await client.post("/v1/rules/reload")
    assert response.status_code == 422
    assert "'press'" in response.json()["detail"] and "queue" in response.json()["detail"]
    after = (await client.get("/v1/rules")).json()
    assert after["digest"] == before["digest"]
    assert after["last_error"]
    assert (await client.post("/v1/rules/test", json=SAMPLE)).json()["queue"] == "customer-service"


async def test_a_valid_change_is_live_after_reload(client, rules_file: Path):
    rules_file.write_text(
        bundled_rules().replace("review_below_confidence: ", "review_below_confidence: 0.95 #", 1)
    )
    assert (await client.post("/v1/rules/reload")).status_code == 200
    assert (await client.post("/v1/rules/test", json=SAMPLE)).json()["queue"] == "review"
    metrics = (await client.get("/metrics")).text
    assert 'switchboard_router_rules_reloads_total{outcome="loaded"} 1.0' in metrics


def test_the_router_refuses_to_start_on_an_invalid_rules_file(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("rules: [")
    with pytest.raises(Exception, match="YAML"):
        create_app(Settings(rules_file=str(path)))
