"""Human agents: one module per console feature, each with its schemas, queries and rules.

`agents` accounts, sign-in, console sessions, CSRF, availability; `hours` opening hours; `rules` escalation rules
(cached per process), negative wording, order value; `inbox` threads, inbox views, take / assign / round-robin,
hand back, resolve, queue notice; `delivery` agent messages through the outbox and their delivery state;
`replies` agent replies; `drafts` the bot's held drafts; `notes` private notes; `canned` canned responses;
`catalog` product cards from the reply box; `cart_links`
cart links from the reply box; `notices` join / hand-back notices to the shopper; `live_typing` where an
agent's typing signal goes;
`csat` ratings; `views` one conversation in the console; `learning` intent corrections (Rasa YAML) and FAQ drafts.
Shared: `models`, `errors` (reply texts are in the catalogs, `bot.i18n`). `engine_hooks` is where the engine
asks the handoff; the names it calls are exported here. The engine's own triggers read the rules through
`bot.policy.shop_triggers`.
"""
from __future__ import annotations

from bot.handoff import (
    agents,
    canned,
    cart_links,
    catalog,
    csat,
    delivery,
    drafts,
    hours,
    inbox,
    learning,
    live_typing,
    notes,
    replies,
    rules,
    views,
)
from bot.handoff.csat import csat_score_of, record_csat
from bot.handoff.drafts import hold_draft
from bot.handoff.inbox import QueueNotice, open_handoff, queue_notice
from bot.handoff.models import DEFAULT_SHOP_ID
from bot.handoff.rules import (
    EscalationRules,
    order_value_in,
    rules_of,
)

__all__ = ["DEFAULT_SHOP_ID", "EscalationRules", "QueueNotice", "agents", "canned", "cart_links", "catalog", "csat",
           "csat_score_of", "delivery", "drafts", "hold_draft", "hours", "inbox", "learning", "live_typing", "notes",
           "open_handoff", "order_value_in", "queue_notice", "record_csat", "replies", "rules", "rules_of", "views"]
