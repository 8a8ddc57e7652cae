"""The seed's core flow over HTTP: entry, fee, payment, exit."""

from __future__ import annotations

import re


def test_entry_fee_pay_exit(gw, site, operator, alice, anon):
    r = operator.post(
        "/sessions/entry", json={"license_plate": "abc-123", "entry_gate": "Main Entrance"}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert re.fullmatch(r"TKT-[0-9A-F]{12}", body["ticket_number"])
    assert body["session"]["status"] == "active"
    assert body["session"]["vehicle"]["license_plate"] == "ABC123"
    assert body["space_assigned"]["zone"]["level"]["name"] == "Level 1"
    sid = body["session"]["id"]

    gw.clock.advance(minutes=127)
    fee = anon.get(f"/sessions/{sid}/calculate-fee").json()
    assert fee["duration_minutes"] == 127
    assert fee["base_fee"] == 15.0 and fee["total"] == 15.0
    assert fee["breakdown"] == [{"description": "Parking (3 hour(s) @ $5/hr)", "amount": 15.0}]

    r = operator.post("/sessions/exit", json={"ticket_number": body["ticket_number"]})
    assert r.status_code == 402, r.text
    assert r.json()["amount_due"] == 15.0

    r = alice.post("/payments", json={"session_id": sid, "payment_method": "card", "amount": 15.0})
    assert r.status_code == 201, r.text
    assert r.json()["total_amount"] == 15.0

    v = anon.post("/payments/validate-exit", json={"ticket_number": body["ticket_number"]}).json()
    assert v["is_paid"] and v["can_exit"] and v["time_remaining_minutes"] == 15

    r = operator.post(
        "/sessions/exit", json={"ticket_number": body["ticket_number"], "exit_gate": "Exit A"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["session"]["status"] == "completed"
    assert r.json()["payment_due"] == 0.0
