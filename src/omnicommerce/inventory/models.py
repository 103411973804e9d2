"""inventory tables (stub until written)."""
