"""The AsyncAPI document as the tests' judge: every event and every MQTT message checked.

``tests/conftest.py`` records, in every test, each event appended to an outbox (with the
envelope the relays send) and each message the gateway publishes through aiomqtt, and
checks them here at the end of the test, against the same document ``/asyncapi.json``
serves. An event type missing from :mod:`gateway.events` fails the test that produced it
with a message saying where to register it.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from jsonschema import Draft7Validator

from gateway.events import EVENTS
from gateway.upstream.asyncapi import document

DOC = document()  # channels under carpark/{site_id}


@cache
def _channels() -> list[tuple[re.Pattern[str], str, dict[str, Any]]]:
    out = []
    for name, channel in DOC["channels"].items():
        pattern = re.escape(name)
        pattern = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", pattern)
        if "subscribe" in channel:  # what the gateway publishes
            out.append((re.compile(f"^{pattern}$"), name, channel["subscribe"]))
    return out


def channel_of(topic: str) -> tuple[str, dict[str, Any]] | None:
    """The document's channel (and its operation) the gateway may publish ``topic`` on."""
    for pattern, name, op in _channels():
        if pattern.match(topic):
            return name, op
    return None


@cache
def _validator(channel: str) -> Draft7Validator:
    op = channel_of_name(channel)
    schema = {**op["message"]["payload"], "components": DOC["components"]}
    return Draft7Validator(schema)


def channel_of_name(channel: str) -> dict[str, Any]:
    c = DOC["channels"][channel]
    return dict(c.get("subscribe") or c["publish"])


def payload_errors(channel: str, payload: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in _validator(channel).iter_errors(payload)
    ]


def event_problems(event_type: str, envelope: dict[str, Any]) -> list[str]:
    if event_type not in EVENTS:
        return [
            f"event type {event_type!r} is not registered: add its data Struct to"
            " gateway/events.py (see the module docstring)"
        ]
    channel = f"carpark/{{site_id}}/events/{event_type}"
    return [f"{event_type}: {err}" for err in payload_errors(channel, envelope)]


RESULT_CHANNEL = "carpark/{site_id}/cmd/{command}/result"


def publish_problems(
    topic: str, payload: bytes, qos: int, retain: bool, response: bool = False
) -> list[str]:
    """``response``: an MQTT 5 reply on the topic the request named (any topic; the
    payload is a command result)."""
    found = (RESULT_CHANNEL, channel_of_name(RESULT_CHANNEL)) if response else channel_of(topic)
    if found is None:
        return [f"{topic}: published on a topic the AsyncAPI document does not list"]
    name, op = found
    problems = []
    binding = op["bindings"]["mqtt"]
    if (binding["qos"], binding["retain"]) != (qos, retain):
        problems.append(
            f"{topic}: published with qos={qos} retain={retain}, documented"
            f" qos={binding['qos']} retain={binding['retain']}"
        )
    if op["message"].get("contentType") == "text/plain":
        value: Any = payload.decode()
    else:
        try:
            value = json.loads(payload)
        except ValueError:
            return [*problems, f"{topic}: payload is not JSON"]
    problems += [f"{topic}: {err}" for err in payload_errors(name, value)]
    return problems
