"""carts context."""
