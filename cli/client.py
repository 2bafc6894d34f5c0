"""A small client of the Outbound API for the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx


class ApiFailure(RuntimeError):
    """Raised when the API rejects a request; the message is the API's own."""


class ApiClient:
    def __init__(self, base_url: str, api_key: str, timeout: float = 60.0) -> None:
        self._http = httpx.Client(
            base_url=base_url, headers={"X-API-Key": api_key}, timeout=timeout
        )

    def import_contacts(
        self,
        path: Path,
        *,
        consent_basis: str | None = None,
        phone_column: str | None = None,
    ) -> dict[str, Any]:
        form = {
            key: value
            for key, value in (
                ("consent_basis", consent_basis),
                ("consent_source", f"import of {path.name}" if consent_basis else None),
                ("phone_column", phone_column),
            )
            if value
        }
        with path.open("rb") as stream:
            return self._call(
                "POST",
                "/contacts/import",
                files={"file": (path.name, stream, "text/csv")},
                data=form,
            )

    def ensure_agent(self, name: str, from_number: str, voice_url: str) -> int:
        for agent in self._call("GET", "/agents"):
            if agent["name"] == name:
                return agent["id"]
        created = self._call(
            "POST",
            "/agents",
            json={
                "name": name,
                "from_number": from_number,
                "voice_url": voice_url,
                "purpose": "Demonstration agent played by the simulator.",
            },
        )
        return created["id"]

    def new_agent_token(self, agent_id: int) -> str:
        """Issue the agent a new token; its older tokens stop working."""
        return self._call("POST", f"/agents/{agent_id}/token")["token"]

    def create_campaign(
        self, *, name: str, agent_id: int, import_id: int, settings: dict[str, Any]
    ) -> dict[str, Any]:
        body = {
            "name": name,
            "agent_id": agent_id,
            "contacts": {"import_id": import_id},
            "settings": {k: v for k, v in settings.items() if v is not None},
        }
        return self._call("POST", "/campaigns", json=body)

    def start_campaign(self, campaign_id: int) -> dict[str, Any]:
        return self._call("POST", f"/campaigns/{campaign_id}/start")

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params=params)

    def get_campaign(self, campaign_id: int) -> dict[str, Any]:
        return self._call("GET", f"/campaigns/{campaign_id}")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise ApiFailure(
                f"cannot reach the API at {self._http.base_url}: start the stack "
                "with `outbound up` (or give the --data-dir it runs from)"
            ) from None
        except httpx.HTTPError as error:
            raise ApiFailure(f"{method} {path} failed: {error}") from error
        if response.status_code >= 400:
            raise ApiFailure(f"{method} {path} failed: {_message(response)}")
        return response.json() if response.content else None


def _message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:500]}"
    details = error.get("details")
    if isinstance(details, dict | list) and details:
        return f"{error['message']} ({details})"
    return error["message"]
