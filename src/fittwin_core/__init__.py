"""FitTwin core."""
