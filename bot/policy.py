"""The policy: one typed decision per message (`Decision`), made here and carried out by the engine.

`decide` routes a parsed message by confidence (answer, answer and ask "did this help?", clarify) and applies the
shop's escalation rules (`ShopTriggers`, read from `bot.handoff.rules.rules_of` by `shop_triggers`, cached per
process): a request for a person, the complaint intent, N unclear messages in a row, then the triggers over the
whole message (`escalate`: negative wording, an expensive order, "did this help? no" in a row) and the shop's mixed
reply for an unsure answer (held as a draft for an agent). A message that is not classified (a button, a command,
the answer to the bot's question) gets only `escalate`. The engine gathers the `Signals` that need the database
before deciding, and only when the rules use them.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from bot.understanding import FALLBACK_INTENT, OUT_OF_SCOPE_INTENT, ParsedMessage

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.handoff.rules import EscalationRules

# answer; confirm = answer and ask "did this help?"; clarify = say it was not understood (or a FAQ guess);
# handoff = a person takes over; draft_for_agent = the answer is held for an agent instead of sent.
Action = Literal["answer", "confirm", "clarify", "handoff", "draft_for_agent"]
# Intents that go to a person whatever the confidence (a request and a complaint only while the shop's
# trigger for them is on; a cancellation always: it needs a person to stop the parcel).
HANDOFF_INTENTS = frozenset({"human_handoff", "complaint", "cancel_order"})
# What the bot does instead when the shop switched the trigger off: a request gets what the bot can do,
# a complaint the knowledge base (returns, damaged parcels...).
INSTEAD_OF_HANDOFF = {"human_handoff": "help", "complaint": "faq"}
DECLINED = {"human_handoff": "request_declined", "complaint": "complaint_declined"}  # the reason then
# A product named in an unclear message, or in an unsure guess of these, is most likely a search.
UNSURE_INTENTS = frozenset({FALLBACK_INTENT, OUT_OF_SCOPE_INTENT, "faq"})
# What a question about a product's facts overrides (`Signals.asks_about_a_product`): an unsure guess, a search
# naming no product, or small talk ("尺码准不准" read as "ok").
NOT_A_PRODUCT_QUESTION = UNSURE_INTENTS | {"product_search", "greet", "goodbye", "thanks", "affirm", "deny"}
# What a question about the product in view also overrides: a recommendation guess ("ok for a 5 year old?" asks
# about the kite in view; asking for other products is not such a question) and a middling request for a person
# ("do they have a mic for calls" read as human_handoff at 0.58): the skill offers a person when the listing
# does not say.
# A payment guess too: "能给switch充电不" (can it charge a Switch?) read as currency_payment at 0.52; a question that
# names paying, shipping or customs is never a product question (`product_routing.PAYING_OR_SHIPPING`).
OVERRIDDEN_BY_VIEW = frozenset({"recommend", "currency_payment"})
PRODUCT_INTENTS = frozenset({"product_search", "product_question", "recommend"})
OVERRIDDEN_BY_VIEW_BELOW_ANSWER = frozenset({"human_handoff"})
# ... and an order or shipping guess when the message names no order and no destination or delivery ("是304还是316钢的"
# read as order_status, "送不送蒸笼纸" as shipping_info): nothing of the shop's to answer, the product's listing may.
OVERRIDDEN_BY_VIEW_UNLESS_NAMED = frozenset({"order_status", "shipping_info"})
# ... and at any confidence when the message names no person ("can i take phone calls on it, like is there a mic"
# read as human_handoff at 0.87): asking for a person says so.
ASKS_FOR_A_PERSON = re.compile(r"\b(human|person|people|someone|somebody|anyone|agent|staff|representative|operator|"
                               r"manager|bot|robot|talk to|speak to|speak with|talk with)\b|"
                               r"人工|客服|真人|转人|机器人|经理|有人吗", re.IGNORECASE)
# Intents that change the cart: a question about the product ("will it fit my cup holder", "can i get the lavender
# ones in 44-45") is answered instead (`Signals.asks_before_buying`); the answer offers "Add to cart".
CART_CHANGING = frozenset({"add_to_cart"})
# The entities that make up a product's name in a message ("black hoodie", "power bank").
PRODUCT_WORDS = frozenset({"product", "colour", "size"})


@dataclass(frozen=True)
class PolicyThresholds:
    answer_at: float = 0.6  # at or above: answer
    confirm_at: float = 0.35  # at or above: answer and ask whether it helped; below: clarify, then hand off
    misunderstandings_before_handoff: int = 2  # consecutive unclear messages before a person takes over


@dataclass(frozen=True)
class ShopTriggers:
    """The shop's escalation rules as the policy reads them (`bot.handoff.rules.EscalationRules`)."""

    on_request: bool = True  # "I want a person" (the human_handoff intent) hands off
    on_complaint: bool = True  # the complaint intent hands off
    low_confidence_in_a_row: int = 2  # unclear messages in a row before a person takes over; 0 = never
    low_confidence_below: float | None = None  # a message below this is unclear; None = thresholds.confirm_at
    on_negative_wording: bool = True
    order_value_above: Decimal | None = None  # an order worth more (in order_value_currency) goes to a person
    order_value_currency: str = "EUR"
    unhelpful_in_a_row: int = 2  # "did this help? no" answers in a row before a person takes over; 0 = never
    mixed_reply_default: str = "answer_and_offer"  # for an unsure answer: answer_and_offer | draft_for_agent
    mixed_reply_by_intent: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def hands_off(self, intent: str) -> bool:
        if intent == "human_handoff":
            return self.on_request
        if intent == "complaint":
            return self.on_complaint
        return True

    def mixed_reply_for(self, intent: str) -> str:
        return self.mixed_reply_by_intent.get(intent, self.mixed_reply_default)


