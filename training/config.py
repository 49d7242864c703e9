"""Training hyperparameters: one YAML file per dataset x family x variant, checked by pydantic.

Files live in ``training/configs/<dataset>-<family>-<variant>.yaml`` (e.g.
``sleep-accel-wearable-causal.yaml``); the schema is :class:`TrainConfig` and every file
documents it in its header. Unknown keys are errors, so a typo never silently falls back
to a default, and so are keys given twice (YAML would keep the last one without a word).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["CONFIG_DIR", "DATASET_FAMILY", "TrainConfig", "config_path", "load_config"]

#: Where the shipped configs live.
CONFIG_DIR = Path(__file__).resolve().parent / "configs"

#: Each dataset implies its feature family.
DATASET_FAMILY: dict[str, str] = {"sleep-accel": "wearable", "slpdb": "cardio",
                                  "sleep-edf": "psg", "sleep-accel+slpdb": "wearable"}


class TrainConfig(BaseModel):
    """Hyperparameters of one training run (one CV fold or one shipped model)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    net: dict[str, Any] = Field(
        default_factory=dict,
        description="constructor kwargs of the net (n_features is set from the data)",
    )
    lr: float = Field(3e-3, gt=0, description="AdamW learning rate")
    weight_decay: float = Field(1e-2, ge=0, description="AdamW weight decay")
    max_steps: int = Field(400, ge=1, description="optimizer steps per fit at most")
    val_every_steps: int = Field(25, ge=1, description="validate every this many steps")
    patience: int = Field(6, ge=1, description="validations without improvement before stop")
    monitor: Literal["val_kappa5", "val_kappa4", "val_kappa3", "val_loss"] = Field(
        "val_kappa4", description="early stopping and best-state choice (val_kappa5: "
                                  "5-class corpora only)"
    )
    batch_size: int = Field(8, ge=1, description="crops per training batch")
    crop_epochs: int | None = Field(
        512, ge=1, description="training crop length in epochs; null = whole nights"
    )
    class_weight_power: float = Field(
        0.5, ge=0, le=1, description="class weight = frequency ** -power (0 = unweighted)"
    )
    n_val_subjects: int = Field(3, ge=1, description="validation subjects per fold")
    grad_clip: float | None = Field(1.0, gt=0, description="gradient norm clip; null = none")
    seed: int = Field(0, ge=0, description="seed of weights, crops and validation subjects")
    weight_average: float | None = Field(
        None, gt=0, lt=1,
        description="decay of an exponential moving average of the weights, used for "
                    "validation and kept as the result; null = the raw weights",
    )
    ensemble: int = Field(
        1, ge=1, le=16,
        description="nets trained per fit with seeds seed, seed+1, ...; their probabilities "
                    "are averaged (a causal model pays for every member at every epoch close)",
    )
    input_dropout: float = Field(
        0.0, ge=0, le=1,
        description="probability that a training crop of a night with several inputs comes "
                    "from a subset of them (heart rate alone, activity alone: the night's "
                    "subsets, computed as a device sending only them would give them)",
    )
    apnoea_share: float = Field(
        0.0, ge=0, le=1,
        description="probability that a training crop of a night with simulated-apnoea rows "
                    "(Sleep-Accel in the sleep-accel+slpdb corpus: heart rate alone with "
                    "the cyclic swings of sleep apnoea added, training.datasets.apnoea) "
                    "comes from them",
    )
    cohort_balance: bool = Field(
        False, description="draw training crops so that every cohort gets the same share "
                           "(else nights are drawn in proportion to their length)")
    ensemble_validation: Literal["shared", "per_member"] = Field(
        "shared",
        description="shared: every member stops early on the fold's validation subjects; "
                    "per_member: member i > 0 draws its own, as many, from the fold's "
                    "non-test subjects (seeded by seed + i), so the members learn from "
                    "different subjects",
    )


def config_path(dataset: str, variant: str, folder: str | Path | None = None) -> Path:
    """``<folder>/<dataset>-<family>-<variant>.yaml`` (default folder: the shipped configs)."""
    if dataset not in DATASET_FAMILY:
        msg = f"dataset must be one of {sorted(DATASET_FAMILY)}; got {dataset!r}"
        raise ValueError(msg)
    if variant not in ("causal", "offline"):
        msg = f"variant must be 'causal' or 'offline'; got {variant!r}"
        raise ValueError(msg)
    base = Path(folder) if folder is not None else CONFIG_DIR
    return base / f"{dataset}-{DATASET_FAMILY[dataset]}-{variant}.yaml"


def _read_yaml(path: Path) -> Any:
    """Parse YAML, refusing a mapping that gives one key twice (naming the key and lines)."""
    import yaml

    class _UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                line = key_node.start_mark.line + 1
                if key in seen:
                    msg = (f"training config {path}: key {key!r} is given twice (lines "
                           f"{seen[key]} and {line}); keep one")
                    raise ValueError(msg)
                seen[key] = line
            return super().construct_mapping(node, deep=deep)

    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        msg = f"training config {path} is not valid YAML: {err}"
        raise ValueError(msg) from None


def load_config(path: str | Path) -> TrainConfig:
    """Read and validate one YAML config.

    Raises
    ------
    FileNotFoundError
        If the file is missing.
    ValueError
        Naming the file, each bad field, what was expected and what was found.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"training config {path} not found; copy one from training/configs/"
        raise FileNotFoundError(msg)
    data = _read_yaml(path) or {}
    if not isinstance(data, dict):
        msg = f"training config {path} must be a YAML mapping; got {type(data).__name__}"
        raise ValueError(msg)
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as err:
        lines = [
            f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
            for e in err.errors()
        ]
        msg = f"training config {path} is invalid:\n" + "\n".join(lines)
        raise ValueError(msg) from None
