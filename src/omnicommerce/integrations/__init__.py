"""Integrations: signed outbound webhooks for partners."""
