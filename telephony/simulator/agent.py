"""The simulator's voice side: answered calls, their TwiML, and a stand-in agent.

When the simulator plays the agent (SimulatorConfig.agent), each answered
call requests its Url as Twilio does: a signed POST with CallSid, AnsweredBy
and the other call parameters. The TwiML that comes back is followed. <Say>
and <Play> are noted, <Start><Recording> asks for a recording status
callback, <Redirect> fetches the next document and <Hangup> ends the call.
The simulator does not time TwiML: a call that is not hung up lasts the
scenario's talk time.

A <Redirect> to the simulator's own /agent/voice reaches the stand-in agent.
It fetches the call's context from the engine, and once the call ends it
reports the transcript, summary and labels that the scenario gives the number.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import urljoin
from xml.etree import ElementTree

import httpx
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from telephony.scenario import Scenario
from telephony.simulator.callbacks import SIGNATURE_HEADER
from telephony.simulator.calls import API_PREFIX, API_VERSION, SimCall, rfc2822
from telephony.simulator.config import AgentRole

logger = logging.getLogger(__name__)

AGENT_VOICE_PATH = "/agent/voice"
# The call's Url plus <Redirect> documents, at most. Twilio has its own
# limit, which this value does not claim to match.
MAX_DOCUMENTS = 10
RETRY_SECONDS = 0.1


class CallVoicePlayer:
    """Request answered calls' TwiML and play the agent for them."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        account_sid: str,
        auth_token: str,
        scenario: Scenario,
        role: AgentRole | None,
    ) -> None:
        self._client = client
        self._account_sid = account_sid
        self._validator = RequestValidator(auth_token)
        self.scenario = scenario
        self.role = role
        # The simulator's own base URL, learned from the create requests it
        # serves, because recording URLs point at it.
        self.base_url = "http://127.0.0.1"
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return self.role is not None

    async def answer(self, call: SimCall) -> bool:
        """Follow an answered call's TwiML and return True if it hung up."""
        url, method = call.url, "POST"
        for _ in range(MAX_DOCUMENTS):
            document = await self._fetch_document(call, url, method)
            if document is None:
                # Twilio plays an error message and hangs up when the
                # document cannot be fetched or parsed.
                call.voice.hung_up = True
                return True
            redirect = self._run_document(call, document, url)
            if redirect is None:
                return call.voice.hung_up
            url, method = redirect
        call.voice.error = f"more than {MAX_DOCUMENTS} TwiML documents"
        call.voice.hung_up = True
        return True

    async def connect_agent(self, call: SimCall | None) -> str:
        """Answer the stand-in agent's voice request and return its TwiML.

        The context is fetched before the agent answers, as an agent that
        greets the contact by name would do. A call the simulator does not
        know is hung up on.
        """
        twiml = VoiceResponse()
        if call is None:
            twiml.hangup()
            return str(twiml)
        call.voice.agent_connected = True
        role = self.role
        if role is not None and role.token is not None:
            path = f"/calls/{call.sid}/context"
            response = await self._engine_request(role, "GET", path)
            if response is not None:
                call.voice.context_status = response.status_code
                if response.is_success:
                    call.voice.context = response.json()
        twiml.pause(length=max(1, round(call.talk_seconds())))
        return str(twiml)

    def call_ended(self, call: SimCall) -> None:
        """Send the agent's report and the recording callback of an ended call."""
        if call.voice.agent_connected:
            self._spawn(self._report(call))
        if call.voice.recording_callback_url is not None:
            self._spawn(self._send_recording(call))

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def _fetch_document(
        self, call: SimCall, url: str, method: str
    ) -> ElementTree.Element | None:
        call.voice.documents += 1
        params = _call_params(call)
        try:
            response = await self._signed_request(url, method, params)
        except httpx.HTTPError as error:
            call.voice.error = f"TwiML request to {url} failed: {error!r}"
            return None
        if not response.is_success:
            call.voice.error = f"TwiML request to {url}: HTTP {response.status_code}"
            return None
        try:
            root = ElementTree.fromstring(response.text)
        except ElementTree.ParseError as error:
            call.voice.error = f"invalid TwiML from {url}: {error}"
            return None
        if root.tag != "Response":
            call.voice.error = f"TwiML from {url} has root <{root.tag}>"
            return None
        return root

    def _run_document(
        self, call: SimCall, document: ElementTree.Element, url: str
    ) -> tuple[str, str] | None:
        """Play one document's verbs and return <Redirect>'s (url, method), if any."""
        for verb in document:
            text = (verb.text or "").strip()
            if verb.tag == "Say":
                call.voice.played.append(f"say: {text}")
            elif verb.tag == "Play":
                call.voice.played.append(f"play: {text}")
            elif verb.tag == "Start":
                self._start(call, verb, url)
            elif verb.tag == "Hangup":
                call.voice.hung_up = True
                return None
            elif verb.tag == "Redirect":
                return urljoin(url, text), verb.get("method", "POST").upper()
            # Pause, Connect, Gather and the rest hold the conversation, whose
            # length the scenario sets.
        return None

    def _start(self, call: SimCall, verb: ElementTree.Element, url: str) -> None:
        for noun in verb:
            if noun.tag != "Recording":
                continue
            callback = noun.get("recordingStatusCallback")
            if callback:
                call.voice.recording_callback_url = urljoin(url, callback)
                method = noun.get("recordingStatusCallbackMethod", "POST")
                call.voice.recording_callback_method = method.upper()

    async def _report(self, call: SimCall) -> None:
        role = self.role
        result = self.scenario.agent_result_for(call.to)
        if role is None or role.token is None or not result.report:
            return
        body = {
            "transcript": result.transcript or _transcript(call),
            "summary": result.summary,
            "labels": list(result.labels),
        }
        path = f"/calls/{call.sid}/report"
        response = await self._engine_request(role, "POST", path, json=body)
        if response is not None:
            call.voice.report_status = response.status_code

    async def _send_recording(self, call: SimCall) -> None:
        url = call.voice.recording_callback_url
        assert url is not None
        sid = "RE" + secrets.token_hex(16)
        call.voice.recording_sid = sid
        params = {
            "AccountSid": self._account_sid,
            "CallSid": call.sid,
            "RecordingSid": sid,
            "RecordingUrl": (
                f"{self.base_url}{API_PREFIX}/{self._account_sid}/Recordings/{sid}"
            ),
            "RecordingStatus": "completed",
            "RecordingDuration": str(call.duration or 0),
            "RecordingChannels": "1",
            "RecordingStartTime": rfc2822(call.answer_time) or "",
        }
        method = call.voice.recording_callback_method
        response = await self._with_retries(
            lambda: self._signed_request(url, method, params)
        )
        if response is not None:
            call.voice.recording_callback_status = response.status_code

    async def _signed_request(
        self, url: str, method: str, params: dict[str, str]
    ) -> httpx.Response:
        # Twilio signs the URL plus the POST parameters, or for GET the URL
        # with the parameters in its query string.
        if method == "GET":
            request = self._client.build_request("GET", url, params=params)
            signature = self._validator.compute_signature(str(request.url), {})
        else:
            request = self._client.build_request("POST", url, data=params)
            signature = self._validator.compute_signature(url, params)
        request.headers[SIGNATURE_HEADER] = signature
        return await self._client.send(request)

    async def _engine_request(
        self, role: AgentRole, method: str, path: str, **kwargs: Any
    ) -> httpx.Response | None:
        url = role.engine_url.rstrip("/") + path
        headers = {"Authorization": f"Bearer {role.token}"}

        def send() -> Awaitable[httpx.Response]:
            return self._client.request(method, url, headers=headers, **kwargs)

        return await self._with_retries(send, attempts=role.request_attempts)

    async def _with_retries(
        self, send: Callable[[], Awaitable[httpx.Response]], *, attempts: int = 3
    ) -> httpx.Response | None:
        """Send until a response below 500 arrives, and return it or the last one."""
        delay = RETRY_SECONDS
        response: httpx.Response | None = None
        for attempt in range(1, attempts + 1):
            try:
                response = await send()
            except httpx.HTTPError as error:
                logger.warning("agent request failed (try %s): %r", attempt, error)
                response = None
            if response is not None and response.status_code < 500:
                return response
            if attempt < attempts:
                await asyncio.sleep(delay)
                delay *= 2
        return response

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _call_params(call: SimCall) -> dict[str, str]:
    """Return the parameters Twilio sends with a call's voice requests."""
    params = {
        "AccountSid": call.account_sid,
        "ApiVersion": API_VERSION,
        "CallSid": call.sid,
        "CallStatus": call.status,
        "Called": call.to,
        "Caller": call.from_,
        "Direction": "outbound-api",
        "From": call.from_,
        "To": call.to,
    }
    if call.answered_by is not None:
        params["AnsweredBy"] = call.answered_by
    return params


def _transcript(call: SimCall) -> str:
    purpose = (call.voice.context or {}).get("purpose") or "(no context)"
    return f"Agent: {purpose}\nContact: Thank you, that is all for now."
