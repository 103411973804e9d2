"""pricing tables (stub until written)."""
