"""The published contract: /asyncapi.json, and every documented command against its handler.

(Every event and MQTT message of the whole suite is checked against the same document by
the ``event_contract`` fixture in conftest.py; here: the document itself, that the checker
does catch what it must, and the commands.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.events import EVENT_SCHEMA_VERSION, EVENTS
from gateway.upstream.commands import COMMANDS, CommandHandler
from tests import contract
from tests.conftest import ManualClock, Running, config_from, running
from tests.peers import free_port

CLOSED = (free_port(), free_port())
SIM = {
    "barrier": {"driver": "simulated", "travel_s": 0.01},
    "presence_loop": {"driver": "simulated"},
    "safety_loop": {"driver": "simulated"},
}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Running]:
    config = config_from(
        tmp_path,
        site={"id": "north-garage"},
        mqtt={"hosts": [f"127.0.0.1:{CLOSED[0]}", f"[::1]:{CLOSED[1]}"], "protocol": "3.1.1"},
        lanes=[{"id": "exit-1", "kind": "exit", **SIM}],
    )
    # No broker listens there (loopback, free ports): the document is tested, not the link.
    with running(config, ManualClock()) as gw:
        yield gw


def test_served_document_names_the_sites_topics_servers_and_flags(site: Running) -> None:
    doc = httpx.get(f"{site.base_url}/asyncapi.json").json()
    assert doc["asyncapi"] == "2.6.0"
    assert doc["info"]["version"] == f"{EVENT_SCHEMA_VERSION}.0.0"
    assert doc["servers"] == {
        "node1": {"url": f"127.0.0.1:{CLOSED[0]}", "protocol": "mqtt", "protocolVersion": "3.1.1"},
        "node2": {"url": f"[::1]:{CLOSED[1]}", "protocol": "mqtt", "protocolVersion": "3.1.1"},
    }
    channels = doc["channels"]
    for event_type in EVENTS:
        op = channels[f"carpark/north-garage/events/{event_type}"]["subscribe"]
        assert op["bindings"]["mqtt"] == {"qos": 1, "retain": False, "bindingVersion": "0.1.0"}
    for retained in ("status", "info", "state/lanes/{lane_id}", "state/zones/{zone_id}"):
        assert channels[f"carpark/north-garage/{retained}"]["subscribe"]["bindings"]["mqtt"][
            "retain"
        ]
    for name in COMMANDS:
        assert "publish" in channels[f"carpark/north-garage/cmd/{name}"]
    # The schemas are the code's Structs: a field of an event's data is in its schema.
    started = doc["components"]["schemas"]["SessionStarted"]
    assert {"session_id", "ticket_number", "license_plate"} <= set(started["required"])
    assert started["additionalProperties"] is False
    json.dumps(doc)  # plain JSON all the way down


def test_the_checker_refuses_what_the_document_does_not_allow() -> None:
    envelope = {
        "event_id": "e",
        "sequence": 1,
        "type": "user_created",
        "occurred_at": "2026-01-01T00:00:00Z",
        "site_id": "s",
        "data": {"user_id": 1, "email": "a@b", "role": "admin"},
    }
    assert contract.event_problems("user_created", envelope) == []
    extra = {**envelope, "data": {**envelope["data"], "nickname": "x"}}
    assert "nickname" in contract.event_problems("user_created", extra)[0]
    missing = {**envelope, "data": {"user_id": 1}}
    assert contract.event_problems("user_created", missing)
    assert "not registered" in contract.event_problems("brand_new_thing", envelope)[0]
    assert contract.publish_problems("carpark/s/status", b"online", 1, True) == []
    assert "retain" in contract.publish_problems("carpark/s/status", b"online", 1, False)[0]
    assert contract.publish_problems("carpark/s/status", b"sleeping", 1, True)
    assert "does not list" in contract.publish_problems("carpark/s/secret", b"{}", 1, False)[0]
    assert contract.publish_problems("carpark/s/cmd/open_lane", b"{}", 1, False)  # not ours


def handle(gw: Running, name: str, body: dict[str, Any]) -> dict[str, Any]:
    loop, deps = gw.daemon._loop, gw.daemon.deps
    assert loop is not None and deps is not None
    handler = CommandHandler(deps, gw.daemon.lanes)
    future = asyncio.run_coroutine_threadsafe(handler.handle(name, json.dumps(body).encode()), loop)
    return future.result(10)


def test_every_documented_command_is_handled_as_documented(site: Running) -> None:
    assert site.daemon.deps is not None
    handler = CommandHandler(site.daemon.deps, site.daemon.lanes)
    assert handler.names == sorted(COMMANDS)
    # Examples in the document's order; each builds on the ones before (rate 1, plan Fleet).
    order = [
        "upsert_rate",
        "deactivate_rate",
        "upsert_discount",
        "deactivate_discount",
        "upsert_plan",
        "upsert_membership",
        "cancel_membership",
        "deactivate_plan",
        "upsert_plate_list",
        "set_lane_mode",
        "open_lane",
    ]
    assert sorted(order) == sorted(COMMANDS)
    for name in order:
        channel = f"carpark/{{site_id}}/cmd/{name}"
        example = contract.channel_of_name(channel)["message"]["examples"][0]["payload"]
        assert contract.payload_errors(channel, example) == [], name
        result = handle(site, name, example)
        assert result["status"] == "ok", (name, result)
        result_problems = contract.payload_errors("carpark/{site_id}/cmd/{command}/result", result)
        assert result_problems == [], (name, result_problems)
        # What the document refuses (a required field missing, a field of the wrong type),
        # the handler refuses too, with an error result.
        schemas = contract.DOC["components"]["schemas"]
        required = {f for p in COMMANDS[name].payload for f in schemas[p.__name__]["required"]}
        variants = [{k: v for k, v in example.items() if k != f} for f in required - {"request_id"}]
        variants += [{**example, k: [["wrong"]]} for k in example if k != "request_id"]
        for n, broken in enumerate(variants):
            broken["request_id"] = f"{example['request_id']}-broken-{n}"
            if contract.payload_errors(channel, broken):
                refused = handle(site, name, broken)
                assert refused["status"] == "error", (name, broken, refused)
