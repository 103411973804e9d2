"""Omnicommerce: one system of record behind every sales channel."""

__version__ = "0.1.0"
