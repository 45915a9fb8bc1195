"""Reading a Rasa 3.x project folder (as `rasa init` lays it out) and checking it before it serves anyone."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.rasa.domain import Domain, Problems, merge_domain
from bot.rasa.errors import RasaProjectInvalid
from bot.rasa.learned import DEFAULT_HISTORY, LearnedPolicy
from bot.rasa.policies import DialoguePolicies
from bot.rasa.stories import (
    ActionStep,
    Flow,
    LoopStep,
    OrStep,
    SlotStep,
    Step,
    UserStep,
    parse_flows,
    stitch_checkpoints,
)
from bot.rasa.yaml_source import YamlSyntaxError, line_of, load_yaml
from nlu.errors import TrainingDataError
from nlu.training_data import TrainingData, parse_training_data

MAX_PROJECT_BYTES = 10_000_000
# Pipeline components whose job ShopTalk's NLU does (embeddings + character n-grams + entity extractor).
REPLACED_COMPONENTS = frozenset({
    "WhitespaceTokenizer", "JiebaTokenizer", "SpacyTokenizer", "MitieTokenizer", "RegexFeaturizer",
    "LexicalSyntacticFeaturizer", "CountVectorsFeaturizer", "LanguageModelFeaturizer", "ConveRTFeaturizer",
    "SpacyFeaturizer", "MitieFeaturizer", "DIETClassifier", "SklearnIntentClassifier", "KeywordIntentClassifier",
    "MitieIntentClassifier", "LogisticRegressionClassifier", "EntitySynonymMapper", "RegexEntityExtractor",
    "CRFEntityExtractor", "LanguageModelTokenizer", "HFTransformersNLP",
})
USED_COMPONENTS = frozenset({"FallbackClassifier", "ResponseSelector"})
REPLACED_POLICIES = frozenset({"TEDPolicy", "AugmentedMemoizationPolicy"})
USED_POLICIES = frozenset({"RulePolicy", "MemoizationPolicy"})
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class NluSettings:
    fallback_threshold: float | None = None
    ambiguity_threshold: float | None = None
    retrieval_intents: list[str] = field(default_factory=list)
    duckling: dict[str, Any] | None = None  # url, dimensions, locale, timezone of DucklingEntityExtractor


@dataclass
class RasaProject:
    files: dict[str, str]
    domain: Domain
    nlu: TrainingData
    flows: list[Flow]
    tests: list[Flow]
    policies: DialoguePolicies
    nlu_settings: NluSettings
    language: str = "en"
    assistant_id: str = ""
    action_endpoint: str | None = None
    action_timeout: float = 10.0
    report: list[dict[str, Any]] = field(default_factory=list)  # components used / replaced / unavailable
    warnings: list[str] = field(default_factory=list)

    @property
    def rules(self) -> list[Flow]:
        return [f for f in self.flows if f.kind == "rule"]

    @property
    def stories(self) -> list[Flow]:
        return [f for f in self.flows if f.kind == "story"]

    @property
    def retrieval_intents(self) -> set[str]:
        return {e.intent.split("/")[0] for e in self.nlu.examples if "/" in e.intent}

    def summary(self) -> dict[str, Any]:
        return {
            "assistant_id": self.assistant_id, "language": self.language,
            "intents": len(self.domain.intents), "entities": len(self.domain.entities),
            "slots": len(self.domain.slots), "responses": len(self.domain.responses),
            "forms": sorted(self.domain.forms), "actions": sorted(self.domain.actions),
            "rules": len(self.rules), "stories": len(self.stories), "test_stories": len(self.tests),
            "nlu_examples": len(self.nlu.examples), "action_endpoint": self.action_endpoint,
            "components": self.report, "warnings": self.warnings,
        }


def read_project_folder(path: Path | str) -> dict[str, str]:
    """The project's YAML files by path relative to its folder (config, domain, data, tests, endpoints)."""
    root = Path(path)
    if not root.is_dir():
        raise RasaProjectInvalid([{"file": str(root), "line": None, "problem": "not a folder"}])
    files: dict[str, str] = {}
    total = 0
    for candidate in sorted(root.rglob("*")):
        relative = candidate.relative_to(root).as_posix()
        top = relative.split("/")[0]
        if not candidate.is_file() or candidate.suffix not in (".yml", ".yaml"):
            continue
        if top not in ("data", "tests", "domain") and "/" in relative:
            continue
        try:
            text = candidate.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise RasaProjectInvalid([{"file": relative, "line": None,
                                       "problem": f"not UTF-8 text ({error.reason})"}]) from error
        total += len(text)
        if total > MAX_PROJECT_BYTES:
            raise RasaProjectInvalid([{"file": relative, "line": None, "problem": "the project is over 10 MB"}])
        files[relative] = text
    return files


