"""TelephonyProvider drives the real twilio SDK against the simulator."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from telephony.provider import (
    EXTENSION_PAUSE,
    PermanentNumberError,
    ProviderBusy,
    ProviderError,
    ProviderUnavailable,
    TelephonyProvider,
    classify_error,
    extension_digits,
)
from telephony.scenario import (
    BUSY,
    FAX,
    HUMAN,
    MACHINE,
    MACHINE_START,
    NO_ANSWER,
    Scenario,
    expected_call,
)
from telephony.simulator import Faults, SimulatorConfig
from telephony.testing import CallbackReceiver, SimulatorServer, eventually

CALLER = "+12025550199"
NUMBER = "+12025550100"
OTHER_NUMBER = "+12025550101"
FAST = Scenario(time_scale=0.0)
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
def provider(simulator: SimulatorServer) -> TelephonyProvider:
    return simulator.provider(timeout_seconds=5.0)


def dial(
    provider: TelephonyProvider,
    receiver: CallbackReceiver,
    *,
    to: str = NUMBER,
    ring_timeout: int = 25,
    machine_detection: bool = True,
    send_digits: str | None = None,
    time_limit: int | None = None,
) -> str:
    return provider.create_call(
        to=to,
        from_=CALLER,
        voice_url="http://127.0.0.1:9/voice",
        status_callback=receiver.url,
        ring_timeout=ring_timeout,
        machine_detection=machine_detection,
        send_digits=send_digits,
        time_limit=time_limit,
    )


def wait_until_final(provider: TelephonyProvider, sid: str) -> str:
    final = ("completed", "busy", "failed", "no-answer", "canceled")
    return eventually(lambda: provider.fetch_call(sid).status in final and sid)


def test_create_call_sends_twilio_parameters(
    provider: TelephonyProvider, receiver: CallbackReceiver, simulator: SimulatorServer
):
    sid = dial(provider, receiver, ring_timeout=25, send_digits="wwww12")

    summary = simulator.calls()[0]
    assert summary["sid"] == sid
    assert summary["timeout"] == 25
    assert summary["machine_detection"] == "Enable"
    assert summary["send_digits"] == "wwww12"
    assert summary["time_limit"] is None


def test_create_call_sends_time_limit(
    provider: TelephonyProvider, receiver: CallbackReceiver, simulator: SimulatorServer
):
    dial(provider, receiver, time_limit=120)

    assert simulator.calls()[0]["time_limit"] == 120


def test_create_call_requests_every_progress_event(
    provider: TelephonyProvider, receiver: CallbackReceiver
):
    sid = dial(provider, receiver)

    statuses = eventually(
        lambda: (
            [c.params["CallStatus"] for c in receiver.for_call(sid)]
            if len(receiver.for_call(sid)) == 4
            else None
        )
    )
    assert statuses == ["initiated", "ringing", "in-progress", "completed"]


def test_sequence_outcomes_match_scenario(
    provider: TelephonyProvider, receiver: CallbackReceiver, simulator: SimulatorServer
):
    scenario = Scenario(numbers={NUMBER: (NO_ANSWER, BUSY, HUMAN)}, time_scale=0.0)
    simulator.set_scenario(scenario)

    results = []
    for attempt in range(3):
        sid = wait_until_final(provider, dial(provider, receiver))
        call = provider.fetch_call(sid)
        expected = expected_call(scenario, NUMBER, attempt, ring_timeout=25)
        results.append((call.status, call.answered_by, expected))

    for status, answered_by, expected in results:
        assert status == expected.status
        assert answered_by == expected.answered_by
    assert [status for status, _, _ in results] == ["no-answer", "busy", "completed"]


def test_invalid_number_raises_permanent_error(
    provider: TelephonyProvider, receiver: CallbackReceiver, simulator: SimulatorServer
):
    simulator.set_scenario(Scenario(invalid_numbers=frozenset({NUMBER})))

    with pytest.raises(PermanentNumberError) as raised:
        dial(provider, receiver)

    assert raised.value.code == 21211
    assert NUMBER not in raised.value.message
    assert simulator.stats()["calls_created"] == 0


def test_rate_limit_raises_busy_and_creates_nothing(
    provider: TelephonyProvider, receiver: CallbackReceiver, simulator: SimulatorServer
):
    simulator.set_faults(Faults(rate_limit_429_count=1))

    with pytest.raises(ProviderBusy) as raised:
        dial(provider, receiver)

    assert raised.value.code == 20429
    assert raised.value.status == 429
    assert simulator.stats()["calls_created"] == 0
    assert simulator.stats()["creates_by_number"] == {}


def test_lost_create_response_call_found_once(
    provider: TelephonyProvider, receiver: CallbackReceiver, simulator: SimulatorServer
):
    simulator.set_faults(Faults(create_delay_seconds=3.0))
    impatient = simulator.provider(timeout_seconds=0.5)
    started_after = datetime.now(UTC)

    with pytest.raises(ProviderUnavailable):
        dial(impatient, receiver)

    found = provider.find_calls(to=NUMBER, from_=CALLER, started_after=started_after)
    assert len(found) == 1
    assert found[0].sid == simulator.calls()[0]["sid"]


def test_dropped_create_response_call_found_once(
    provider: TelephonyProvider, receiver: CallbackReceiver, simulator: SimulatorServer
):
    simulator.set_faults(Faults(drop_create_response=1.0))
    impatient = simulator.provider(timeout_seconds=0.5)
    started_after = datetime.now(UTC)

    with pytest.raises(ProviderUnavailable):
        dial(impatient, receiver)

    found = provider.find_calls(to=NUMBER, from_=CALLER, started_after=started_after)
    assert [call.sid for call in found] == [simulator.calls()[0]["sid"]]


def test_find_calls_skips_earlier_and_other_calls(
    provider: TelephonyProvider, receiver: CallbackReceiver
):
    earlier = wait_until_final(provider, dial(provider, receiver))
    dial(provider, receiver, to=OTHER_NUMBER)
    started_after = provider.fetch_call(earlier).date_created + timedelta(seconds=1)
    eventually(lambda: datetime.now(UTC) >= started_after)

    latest = dial(provider, receiver)

    found = provider.find_calls(to=NUMBER, from_=CALLER, started_after=started_after)
    assert [call.sid for call in found] == [latest]


def test_find_calls_includes_queued_call(
    provider: TelephonyProvider, receiver: CallbackReceiver, simulator: SimulatorServer
):
    simulator.set_faults(Faults(max_calls_per_second=0.2))
    started_after = datetime.now(UTC)
    dial(provider, receiver, to=OTHER_NUMBER)

    queued = dial(provider, receiver)

    found = provider.find_calls(to=NUMBER, from_=CALLER, started_after=started_after)
    assert [call.sid for call in found] == [queued]
    assert found[0].status == "queued"
    assert found[0].start_time is None


def test_fetch_after_dropped_final_callback(
    provider: TelephonyProvider, receiver: CallbackReceiver, simulator: SimulatorServer
):
    simulator.set_faults(Faults(drop_final_callback=1.0))

    sid = dial(provider, receiver)

    eventually(lambda: provider.fetch_call(sid).status == "completed")
    call = provider.fetch_call(sid)
    assert call.answered_by == HUMAN
    assert call.duration == 90
    assert call.end_time is not None
    assert "completed" not in [c.params["CallStatus"] for c in receiver.for_call(sid)]


def test_duplicate_callbacks_arrive_twice(
    provider: TelephonyProvider, receiver: CallbackReceiver, simulator: SimulatorServer
):
    simulator.set_faults(Faults(duplicate_callbacks=1.0))

    sid = dial(provider, receiver)

    eventually(lambda: len(receiver.for_call(sid)) == 8)
    finals = [
        c for c in receiver.for_call(sid) if c.params["CallStatus"] == "completed"
    ]
    assert len(finals) == 2
    assert finals[0].params == finals[1].params


@pytest.mark.parametrize(
    ("outcome", "machine_detection", "send_digits", "answered_by"),
    [
        (HUMAN, True, None, HUMAN),
        (MACHINE, True, None, MACHINE_START),
        (FAX, True, None, FAX),
        (MACHINE, False, None, None),
        (MACHINE, True, extension_digits("12"), None),
    ],
)
def test_answered_by_follows_machine_detection(
    provider: TelephonyProvider,
    receiver: CallbackReceiver,
    simulator: SimulatorServer,
    outcome: str,
    machine_detection: bool,
    send_digits: str | None,
    answered_by: str | None,
):
    simulator.set_scenario(Scenario(numbers={NUMBER: (outcome,)}, time_scale=0.0))

    sid = dial(
        provider,
        receiver,
        machine_detection=machine_detection,
        send_digits=send_digits,
    )

    wait_until_final(provider, sid)
    assert provider.fetch_call(sid).answered_by == answered_by


def test_cancel_ringing_call_returns_true(
    provider: TelephonyProvider, receiver: CallbackReceiver, simulator: SimulatorServer
):
    simulator.set_scenario(RINGING_FOR_LONG)
    sid = dial(provider, receiver, ring_timeout=600)

    canceled = provider.cancel_call(sid)

    assert canceled is True
    assert provider.fetch_call(sid).status == "canceled"
    assert simulator.stats()["live_calls"] == 0


def test_cancel_ended_call_returns_false(
    provider: TelephonyProvider, receiver: CallbackReceiver
):
    sid = wait_until_final(provider, dial(provider, receiver))

    assert provider.cancel_call(sid) is False


def test_max_live_calls_counts_concurrent_dials(
    provider: TelephonyProvider, receiver: CallbackReceiver, simulator: SimulatorServer
):
    simulator.set_scenario(RINGING_FOR_LONG)
    sids = [dial(provider, receiver, ring_timeout=600) for _ in range(3)]
    provider.cancel_call(sids[0])
    dial(provider, receiver, ring_timeout=600)

    stats = simulator.stats()

    assert stats["live_calls"] == 3
    assert stats["max_live_calls"] == 3
    assert stats["creates_by_number"] == {NUMBER: 4}


def test_wrong_auth_token_raises_provider_error(
    simulator: SimulatorServer, receiver: CallbackReceiver
):
    intruder = TelephonyProvider(
        simulator.config.account_sid, "wrong-token", api_url=simulator.url
    )

    with pytest.raises(ProviderError) as raised:
        dial(intruder, receiver)

    assert raised.value.status == 401
    assert raised.value.code == 20003


def test_wrong_auth_token_on_list_raises_provider_error(simulator: SimulatorServer):
    intruder = TelephonyProvider(
        simulator.config.account_sid, "wrong-token", api_url=simulator.url
    )

    with pytest.raises(ProviderError) as raised:
        intruder.find_calls(to=NUMBER, from_=CALLER, started_after=datetime.now(UTC))

    assert raised.value.status == 401
    assert raised.value.code == 20003


def test_fetch_unknown_call_raises_not_found(provider: TelephonyProvider):
    with pytest.raises(ProviderError) as raised:
        provider.fetch_call("CA" + "f" * 32)

    assert raised.value.status == 404
    assert raised.value.code == 20404


def test_unreachable_api_raises_unavailable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    provider = TelephonyProvider("AC" + "0" * 32, "token", api_url=closed_url)

    with pytest.raises(ProviderUnavailable):
        provider.fetch_call("CA" + "0" * 32)


@pytest.mark.parametrize(
    ("status", "code", "error_type"),
    [
        (429, 20429, ProviderBusy),
        (429, None, ProviderBusy),
        (400, 21211, PermanentNumberError),
        (400, 21214, PermanentNumberError),
        (400, 21215, PermanentNumberError),
        (400, 21216, PermanentNumberError),
        (400, 21217, PermanentNumberError),
        (400, 13224, PermanentNumberError),
        (400, 21205, ProviderError),
        (500, None, ProviderError),
    ],
)
def test_classify_error_by_status_and_code(
    status: int, code: int | None, error_type: type[ProviderError]
):
    error = classify_error(status, code, "failed")

    assert type(error) is error_type


def test_classify_error_removes_phone_numbers():
    error = classify_error(400, 21211, f"The 'To' number {NUMBER} is not valid")

    assert error.message == "The 'To' number [number] is not valid"


def test_extension_digits_pause_before_extension():
    assert extension_digits(" 123# ") == EXTENSION_PAUSE + "123#"


def test_extension_digits_rejects_letters():
    with pytest.raises(ValueError, match="extension"):
        extension_digits("12a")
