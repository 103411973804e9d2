"""catalog tables (stub until written)."""