def load_project(files: dict[str, str]) -> RasaProject:
    """Parse and validate a project; raises RasaProjectInvalid listing every problem with file and line."""
    problems = Problems()
    parsed: dict[str, Any] = {}
    for name, text in files.items():
        try:
            parsed[name] = load_yaml(text)
        except YamlSyntaxError as error:
            problems.add(name, error.line, error.problem)
    if "config.yml" not in files and "config.yaml" not in files:
        problems.add("config.yml", None, "missing: a Rasa project has config.yml at its top")
    domain_files = [(n, parsed.get(n)) for n in sorted(files)
                    if n in ("domain.yml", "domain.yaml") or n.startswith("domain/")]
    if not domain_files:
        problems.add("domain.yml", None, "missing: put domain.yml (or a domain/ folder) at the project's top")
    domain = merge_domain(domain_files, problems)
    nlu = TrainingData()
    flows: list[Flow] = []
    tests: list[Flow] = []
    for name in sorted(files):
        raw = parsed.get(name)
        if not (name.startswith("data/") or name.startswith("tests/")) or raw is None:
            continue
        if not isinstance(raw, dict):
            problems.add(name, line_of(raw), "top level must be a mapping with 'version' and nlu/rules/stories")
            continue
        if "nlu" in raw:
            try:
                nlu = nlu.merge(parse_training_data(files[name], source=name))
            except TrainingDataError as error:
                problems.add(name, error.line, error.problem)
        if "responses" in raw:
            # Retrieval responses may live beside the NLU data, as in Rasa 2.
            merged = merge_domain([(name, {"responses": raw["responses"]})], problems)
            domain.responses.update(merged.responses)
        for flow in parse_flows(raw, file=name, problems=problems):
            (tests if flow.kind == "test" or name.startswith("tests/") else flows).append(flow)
        unknown = set(raw) - {"version", "nlu", "rules", "stories", "responses"}
        for key in sorted(unknown):
            problems.add(name, line_of(raw, key), f"unknown key '{key}' (expected nlu, rules, stories)")
    for flow in tests:
        flow.kind = "test"
    checkpoint_warnings: list[str] = []
    flows = stitch_checkpoints(flows, problems, checkpoint_warnings)
    tests = stitch_checkpoints(tests, problems, checkpoint_warnings)
    config = parsed.get("config.yml", parsed.get("config.yaml")) or {}
    project = RasaProject(files=files, domain=domain, nlu=nlu, flows=flows, tests=tests,
                          policies=DialoguePolicies(domain=domain), nlu_settings=NluSettings())
    _read_config(config, "config.yml", project, problems)
    _read_endpoints(parsed.get("endpoints.yml"), project, problems)
    project.warnings.extend(checkpoint_warnings)
    _validate(project, problems)
    if not problems:
        project.policies.learn(project.flows, problems)
        project.warnings.extend(project.policies.warnings)
    if problems:
        raise RasaProjectInvalid(problems.items)
    return project


