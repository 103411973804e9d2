"""The webhook-enabled app of the webhooks API tests (private receiver URLs, fast retries)."""

from tests.e2e.integrations.test_webhooks_api import api, hooks_app

__all__ = ["api", "hooks_app"]
