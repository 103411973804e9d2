"""Staff users for tests, made and signed in over HTTP as an admin would."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import bearer

PASSWORD = "long enough staff password 1"


def create_staff(
    client: TestClient, admin: dict[str, str], role: str, email: str, location: str | None = None
) -> dict[str, Any]:
    body = {
        "email": email,
        "name": email.split("@")[0],
        "role": role,
        "password": PASSWORD,
        "location": location,
    }
    res = client.post("/api/v1/staff", json=body, headers=admin)
    assert res.status_code == 201, res.text
    created: dict[str, Any] = res.json()
    return created


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    res = client.post("/api/v1/staff/sign-in", json={"email": email, "password": password})
    assert res.status_code == 200, res.text
    return bearer(res.json()["access_token"])


def staff_headers(
    client: TestClient, admin: dict[str, str], role: str, email: str, location: str | None = None
) -> dict[str, str]:
    create_staff(client, admin, role, email, location)
    return sign_in(client, email)
