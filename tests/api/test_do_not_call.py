"""The do-not-call list over the API."""

from __future__ import annotations

from fastapi import status


def test_formats_name_one_entry(client):
    first = client.post("/do-not-call", json={"phone": "(202) 555-0124"})
    second = client.post("/do-not-call", json={"phone": "+12025550124"})

    assert first.status_code == status.HTTP_201_CREATED
    assert first.json()["added"] is True
    assert second.json()["added"] is False
    assert [i["phone"] for i in client.get("/do-not-call").json()["items"]] == [
        "+12025550124"
    ]


def test_invalid_number_rejected(client):
    response = client.post("/do-not-call", json={"phone": "12"})

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert response.json()["error"]["code"] == "invalid_phone"


def test_remove_takes_number_off(client):
    client.post("/do-not-call", json={"phone": "+12025550125"})

    response = client.delete("/do-not-call/(202) 555-0125")

    assert response.status_code == status.HTTP_200_OK
    assert client.get("/do-not-call").json()["items"] == []


def test_remove_unlisted_not_found(client):
    response = client.delete("/do-not-call/+12025550126")

    assert response.status_code == status.HTTP_404_NOT_FOUND


def test_import_adds_numbers_and_reports_bad_rows(client):
    body = b"Phone\n(202) 555-0127\nnot a number\n+1 202 555 0128\n+12025550127\n"

    response = client.post(
        "/do-not-call/import", files={"file": ("dnc.csv", body, "text/csv")}
    )

    result = response.json()
    assert response.status_code == status.HTTP_201_CREATED
    assert result["added"] == 2
    assert result["already_listed"] == 1
    assert [row["row"] for row in result["rejected"]] == [3]


def test_import_without_phone_column_rejected(client):
    body = b"name,notes\nIvy,x\n"

    response = client.post(
        "/do-not-call/import", files={"file": ("dnc.csv", body, "text/csv")}
    )

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert "'name'" in response.json()["error"]["message"]


def test_contact_shows_listed_flag(client):
    client.post(
        "/contacts/import",
        files={"file": ("c.csv", b"phone\n+12025550129\n", "text/csv")},
    )
    client.post("/do-not-call", json={"phone": "+12025550129"})

    contact = client.get("/contacts").json()["items"][0]

    assert contact["do_not_call"] is True


def test_import_unclosed_quote_rejects_file(client):
    body = b'phone\n+12025550131\n"+12025550132\n+12025550133\n'

    response = client.post(
        "/do-not-call/import", files={"file": ("dnc.csv", body, "text/csv")}
    )

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert "closing quote" in response.json()["error"]["message"]
    assert client.get("/do-not-call").json()["items"] == []


def test_import_two_phone_columns_rejected(client):
    body = b"phone,phone\n+12025550134,+12025550135\n"

    response = client.post(
        "/do-not-call/import", files={"file": ("dnc.csv", body, "text/csv")}
    )

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert "several phone columns" in response.json()["error"]["message"]


def test_import_not_utf8_rejected(client):
    body = b"phone\n\x80\x81\n"

    response = client.post(
        "/do-not-call/import", files={"file": ("dnc.csv", body, "text/csv")}
    )

    assert response.status_code == status.HTTP_422_UNPROCESSABLE_CONTENT
    assert "not valid UTF-8" in response.json()["error"]["message"]


def test_import_utf16_with_bom(client):
    body = "phone\n+12025550136\n+12025550137\n".encode("utf-16")

    response = client.post(
        "/do-not-call/import", files={"file": ("dnc.txt", body, "text/plain")}
    )

    assert response.status_code == status.HTTP_201_CREATED, response.text
    listed = {item["phone"] for item in client.get("/do-not-call").json()["items"]}
    assert listed == {"+12025550136", "+12025550137"}
