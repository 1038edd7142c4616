"""Testing kit shipped with FitTwin: hypothesis strategies, deterministic clock and ids, and
the adapter contract suite. Needs the ``testing`` extra (hypothesis, pytest)."""
