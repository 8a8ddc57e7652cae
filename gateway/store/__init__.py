"""SQLite storage: schema, connections, the single writer and the outbox."""

from gateway.store.db import Store, connect, migrate

__all__ = ["Store", "connect", "migrate"]
