"""Helpers to run the simulator and a callback receiver in tests.

Both servers run uvicorn in a daemon thread, bound to 127.0.0.1 on a port the
operating system picks, and stop when their ``with`` block ends.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from telephony.provider import TelephonyProvider
from telephony.scenario import Scenario
from telephony.simulator import (
    CONTROL_PREFIX,
    Faults,
    SimulatorConfig,
    create_simulator_app,
)

_T = TypeVar("_T")
LOCALHOST = "127.0.0.1"
STARTUP_TIMEOUT_SECONDS = 10.0
SHUTDOWN_TIMEOUT_SECONDS = 10.0


def eventually(
    check: Callable[[], _T], *, timeout: float = 10.0, interval: float = 0.01
) -> _T:
    """Call ``check`` until it returns a truthy value and return that value.

    An AssertionError raised by ``check`` counts as not yet. When ``timeout``
    seconds pass, the last AssertionError is raised again, or a new one if
    ``check`` only returned falsy values.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
            failure = AssertionError(f"still falsy after {timeout} s: {result!r}")
        except AssertionError as error:
            failure = error
        if time.monotonic() >= deadline:
            raise failure
        time.sleep(interval)


@contextmanager
def serve_in_thread(app: Any, *, name: str = "uvicorn") -> Iterator[str]:
    """Serve an ASGI app on a free local port and yield its base URL."""
    # An explicit IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted
    # connections. With proto 0 it skips that, so each response body on a
    # kept-alive connection waits for the client's delayed ACK (about 40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOCALHOST, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True
    )
    thread.start()
    try:
        eventually(
            lambda: server.started or not thread.is_alive(),
            timeout=STARTUP_TIMEOUT_SECONDS,
        )
        if not server.started:
            raise RuntimeError(f"{name} failed to start on {LOCALHOST}:{port}")
        yield f"http://{LOCALHOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=SHUTDOWN_TIMEOUT_SECONDS)
        sock.close()


class SimulatorServer:
    """The simulator on a local port, with a client for its control API."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self._stack = ExitStack()
        self._control: httpx.Client | None = None
        self.url = ""

    def __enter__(self) -> Self:
        app = create_simulator_app(self.config)
        self.url = self._stack.enter_context(serve_in_thread(app, name="simulator"))
        # TCP_NODELAY: see the callback client in telephony.simulator.state.
        transport = httpx.HTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        )
        self._control = self._stack.enter_context(
            httpx.Client(
                base_url=self.url + CONTROL_PREFIX,
                transport=transport,
                trust_env=False,
            )
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._control = None
        self._stack.close()

    def provider(self, *, timeout_seconds: float = 5.0) -> TelephonyProvider:
        """Return a provider that reaches this simulator through the real SDK."""
        return TelephonyProvider(
            self.config.account_sid,
            self.config.auth_token,
            api_url=self.url,
            timeout_seconds=timeout_seconds,
        )

    def stats(self) -> dict[str, Any]:
        return self._request("GET", "/stats")

    def calls(self) -> list[dict[str, Any]]:
        return self._request("GET", "/calls")

    def reset(self) -> None:
        self._request("POST", "/reset")

    def set_scenario(self, scenario: Scenario) -> None:
        self._request("PUT", "/scenario", scenario.to_dict())

    def set_faults(self, faults: Faults) -> None:
        self._request("PUT", "/faults", faults.to_dict())

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        if self._control is None:
            raise RuntimeError("the simulator is not running; use it in a with block")
        response = self._control.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None


@dataclass(frozen=True)
class ReceivedCallback:
    url: str
    method: str
    params: dict[str, str]
    signature: str | None


class CallbackReceiver:
    """A local endpoint that records every status callback it receives."""

    PATH = "/status"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[ReceivedCallback] = []
        self._failures_left = 0
        self._failure_status = 503
        self._stack = ExitStack()
        self.base_url = ""

    @property
    def url(self) -> str:
        return self.base_url + self.PATH

    def __enter__(self) -> Self:
        app = Starlette(
            routes=[Route(self.PATH, self._receive, methods=["GET", "POST"])]
        )
        self.base_url = self._stack.enter_context(
            serve_in_thread(app, name="callback-receiver")
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stack.close()

    def fail_next(self, count: int, *, status_code: int = 503) -> None:
        """Respond to the next ``count`` callbacks with ``status_code``, unrecorded."""
        with self._lock:
            self._failures_left = count
            self._failure_status = status_code

    def clear(self) -> None:
        with self._lock:
            self._received.clear()
            self._failures_left = 0

    def received(self) -> list[ReceivedCallback]:
        with self._lock:
            return list(self._received)

    def for_call(self, call_sid: str) -> list[ReceivedCallback]:
        return [item for item in self.received() if item.params["CallSid"] == call_sid]

    async def _receive(self, request: Request) -> Response:
        form = await request.form()
        params = {key: str(value) for key, value in form.items()}
        params.update(request.query_params)
        with self._lock:
            if self._failures_left > 0:
                self._failures_left -= 1
                return Response(status_code=self._failure_status)
            self._received.append(
                ReceivedCallback(
                    url=str(request.url),
                    method=request.method,
                    params=params,
                    signature=request.headers.get("X-Twilio-Signature"),
                )
            )
        return Response("<Response/>", media_type="application/xml")
