"""The request plumbing of ``platform.web``: units of work are left once a request is answered
whatever happened in it, and blocking handlers run where the process's mode says."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Connection

from omnicommerce.api.app import create_app
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database
from omnicommerce.platform.web import Route, UoW
from tests.conftest import bearer, make_key

NAME = "web-plumbing"


class Boom(Exception):
    pass


def _probe_router() -> APIRouter:
    router = APIRouter(prefix="/probe", route_class=Route)

    @router.post("/commit")
    def commit(uow: UoW) -> dict[str, bool]:
        _write(uow.conn)
        uow.commit()
        return {"ok": True}

    @router.post("/write-then-raise")
    def write_then_raise(uow: UoW) -> dict[str, bool]:
        _write(uow.conn)
        raise Boom("after writing")

    @router.post("/write-and-forget")
    def write_and_forget(uow: UoW) -> dict[str, bool]:
        _write(uow.conn)
        return {"ok": True}  # never commits

    @router.get("/handler-thread")
    def handler_thread() -> dict[str, int]:
        """A blocking handler."""
        return {"thread": threading.get_ident()}

    @router.get("/loop-thread")
    async def loop_thread() -> dict[str, int]:
        return {"thread": threading.get_ident()}

    return router


def _write(conn: Connection) -> None:
    conn.execute(
        text("INSERT INTO channels (id, name, kind, currency) VALUES (:id, :name, 'online', 'USD')"),
        {"id": NAME, "name": NAME},
    )


def _probe_app(db: Database, settings: Settings) -> FastAPI:
    app = create_app(settings, db=db, run_relay=False)
    app.include_router(_probe_router())
    return app


@pytest.fixture
def probe(db: Database, settings: Settings) -> Iterator[TestClient]:
    with TestClient(_probe_app(db, settings), raise_server_exceptions=False) as client:
        yield client


def _written(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(
            conn.execute(text("SELECT count(*) FROM channels WHERE id = :id"), {"id": NAME}).scalar_one()
        )


def test_a_committed_unit_of_work_keeps_its_writes_and_returns_its_connection(
    probe: TestClient, db: Database
) -> None:
    assert probe.post("/probe/commit").status_code == 200
    assert _written(db) == 1
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["/probe/write-then-raise", "/probe/write-and-forget"])
def test_what_a_request_did_not_commit_rolls_back_and_the_connection_returns(
    probe: TestClient, db: Database, path: str
) -> None:
    answer = probe.post(path)
    assert answer.status_code == (500 if "raise" in path else 200)
    assert _written(db) == 0
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_problems_answered_by_the_api_leave_no_connection_checked_out(
    client: TestClient, db: Database
) -> None:
    headers = bearer(make_key(db, "carts:write", channel="web"))
    assert (
        client.post(
            "/api/v1/carts/crt_missing/lines", json={"sku": "X", "quantity": 1}, headers=headers
        ).status_code
        == 404
    )
    assert (
        client.post("/api/v1/carts/crt_missing/lines", content=b"{oops", headers=headers).status_code == 422
    )
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("inline", [False, True])
def test_blocking_handlers_run_on_the_event_loop_only_when_inline(
    db: Database, settings: Settings, inline: bool
) -> None:
    app = _probe_app(db, settings.model_copy(update={"api_inline_handlers": inline}))
    with TestClient(app) as client:
        handler = client.get("/probe/handler-thread").json()["thread"]
        loop = client.get("/probe/loop-thread").json()["thread"]
        schema = client.get("/openapi.json").json()
    assert (handler == loop) is inline
    # The wrapped handler keeps its name and docstring in the API's documentation.
    operation = schema["paths"]["/probe/handler-thread"]["get"]
    assert operation["operationId"].startswith("handler_thread")
    assert operation["description"] == "A blocking handler."
