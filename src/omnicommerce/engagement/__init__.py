"""Engagement: messages to and from customers, and service cases."""
