"""Importing a Rasa project: what loads, and how bad projects are reported (file, line, problem)."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.rasa.errors import RasaProjectInvalid
from bot.rasa.project import RasaProject, load_project, read_project_folder


def _problems(path: Path) -> list[dict[str, object]]:
    with pytest.raises(RasaProjectInvalid) as caught:
        load_project(read_project_folder(path))
    return caught.value.problems


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_sample_project_loads_everything(project: RasaProject) -> None:
    summary = project.summary()
    assert summary["forms"] == ["cake_form"]
    assert summary["rules"] >= 15
    assert summary["stories"] == 4
    assert summary["test_stories"] == 6
    assert project.retrieval_intents == {"faq"}
    assert project.nlu_settings.fallback_threshold == 0.3
    assert project.nlu_settings.ambiguity_threshold == 0.05
    assert project.domain.roles["city"] == ["departure", "destination"]
    assert project.domain.slots["cake_size"].values == ["small", "medium", "large"]
    assert project.policies.max_history == 5
    status = {c["component"]: c["status"] for c in summary["components"]}
    assert status["FallbackClassifier"] == "used"
    assert status["DIETClassifier"] == "replaced"
    assert status["DucklingEntityExtractor"] == "used"  # the server when it answers, else nlu/duckling.py
    assert status["TEDPolicy"] == "replaced"


def test_domain_folder_is_merged(project_copy: Path) -> None:
    domain = (project_copy / "domain.yml").read_text(encoding="utf-8")
    head, _, responses = domain.partition("\nresponses:\n")
    (project_copy / "domain.yml").unlink()
    (project_copy / "domain").mkdir()
    (project_copy / "domain" / "main.yml").write_text(head + "\n", encoding="utf-8")
    body, _, rest = responses.partition("\nactions:\n")
    (project_copy / "domain" / "responses.yml").write_text('version: "3.1"\nresponses:\n' + body + "\n",
                                                          encoding="utf-8")
    (project_copy / "domain" / "actions.yml").write_text('version: "3.1"\nactions:\n' + rest, encoding="utf-8")
    loaded = load_project(read_project_folder(project_copy))
    assert "utter_submit" in loaded.domain.responses
    assert "cake_form" in loaded.domain.forms


def test_yaml_syntax_error_names_file_and_line(project_copy: Path) -> None:
    _edit(project_copy / "data" / "rules.yml", "- rule: Say hello any time", "- rule: [Say hello any time")
    problems = _problems(project_copy)
    assert problems[0]["file"] == "data/rules.yml"
    assert problems[0]["line"] in (10, 11)  # where the unclosed list starts, or where YAML noticed
    assert "YAML" in str(problems[0]["problem"])


def test_unknown_action_in_a_story(project_copy: Path) -> None:
    _edit(project_copy / "data" / "stories.yml", "  - action: utter_happy\n", "  - action: utter_hapy\n")
    problems = _problems(project_copy)
    assert {"file": "data/stories.yml", "line": 7,
            "problem": "story 'happy path': unknown action 'utter_hapy' (not a response, form, default action or "
                       "listed under actions)"} in problems


def test_slot_mapped_to_unknown_entity(project_copy: Path) -> None:
    _edit(project_copy / "domain.yml", "        entity: flavour\n", "        entity: taste\n")
    problems = _problems(project_copy)
    assert any(p["file"] == "domain.yml" and p["line"] == 41
               and "entity 'taste'" in str(p["problem"]) for p in problems), problems


def test_rule_and_story_that_disagree(project_copy: Path) -> None:
    with (project_copy / "data" / "stories.yml").open("a", encoding="utf-8") as handle:
        handle.write("\n- story: greeting differently\n  steps:\n  - intent: bot_challenge\n"
                     "  - action: utter_greet\n")
    problems = _problems(project_copy)
    assert any("greeting differently" in str(p["problem"]) and "Say 'I am a bot'" in str(p["problem"])
               and p["file"] == "data/stories.yml" for p in problems), problems


def test_two_rules_that_disagree(project_copy: Path) -> None:
    with (project_copy / "data" / "rules.yml").open("a", encoding="utf-8") as handle:
        handle.write("\n- rule: Goodbye is happy\n  steps:\n  - intent: goodbye\n  - action: utter_happy\n")
    problems = _problems(project_copy)
    assert any("Goodbye is happy" in str(p["problem"]) or "Say goodbye" in str(p["problem"]) for p in problems)


def test_unknown_intent_slot_and_form_slot(project_copy: Path) -> None:
    _edit(project_copy / "data" / "rules.yml", "  - intent: check_stock\n", "  - intent: check_stok\n")
    _edit(project_copy / "domain.yml", "      - dedication\n", "      - dedicashun\n")
    problems = _problems(project_copy)
    texts = [str(p["problem"]) for p in problems]
    assert any("intent 'check_stok' is not in the domain" in t for t in texts)
    assert any("form 'cake_form' requires slot 'dedicashun'" in t for t in texts)


def test_bad_nlu_annotation_reports_line(project_copy: Path) -> None:
    _edit(project_copy / "data" / "nlu.yml", "    - [lemon](flavour)\n", "    - [lemon]{not json}\n")
    problems = _problems(project_copy)
    assert problems[0]["file"] == "data/nlu.yml"
    assert problems[0]["line"] == 118


def test_bad_slot_type_and_mapping(project_copy: Path) -> None:
    _edit(project_copy / "domain.yml", "    type: categorical\n", "    type: enum\n")
    _edit(project_copy / "domain.yml", "      - type: from_text\n", "      - type: from_speech\n")
    texts = [f"{p['file']}:{p['line']}: {p['problem']}" for p in _problems(project_copy)]
    assert any("slot 'cake_size' has type 'enum'" in t for t in texts), texts
    assert any("mapping type 'from_speech'" in t for t in texts), texts


def test_missing_files(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    problems = load_problems = _problems(tmp_path)
    files = {p["file"] for p in load_problems}
    assert {"config.yml", "domain.yml"} <= files
    assert problems


def test_cli_import_lists_every_problem_and_imports_nothing(project_copy: Path) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    _edit(project_copy / "data" / "stories.yml", "  - action: utter_happy\n", "  - action: utter_hapy\n")
    _edit(project_copy / "domain.yml", "        entity: flavour\n", "        entity: taste\n")
    result = CliRunner().invoke(app, ["rasa", "import", str(project_copy)])
    assert result.exit_code == 2
    assert "data/stories.yml:7: story 'happy path': unknown action 'utter_hapy'" in result.output
    assert "domain.yml:41: slot 'cake_flavour' is mapped to entity 'taste'" in result.output
    assert "nothing was imported" in result.output


def test_yes_and_no_are_text_as_in_rasas_yaml_1_2() -> None:
    # financial-demo's from_intent mappings say `value: no`; Rasa (ruamel, YAML 1.2) reads the string "no",
    # which its validation action compares with (PyYAML's 1.1 reading, False, kept its forms from ending)
    from bot.rasa.yaml_source import load_yaml

    assert load_yaml("a: no\nb: yes\nc: on\nd: true\ne: False\n") == {"a": "no", "b": "yes", "c": "on", "d": True,
                                                                   "e": False}
