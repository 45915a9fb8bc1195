"""`shoptalk rasa test|import|export` on real projects: the real NLU, a real rasa-sdk action server."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.rasa.assistant import Assistant
from bot.rasa.export import export_shoptalk_bot
from bot.rasa.project import RasaProject, load_project, read_project_folder
from bot.rasa.testing import run_test_stories
from bot.rasa.tracker import Tracker
from nlu.service import DEFAULT_DATA_DIR, NluService
from tests.bot.rasa.conftest import SAMPLE

REPO = Path(__file__).resolve().parents[3]


def test_shoptalk_bot_exported_as_a_rasa_project_loads_back(tmp_path: Path) -> None:
    counts = export_shoptalk_bot(tmp_path / "exported", nlu_dir=DEFAULT_DATA_DIR)
    project = load_project(read_project_folder(tmp_path / "exported"))
    assert len(project.domain.intents) == counts["intents"]
    assert len(project.nlu.examples) == counts["examples"]
    assert "order_status" in project.domain.intents
    assert len(project.rules) == counts["intents"]


@pytest.mark.slow
async def test_sample_test_stories_pass_with_the_real_nlu(served_project: RasaProject, tmp_path: Path) -> None:
    parser = NluService(models_dir=tmp_path, data_paths=[], default_language="en")
    parser.train(data=served_project.nlu)
    assistant = Assistant(served_project, parser=parser)
    # live: the sample's order story needs action_submit_order's FollowupAction, which only a run action gives
    # (`rasa test` predicts without running actions, so real Rasa fails that step too)
    report = await run_test_stories(assistant, live=True)
    assert report.failed == 0, "\n".join(report.lines())
    assert report.passed == 6
    # roles come from the words around the entity, as the training data used them
    chat_replies = await assistant.handle_message(_tracker(assistant), "ship it from Berlin to Munich")
    assert chat_replies[0]["text"] == "Shipping from Berlin to Munich."


def _tracker(assistant: Assistant) -> Tracker:
    return Tracker("roles", assistant.domain)


def _shoptalk(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "shoptalk"), "rasa", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)


@pytest.mark.slow
def test_rasa_test_command_reports_each_story_and_fails_on_a_divergence(action_server_url: str,
                                                                        tmp_path: Path) -> None:
    import shutil

    env = {**os.environ, "CAKE_SHOP_ACTIONS_URL": action_server_url, "HF_HUB_OFFLINE": "1",
           "SHOPTALK_DATA_DIR": str(tmp_path / "var")}
    broken = tmp_path / "broken"
    shutil.copytree(SAMPLE, broken)
    stories = broken / "tests" / "test_stories.yml"
    stories.write_text(stories.read_text(encoding="utf-8").replace("  - action: utter_happy\n",
                                                                   "  - action: utter_goodbye\n", 1),
                       encoding="utf-8")
    # live: the sample's VIP story needs action_submit_order's FollowupAction, which only a run action gives
    result = _shoptalk("test", str(broken), "--no-nlu", "--live", env=env)
    assert result.returncode == 1, result.stderr
    assert "FAIL  welcome and happy mood" in result.stdout
    assert "expected action 'utter_goodbye', predicted 'utter_happy'" in result.stdout
    assert "6 stories: 5 passed, 1 failed" in result.stdout
    good = _shoptalk("test", str(SAMPLE), "--folds", "2", "--live", env=env)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "6 stories: 6 passed, 0 failed" in good.stdout
    assert "faq/opening_hours" in good.stdout  # the per-intent NLU table


@pytest.mark.slow
def test_rasa_import_command_trains_and_activates(tmp_path: Path) -> None:
    import json

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SHOPTALK_DATA_DIR": str(tmp_path / "var"),
           "SHOPTALK_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"}
    migrate = subprocess.run([str(Path(sys.executable).parent / "shoptalk"), "migrate"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=300, check=False)
    assert migrate.returncode == 0, migrate.stderr
    result = _shoptalk("import", str(SAMPLE), env=env)
    assert result.returncode == 0, result.stderr
    imported = json.loads(result.stdout)
    assert imported["name"] == "cake-shop"
    assert imported["nlu_version"]
    assert (tmp_path / "var" / "models" / "rasa" / f"nlu-{imported['nlu_version']}").is_dir()
