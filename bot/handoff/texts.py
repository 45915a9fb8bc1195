"""What the handoff says to shoppers, per locale (services pick a key; channels render)."""
from __future__ import annotations

from typing import Any

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "csat_question": "Thanks for chatting with us. How did we do? (1 = poor, 5 = great)",
        "csat_thanks": "Thank you for your rating!",
        "queued": "A member of our team will be with you shortly. You are number {position} in the queue; "
                  "the expected wait is about {minutes} min.",
        "offline": "Our team is away right now. We open again {opens_at} ({timezone}) and will answer you here "
                   "then.",
    },
    "zh": {
        "csat_question": "感谢您的咨询。请为本次服务打分（1 = 很差，5 = 很好）",
        "csat_thanks": "感谢您的评分！",
        "queued": "客服人员马上为您服务。您目前排在第 {position} 位，预计等待约 {minutes} 分钟。",
        "offline": "客服现在不在线。我们将于 {opens_at}（{timezone}）上班，届时会在这里回复您。",
    },
}


def text(locale: str | None, key: str, **values: Any) -> str:
    table = TEXTS.get((locale or "en")[:2], TEXTS["en"])
    return (table.get(key) or TEXTS["en"][key]).format(**values)
