"""Human agents: escalation rules, the agent inbox, race-free assignment, agent replies, CSAT and learning.

Service API (bot.handoff.service): accounts (`create_agent`, `sign_in`, `agent_for_session`, `csrf_token`),
inbox (`open_handoff`, `sync_escalations`, `inbox`, `take`, `assign`, `auto_assign`, `hand_back`, `resolve`),
replies (`reply`, `hold_draft`, `send_draft`), `add_note`, canned responses, `record_csat`, escalation
(`should_escalate`, `mixed_reply_for`, `queue_notice`, `rules_of`), learning (`correct_intent`,
`write_corrections`, `save_faq_draft`, `learning_counts`).
"""
from __future__ import annotations

from bot.handoff.service import (
    DEFAULT_SHOP_ID,
    EscalationRules,
    EscalationSignals,
    QueueNotice,
    mixed_reply_for,
    open_handoff,
    queue_notice,
    record_csat,
    rules_of,
    should_escalate,
)

__all__ = ["DEFAULT_SHOP_ID", "EscalationRules", "EscalationSignals", "QueueNotice", "mixed_reply_for",
           "open_handoff", "queue_notice", "record_csat", "rules_of", "should_escalate"]