async def shop_triggers(session: AsyncSession, *, shop_id: int | None = None) -> ShopTriggers:
    """The triggers from the shop's escalation rules (cached per process: no query on most messages)."""
    from bot.handoff import DEFAULT_SHOP_ID, rules_of

    return triggers_of(await rules_of(session, shop_id=DEFAULT_SHOP_ID if shop_id is None else shop_id))


def triggers_of(rules: EscalationRules) -> ShopTriggers:
    """The policy's reading of a shop's escalation rules."""
    return ShopTriggers(on_request=rules.on_request, on_complaint=rules.on_complaint,
                        low_confidence_in_a_row=rules.low_confidence_in_a_row,
                        low_confidence_below=rules.low_confidence_below,
                        on_negative_wording=rules.on_negative_wording, order_value_above=rules.order_value_above,
                        order_value_currency=rules.order_value_currency,
                        unhelpful_in_a_row=rules.unhelpful_in_a_row, mixed_reply_default=rules.mixed_reply_default,
                        mixed_reply_by_intent=MappingProxyType(dict(rules.mixed_reply_by_intent)))


@dataclass(frozen=True)
class Signals:
    """What the engine knows about the message besides its parse (gathered only when the rules use it)."""

    names_a_product: bool = False  # the parse found a product name (then an unclear message is a search)
    only_names_a_product: bool = False  # the message is nothing but a product's name (`only_names_a_product`)
    # A question about a product's facts (`bot.skills.product_routing.asks_about_a_product`): an unsure guess or a
    # search naming no product is then a product question.
    asks_about_a_product: bool = False
    # A question while a product is in view (`bot.skills.product_routing.question_about_view`): an unclear one is
    # then about that product.
    question_in_view: bool = False
    # A question about a product's facts without an order to change the cart ("can i get it in black?", not "can you
    # add it to my cart?"): a cart-changing guess is answered as a product question.
    asks_before_buying: bool = False
    names_a_person: bool = False  # the message asks for a person in words (`names_a_person`)
    # An order number, a destination, or an order or delivery in words (`product_routing.names_an_order_or_delivery`);
    # unknown is taken as named (an order or shipping guess then stands).
    names_an_order_or_delivery: bool = True
    negative_wording: bool = False  # strongly negative wording (`bot.handoff.rules.strongly_negative`)
    unhelpful_in_a_row: int = 0  # "did this help? no" answers in a row, this message included
    order_value: Decimal | None = None  # the named order's value in the rules' currency
    order_value_unknown: bool = False  # an order is named but its value cannot be converted (no fresh rate)


