from __future__ import annotations

from .metric_data import hand_data  # noqa: F401  (the hand-built metrics data set, as a fixture)
