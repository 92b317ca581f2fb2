"""The fault suite: the tests' own Redis and PostgreSQL servers killed, paused and restarted mid-run."""