@dataclass(frozen=True)
class Decision:
    """What the engine does with the message, and why (`reason`: the inbox thread's reason for a hand-off,
    recorded on the message's NLU record; why the bot answers instead of a person; or None)."""

    action: Action
    intent: str  # the intent the bot answers (or hands off for)
    confidence: float
    reason: str | None = None


def unclear_line(thresholds: PolicyThresholds, triggers: ShopTriggers | None) -> tuple[float, int]:
    """Below which confidence a message is unclear, and how many unclear ones in a row go to a person."""
    if triggers is None:
        return thresholds.confirm_at, thresholds.misunderstandings_before_handoff
    below = thresholds.confirm_at if triggers.low_confidence_below is None else triggers.low_confidence_below
    return below, triggers.low_confidence_in_a_row


def counts_misunderstood(parsed: ParsedMessage, *, thresholds: PolicyThresholds,
                         triggers: ShopTriggers | None) -> bool:
    """Whether `decide` needs the number of unclear messages before this one (a database read)."""
    below, in_a_row = unclear_line(thresholds, triggers)
    return in_a_row > 1 and (parsed.intent == FALLBACK_INTENT or float(parsed.confidence) < below)


def decide(parsed: ParsedMessage, *, thresholds: PolicyThresholds, misunderstood_before: int = 0,
           triggers: ShopTriggers | None = None, signals: Signals | None = None) -> Decision:
    """What to do with a parsed message, given how many messages in a row were not understood before it.

    Without `triggers` the process defaults apply (every trigger on, `misunderstandings_before_handoff`);
    without `signals` the triggers over the whole message are not checked."""
    decision = _route(parsed, thresholds, misunderstood_before, triggers,
                      names_a_product=signals is not None and signals.names_a_product,
                      only_a_product=signals is not None and signals.only_names_a_product,
                      about_a_product=signals is not None and signals.asks_about_a_product,
                      question_in_view=signals is not None and signals.question_in_view,
                      before_buying=signals is not None and signals.asks_before_buying,
                      person_named=signals is not None and signals.names_a_person,
                      order_or_delivery_named=signals is None or signals.names_an_order_or_delivery)
    if decision.action == "handoff" or triggers is None or signals is None:
        return decision
    return escalate(decision, intent=parsed.intent, triggers=triggers, signals=signals)


def escalate(decision: Decision, *, intent: str, triggers: ShopTriggers, signals: Signals) -> Decision:
    """The shop's triggers over the whole message (negative wording, order value, "did this help? no" in a row),
    then its mixed reply for an unsure answer of `intent` (the classifier's): answer and offer a person
    (the decision stays "confirm") or hold the answer as a draft for an agent."""
    reason = None
    if triggers.on_negative_wording and signals.negative_wording:
        reason = "negative_wording"
    elif triggers.order_value_above is not None and (
            signals.order_value_unknown
            or (signals.order_value is not None and signals.order_value > triggers.order_value_above)):
        reason = "order_value"  # an order we cannot value goes to a person: the safer side
    elif triggers.unhelpful_in_a_row and signals.unhelpful_in_a_row >= triggers.unhelpful_in_a_row:
        reason = "not_helpful"
    if reason is not None:
        return replace(decision, action="handoff", reason=reason)
    if decision.action == "confirm" and triggers.mixed_reply_for(intent) == "draft_for_agent":
        return replace(decision, action="draft_for_agent", reason="draft_for_agent")
    return decision


def names_a_person(text: str) -> bool:
    """Whether the message asks for a person in so many words ("can i talk to someone", "转人工")."""
    return ASKS_FOR_A_PERSON.search(text) is not None


def only_names_a_product(parsed: ParsedMessage) -> bool:
    """Whether the message is nothing but a product's name ("power bank", "Voltnest", "black hoodie"): its product,
    colour and size entities cover at least 80 % of its letters and digits, and one of them is a product."""
    letters = [i for i, c in enumerate(parsed.text) if c.isalnum()]
    spans = [e.to_rasa() for e in parsed.entities if e.entity in PRODUCT_WORDS]
    if not letters or not any(e.entity == "product" for e in parsed.entities):
        return False
    covered = sum(1 for i in letters if any(s["start"] <= i < s["end"] for s in spans))
    return covered >= 0.8 * len(letters)


