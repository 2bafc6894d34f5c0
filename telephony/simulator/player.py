"""Play calls in the background and report their progress by callback."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable, Coroutine
from typing import Any

from telephony.scenario import BUSY, FAILED, NO_ANSWER
from telephony.simulator.agent import CallVoicePlayer
from telephony.simulator.callbacks import Callback, CallbackSender
from telephony.simulator.calls import (
    API_VERSION,
    COMPLETED,
    FINAL_STATUSES,
    IN_PROGRESS,
    RINGING,
    SIP_RESPONSE_CODES,
    SimCall,
    rfc2822,
    utc_now,
)
from telephony.simulator.config import Faults

# StatusCallbackEvent names; "completed" reports every final status and is sent
# even when not requested.
INITIATED_EVENT = "initiated"
RINGING_EVENT = "ringing"
ANSWERED_EVENT = "answered"
COMPLETED_EVENT = "completed"


class CallPlayer:
    """Move calls through their statuses and send their callbacks."""

    def __init__(
        self,
        *,
        sender: CallbackSender,
        faults: Faults,
        rng: random.Random,
        on_final: Callable[[SimCall], None],
        voice: CallVoicePlayer | None = None,
    ) -> None:
        self.sender = sender
        self.faults = faults
        self._rng = rng
        self._on_final = on_final
        self.voice = voice
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, call: SimCall) -> None:
        call.player = self._spawn(self._play(call))

    def finish(self, call: SimCall, status: str) -> None:
        """End a call with a final status and report it; a final call stays as is."""
        if call.is_final:
            return
        now = utc_now()
        call.status = status
        call.end_time = now
        call.date_updated = now
        if status == COMPLETED:
            call.duration = _talked_seconds(call)
        self._on_final(call)
        self._emit(call, COMPLETED_EVENT)
        if self.voice is not None:
            self.voice.call_ended(call)

    def stop(self, call: SimCall) -> None:
        """Stop playing a call, as when the API ends it early."""
        if call.player is not None and call.player is not asyncio.current_task():
            call.player.cancel()

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def _play(self, call: SimCall) -> None:
        if call.queue_seconds > 0:
            await asyncio.sleep(call.queue_seconds)
        expected = call.expected
        call.start_time = utc_now()
        call.date_updated = call.start_time
        self._emit(call, INITIATED_EVENT)
        if expected.status in (BUSY, FAILED):
            # A busy line or a failed route ends without ringing.
            await self._wait(call, expected.ring_seconds)
            self.finish(call, expected.status)
            return
        self._set_status(call, RINGING)
        self._emit(call, RINGING_EVENT)
        await self._wait(call, expected.ring_seconds)
        if expected.status == NO_ANSWER:
            self.finish(call, NO_ANSWER)
            return
        call.answer_time = utc_now()
        call.answered_by = expected.answered_by
        self._set_status(call, IN_PROGRESS)
        self._emit(call, ANSWERED_EVENT)
        hung_up = False
        if self.voice is not None and self.voice.enabled and call.url:
            hung_up = await self.voice.answer(call)
        if not hung_up:
            await self._wait(call, call.talk_seconds())
        self.finish(call, COMPLETED)

    async def _wait(self, call: SimCall, scenario_seconds: float) -> None:
        await asyncio.sleep(scenario_seconds * call.time_scale)

    def _set_status(self, call: SimCall, status: str) -> None:
        call.status = status
        call.date_updated = utc_now()

    def _emit(self, call: SimCall, event: str) -> None:
        if call.status_callback is None:
            return
        if event != COMPLETED_EVENT and event not in call.callback_events:
            return
        status = INITIATED_EVENT if event == INITIATED_EVENT else call.status
        callback = Callback(
            call_sid=call.sid,
            url=call.status_callback,
            method=call.status_callback_method,
            params=_callback_params(call, status),
            sequence_number=call.next_sequence_number,
            final=event == COMPLETED_EVENT,
        )
        call.next_sequence_number += 1
        self._dispatch(call, callback)

    def _dispatch(self, call: SimCall, callback: Callback) -> None:
        stats = self.sender.stats
        batch = [callback]
        if self._chance(self.faults.duplicate_callbacks):
            stats.duplicated += 1
            batch.append(callback)
        if callback.final and self._chance(self.faults.drop_final_callback):
            stats.dropped += 1
            batch = []
        elif (
            not callback.final
            and not call.held_callbacks
            and self._chance(self.faults.reorder_callbacks)
        ):
            # Sent after the next callback of this call, which may be the
            # final one.
            stats.reordered += 1
            call.held_callbacks = batch
            return
        batch.extend(call.held_callbacks)
        call.held_callbacks = []
        if batch:
            previous = call.last_delivery
            call.last_delivery = self._spawn(self._deliver_after(previous, batch))

    async def _deliver_after(
        self, previous: asyncio.Task[None] | None, batch: list[Callback]
    ) -> None:
        if previous is not None:
            # asyncio.wait() returns once the previous delivery ends, whether
            # it succeeded, failed or was cancelled.
            await asyncio.wait([previous])
        for callback in batch:
            await self.sender.send(callback)

    def _chance(self, probability: float) -> bool:
        return probability > 0 and self._rng.random() < probability

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _talked_seconds(call: SimCall) -> int:
    # A call that plays to its end reports the scenario's talk time. One ended
    # early through the API reports the scenario seconds that have passed.
    if call.player is None or call.player is asyncio.current_task():
        return round(call.talk_seconds())
    if call.answer_time is None or call.time_scale <= 0:
        return 0
    elapsed = (utc_now() - call.answer_time).total_seconds() / call.time_scale
    return min(round(elapsed), round(call.talk_seconds()))


def _callback_params(call: SimCall, status: str) -> dict[str, str]:
    params = {
        "AccountSid": call.account_sid,
        "ApiVersion": API_VERSION,
        "CallSid": call.sid,
        "CallStatus": status,
        "Called": call.to,
        "Caller": call.from_,
        "CallbackSource": "call-progress-events",
        "Direction": "outbound-api",
        "From": call.from_,
        "SequenceNumber": str(call.next_sequence_number),
        "Timestamp": rfc2822(utc_now()) or "",
        "To": call.to,
    }
    if call.answered_by is not None and status in (IN_PROGRESS, COMPLETED):
        params["AnsweredBy"] = call.answered_by
    if status in FINAL_STATUSES:
        seconds = call.duration or 0
        params["SipResponseCode"] = str(SIP_RESPONSE_CODES[status])
        params["CallDuration"] = str(seconds)
        # NOTE: Duration is whole minutes rounded up, as in callbacks seen from
        # Twilio; CallDuration carries the seconds.
        params["Duration"] = str(math.ceil(seconds / 60))
    return params
