"""In-memory adapters: the embedded default store and a fake payment provider."""

from fittwin_adapters.memory.store import MemoryStore, MemoryUnitOfWork

__all__ = ["MemoryStore", "MemoryUnitOfWork"]
