"""The bot: conversation engine, policy, skills and reply catalogs (channels live in bot/channels).

Service API for the channels and the API:
- `understand(inbound, *, deps)`: the NLU parse the engine needs (run it before opening the transaction)
- `handle_inbound(session, inbound, *, deps, parsed=None) -> HandleResult` (stores, answers, queues
  `send.<channel>` events)
- `held_by_person(session, *, channel, sender_id)`: a message held for a person is stored and shown unparsed
- `build_bot_deps(settings, database) -> BotDeps` (once per process)
- `conversation_history(session, *, channel, sender_id, limit=50) -> list[StoredMessage]`
- `set_mode(session, *, conversation_id, mode, queue=None)` (bot | human)
"""
from __future__ import annotations

from bot.conversations.service import StoredMessage, conversation_history, held_by_person, set_mode
from bot.deps import BotDeps, FaqMatch, FaqResult, FaqSource, VerificationLimiter, build_bot_deps
from bot.engine import HandleResult, handle_inbound, understand
from bot.messages import Button, InboundMessage, OutboundMessage, ProductCard

__all__ = ["BotDeps", "Button", "FaqMatch", "FaqResult", "FaqSource", "HandleResult", "InboundMessage",
           "OutboundMessage", "ProductCard", "StoredMessage", "VerificationLimiter", "build_bot_deps",
           "conversation_history", "handle_inbound", "held_by_person", "set_mode", "understand"]
