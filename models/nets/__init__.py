"""Network definitions: one public ``nn.Module`` per file, shared layers in ``_layers``.

=====================  ===========  =======================================================
class                  kind         input -> output
=====================  ===========  =======================================================
``WearableCausal``     causal       (batch, 25, n_features) + valid -> (batch, 4)
``WearableOffline``    offline      (batch, n_epochs, n_features) + valid -> (batch, n_epochs, 4)
``CardioCausal``       causal       as WearableCausal, cardio features
``CardioOffline``      offline      as WearableOffline, cardio features
=====================  ===========  =======================================================

The outputs are probabilities of W, light, deep, REM; :func:`to_stage_set` folds them
into 3 (W, NREM, REM) or 2 (W, sleep) classes. Pass ``return_logits=True`` for the loss.
"""

from __future__ import annotations

from models.nets._layers import to_stage_set
from models.nets._stagers import StagerNet
from models.nets.cardio_causal import CardioCausal
from models.nets.cardio_offline import CardioOffline
from models.nets.wearable_causal import WearableCausal
from models.nets.wearable_offline import WearableOffline

__all__ = [
    "NETS",
    "CardioCausal",
    "CardioOffline",
    "StagerNet",
    "WearableCausal",
    "WearableOffline",
    "to_stage_set",
]

#: Every public net by its model name (``<family>-<kind>``), as used for weight files.
NETS: dict[str, type[StagerNet]] = {
    "wearable-causal": WearableCausal,
    "wearable-offline": WearableOffline,
    "cardio-causal": CardioCausal,
    "cardio-offline": CardioOffline,
}
