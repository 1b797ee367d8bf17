"""Generate the AsyncAPI document of the contract from the models the code uses.

The mini-program backend team builds against `edged/contract/asyncapi.json`, so it must be
what the daemon really sends and accepts: the envelope model, the body models in bodies.py
and the topics in topics.py are the only inputs. A test fails when the checked-in file is
out of date; regenerate it with

    python -m edged.contract.asyncapi            # writes edged/contract/asyncapi.json
    python -m edged.contract.asyncapi --check    # exits 1 when it is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from edged.contract.bodies import MESSAGES, Body
from edged.contract.envelope import Envelope
from edged.contract.topics import FLEET_SCOPE, PREFIX, SITE_SCOPE, UPLINK_RULES, Downlink, Uplink

DOCUMENT = Path(__file__).with_name("asyncapi.json")
REF = "#/components/schemas/{model}"


def build() -> dict[str, Any]:
    bodies: list[type[Body]] = []
    for _kind, model, _doc in MESSAGES.values():
        if model not in bodies:
            bodies.append(model)
    _, schema_doc = models_json_schema(
        [(Envelope, "validation"), *[(m, "validation") for m in bodies]], ref_template=REF
    )
    schemas: dict[str, Any] = dict(sorted(schema_doc.get("$defs", {}).items()))
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for type_name, (kind, model, doc) in MESSAGES.items():
        message_id = type_name.replace(".", "_")
        envelope_id = f"Envelope_{message_id}"
        schemas[envelope_id] = {
            "allOf": [
                {"$ref": REF.format(model="Envelope")},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": type_name},
                        "body": {"$ref": REF.format(model=model.__name__)},
                    },
                    "required": ["type", "body"]
                    + (["exp", "sig"] if isinstance(kind, Downlink) else []),
                },
            ]
        }
        messages[message_id] = {
            "name": type_name,
            "title": type_name,
            "summary": " ".join(doc.split()),
            "contentType": "application/json",
            "payload": {"$ref": REF.format(model=envelope_id)},
        }
        channel_id = _channel_id(kind)
        channel = channels.setdefault(channel_id, _channel(kind))
        channel["messages"][message_id] = {"$ref": f"#/components/messages/{message_id}"}
        op_id = ("send_" if isinstance(kind, Uplink) else "receive_") + channel_id
        operation = operations.setdefault(
            op_id,
            {
                "action": "send" if isinstance(kind, Uplink) else "receive",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "summary": "The device publishes" if isinstance(kind, Uplink) else
                "The device subscribes; every message is Ed25519-signed by the backend",
                "messages": [],
            },
        )  # fmt: skip
        operation["messages"].append({"$ref": f"#/channels/{channel_id}/messages/{message_id}"})
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "edged device contract",
            "version": "1.0.0",
            "description": (
                "MQTT contract between an edged kiosk and the mini-program backend. Every "
                "payload is one JSON envelope; downlink envelopes carry `exp` and an Ed25519 "
                "`sig` over the canonical JSON (keys sorted, no spaces) without `sig`. Money "
                "is integer fen. Backends subscribe with `$share/backend/edge/v1/+/+/evt/#`."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def _channel_id(kind: Uplink | Downlink) -> str:
    return kind.value.replace("/", "_")


def _channel(kind: Uplink | Downlink) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "site": {"description": "Site (store) id"},
        "device": {"description": "Device id"},
    }
    address = f"{PREFIX}/{{site}}/{{device}}/{kind.value}"
    if kind is Uplink.RESPONSE:
        address += "/{request_id}"
        parameters["request_id"] = {"description": "The request_id of the command answered"}
    channel: dict[str, Any] = {"address": address, "parameters": parameters, "messages": {}}
    if kind is Downlink.CFG:
        channel["description"] = (
            "Retained desired config. The same message type arrives at three scopes: "
            f"`{PREFIX}/{{site}}/{{device}}/cfg` (envelope device = the device id), "
            f"`{PREFIX}/{{site}}/{SITE_SCOPE}/cfg` (device = `{{site}}/{SITE_SCOPE}`) and "
            f"`{PREFIX}/{FLEET_SCOPE}/cfg` (device = `{FLEET_SCOPE}`)."
        )
    if isinstance(kind, Uplink):
        rule = UPLINK_RULES[kind]
        channel["bindings"] = {"mqtt": {"qos": rule.qos, "retain": rule.retain}}
    else:
        retained = kind is Downlink.CFG
        channel["bindings"] = {"mqtt": {"qos": 1, "retain": retained}}
    return channel


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write or check edged/contract/asyncapi.json")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = DOCUMENT.read_text(encoding="utf-8") if DOCUMENT.exists() else ""
        if current != text:
            print(f"{DOCUMENT} is out of date: run python -m edged.contract.asyncapi")
            return 1
        return 0
    DOCUMENT.write_text(text, encoding="utf-8")
    print(f"wrote {DOCUMENT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
