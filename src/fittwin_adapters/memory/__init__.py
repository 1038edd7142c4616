"""In-memory adapters: the embedded default store and a fake payment provider."""

from fittwin_adapters.memory.payments import FakePayments
from fittwin_adapters.memory.store import MemoryStore, MemoryUnitOfWork

__all__ = ["FakePayments", "MemoryStore", "MemoryUnitOfWork"]
