"""What Rasa's TEDPolicy does where no rule and no remembered story predicts: a small model learnt from the
project's own stories (not its rules: TED trains on stories only, as Rasa's `SupportedData.ML_DATA`), over the
dialogue states Rasa featurises (intent, entities, slots, active loop, previous action) of the last `max_history`
turns. It is consulted only after RulePolicy and MemoizationPolicy found nothing, and it wins only with a
confidence above RulePolicy's `core_fallback_threshold` (Rasa's ensemble: the core fallback is RulePolicy's
default prediction at that confidence; a higher one from TED beats it). Right after a loop rejected the message,
that loop is not predicted (Rasa's ensemble zeroes the rejected action).

This is an imitation, not TED: a multinomial logistic regression over one-hot features of each state, indexed by
how far back the state is. It learns the same associations the stories teach ("affirm after an answer -> utter_ok",
"deny after the switch-back question -> utter_ask_whatelse", "a form's intent while another form is active -> the
switch question"), where TED generalises them; turns no story resembles stay with the core fallback. Where a linear
model over-generalises and TED (checked against real Rasa 3.6.21's recorded turns) does not, it is held back: a
current state with an intent, entity, loop or previous action no story has there is not predicted; right after a
user message only an action that at least two stories run right after that intent is (what one story does after
its own question is no rule for a bare "no"; an action the stories only run after another action, such as
financial-demo's action_switch_back_ask after a form, is never the answer to a message) - except inside a form that
refused the message, where TED reads the refusing loop and how it was reached: there an action is allowed when the
stories run it after the same earlier states (the form opened by its intent and interrupted -> the switch question,
whatever the interrupting intent), and a form reached in a way no story interrupts is left to the core fallback.
Older states weigh less (RECENCY) and there is no "conversation start" feature (see `history_features`): both
measured against real Rasa 3.6.21's recorded turns (docs/experiments.md, sessions 6 and 6 rasa2)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy

from bot.rasa.tracker import LISTEN, State

DEFAULT_HISTORY = 3  # TEDPolicy without max_history sees the whole dialogue; the last states carry its decisions


def state_features(state: State, position: int) -> list[str]:
    """One-hot features of a dialogue state `position` states back (0: the current one)."""
    out: list[str] = []
    for key, value in state.items():
        if value is None:
            continue
        if key == "entities":
            out.extend(f"{position}:entity={name}" for name in sorted(value))
        elif value is True or value is False:
            out.append(f"{position}:{key}={str(value).lower()}")
        elif isinstance(value, float | int | str):
            out.append(f"{position}:{key}={value}")
        else:
            out.append(f"{position}:{key}=set")
    return out


MIN_SUPPORT = 2  # what one story alone does after an intent is no generalisation (TED stays under the threshold)


# How much a state `k` states back counts (its one-hot features are RECENCY ** k instead of 1): TED's transformer
# reads the current state directly and earlier ones only through attention, so the user's latest intent outweighs
# what came before it; a linear model with every state at full weight let one earlier action decide (helpdesk:
# /trigger_handoff after an out-of-scope digression -> open_incident_form, because the stories' digressions are
# inside that form; real Rasa 3.6.21: action_handoff).
RECENCY = 0.5


def history_features(states: Sequence[State], history: int) -> list[str]:
    """The features of the last `history` states. No "conversation start" feature: a story that opens with a user
    message is learnt at its start and glued after other stories alike, and such a feature taught the model that
    any message at the start opens a form (financial-demo: a bare /affirm at the start or after a hidden rule-only
    turn -> transaction_search_form 0.39, where real Rasa's TED answers utter_ok)."""
    features: list[str] = []
    for back, state in enumerate(reversed(list(states[-history:]))):
        features.extend(state_features(state, back))
    return features


def _context(states: Sequence[State], history: int) -> frozenset[str]:
    """The features of the states before the current one (within `history`)."""
    return frozenset(f for f in history_features(states, history) if not f.startswith("0:"))


def _weights(vocabulary: dict[str, int]) -> Any:
    """Each feature's value when present: RECENCY ** (how many states back)."""
    scale = numpy.ones(len(vocabulary))
    for feature, index in vocabulary.items():
        scale[index] = RECENCY ** int(feature.split(":", 1)[0])
    return scale


@dataclass
class LearnedPolicy:
    """Multinomial logistic regression (scikit-learn, L2 with strength `c`) over `history_features`."""

    history: int = DEFAULT_HISTORY
    threshold: float = 0.3
    c: float = 10.0
    actions: list[str] = field(default_factory=list)
    vocabulary: dict[str, int] = field(default_factory=dict)
    model: Any = None
    # what the stories do right after each intent: TED, unlike a linear model, does not answer an intent with an
    # action the stories only ever run after another action (financial-demo: action_switch_back_ask after a form)
    followers: dict[str, dict[str, int]] = field(default_factory=dict)
    # the actions the stories run after each context (the states before the current one): inside a form that
    # refused the message, what they run when that same form, reached the same way, is interrupted
    contexts: dict[frozenset[str], set[str]] = field(default_factory=dict)

    def fit(self, runs: Sequence[Sequence[tuple[State, str]]]) -> None:
        """Learn from each story's (state, action) pairs; as Rasa's TrainingDataGenerator glues stories together
        (augmentation), every story that opens with a user message is also learnt after each other story's end
        (only its first `history` predictions see the difference)."""
        from sklearn.linear_model import LogisticRegression

        counts: dict[tuple[tuple[int, ...], int], int] = {}  # the same example learnt again only weighs more

        def add(states: Sequence[State], action: str) -> None:
            if action not in self.actions:
                self.actions.append(action)
            features = tuple(sorted({self.vocabulary.setdefault(f, len(self.vocabulary))
                                     for f in history_features(states, self.history)}))
            key = (features, self.actions.index(action))
            counts[key] = counts.get(key, 0) + 1
            self.contexts.setdefault(_context(states, self.history), set()).add(action)

        for run in runs:
            states = [state for state, _ in run]
            for index, (state, action) in enumerate(run):
                add(states[: index + 1], action)
                if state.get("prev_action") == LISTEN:  # counted once per story, not per gluing
                    seen = self.followers.setdefault(str(state.get("intent")), {})
                    seen[action] = seen.get(action, 0) + 1
        openers = [run for run in runs if run and run[0][0].get("prev_action") == LISTEN]
        for before in runs:
            prefix = [state for state, _ in before]
            for run in openers:
                if run is before:
                    continue
                states = [state for state, _ in run]
                for index, (_, action) in enumerate(run[: self.history]):
                    add([*prefix, *states[: index + 1]], action)
        if len(self.actions) < 2:
            return
        matrix = numpy.zeros((len(counts), len(self.vocabulary)))
        scale = _weights(self.vocabulary)
        for index, (features, _) in enumerate(counts):
            matrix[index, list(features)] = scale[list(features)]
        labels = numpy.array([label for _, label in counts])
        weights = numpy.array(list(counts.values()), dtype=float)
        self.model = LogisticRegression(C=self.c, max_iter=2000).fit(matrix, labels, sample_weight=weights)

    def probabilities(self, states: Sequence[State]) -> dict[str, float]:
        if self.model is None:
            return dict.fromkeys(self.actions, 1.0)
        row = numpy.zeros((1, len(self.vocabulary)))
        known = [self.vocabulary[f] for f in history_features(states, self.history) if f in self.vocabulary]
        row[0, known] = _weights(self.vocabulary)[known]
        probabilities = self.model.predict_proba(row)[0]
        return {self.actions[int(label)]: float(p) for label, p in zip(self.model.classes_, probabilities,
                                                                           strict=True)}

    def predict(self, states: Sequence[State], *, excluded: Iterable[str] = (),
                rejected: bool = False) -> tuple[str, float] | None:
        """The most likely action but `excluded` and its confidence, when it beats the core fallback's. A current
        state with an intent, entity, previous action or loop no story has there is not predicted (TED's features
        of those were never trained: its guesses there stay below the core fallback)."""
        if any(f not in self.vocabulary for f in state_features(states[-1], 0) if not f.startswith("0:slot:")):
            return None
        skip = set(excluded)
        last = states[-1] if states else {}
        if last.get("prev_action") == LISTEN:
            if rejected:  # TED reads the refusing loop and how it was reached, not only the intent
                allowed = self.contexts.get(_context(states, self.history), set())
            else:
                allowed = {a for a, n in self.followers.get(str(last.get("intent")), {}).items()
                           if n >= MIN_SUPPORT}
            skip |= {a for a in self.actions if a not in allowed}
        ranked = sorted(((p, a) for a, p in self.probabilities(states).items() if a not in skip), reverse=True)
        if not ranked or ranked[0][0] <= self.threshold:
            return None
        return ranked[0][1], ranked[0][0]
