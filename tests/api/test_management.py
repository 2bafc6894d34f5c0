"""Contacts, agents and campaigns over the management API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import status

CSV = b"phone,name,plan\n(202) 555-0161,Ana,gold\n1.20256E+10,Bad\n+1 202 555 0162,Ben,silver\n"


def import_csv(client, body: bytes = CSV, **form: str):
    return client.post(
        "/contacts/import", files={"file": ("c.csv", body, "text/csv")}, data=form
    )


def create_agent(client) -> int:
    response = client.post(
        "/agents",
        json={
            "name": "Ava",
            "from_number": "(202) 555-0100",
            "voice_url": "https://agent.test/voice",
        },
    )
    assert response.status_code == status.HTTP_201_CREATED
    return response.json()["id"]


def create_campaign(client, import_id: int, **settings):
    return client.post(
        "/campaigns",
        json={
            "name": "spring",
            "agent_id": create_agent(client),
            "contacts": {"import_id": import_id},
            "settings": settings,
        },
    )


def test_missing_api_key_rejected(client):
    response = client.get("/contacts", headers={"X-API-Key": ""})

    assert response.status_code == status.HTTP_401_UNAUTHORIZED
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_import_keeps_good_rows(client):
    response = import_csv(client)

    body = response.json()
    assert response.status_code == status.HTTP_201_CREATED
    assert body["created"] == 2
    assert [r["row"] for r in body["rejected"]] == [3]
    assert "scientific notation" in body["rejected"][0]["reason"]


def test_import_without_phone_column_rejected(client):
    response = import_csv(client, b"first_name,notes\nIvy,x\n")

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert "first_name" in response.json()["error"]["message"]


def test_contact_lists_variables(client):
    import_csv(client)

    items = client.get("/contacts").json()["items"]

    assert [c["phone"] for c in items] == ["+12025550161", "+12025550162"]
    assert items[0]["variables"]["plan"] == "gold"


def test_unknown_contact_not_found(client):
    response = client.get("/contacts/999")

    assert response.status_code == status.HTTP_404_NOT_FOUND
    assert response.json()["error"]["message"] == "contact 999 not found"


def test_agent_normalises_from_number(client):
    create_agent(client)

    agents = client.get("/agents").json()

    assert agents[0]["from_number"] == "+12025550100"


def test_campaign_created_with_members(client):
    import_id = import_csv(client).json()["import_id"]

    response = create_campaign(client, import_id)

    body = response.json()
    assert response.status_code == status.HTTP_201_CREATED
    assert body["status"] == "draft"
    assert body["members"] == 2
    assert body["members_by_state"] == {"pending": 2}
    assert body["settings"]["max_attempts"] == 3
    assert body["settings"]["retry_delay_seconds"] == 4 * 3600


def test_campaign_wider_than_federal_rejected(client):
    import_id = import_csv(client).json()["import_id"]

    response = create_campaign(
        client, import_id, window_start="07:00", window_end="22:00"
    )

    error = response.json()["error"]
    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert error["code"] == "invalid_calling_window"
    assert "federal" in error["message"]


def test_campaign_without_contacts_rejected(client):
    response = client.post(
        "/campaigns",
        json={"name": "x", "agent_id": create_agent(client), "contacts": {}},
    )

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert (
        "exactly one of import_id, contact_ids or all"
        in (response.json()["error"]["message"])
    )


def test_start_twice_starts_one_workflow(client, temporal):
    import_id = import_csv(client).json()["import_id"]
    campaign_id = create_campaign(client, import_id).json()["id"]

    first = client.post(f"/campaigns/{campaign_id}/start")
    second = client.post(f"/campaigns/{campaign_id}/start")

    assert first.json()["status"] == "running"
    assert second.status_code == status.HTTP_200_OK
    assert set(temporal.started) == {f"campaign-{campaign_id}"}


def test_pause_sets_status_then_signals(client, temporal):
    import_id = import_csv(client).json()["import_id"]
    campaign_id = create_campaign(client, import_id).json()["id"]
    client.post(f"/campaigns/{campaign_id}/start")

    response = client.post(f"/campaigns/{campaign_id}/pause")

    assert response.json()["status"] == "paused"
    assert temporal.signals[-1][:2] == (f"campaign-{campaign_id}", "pause")


def test_resume_draft_is_conflict(client):
    import_id = import_csv(client).json()["import_id"]
    campaign_id = create_campaign(client, import_id).json()["id"]

    response = client.post(f"/campaigns/{campaign_id}/resume")

    assert response.status_code == status.HTTP_409_CONFLICT
    assert "draft" in response.json()["error"]["message"]


def test_expected_finish_counts_remaining_retries(client):
    import_id = import_csv(client).json()["import_id"]
    before = datetime.now(UTC)

    body = create_campaign(client, import_id, retry_delay_seconds=3600).json()

    finish = datetime.fromisoformat(body["expected_finish_at"])
    # Two retries remain after the first attempt, an hour apart.
    assert before + timedelta(hours=2) <= finish
    assert finish <= datetime.now(UTC) + timedelta(hours=2)


def test_unknown_setting_rejected(client):
    import_id = import_csv(client).json()["import_id"]

    response = create_campaign(client, import_id, max_attempt=2)

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert "max_attempt" in response.json()["error"]["message"]


def test_selection_needs_exactly_one(client):
    import_id = import_csv(client).json()["import_id"]
    response = client.post(
        "/campaigns",
        json={
            "name": "x",
            "agent_id": create_agent(client),
            "contacts": {"import_id": import_id, "all": True},
        },
    )

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert "exactly one" in response.json()["error"]["message"]


def test_unknown_import_not_found(client):
    response = create_campaign(client, 9999)

    assert response.status_code == status.HTTP_404_NOT_FOUND
    assert response.json()["error"]["message"] == "import 9999 not found"


def test_unknown_contact_ids_listed(client):
    import_csv(client)
    response = client.post(
        "/campaigns",
        json={
            "name": "x",
            "agent_id": create_agent(client),
            "contacts": {"contact_ids": [1, 99999]},
        },
    )

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert response.json()["error"]["details"] == {"missing_contact_ids": [99999]}


def test_huge_id_is_invalid_not_500(client):
    response = client.get("/campaigns/99999999999999999999")

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT


def test_unknown_consent_basis_rejected(client):
    response = import_csv(client, consent_basis="bogus")

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert "unknown consent basis 'bogus'" in response.json()["error"]["message"]


def test_members_filter_rejects_unknown_state(client):
    import_id = import_csv(client).json()["import_id"]
    campaign_id = create_campaign(client, import_id).json()["id"]

    response = client.get(
        f"/campaigns/{campaign_id}/members", params={"state": "bogus"}
    )

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
