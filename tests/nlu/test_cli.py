from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli.nlu import app
from nlu.service import NluService

pytestmark = pytest.mark.slow  # loads the real encoders (MiniLM + USE)

DATA = Path(__file__).parent / "data"


def test_parse_prints_rasa_json(tiny_service: NluService) -> None:
    result = CliRunner().invoke(app, ["parse", "我的订单#10023到哪了", "--models-dir", str(tiny_service.models_dir)])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["intent"]["name"] == "order_status"
    assert body["language"] == "zh"
    assert body["entities"][0]["value"] == "10023"


def test_train_refuses_malformed_data_with_its_line(tiny_service: NluService) -> None:
    result = CliRunner().invoke(app, ["train", "--data", str(DATA / "broken_yaml.yml"),
                                      "--models-dir", str(tiny_service.models_dir)])
    assert result.exit_code == 2
    assert "nlu_training_data_invalid" in result.output
    assert "broken_yaml.yml:6: YAML syntax error" in result.output
