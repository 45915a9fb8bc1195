"""Whatever the files hold, loading a project gives a project or a list of problems, never a crash."""
from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.rasa.errors import RasaProjectInvalid
from bot.rasa.project import load_project, read_project_folder
from tests.bot.rasa.conftest import SAMPLE

FILES = read_project_folder(SAMPLE)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12),
                     st.sampled_from(["greet", "utter_greet", "cake_form", "from_entity", "text", "flavour"]))
_keys = st.sampled_from(["intent", "action", "steps", "rule", "story", "slots", "type", "mappings", "entity",
                         "responses", "forms", "required_slots", "condition", "active_loop", "slot_was_set", "or",
                         "text", "nlu", "examples", "version", "conditions", "entities", "intents", "user"])
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(_keys, inner, max_size=4)), max_leaves=20)


def _load(files: dict[str, str]) -> None:
    problems: list[dict[str, object]] = []
    try:
        load_project(files)
    except RasaProjectInvalid as error:
        problems = error.problems or [{}]
    for problem in problems:
        assert problem.get("file")
        assert problem.get("problem")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(FILES)), value=_values)
def test_any_structure_in_any_file_is_reported(name: str, value: object) -> None:
    _load({**FILES, name: yaml.safe_dump(value)})


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(sorted(FILES)), text=st.text(max_size=200))
def test_any_text_in_any_file_is_reported(name: str, text: str) -> None:
    _load({**FILES, name: text})


DOMAIN = yaml.safe_load(FILES["domain.yml"])
RULES = yaml.safe_load(FILES["data/rules.yml"])


@settings(max_examples=40, deadline=None)
@given(section=st.sampled_from(sorted(DOMAIN)), inner=st.data(), value=_values)
def test_any_value_inside_the_domain_is_reported(section: str, inner: st.DataObject, value: object) -> None:
    domain = dict(DOMAIN)
    current = domain[section]
    if isinstance(current, dict) and current:
        key = inner.draw(st.sampled_from(sorted(current)))
        domain[section] = {**current, key: value}
    elif isinstance(current, list) and current:
        index = inner.draw(st.integers(0, len(current) - 1))
        domain[section] = [*current[:index], value, *current[index + 1:]]
    else:
        domain[section] = value
    _load({**FILES, "domain.yml": yaml.safe_dump(domain)})


@settings(max_examples=40, deadline=None)
@given(index=st.integers(0, len(RULES["rules"]) - 1), step=st.integers(0, 3), value=_values)
def test_any_step_inside_a_rule_is_reported(index: int, step: int, value: object) -> None:
    rules = [dict(rule) for rule in RULES["rules"]]
    steps = list(rules[index]["steps"])
    steps[min(step, len(steps) - 1)] = value
    rules[index]["steps"] = steps
    _load({**FILES, "data/rules.yml": yaml.safe_dump({"version": "3.1", "rules": rules})})