def _read_config(config: Any, file: str, project: RasaProject, problems: Problems) -> None:
    if not isinstance(config, dict):
        problems.add(file, line_of(config), "config.yml must be a mapping with language, pipeline and policies")
        return
    project.language = str(config.get("language", "en"))
    project.assistant_id = str(config.get("assistant_id", ""))
    pipeline = config.get("pipeline") or []
    if not isinstance(pipeline, list):
        problems.add(file, line_of(config, "pipeline"), "'pipeline' must be a list of components")
        pipeline = []
    for component in pipeline:
        if not isinstance(component, dict) or "name" not in component:
            problems.add(file, line_of(pipeline), f"pipeline component {component!r} has no 'name'")
            continue
        name = str(component["name"])
        line = line_of(component)
        if name == "FallbackClassifier":
            project.nlu_settings.fallback_threshold = float(component.get("threshold", 0.3))
            project.nlu_settings.ambiguity_threshold = float(component.get("ambiguity_threshold", 0.1))
            project.report.append({"component": name, "status": "used", "line": line,
                                   "detail": "threshold and ambiguity_threshold applied to the parse"})
        elif name == "ResponseSelector":
            retrieval = component.get("retrieval_intent")
            if retrieval:
                project.nlu_settings.retrieval_intents.append(str(retrieval))
            project.report.append({"component": name, "status": "used", "line": line,
                                   "detail": "retrieval intents answered from utter_<intent>/<sub> responses"})
        elif name == "DucklingEntityExtractor":
            dimensions = component.get("dimensions")
            project.nlu_settings.duckling = {
                "url": component.get("url"), "dimensions": [str(d) for d in dimensions] if dimensions else None,
                "locale": component.get("locale") or None, "timezone": component.get("timezone")}
            project.report.append({"component": name, "status": "used", "line": line,
                                   "detail": "the configured Duckling URL when it answers, else the same "
                                             "dimensions extracted by ShopTalk (nlu/duckling.py)"})
        elif name in REPLACED_COMPONENTS:
            project.report.append({"component": name, "status": "replaced", "line": line,
                                   "detail": "ShopTalk's NLU (sentence embeddings + character n-grams, "
                                             "lookup/regex/synonym entities) does this"})
        else:
            project.report.append({"component": name, "status": "unavailable", "line": line,
                                   "detail": "not available in ShopTalk; its output will be missing"})
    policies = config.get("policies") or []
    for policy in policies if isinstance(policies, list) else []:
        if not isinstance(policy, dict) or "name" not in policy:
            problems.add(file, line_of(policies), f"policy {policy!r} has no 'name'")
            continue
        name = str(policy["name"])
        line = line_of(policy)
        if name in ("MemoizationPolicy", "AugmentedMemoizationPolicy"):
            project.policies.max_history = int(policy.get("max_history", 5))
            project.policies.augmented = name == "AugmentedMemoizationPolicy"
        if name == "RulePolicy":
            project.policies.core_fallback_action = str(policy.get("core_fallback_action_name",
                                                                   "action_default_fallback"))
            project.policies.core_fallback_threshold = float(policy.get("core_fallback_threshold", 0.3))
        if name == "TEDPolicy":
            history = policy.get("max_history")
            project.policies.learned = LearnedPolicy(history=int(history) if history else DEFAULT_HISTORY)
        status = "used" if name in USED_POLICIES else "replaced" if name in REPLACED_POLICIES else "unavailable"
        detail = {"used": "as in Rasa", "replaced": "memoization with shortening histories predicts instead",
                  "unavailable": "not available in ShopTalk"}[status]
        if name == "TEDPolicy":
            detail = "a logistic regression over the stories' states predicts where rules and memoization do not"
        if name == "AugmentedMemoizationPolicy":
            detail = "memoization with shortening histories, then Rasa's truncation at each action (what was set " \
                     "before the cut forgotten)"
        project.report.append({"component": name, "status": status, "line": line, "detail": detail})


def _read_endpoints(raw: Any, project: RasaProject, problems: Problems) -> None:
    if not isinstance(raw, dict):
        return
    endpoint = raw.get("action_endpoint")
    if isinstance(endpoint, dict) and endpoint.get("url"):
        url = _ENV.sub(lambda m: os.environ.get(m.group(1), ""), str(endpoint["url"]))
        if not url:
            project.warnings.append("endpoints.yml: action_endpoint url is empty (an unset environment variable?); "
                                    "custom actions will answer with an apology")
            return
        if not url.startswith(("http://", "https://")):
            problems.add("endpoints.yml", line_of(endpoint, "url"), f"action_endpoint url {url!r} is not http(s)")
        project.action_endpoint = url
        if "timeout" in endpoint:
            project.action_timeout = float(endpoint["timeout"])


