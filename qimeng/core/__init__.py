"""Domain-neutral core: verdicts, settings-free building blocks (sandbox, store, executors)."""
