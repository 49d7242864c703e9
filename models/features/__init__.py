"""Per-epoch features computed causally and incrementally (numpy + numba only, no torch).

The same code gives the same numbers over a whole night (:func:`compute_features`, training)
and epoch by epoch as samples arrive in chunks (:class:`FeatureExtractor`, the stream); the
extractor state round-trips through a JSON-able dict. Column names, their order, their
parameters and each family's version (:data:`FEATURE_VERSIONS`) live in
:mod:`models.features.registry`. The psg family's features come per EEG channel from the
per-epoch EEG measures (:mod:`models.features.eeg_spec`) through
:class:`~models.features.psg.PsgFeatures`.
"""

from __future__ import annotations

from models.features.counts import acceleration_to_counts
from models.features.extractor import MODALITIES, FeatureExtractor, Modality, compute_features
from models.features.psg import PsgFeatures, psg_features
from models.features.registry import (
    FAMILY_FEATURES,
    FEATURE_DESCRIPTIONS,
    FEATURE_GROUPS,
    FEATURE_VERSIONS,
    feature_names,
    feature_spec,
    feature_version,
)

__all__ = [
    "FAMILY_FEATURES",
    "FEATURE_DESCRIPTIONS",
    "FEATURE_GROUPS",
    "FEATURE_VERSIONS",
    "MODALITIES",
    "FeatureExtractor",
    "Modality",
    "PsgFeatures",
    "acceleration_to_counts",
    "compute_features",
    "feature_names",
    "feature_spec",
    "feature_version",
    "psg_features",
]
