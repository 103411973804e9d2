"""Cross-cutting building blocks: config, database, unit of work, outbox, errors, auth, ids, money."""
