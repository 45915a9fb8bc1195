"""ShopTalk's own bot as a Rasa 3.x project: its NLU data plus a generated domain, rules and config."""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from nlu.training_data import load_training_data

CONFIG = """# Exported from ShopTalk. Runs on Rasa 3.x; ShopTalk imports it back with `shoptalk rasa import`.
recipe: default.v1
assistant_id: shoptalk-export
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: DIETClassifier
    epochs: 100
  - name: EntitySynonymMapper
  - name: FallbackClassifier
    threshold: 0.3
policies:
  - name: MemoizationPolicy
  - name: RulePolicy
"""


def write_project(target: Path, files: dict[str, str]) -> dict[str, int]:
    """An imported assistant's files written back as the Rasa project they came from (byte for byte, so real
    Rasa trains it and its test stories run in both); counts of what was written."""
    root = target.resolve()
    written = 0
    for relative, text in sorted(files.items()):
        path = (root / relative).resolve()
        if root not in path.parents:
            raise ValueError(f"{relative!r} would be written outside {root}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written += 1
    return {"files": written}


def export_shoptalk_bot(target: Path, *, nlu_dir: Path) -> dict[str, int]:
    """Write a Rasa project folder at `target` from ShopTalk's NLU data; counts of what was written."""
    data = load_training_data([nlu_dir])
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(nlu_dir, target / "data" / "nlu", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.md", "__pycache__"))
    intents = data.intents
    entities = sorted({a.entity for e in data.examples for a in e.entities} | set(data.lookups) | set(data.regexes))
    domain = {
        "version": "3.1",
        "intents": intents,
        "entities": entities,
        "slots": {name: {"type": "text", "influence_conversation": False,
                         "mappings": [{"type": "from_entity", "entity": name}]} for name in entities},
        "responses": {f"utter_{intent}": [{"text": f"(ShopTalk answers '{intent}' with its commerce skills.)"}]
                      for intent in intents},
        "session_config": {"session_expiration_time": 60, "carry_over_slots_to_new_session": True},
    }
    (target / "domain.yml").write_text(yaml.safe_dump(domain, allow_unicode=True, sort_keys=False), encoding="utf-8")
    rules = {"version": "3.1", "rules": [{"rule": f"answer {intent}",
                                          "steps": [{"intent": intent}, {"action": f"utter_{intent}"}]}
                                         for intent in intents]}
    (target / "data" / "rules.yml").write_text(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False),
                                               encoding="utf-8")
    (target / "config.yml").write_text(CONFIG, encoding="utf-8")
    (target / "endpoints.yml").write_text("# No custom actions: ShopTalk's skills answer inside ShopTalk.\n",
                                          encoding="utf-8")
    return {"intents": len(intents), "entities": len(entities), "examples": len(data.examples)}
