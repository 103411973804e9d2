"""customers tables (stub until written)."""
