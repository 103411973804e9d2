"""carts tables (stub until written)."""
