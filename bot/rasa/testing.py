"""`rasa test` for imported projects: test stories through the real engine, and an NLU report per intent."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.rasa.assistant import ActionContext, Assistant
from bot.rasa.stories import ActionStep, BotTextStep, Flow, LoopStep, SlotStep, Step, UserStep
from bot.rasa.tracker import LISTEN, SESSION_START, Tracker, action_event, event, slot_event
from nlu.embedder import Embedder
from nlu.training_data import TrainingData


@dataclass
class StoryResult:
    name: str
    where: str
    passed: bool
    divergence: str | None = None


@dataclass
class TestReport:
    stories: list[StoryResult] = field(default_factory=list)
    actions_total: int = 0
    actions_correct: int = 0

    @property
    def failed(self) -> int:
        return sum(1 for s in self.stories if not s.passed)

    @property
    def passed(self) -> int:
        return len(self.stories) - self.failed

    def lines(self) -> list[str]:
        out = []
        for story in self.stories:
            out.append(f"{'PASS' if story.passed else 'FAIL'}  {story.name}  ({story.where})")
            if story.divergence:
                out.append(f"      {story.divergence}")
        out.append(f"{len(self.stories)} stories: {self.passed} passed, {self.failed} failed")
        if self.actions_total:
            out.append(f"{self.actions_total} actions: {self.actions_correct} predicted as the stories say")
        return out


def _message_of(step: UserStep) -> str:
    if step.text:
        return step.text
    entities = {name: value for name, value, _, _ in step.entities if value is not ...}
    return f"/{step.intent}" + (json.dumps(entities) if entities else "")


def _turns(steps: list[Step]) -> list[tuple[UserStep | None, list[Step]]]:
    turns: list[tuple[UserStep | None, list[Step]]] = [(None, [])]
    for step in steps:
        if isinstance(step, UserStep):
            turns.append((step, []))
        else:
            turns[-1][1].append(step)
    return turns


async def run_story(assistant: Assistant, flow: Flow, *, sender: str) -> StoryResult:
    tracker = Tracker(sender, assistant.domain)
    where = f"{flow.file}:{flow.line}"
    for user, expected in _turns(flow.steps):
        if user is None:
            if expected:
                return StoryResult(flow.name, where, False, f"line {expected[0].line}: a test story starts with "
                                                            "a user message")
            continue
        start = len(tracker.events)
        await assistant.handle_message(tracker, _message_of(user), channel="test")
        new = tracker.events[start:]
        problem = _check_user(user, tracker)
        if problem is None:
            problem = _check_turn(expected, new, tracker, user)
        if problem is not None:
            return StoryResult(flow.name, where, False, problem)
    return StoryResult(flow.name, where, True)


def _check_user(step: UserStep, tracker: Tracker) -> str | None:
    parse = tracker.latest_message.get("parse_data") or {}
    if step.intent:
        intent = str((parse.get("intent") or {}).get("name"))
        selector = parse.get("response_selector") or {}
        full = ((selector.get(intent) or {}).get("response") or {}).get("intent_response_key") or intent
        if step.intent not in (intent, full):
            return f"line {step.line}: '{step.text or step.intent}' was read as intent '{full}', expected " \
                   f"'{step.intent}'"
    found = {(str(e.get("entity")), str(e.get("value"))) for e in parse.get("entities") or []}
    for name, value, _, _ in step.entities:
        if value is ... and not any(entity == name for entity, _ in found):
            return f"line {step.line}: entity '{name}' was not found in '{step.text}'"
        if value is not ... and (name, str(value)) not in found:
            return f"line {step.line}: entity {name}={value!r} was not found in '{step.text}' (found " \
                   f"{sorted(found)})"
    return None


def _check_turn(expected: list[Step], new: list[dict[str, Any]], tracker: Tracker, user: UserStep) -> str | None:
    actions = [str(e.get("name")) for e in new if e.get("event") == "action"
               and e.get("name") not in (LISTEN, SESSION_START)]
    texts = [str(e.get("text")) for e in new if e.get("event") == "bot"]
    slots = [(str(e.get("name")), e.get("value")) for e in new if e.get("event") == "slot"]
    loops = [e.get("name") for e in new if e.get("event") == "active_loop"]
    cursor = 0
    for step in expected:
        if isinstance(step, ActionStep):
            predicted = actions[cursor] if cursor < len(actions) else LISTEN
            if predicted != step.name:
                return f"line {step.line}: expected action '{step.name}', predicted '{predicted}'"
            cursor += 1
        elif isinstance(step, BotTextStep):
            if step.text not in texts:
                return f"line {step.line}: expected the bot to say {step.text!r}, it said {texts}"
        elif isinstance(step, SlotStep):
            for name, value in step.slots:
                now = tracker.get_slot(name)
                if value is ...:
                    if now is None and not any(n == name for n, _ in slots):
                        return f"line {step.line}: expected slot '{name}' to be set"
                elif (name, value) not in slots and now != value:
                    return f"line {step.line}: expected slot {name}={value!r}, it is {now!r}"
        elif isinstance(step, LoopStep):
            if step.name not in loops and tracker.active_loop != step.name:
                return f"line {step.line}: expected active_loop {step.name!r}, it is {tracker.active_loop!r}"
    if cursor < len(actions):
        return f"after line {(expected[-1].line if expected else user.line)}: predicted '{actions[cursor]}' " \
               "where the story waits for the user"
    return None


async def run_test_stories(assistant: Assistant, flows: list[Flow] | None = None, *,
                           live: bool = False) -> TestReport:
    """Every test story of the project (tests/*.yml); the first divergence of each.

    By default as `rasa test` evaluates them: each user message is read by the NLU and compared with the story,
    each action (action_listen included) is predicted and compared, and then the story's own events are what
    the conversation continues from (no action runs). `live=True` runs the messages through the whole engine,
    actions and action server included, and compares what happened."""
    report = TestReport()
    for index, flow in enumerate(flows if flows is not None else assistant.project.tests):
        if live:
            report.stories.append(await run_story(assistant, flow, sender=f"test-{index}"))
        else:
            result, total, correct = await evaluate_story(assistant, flow, sender=f"test-{index}")
            report.stories.append(result)
            report.actions_total += total
            report.actions_correct += correct
    return report


def _gold_parse(step: UserStep) -> dict[str, Any]:
    entities = []
    for name, value, role, group in step.entities:
        entity: dict[str, Any] = {"entity": name, "value": None if value is ... else value}
        if role:
            entity["role"] = role
        if group:
            entity["group"] = group
        entities.append(entity)
    intent = step.intent or ""
    return {"intent": {"name": intent.split("/")[0], "confidence": 1.0}, "entities": entities,
            "intent_ranking": [{"name": intent.split("/")[0], "confidence": 1.0}]}


def _predict_as_rasa_test(assistant: Assistant, tracker: Tracker, expected: str) -> str:
    predicted, _ = assistant.predict(tracker)
    loop = tracker.active_loop
    if predicted != expected and loop is not None and predicted == loop:
        # Rasa's test emulates the form's rejection: the story says something else runs instead.
        tracker.events.append(event("action_execution_rejected", name=loop))
        predicted, _ = assistant.predict(tracker)
    return predicted


async def evaluate_story(assistant: Assistant, flow: Flow, *, sender: str) -> tuple[StoryResult, int, int]:
    """One test story as `rasa test` evaluates it; (result, actions compared, actions right)."""
    tracker = Tracker(sender, assistant.domain)
    await assistant.run_action(SESSION_START, tracker, ActionContext(tracker=tracker, channel="test"))
    where = f"{flow.file}:{flow.line}"
    problem: str | None = None
    total = correct = 0
    for step in [*flow.steps, None]:
        if step is None or isinstance(step, UserStep):
            # the story waits for the user here, and at its end (Rasa checks that action_listen too)
            if tracker.latest_action_name not in (LISTEN, None):
                total += 1
                predicted = _predict_as_rasa_test(assistant, tracker, LISTEN)
                if predicted == LISTEN:
                    correct += 1
                elif problem is None:
                    problem = f"line {step.line}: predicted '{predicted}' where the story waits for the user" \
                        if step is not None else f"at the end: predicted '{predicted}' where the story waits for " \
                                                 "the user"
                tracker.events.append(action_event(LISTEN))
            if step is None:
                break
            if step.text:
                parsed = await assistant.parse(step.text)
                probe = Tracker(sender, assistant.domain, [event("user", text=step.text, parse_data=parsed)])
                wrong = _check_user(step, probe)
                if wrong is not None and problem is None:
                    problem = wrong
            tracker.events.append(event("user", text=step.text or f"/{step.intent}", parse_data=_gold_parse(step),
                                        input_channel="test"))
        elif isinstance(step, ActionStep):
            total += 1
            predicted = _predict_as_rasa_test(assistant, tracker, step.name)
            if predicted == step.name:
                correct += 1
            elif problem is None:
                problem = f"line {step.line}: expected action '{step.name}', predicted '{predicted}'"
            tracker.events.append(action_event(step.name))
        elif isinstance(step, BotTextStep):
            # an end-to-end `bot:` step is an action whose text the policies must predict (Rasa's test counts it
            # as one; only a policy trained on such steps predicts it)
            total += 1
            expected = f"bot:{step.text}"
            predicted = _predict_as_rasa_test(assistant, tracker, expected)
            if predicted == expected:
                correct += 1
            elif problem is None:
                problem = f"line {step.line}: expected the bot to say {step.text!r}, predicted '{predicted}'"
            tracker.events.append(action_event(expected))
        elif isinstance(step, SlotStep):
            tracker.events.extend(slot_event(name, True if value is ... else value) for name, value in step.slots)
        elif isinstance(step, LoopStep):
            tracker.events.append(event("active_loop", name=step.name))
    return StoryResult(flow.name, where, problem is None, problem), total, correct


def nlu_cross_validation(data: TrainingData, *, embedder: Embedder, folds: int = 3,
                         seed: int = 0) -> dict[str, Any]:
    """Per-intent precision, recall and F1 with stratified k-fold cross-validation (as `rasa test nlu`)."""
    from sklearn.metrics import classification_report
    from sklearn.model_selection import StratifiedKFold

    from nlu.model import train_model

    examples = data.examples
    labels = np.array([e.intent for e in examples])
    counts = {label: int((labels == label).sum()) for label in set(labels)}
    smallest = min(counts.values()) if counts else 0
    if folds < 2 or folds > smallest:
        raise ValueError(f"{folds} folds: cross-validation needs 2 to {smallest} folds (the smallest intent has "
                         f"{smallest} examples)")
    texts = [e.text for e in examples]
    vectors = embedder.encode(texts)
    predicted = np.empty(len(examples), dtype=object)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(texts, labels):
        fold = TrainingData(examples=[examples[i] for i in train_idx], synonyms=data.synonyms)
        model = train_model(fold, embedder=embedder, embeddings=vectors[train_idx])
        probs = model.classifier.predict_proba(vectors[test_idx], [texts[i] for i in test_idx])
        for row, index in enumerate(test_idx):
            predicted[index] = model.classifier.labels[int(probs[row].argmax())]
    report = classification_report(labels, predicted.astype(str), output_dict=True, zero_division=0)
    per_intent = {name: {"precision": round(v["precision"], 4), "recall": round(v["recall"], 4),
                         "f1": round(v["f1-score"], 4), "support": int(v["support"])}
                  for name, v in report.items() if isinstance(v, dict) and name in counts}
    return {"folds": folds, "examples": len(examples), "accuracy": round(float(report["accuracy"]), 4),
            "macro_f1": round(float(report["macro avg"]["f1-score"]), 4), "per_intent": per_intent}
