"""A subscriber for the fault tests, loaded into ``omni worker`` subprocesses with
``--import tests.integration.integrations.stream_probe``; never imported by the test process
itself, so it is registered only where a test asks for it.

It appends one row per handled event to ``stream_probe`` (no unique key): a duplicate effect
would show as a second row.
"""

from __future__ import annotations

import os
import time

from sqlalchemy import text

from omnicommerce.platform.db import UnitOfWork
from omnicommerce.platform.outbox import Envelope, subscriber

CONSUMER = "test.probe"  # stream_support.PROBE_CONSUMER
SLEEP = float(os.environ.get("OMNI_TEST_PROBE_SLEEP", "0"))


@subscriber("order.placed", consumer=CONSUMER)
@subscriber("test.probe_ping", consumer=CONSUMER)
def record(uow: UnitOfWork, env: Envelope) -> None:
    if SLEEP:
        time.sleep(SLEEP)  # a slow handler, so a kill lands in the middle of a batch
    uow.conn.execute(
        text("INSERT INTO stream_probe (event_id, pid) VALUES (:event_id, :pid)"),
        {"event_id": env.id, "pid": os.getpid()},
    )
