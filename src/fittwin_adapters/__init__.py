"""FitTwin adapters."""
