"""Per-epoch features computed causally and incrementally (numpy + numba only, no torch).

The same code gives the same numbers over a whole night (:func:`compute_features`, training)
and epoch by epoch as samples arrive in chunks (:class:`FeatureExtractor`, the stream); the
extractor state round-trips through a JSON-able dict. Column names, their order, their
parameters and :data:`FEATURE_VERSION` live in :mod:`models.features.registry`.
"""

from __future__ import annotations

from models.features.counts import acceleration_to_counts
from models.features.extractor import MODALITIES, FeatureExtractor, Modality, compute_features
from models.features.registry import (
    FAMILY_FEATURES,
    FEATURE_DESCRIPTIONS,
    FEATURE_GROUPS,
    FEATURE_VERSION,
    feature_names,
    feature_spec,
)

__all__ = [
    "FAMILY_FEATURES",
    "FEATURE_DESCRIPTIONS",
    "FEATURE_GROUPS",
    "FEATURE_VERSION",
    "MODALITIES",
    "FeatureExtractor",
    "Modality",
    "acceleration_to_counts",
    "compute_features",
    "feature_names",
    "feature_spec",
]
