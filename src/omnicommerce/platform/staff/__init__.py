"""Staff users of the console: accounts with one role each (admin, store associate, service agent,
marketer, analyst), argon2id passwords, and tokens that authenticate as a Principal whose scopes
come from the role (``domain.ROLE_SCOPES``) and whose store binding uses the reach rule."""
