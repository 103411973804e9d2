"""Privacy requests: export everything about a person, erase it, and keep them erased."""
