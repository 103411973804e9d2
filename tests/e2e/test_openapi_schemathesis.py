"""Property-based run of every operation in the app's own OpenAPI document (schemathesis): with an
admin key, generated requests (valid and invalid) never get a 5xx, and every response has a
documented status code, a documented content type and a body matching its schema.

In-process over ASGI, on SQLite only (the HTTP contract does not depend on the database, and the
run stays well under two minutes); bounded and deterministic: a fixed number of examples per
operation, derandomized, so CI sees the same requests every time.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from omnicommerce.api.app import create_app
from omnicommerce.platform.auth import Scope, create_api_key
from omnicommerce.platform.channels import upsert_channel
from omnicommerce.platform.config import Settings
from omnicommerce.platform.db import Database
from omnicommerce.platform.migrate import upgrade
from tests.conftest import CHANNELS

EXAMPLES_PER_OPERATION = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Documentation gaps in routes owned elsewhere, reported to their owners: each entry relaxes only
# the named checks of that one operation (never the 5xx check). Delete an entry once it is fixed.
KNOWN_GAPS: dict[str, tuple[object, ...]] = {}


# The schema is read from the app at import (pytest parametrizes per operation at collection);
# the database behind it is only opened once the module's fixture has migrated it.
_DIR = Path(tempfile.mkdtemp(prefix="omni-schemathesis-"))
atexit.register(shutil.rmtree, _DIR, True)  # also when the module is collected but not run
_URL = f"sqlite:///{_DIR / 'omni.db'}"
_DB = Database(_URL, pool_size=5)
APP = create_app(
    Settings(
        database_url=_URL,
        secret_key="schemathesis-secret-key-0123456789abcdef",
        rate_limit_enabled=False,
        access_log=False,
        log_level="WARNING",
    ),
    db=_DB,
    run_relay=False,
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def admin_secret() -> Iterator[str]:
    upgrade(_URL)
    with _DB.engine.begin() as conn:
        for channel in CHANNELS:
            upsert_channel(conn, channel)
        secret = create_api_key(conn, name="schemathesis", scopes=[Scope.ADMIN]).secret
    yield secret
    _DB.dispose()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_to_its_schema(case: schemathesis.Case, admin_secret: str) -> None:
    relaxed = KNOWN_GAPS.get(case.operation.label, ())
    checks = [check for check in CHECKS if check not in relaxed]
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_secret}"}, checks=checks)
