"""The checked-in AsyncAPI document is exactly what the code's models generate."""

from __future__ import annotations

import json

from edged.contract import asyncapi
from edged.contract.bodies import MESSAGES


def test_the_checked_in_document_is_up_to_date() -> None:
    assert asyncapi.DOCUMENT.read_text(encoding="utf-8") == asyncapi.render(), (
        "edged/contract/asyncapi.json is stale: run `python -m edged.contract.asyncapi`"
    )


def test_every_message_type_is_in_the_document_with_its_body_schema() -> None:
    doc = json.loads(asyncapi.DOCUMENT.read_text(encoding="utf-8"))
    assert doc["asyncapi"].startswith("3.")
    names = {m["name"] for m in doc["components"]["messages"].values()}
    assert names == set(MESSAGES)
    result = doc["components"]["schemas"]["PayResult"]
    # integer fen, absent only for NOT_FOUND (the backend knows no amount for a trade it
    # does not know)
    amount = result["properties"]["amount_fen"]["anyOf"]
    assert {"exclusiveMinimum": 0, "maximum": 100_000_000, "type": "integer"} in amount
    assert {"type": "null"} in amount
    assert "SUCCESS" in json.dumps(doc["components"]["schemas"]["TradeState"])
    assert "NOT_FOUND" in json.dumps(doc["components"]["schemas"]["TradeState"])
    assert doc["channels"]["cmd_pay"]["address"] == "edge/v1/{site}/{device}/cmd/pay"
