"""Entity roles and groups at parse time, learnt from the project's annotations as DIET learns them."""
from __future__ import annotations

from typing import Any

from bot.rasa.assistant import Assistant
from bot.rasa.project import RasaProject
from bot.rasa.roles import RoleModel
from nlu.training_data import parse_training_data


def _g(word: str, entity: str, group: str) -> str:
    return f'[{word}]{{"entity": "{entity}", "group": "{group}"}}'


def _pizzas(*parts: tuple[str, str, str, str, str, str]) -> str:
    lines = [f"    - {a} {_g(s1, 'size', '1')} {_g(t1, 'topping', '1')} {b} {_g(s2, 'size', '2')} "
             f"{_g(t2, 'topping', '2')}" for a, s1, t1, b, s2, t2 in parts]
    return ('version: "3.1"\nnlu:\n- intent: order_pizzas\n  examples: |\n' + "\n".join(lines)
            + "\n- intent: greet\n  examples: |\n    - hi\n    - hello\n")


PIZZA = _pizzas(("a", "large", "pepperoni", "and a", "small", "margherita"),
                ("one", "medium", "hawaii", "plus one", "large", "veggie"),
                ("", "small", "veggie", "and", "medium", "pepperoni"),
                ("I'd like a", "large", "hawaii", "and also a", "small", "pepperoni"))


def _span(text: str, word: str, entity: str) -> dict[str, Any]:
    start = text.index(word)
    return {"entity": entity, "start": start, "end": start + len(word), "value": word}


def _labels(model: RoleModel, text: str, found: list[tuple[str, str]]) -> list[tuple[str, Any, Any]]:
    labelled = model.label(text, [_span(text, word, entity) for word, entity in found])
    return [(e["value"], e.get("role"), e.get("group")) for e in labelled]


def test_roles_are_learnt_from_the_annotations_not_the_word_before(project: RasaProject) -> None:
    model = RoleModel(project.nlu.examples)
    # no word before "Berlin": what follows it ("to") says departure, as in the training examples
    assert _labels(model, "Berlin to Hamburg", [("Berlin", "city"), ("Hamburg", "city")]) == \
        [("Berlin", "departure", None), ("Hamburg", "destination", None)]
    # one city alone, after "to": destination (the word before and its being the last one both say so)
    assert _labels(model, "deliver it to Munich", [("Munich", "city")]) == [("Munich", "destination", None)]
    # an entity type the data never gave roles keeps none
    assert _labels(model, "a chocolate cake", [("chocolate", "flavour")]) == [("chocolate", None, None)]


def test_groups_are_learnt_from_the_annotations() -> None:
    model = RoleModel(parse_training_data(PIZZA).examples)
    text = "a medium veggie and a large margherita"
    assert _labels(model, text, [("medium", "size"), ("veggie", "topping"), ("large", "size"),
                                 ("margherita", "topping")]) == \
        [("medium", None, "1"), ("veggie", None, "1"), ("large", None, "2"), ("margherita", None, "2")]


async def test_the_assistant_parses_with_learnt_roles(project: RasaProject) -> None:
    class Parser:  # the NLU's answer: the intent and the cities as any extractor finds them (no roles)
        async def parse(self, text: str) -> dict[str, Any]:
            return {"text": text, "intent": {"name": "ship", "confidence": 0.99},
                    "intent_ranking": [{"name": "ship", "confidence": 0.99}],
                    "entities": [_span(text, "Cologne", "city"), _span(text, "Berlin", "city")]}

    assistant = Assistant(project, parser=Parser())
    parsed = await assistant.parse("Cologne to Berlin")
    assert [(e["value"], e.get("role")) for e in parsed["entities"]] == [("Cologne", "departure"),
                                                                         ("Berlin", "destination")]
