"""What `ehis dead list` shows of a dead-lettered request: what an operator needs, no personal data."""

from __future__ import annotations

import json

from ehis.bus.amqp import topology_names
from ehis.bus.dead_letters import DEAD_ARGUMENTS, describe


def test_a_dead_letter_shows_ids_service_caller_time_and_reason_with_the_fin_masked() -> None:
    body = {"id": "r-1", "service": "din.person", "params": {"fin": "5GXM4DZ", "note": "free text"},
            "requester": {"subsystem": "emek-muqavilesi", "user": "AZ0000001", "purpose": "contract 2025/118"}}
    message = {"routing_key": "din.person", "payload": json.dumps(body),
               "properties": {"correlation_id": "r-1", "user_id": "emek-muqavilesi",
                              "headers": {"x-death": [{"queue": "ehis.din", "reason": "expired", "time": 1_700_000_000}]}}}
    letter = describe(message)
    line = letter.line()
    assert (letter.request_id, letter.service, letter.caller, letter.reason) == ("r-1", "din.person",
                                                                               "emek-muqavilesi", "expired")
    assert "5*****Z" in line and "5GXM4DZ" not in line
    assert "AZ0000001" not in line and "contract" not in line and "free text" not in line
    assert letter.died_at.startswith("2023-11-14")


def test_the_dead_letter_queue_is_bounded() -> None:
    assert DEAD_ARGUMENTS["x-max-length"] > 0 and DEAD_ARGUMENTS["x-message-ttl"] > 0
    assert topology_names("ehis")["dead"] == "ehis.dead"
