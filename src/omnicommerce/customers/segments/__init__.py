"""Rule-based customer segments: rules as data, evaluated in SQL, kept current incrementally."""