def _product_question_wins(parsed: ParsedMessage, thresholds: PolicyThresholds, unclear_below: float, *,
                           about_a_product: bool, question_in_view: bool, names_a_product: bool = False,
                           before_buying: bool = False, person_named: bool = False,
                           order_or_delivery_named: bool = True) -> bool:
    """Whether a question about a product's facts (or an unclear question with a product in view) is answered by
    the product's listing instead of what the classifier guessed."""
    intent, confidence = parsed.intent, float(parsed.confidence)
    no_person = not person_named
    if before_buying and intent in CART_CHANGING and (about_a_product or question_in_view):
        return True  # a question never changes the cart
    if about_a_product and (intent in NOT_A_PRODUCT_QUESTION or intent in OVERRIDDEN_BY_VIEW
                            or (intent in OVERRIDDEN_BY_VIEW_BELOW_ANSWER
                                and (confidence < thresholds.answer_at or no_person))
                            or confidence < unclear_below):
        return True
    if question_in_view and (intent in OVERRIDDEN_BY_VIEW
                             or (intent in OVERRIDDEN_BY_VIEW_BELOW_ANSWER and no_person)
                             or (intent == "product_search" and not names_a_product)
                             or (intent in OVERRIDDEN_BY_VIEW_UNLESS_NAMED and not order_or_delivery_named)):
        # "good for playing on a bumpy train?", "适合送礼吗" (read as recommend), "zip pockets?" (a search naming
        # nothing the shop sells), "is there a mic" (read as a request for a person): about the product in view.
        return True
    return question_in_view and intent not in HANDOFF_INTENTS and (
        intent == FALLBACK_INTENT or confidence < unclear_below
        or (intent in UNSURE_INTENTS and confidence < thresholds.answer_at))


def _route(parsed: ParsedMessage, thresholds: PolicyThresholds, misunderstood_before: int,
           triggers: ShopTriggers | None, *, names_a_product: bool, only_a_product: bool = False,
           about_a_product: bool = False, question_in_view: bool = False, before_buying: bool = False,
           person_named: bool = False, order_or_delivery_named: bool = True) -> Decision:
    intent, confidence = parsed.intent, float(parsed.confidence)
    unclear_below, in_a_row = unclear_line(thresholds, triggers)
    if _product_question_wins(parsed, thresholds, unclear_below, about_a_product=about_a_product,
                              question_in_view=question_in_view, names_a_product=names_a_product,
                              before_buying=before_buying, person_named=person_named,
                              order_or_delivery_named=order_or_delivery_named):
        # "保修多久" with a product in view, "is the wok dishwasher safe?": the product's listing answers (or says
        # it does not say), whatever the unsure classifier guessed.
        return Decision("answer" if confidence >= thresholds.answer_at else "confirm", "product_question",
                        confidence)
    if only_a_product and intent not in HANDOFF_INTENTS and intent not in PRODUCT_INTENTS:
        # "power bank" read as a payment question, "tea" as goodbye: a message that is only a product's name is a
        # search, whatever the classifier says.
        return Decision("answer", "product_search", confidence)
    if intent in HANDOFF_INTENTS and confidence >= unclear_below:
        if triggers is not None and not triggers.hands_off(intent):
            return Decision("answer", INSTEAD_OF_HANDOFF[intent], confidence, reason=DECLINED[intent])
        return Decision("handoff", intent, confidence, reason=intent)
    if intent == OUT_OF_SCOPE_INTENT and confidence >= unclear_below:
        return Decision("answer", intent, confidence)
    if intent == FALLBACK_INTENT or confidence < unclear_below:
        if in_a_row and misunderstood_before + 1 >= in_a_row:
            decision = Decision("handoff", intent, confidence, reason=intent)
        else:
            decision = Decision("clarify", intent, confidence)
    elif confidence >= thresholds.answer_at:
        return Decision("answer", intent, confidence)
    else:
        decision = Decision("confirm", intent, confidence)
    unclear = decision.action in ("clarify", "handoff") and intent not in HANDOFF_INTENTS
    if names_a_product and (unclear or decision.intent in UNSURE_INTENTS):
        return Decision("confirm", "product_search", confidence)
    return decision
