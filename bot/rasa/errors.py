"""Errors of imported Rasa projects and their assistants."""
from __future__ import annotations

from typing import Any

from kit.errors import InvalidInput, NotFound, ShopTalkError


class RasaProjectInvalid(InvalidInput):
    """The project does not load: every problem names its file, line and what is wrong."""

    code = "rasa_project_invalid"
    title = "The Rasa project is invalid"

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        lines = [f"{p['file']}:{p['line']}: {p['problem']}" if p.get("line") else f"{p['file']}: {p['problem']}"
                 for p in problems]
        super().__init__("; ".join(lines[:20]) + (f" (and {len(lines) - 20} more)" if len(lines) > 20 else ""),
                         problems=problems)
        self.problems = problems


class RasaAssistantMissing(NotFound):
    code = "rasa_assistant_missing"
    title = "No Rasa assistant is imported"


class ActionServerFailed(ShopTalkError):
    """The action server is down, slow or answered something that is not Rasa's response format."""

    code = "rasa_action_server_failed"
    status = 502
    title = "The custom action server failed"


class ActionRejected(ShopTalkError):
    """The action server refused the action (Rasa's ActionExecutionRejection), e.g. a form found nothing to fill."""

    code = "rasa_action_rejected"
    status = 409
    title = "The action was rejected"


class RasaServerFailed(ShopTalkError):
    """The Rasa server the assistant forwards to is down, slow or answered something that is not Rasa's JSON."""

    code = "rasa_server_failed"
    status = 502
    title = "The Rasa server failed"


class RasaServerSettingInvalid(InvalidInput):
    code = "rasa_server_setting_invalid"
    title = "The Rasa server setting is invalid"
