"""The simulator responds like Twilio and plays calls from its scenario."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from telephony.scenario import (
    BUSY,
    DETECT_ENABLE,
    DETECT_MESSAGE_END,
    FAX,
    HUMAN,
    MACHINE,
    MACHINE_END_SILENCE,
    MACHINE_START,
    NO_ANSWER,
    Scenario,
    expected_call,
)
from telephony.simulator import Faults, SimulatorConfig
from telephony.simulator.__main__ import build_config, parse_args
from telephony.testing import (
    CallbackReceiver,
    ReceivedCallback,
    SimulatorServer,
    eventually,
)

CALLER = "+12025550199"
NUMBER = "+12025550100"
OTHER_NUMBER = "+12025550101"
ALL_EVENTS = ["initiated", "ringing", "answered", "completed"]
FAST = Scenario(time_scale=0.0)
# Calls that ring for ten minutes of wall-clock time, so a test can act on a
# call before it ends.
RINGING_FOR_LONG = Scenario(numbers={NUMBER: (NO_ANSWER,)}, time_scale=1.0)


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(scenario=FAST)) as server:
        yield server


@pytest.fixture(scope="module")
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_state(simulator: SimulatorServer, receiver: CallbackReceiver) -> None:
    simulator.reset()
    simulator.set_scenario(FAST)
    simulator.set_faults(Faults())
    receiver.clear()


@pytest.fixture
def api(simulator: SimulatorServer) -> Iterator[httpx.Client]:
    config = simulator.config
    base_url = f"{simulator.url}/2010-04-01/Accounts/{config.account_sid}"
    # TCP_NODELAY, or each form body waits for the server's delayed ACK.
    transport = httpx.HTTPTransport(
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    )
    with httpx.Client(
        base_url=base_url,
        auth=(config.account_sid, config.auth_token),
        transport=transport,
        trust_env=False,
    ) as client:
        yield client


def create(
    api: httpx.Client,
    receiver: CallbackReceiver,
    *,
    to: str = NUMBER,
    events: list[str] | None = None,
    **fields: str,
) -> httpx.Response:
    form: dict[str, Any] = {
        "To": to,
        "From": CALLER,
        "Url": "http://127.0.0.1:9/voice",
        "StatusCallback": receiver.url,
        "StatusCallbackEvent": ALL_EVENTS if events is None else events,
        **fields,
    }
    return api.post("/Calls.json", data=form)


def wait_for_callbacks(
    receiver: CallbackReceiver, sid: str, count: int
) -> list[ReceivedCallback]:
    def arrived() -> list[ReceivedCallback]:
        callbacks = receiver.for_call(sid)
        assert len(callbacks) == count, f"{len(callbacks)} of {count} callbacks"
        return callbacks

    return eventually(arrived)


def final_callbacks(receiver: CallbackReceiver, sid: str) -> list[dict[str, str]]:
    return [
        item.params
        for item in receiver.for_call(sid)
        if item.params["CallStatus"] not in ("initiated", "ringing", "in-progress")
    ]


def test_create_returns_queued_call(api: httpx.Client, receiver: CallbackReceiver):
    response = create(api, receiver)

    body = response.json()
    assert response.status_code == 201
    assert re.fullmatch(r"CA[0-9a-f]{32}", body["sid"])
    assert body["status"] == "queued"
    assert body["to"] == NUMBER
    assert body["from"] == CALLER
    assert parsedate_to_datetime(body["date_created"]).tzinfo is not None
    assert body["uri"].endswith(f"/Calls/{body['sid']}.json")


def test_create_wrong_token_returns_401(
    simulator: SimulatorServer, receiver: CallbackReceiver
):
    url = f"{simulator.url}/2010-04-01/Accounts/{simulator.config.account_sid}"
    with httpx.Client(base_url=url, auth=("AC" + "1" * 32, "wrong")) as client:
        response = create(client, receiver)

    assert response.status_code == 401
    assert response.json()["code"] == 20003
    assert simulator.stats()["calls_created"] == 0


def test_create_without_to_returns_21201(api: httpx.Client):
    response = api.post("/Calls.json", data={"From": CALLER, "Url": "http://x/"})

    assert response.status_code == 400
    assert response.json()["code"] == 21201


def test_create_to_invalid_number_returns_21211(
    api: httpx.Client, receiver: CallbackReceiver, simulator: SimulatorServer
):
    response = create(api, receiver, to="12345")

    assert response.status_code == 400
    assert response.json()["code"] == 21211
    assert simulator.stats()["calls_created"] == 0


def test_callbacks_arrive_signed_in_sequence(
    api: httpx.Client, receiver: CallbackReceiver, simulator: SimulatorServer
):
    sid = create(api, receiver).json()["sid"]

    callbacks = wait_for_callbacks(receiver, sid, 4)

    validator = RequestValidator(simulator.config.auth_token)
    for item in callbacks:
        assert validator.validate(item.url, item.params, item.signature)
    assert [item.params["SequenceNumber"] for item in callbacks] == ["0", "1", "2", "3"]
    assert [item.params["CallStatus"] for item in callbacks] == [
        "initiated",
        "ringing",
        "in-progress",
        "completed",
    ]


def test_callback_params_match_twilio(api: httpx.Client, receiver: CallbackReceiver):
    sid = create(api, receiver, MachineDetection=DETECT_ENABLE).json()["sid"]

    final = eventually(lambda: final_callbacks(receiver, sid))[0]

    assert final["CallSid"] == sid
    assert final["To"] == NUMBER
    assert final["From"] == CALLER
    assert final["Direction"] == "outbound-api"
    assert final["ApiVersion"] == "2010-04-01"
    assert final["CallbackSource"] == "call-progress-events"
    assert final["AnsweredBy"] == HUMAN
    assert final["CallDuration"] == "90"
    assert final["Duration"] == "2"
    assert final["SipResponseCode"] == "200"
    assert parsedate_to_datetime(final["Timestamp"]).tzinfo is not None


def test_callbacks_only_for_requested_events(
    api: httpx.Client, receiver: CallbackReceiver
):
    sid = create(api, receiver, events=["answered"]).json()["sid"]

    eventually(lambda: final_callbacks(receiver, sid))

    statuses = [item.params["CallStatus"] for item in receiver.for_call(sid)]
    sequence = [item.params["SequenceNumber"] for item in receiver.for_call(sid)]
    assert statuses == ["in-progress", "completed"]
    assert sequence == ["0", "1"]


def test_callback_by_get_is_signed_over_query(
    api: httpx.Client, receiver: CallbackReceiver, simulator: SimulatorServer
):
    sid = create(api, receiver, StatusCallbackMethod="GET").json()["sid"]

    final = eventually(
        lambda: [
            c for c in receiver.for_call(sid) if c.params["CallStatus"] == "completed"
        ]
    )[0]

    validator = RequestValidator(simulator.config.auth_token)
    assert final.method == "GET"
    assert validator.validate(final.url, {}, final.signature)


def test_callback_retried_while_receiver_fails(
    api: httpx.Client, receiver: CallbackReceiver, simulator: SimulatorServer
):
    receiver.fail_next(2)

    sid = create(api, receiver).json()["sid"]

    wait_for_callbacks(receiver, sid, 4)
    assert simulator.stats()["callbacks"]["retried"] == 2


def test_duplicate_callbacks_fault_sends_each_twice(
    api: httpx.Client, receiver: CallbackReceiver, simulator: SimulatorServer
):
    simulator.set_faults(Faults(duplicate_callbacks=1.0))

    sid = create(api, receiver).json()["sid"]

    callbacks = wait_for_callbacks(receiver, sid, 8)
    numbers = [item.params["SequenceNumber"] for item in callbacks]
    assert sorted(numbers) == ["0", "0", "1", "1", "2", "2", "3", "3"]


def test_reorder_callbacks_fault_sends_later_first(
    api: httpx.Client, receiver: CallbackReceiver, simulator: SimulatorServer
):
    simulator.set_faults(Faults(reorder_callbacks=1.0))

    sid = create(api, receiver).json()["sid"]

    callbacks = wait_for_callbacks(receiver, sid, 4)
    numbers = [int(item.params["SequenceNumber"]) for item in callbacks]
    assert numbers == [1, 0, 3, 2]


def test_drop_final_callback_fault_keeps_fetch_final(
    api: httpx.Client, receiver: CallbackReceiver, simulator: SimulatorServer
):
    simulator.set_faults(Faults(drop_final_callback=1.0))

    sid = create(api, receiver).json()["sid"]

    eventually(lambda: api.get(f"/Calls/{sid}.json").json()["status"] == "completed")
    statuses = [item.params["CallStatus"] for item in receiver.for_call(sid)]
    assert "completed" not in statuses
    assert simulator.stats()["callbacks"]["dropped"] == 1


def test_rate_limit_count_rejects_next_creates(
    api: httpx.Client, receiver: CallbackReceiver, simulator: SimulatorServer
):
    simulator.set_faults(Faults(rate_limit_429_count=2))

    responses = [create(api, receiver) for _ in range(3)]

    assert [r.status_code for r in responses] == [429, 429, 201]
    assert responses[0].json()["code"] == 20429
    assert simulator.stats()["calls_created"] == 1


def test_max_calls_per_second_keeps_call_queued(
    api: httpx.Client, receiver: CallbackReceiver, simulator: SimulatorServer
):
    simulator.set_faults(Faults(max_calls_per_second=0.5))

    first = create(api, receiver).json()
    second = create(api, receiver).json()

    assert first["queue_time"] == "0"
    assert int(second["queue_time"]) > 0
    assert api.get(f"/Calls/{second['sid']}.json").json()["status"] == "queued"
    eventually(lambda: final_callbacks(receiver, second["sid"]), timeout=15)


def test_live_call_counters_track_overlap(
    api: httpx.Client, receiver: CallbackReceiver, simulator: SimulatorServer
):
    simulator.set_scenario(RINGING_FOR_LONG)
    sids = [create(api, receiver, Timeout="600").json()["sid"] for _ in range(5)]
    during = simulator.stats()

    for sid in sids:
        api.post(f"/Calls/{sid}.json", data={"Status": "canceled"})
    create(api, receiver, Timeout="600")
    after = simulator.stats()

    assert during["live_calls"] == 5
    assert after["live_calls"] == 1
    assert after["max_live_calls"] == 5


def test_cancel_ringing_call_reports_canceled(
    api: httpx.Client, receiver: CallbackReceiver, simulator: SimulatorServer
):
    simulator.set_scenario(RINGING_FOR_LONG)
    sid = create(api, receiver, Timeout="600").json()["sid"]

    response = api.post(f"/Calls/{sid}.json", data={"Status": "canceled"})

    assert response.json()["status"] == "canceled"
    final = eventually(lambda: final_callbacks(receiver, sid))[0]
    assert final["CallStatus"] == "canceled"


def test_update_ended_call_returns_21220(api: httpx.Client, receiver: CallbackReceiver):
    sid = create(api, receiver).json()["sid"]
    eventually(lambda: final_callbacks(receiver, sid))

    response = api.post(f"/Calls/{sid}.json", data={"Status": "canceled"})

    assert response.status_code == 400
    assert response.json()["code"] == 21220


def test_fetch_unknown_call_returns_20404(api: httpx.Client):
    response = api.get("/Calls/CA" + "0" * 32 + ".json")

    assert response.status_code == 404
    assert response.json()["code"] == 20404


def test_list_filters_by_number_across_pages(
    api: httpx.Client, receiver: CallbackReceiver, simulator: SimulatorServer
):
    for _ in range(5):
        create(api, receiver, to=NUMBER)
    create(api, receiver, to=OTHER_NUMBER)

    first = api.get("/Calls.json", params={"To": NUMBER, "PageSize": 2}).json()
    second = api.get(simulator.url + first["next_page_uri"]).json()

    assert [call["to"] for call in first["calls"]] == [NUMBER, NUMBER]
    assert len(second["calls"]) == 2
    assert {c["sid"] for c in first["calls"]}.isdisjoint(
        c["sid"] for c in second["calls"]
    )


def test_list_start_time_compares_dates_only(
    api: httpx.Client, receiver: CallbackReceiver
):
    sid = create(api, receiver).json()["sid"]
    eventually(lambda: final_callbacks(receiver, sid))
    today = datetime.now(UTC)
    tomorrow = today + timedelta(days=1)

    later_today = api.get(
        "/Calls.json", params={"StartTime>": (today + timedelta(minutes=1)).isoformat()}
    ).json()
    next_day = api.get(
        "/Calls.json", params={"StartTime>": tomorrow.date().isoformat()}
    )

    assert [call["sid"] for call in later_today["calls"]] == [sid]
    assert next_day.json()["calls"] == []


def test_list_bad_start_time_returns_400(api: httpx.Client):
    response = api.get("/Calls.json", params={"StartTime>": "yesterday"})

    assert response.status_code == 400


def test_reset_forgets_calls_and_counters(
    api: httpx.Client, receiver: CallbackReceiver, simulator: SimulatorServer
):
    create(api, receiver)

    simulator.reset()

    stats = simulator.stats()
    assert stats["calls_created"] == 0
    assert stats["max_live_calls"] == 0
    assert stats["creates_by_number"] == {}
    assert simulator.calls() == []


def test_put_scenario_changes_next_outcome(
    api: httpx.Client, receiver: CallbackReceiver, simulator: SimulatorServer
):
    simulator.set_scenario(Scenario(numbers={NUMBER: (BUSY,)}, time_scale=0.0))

    sid = create(api, receiver).json()["sid"]

    final = eventually(lambda: final_callbacks(receiver, sid))[0]
    assert final["CallStatus"] == "busy"
    assert final["SipResponseCode"] == "486"


def test_put_faults_unknown_key_returns_400(simulator: SimulatorServer):
    response = httpx.put(
        f"{simulator.url}/_sim/faults", json={"lose_everything": 1}, trust_env=False
    )

    assert response.status_code == 400
    assert "lose_everything" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"numbers": [NUMBER]},
        {"rates": {"voicemail": 1.0}},
        {"rates": {HUMAN: 0.0}},
        {"time_scale": -1},
    ],
)
def test_put_invalid_scenario_returns_400(
    simulator: SimulatorServer, body: dict[str, Any]
):
    response = httpx.put(f"{simulator.url}/_sim/scenario", json=body, trust_env=False)

    assert response.status_code == 400
    assert response.json()["detail"].startswith("scenario:")


def test_calls_list_reports_outcome(
    api: httpx.Client, receiver: CallbackReceiver, simulator: SimulatorServer
):
    simulator.set_scenario(Scenario(numbers={NUMBER: (MACHINE,)}, time_scale=0.0))
    sid = create(api, receiver, MachineDetection=DETECT_MESSAGE_END).json()["sid"]

    eventually(lambda: final_callbacks(receiver, sid))

    summary = simulator.calls()[0]
    assert summary["sid"] == sid
    assert summary["outcome"] == MACHINE
    assert summary["answered_by"] == "machine_end_beep"
    assert summary["status"] == "completed"


def test_many_concurrent_calls_all_finish(
    api: httpx.Client, receiver: CallbackReceiver, simulator: SimulatorServer
):
    numbers = [f"+1303555{index:04d}" for index in range(300)]

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda n: create(api, receiver, to=n), numbers))

    assert {response.status_code for response in responses} == {201}
    eventually(lambda: len(receiver.received()) == 4 * len(numbers), timeout=60)
    stats = simulator.stats()
    assert stats["live_calls"] == 0
    assert stats["calls_by_status"] == {"completed": len(numbers)}
    assert 1 <= stats["max_live_calls"] <= len(numbers)


def test_scenario_sequence_repeats_last_entry():
    scenario = Scenario(numbers={NUMBER: (NO_ANSWER, BUSY, HUMAN)})

    outcomes = [scenario.outcome_for(NUMBER, index) for index in range(5)]

    assert outcomes == [NO_ANSWER, BUSY, HUMAN, HUMAN, HUMAN]


def test_scenario_rates_depend_only_on_number_and_index():
    rates = {HUMAN: 0.5, NO_ANSWER: 0.2, BUSY: 0.1, MACHINE: 0.15, "failed": 0.05}
    scenario = Scenario(rates=rates, seed=7)
    keys = [(f"+1202555{n:04d}", attempt) for n in range(200) for attempt in range(3)]

    forward = {key: scenario.outcome_for(*key) for key in keys}
    backward = {key: scenario.outcome_for(*key) for key in reversed(keys)}

    assert forward == backward
    assert 0.4 < list(forward.values()).count(HUMAN) / len(keys) < 0.6


def test_scenario_seed_changes_draws():
    rates = {HUMAN: 0.5, NO_ANSWER: 0.5}
    numbers = [f"+1202555{n:04d}" for n in range(50)]

    first = [Scenario(rates=rates, seed=1).outcome_for(n, 0) for n in numbers]
    second = [Scenario(rates=rates, seed=2).outcome_for(n, 0) for n in numbers]

    assert first != second


def test_scenario_invalid_pattern_marks_number():
    scenario = Scenario(invalid_patterns=(r"\+1555\d+",))

    assert scenario.outcome_for("+15550001111", 0) == "invalid"
    assert scenario.outcome_for(NUMBER, 0) == HUMAN


def test_scenario_unknown_outcome_rejected():
    with pytest.raises(ValueError, match="unknown outcomes"):
        Scenario.from_dict({"numbers": {NUMBER: ["voicemail"]}})


def test_scenario_round_trips_through_dict():
    scenario = Scenario(
        numbers={NUMBER: (BUSY, HUMAN)},
        invalid_numbers=frozenset({OTHER_NUMBER}),
        ring_seconds={HUMAN: 3.0},
        time_scale=0.01,
    )

    assert Scenario.from_dict(json.loads(json.dumps(scenario.to_dict()))) == scenario


@pytest.mark.parametrize(
    ("outcome", "detection", "answered_by"),
    [
        (MACHINE, DETECT_ENABLE, MACHINE_START),
        (MACHINE, DETECT_MESSAGE_END, "machine_end_beep"),
        (MACHINE_END_SILENCE, DETECT_MESSAGE_END, MACHINE_END_SILENCE),
        (FAX, DETECT_ENABLE, FAX),
        (HUMAN, None, None),
    ],
)
def test_expected_call_answered_by(
    outcome: str, detection: str | None, answered_by: str | None
):
    scenario = Scenario(numbers={NUMBER: (outcome,)})

    expected = expected_call(scenario, NUMBER, 0, machine_detection=detection)

    assert expected.answered_by == answered_by


def test_expected_call_send_digits_hides_answered_by():
    expected = expected_call(Scenario(), NUMBER, 0, send_digits=True)

    assert expected.answered_by is None


def test_expected_call_ring_past_timeout_is_no_answer():
    scenario = Scenario(ring_seconds={HUMAN: 30.0})

    expected = expected_call(scenario, NUMBER, 0, ring_timeout=25)

    assert expected.status == NO_ANSWER
    assert expected.ring_seconds == 25.0


def test_cli_reads_scenario_file(tmp_path: Path):
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"numbers": {NUMBER: ["busy"]}, "time_scale": 0.5}))

    args = parse_args(["--port", "9000", "--scenario", str(path), "--time-scale", "0"])
    config = build_config(args)

    assert args.port == 9000
    assert config.scenario.numbers == {NUMBER: (BUSY,)}
    assert config.scenario.time_scale == 0.0


def test_time_limit_cuts_talk(
    api: httpx.Client, receiver: CallbackReceiver, simulator: SimulatorServer
):
    simulator.set_scenario(
        Scenario(numbers={NUMBER: (HUMAN,)}, talk_seconds={HUMAN: 30}, time_scale=0.0)
    )
    sid = create(api, receiver, TimeLimit="5").json()["sid"]

    final = eventually(lambda: final_callbacks(receiver, sid) or None)

    assert final[0]["CallStatus"] == "completed"
    assert final[0]["CallDuration"] == "5"


def test_invalid_time_limit_returns_400(api: httpx.Client, receiver: CallbackReceiver):
    response = create(api, receiver, TimeLimit="0")

    assert response.status_code == 400
    assert "TimeLimit" in response.json()["message"]
