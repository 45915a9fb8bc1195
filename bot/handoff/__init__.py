"""Human agents: escalation rules, the agent inbox, race-free assignment, agent replies, CSAT and learning.

Service API (bot.handoff.service): accounts (`create_agent`, `agent_by_email`, `sign_in`, `agent_for_session`,
`csrf_token`), inbox (`open_handoff`, `sync_escalations`, `inbox`, `take`, `assign`, `auto_assign`, `hand_back`,
`resolve`, `newest_message_id`, `messages_after`), replies (`reply`, `hold_draft`, `send_draft`), `add_note`,
canned responses (`canned_responses`; supervisors: `create_canned`, `update_canned`, `delete_canned`),
`record_csat`, escalation (`rules_of` - cached per process, `save_rules`, `should_escalate`, `order_value_in`,
`mixed_reply_for`, `queue_notice`), learning (`correct_intent`, `write_corrections`, `save_faq_draft`,
`learning_counts`). The engine's own triggers read the rules through `bot.policy.shop_triggers`.
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
