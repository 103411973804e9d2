"""orders tables (stub until written)."""
