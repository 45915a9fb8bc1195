"""Shared infrastructure: settings, database, unit of work, outbox, errors, clock, ids, logging."""
