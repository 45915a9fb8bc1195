from __future__ import annotations

import os
from pathlib import Path

import pytest

from nlu.service import NluService

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def tiny_service(tmp_path_factory: pytest.TempPathFactory) -> NluService:
    """A service trained on the small bilingual fixture with the real encoders."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    service = NluService(models_dir=tmp_path_factory.mktemp("nlu-models"), data_paths=[DATA / "tiny_shop.yml"])
    service.train()
    return service
