"""pricing context."""