def action_endpoint_of(endpoints_text: str) -> tuple[str, float] | None:
    """endpoints.yml's action_endpoint (url with `${VAR}` from the environment now, timeout), or None."""
    try:
        raw = load_yaml(endpoints_text) if endpoints_text.strip() else None
    except YamlSyntaxError:
        return None
    endpoint = raw.get("action_endpoint") if isinstance(raw, dict) else None
    if not isinstance(endpoint, dict) or not endpoint.get("url"):
        return None
    url = _ENV.sub(lambda m: os.environ.get(m.group(1), ""), str(endpoint["url"]))
    if not url.startswith(("http://", "https://")):
        return None
    try:
        timeout = float(endpoint.get("timeout", 10.0))
    except (TypeError, ValueError):
        timeout = 10.0
    return url, timeout


def _step_names(steps: list[Step]) -> list[Step]:
    out: list[Step] = []
    for step in steps:
        out.extend(step.options if isinstance(step, OrStep) else [step])
    return out


def _validate(project: RasaProject, problems: Problems) -> None:
    domain = project.domain
    actions = domain.action_names
    intents = set(domain.intents) | {"nlu_fallback", "out_of_scope", "restart", "back", "session_start"}
    slots = set(domain.slots)
    for slot in domain.slots.values():
        for mapping in slot.mappings:
            if mapping["type"] == "from_entity" and mapping["entity"] not in domain.entities:
                problems.add(slot.source, mapping.get("_line") or slot.line,
                             f"slot '{slot.name}' is mapped to entity '{mapping['entity']}', which the domain "
                             "does not list under entities")
            for condition in mapping.get("conditions") or []:
                loop = condition.get("active_loop") if isinstance(condition, dict) else None
                if loop and loop not in domain.forms and loop not in actions:
                    problems.add(slot.source, mapping.get("_line") or slot.line,
                                 f"slot '{slot.name}': condition names unknown form '{loop}'")
            if mapping["type"] == "custom" and mapping.get("action") and mapping["action"] not in actions:
                problems.add(slot.source, mapping.get("_line") or slot.line,
                             f"slot '{slot.name}': custom mapping action '{mapping['action']}' is not in actions")
    for form in domain.forms.values():
        file, line = domain.where.get(f"form:{form.name}", ("domain.yml", 0))
        for name in form.required_slots:
            if name not in slots:
                problems.add(file, line, f"form '{form.name}' requires slot '{name}', which is not in slots")
    for flow in [*project.flows, *project.tests]:
        what = f"{flow.kind} '{flow.name}'"
        for step in _step_names([*flow.condition, *flow.steps]):
            if isinstance(step, UserStep) and step.intent is not None:
                base = step.intent.split("/")[0]
                if base not in intents:
                    problems.add(flow.file, step.line, f"{what}: intent '{step.intent}' is not in the domain")
                for entity, _, _, _ in step.entities:
                    if entity not in domain.entities:
                        problems.add(flow.file, step.line, f"{what}: entity '{entity}' is not in the domain")
            elif isinstance(step, ActionStep) and step.name not in actions:
                problems.add(flow.file, step.line, f"{what}: unknown action '{step.name}' (not a response, "
                                                   "form, default action or listed under actions)")
            elif isinstance(step, LoopStep) and step.name is not None and step.name not in actions:
                problems.add(flow.file, step.line, f"{what}: active_loop '{step.name}' is not a form")
            elif isinstance(step, SlotStep):
                for name, _ in step.slots:
                    if name not in slots:
                        problems.add(flow.file, step.line, f"{what}: slot '{name}' is not in the domain")
    for example in project.nlu.examples:
        base = example.intent.split("/")[0]
        if base not in intents:
            project.warnings.append(f"{example.source}: intent '{example.intent}' has examples but is not in the "
                                    "domain")
        for annotation in example.entities:
            if annotation.entity not in domain.entities:
                project.warnings.append(f"{example.source}: entity '{annotation.entity}' is not in the domain")
    for retrieval in project.retrieval_intents:
        if f"utter_{retrieval}" not in actions:
            project.warnings.append(f"retrieval intent '{retrieval}' has no utter_{retrieval}/... responses")
    for sub in sorted({e.intent for e in project.nlu.examples if "/" in e.intent}):
        if f"utter_{sub}" not in domain.responses:
            file, line = domain.where.get("intent:" + sub.split("/")[0], ("domain.yml", 0))
            problems.add(file, line, f"retrieval intent '{sub}' has no response 'utter_{sub}'")
    project.warnings = list(dict.fromkeys(project.warnings))
