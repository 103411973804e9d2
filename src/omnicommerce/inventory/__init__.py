"""inventory context."""
