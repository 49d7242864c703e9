"""Training tests never write MLflow runs into the working directory."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _mlflow_store_in_tmp(tmp_path_factory: pytest.TempPathFactory,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`train cv` / `train ship` track by default when mlflow is installed: keep it in tmp."""
    store = tmp_path_factory.mktemp("mlruns-default")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
