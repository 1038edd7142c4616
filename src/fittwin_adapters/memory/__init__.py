"""In-memory adapters: the embedded default store and a fake payment provider."""
