"""Rasa 3.x projects running on ShopTalk: import, validate, converse, custom actions, tracker store, tests.

Service API:
- `load_project(files) -> RasaProject`, `read_project_folder(path) -> files` (RasaProjectInvalid: file/line/problem)
- `import_project(session, *, files, models_dir) -> ImportReport` (validate, train the NLU, make it active)
- `active_assistant(session, *, models_dir) -> Assistant | None`
- `respond(session, *, assistant, conversation_id, sender_id, text, channel, ...)` (tracker store in the database)
- `export_tracker(session, *, conversation_id, models_dir) -> dict` (Rasa's tracker JSON)
- `run_test_stories(assistant) -> TestReport` (`shoptalk rasa test`)
"""
from __future__ import annotations

from bot.rasa.assistant import ActionContext, Assistant
from bot.rasa.errors import ActionRejected, ActionServerFailed, RasaAssistantMissing, RasaProjectInvalid
from bot.rasa.project import RasaProject, load_project, read_project_folder
from bot.rasa.service import (
    ImportReport,
    active_assistant,
    deactivate,
    export_tracker,
    import_project,
    models_dir_of,
    respond,
)
from bot.rasa.tracker import Tracker

__all__ = [
    "ActionContext", "ActionRejected", "ActionServerFailed", "Assistant", "ImportReport", "RasaAssistantMissing",
    "RasaProject", "RasaProjectInvalid", "Tracker", "active_assistant", "deactivate", "export_tracker",
    "import_project", "load_project", "models_dir_of", "read_project_folder", "respond",
]
