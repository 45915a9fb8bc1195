"""Importing Rasa projects, serving the active one, and the tracker store."""
from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.rasa.assistant import ActionContext, Assistant
from bot.rasa.domain import Domain
from bot.rasa.errors import RasaAssistantMissing, RasaProjectInvalid
from bot.rasa.models import RasaAssistant
from bot.rasa.project import RasaProject, load_project
from bot.rasa.remote import RasaServer
from bot.rasa.repository import RasaRepository
from bot.rasa.skills import SHOPTALK_ACTIONS
from bot.rasa.tracker import Tracker
from kit.clock import utcnow
from nlu.embedder import Embedder
from nlu.errors import NluModelInvalid, NluModelMissing, TrainingDataError
from nlu.service import NluService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportReport:
    assistant_id: int
    name: str
    nlu_version: str | None
    summary: dict[str, Any]


def models_dir_of(data_dir: Path) -> Path:
    return Path(data_dir) / "models" / "rasa"


def train_project_nlu(project: RasaProject, *, models_dir: Path, embedder: Embedder | None = None) -> str | None:
    """Train ShopTalk's NLU on the project's nlu data (retrieval sub-intents included); its version."""
    if len(project.nlu.intents) < 2:
        return None
    service = NluService(models_dir=models_dir, data_paths=[], embedder=embedder,
                         default_language=project.language)
    try:
        return service.train(data=project.nlu).version
    except TrainingDataError as error:
        raise RasaProjectInvalid([{"file": error.source, "line": error.line, "problem": error.problem}]) from error


async def import_project(session: AsyncSession, *, files: dict[str, str], models_dir: Path,
                         embedder: Embedder | None = None, source_dir: Path | None = None) -> ImportReport:
    """Validate the project, train its NLU and make it the active assistant.

    A project that does not load raises RasaProjectInvalid (file, line, problem) and changes nothing: the
    assistant serving before keeps serving."""
    project = load_project(files)
    version = await asyncio.to_thread(train_project_nlu, project, models_dir=models_dir, embedder=embedder)
    summary = project.summary()
    if source_dir is not None:
        summary["source_dir"] = str(Path(source_dir).resolve())  # its endpoints.yml is read at run time
    row = RasaAssistant(name=project.assistant_id or "assistant", files=dict(files), summary=summary,
                        nlu_version=version, created_at=utcnow())
    await RasaRepository(session).add_active(row)
    if source_dir is None:
        # An uploaded project's endpoints.yml lives in the data directory and is read at run time like a folder's:
        # replacing it (`replace_endpoints`, or editing the file) takes effect at the next action, no re-import.
        target = endpoints_path_of(models_dir, row.id)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(files.get("endpoints.yml", ""), encoding="utf-8")
        row.summary = {**summary, "endpoints_file": str(target)}
    _forget_active_key(session)
    return ImportReport(assistant_id=row.id, name=row.name, nlu_version=version, summary=row.summary)


def endpoints_path_of(models_dir: Path, assistant_id: int) -> Path:
    return Path(models_dir) / f"assistant-{assistant_id}" / "endpoints.yml"


async def replace_endpoints(session: AsyncSession, *, text: str, models_dir: Path) -> dict[str, Any]:
    """Replace the active assistant's endpoints.yml (the file it reads when an action runs; the stored copy too).
    A folder-imported assistant's file is the folder's own: edit it there."""
    from bot.rasa.project import action_endpoint_of
    from bot.rasa.yaml_source import YamlSyntaxError, load_yaml

    row = await RasaRepository(session).active()
    if row is None or not row.files:
        raise RasaAssistantMissing("no imported Rasa assistant is active")
    if (row.summary or {}).get("source_dir"):
        raise RasaProjectInvalid([{"file": "endpoints.yml", "line": None, "problem":
                                   "this assistant was imported from a folder: edit its endpoints.yml there "
                                   f"({row.summary['source_dir']}); it is read at run time"}])
    try:
        raw = load_yaml(text) if text.strip() else {}
    except YamlSyntaxError as error:
        raise RasaProjectInvalid([{"file": "endpoints.yml", "line": error.line, "problem": error.problem}]) \
            from error
    if not isinstance(raw, dict):
        raise RasaProjectInvalid([{"file": "endpoints.yml", "line": 1, "problem": "endpoints.yml must be a mapping"}])
    target = endpoints_path_of(models_dir, row.id)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    row.files = {**row.files, "endpoints.yml": text}
    row.summary = {**(row.summary or {}), "endpoints_file": str(target)}
    await session.flush()
    endpoint = action_endpoint_of(text)
    return {"assistant_id": row.id, "endpoints_file": str(target), "action_endpoint": endpoint[0] if endpoint else None}


async def connect_server(session: AsyncSession, *, server: RasaServer, files: dict[str, str] | None = None,
                         name: str | None = None) -> ImportReport:
    """Make an assistant that forwards every turn to an existing Rasa server (`bot.rasa.remote`) the active one.
    `files`: the project that server runs, kept for reference and export (optional; validated when given)."""
    summary: dict[str, Any] = load_project(files).summary() if files else {}
    summary["rasa_server"] = server.as_dict()
    row = RasaAssistant(name=name or "rasa-server", files=dict(files or {}), summary=summary, nlu_version=None,
                        created_at=utcnow())
    await RasaRepository(session).add_active(row)
    _forget_active_key(session)
    return ImportReport(assistant_id=row.id, name=row.name, nlu_version=None, summary=row.summary)


_servers: dict[tuple[int, str], RasaServer | None] = {}


async def active_server(session: AsyncSession) -> RasaServer | None:
    """The Rasa server the active assistant forwards turns to, or None (ShopTalk runs the assistant itself)."""
    key = await _active_key(session)
    if key is None:
        return None
    if key not in _servers:
        row = await RasaRepository(session).by_id(key[0])
        raw = (row.summary or {}).get("rasa_server") if row is not None else None
        _servers.clear()  # only the active assistant's setting is ever asked for
        _servers[key] = RasaServer.from_dict(raw) if isinstance(raw, dict) else None
    return _servers[key]


async def export_active(session: AsyncSession, *, target: Path) -> dict[str, Any]:
    """Write the active imported assistant back as its Rasa project; RasaAssistantMissing when none is active."""
    from bot.rasa.export import write_project

    row = await RasaRepository(session).active()
    if row is None:
        raise RasaAssistantMissing("no imported Rasa assistant is active; `--shoptalk` exports ShopTalk's own bot")
    return {"assistant_id": row.id, "name": row.name, **write_project(target, dict(row.files))}


async def active_row(session: AsyncSession) -> RasaAssistant | None:
    """The imported assistant answering shoppers (its stored row), or None when ShopTalk's own bot answers."""
    return await RasaRepository(session).active()


async def deactivate(session: AsyncSession) -> None:
    """ShopTalk's own bot answers again."""
    await RasaRepository(session).deactivate_all()
    _forget_active_key(session)


_cache: dict[tuple[int, str], Assistant] = {}
_cache_lock = threading.Lock()


def _build(row: RasaAssistant, models_dir: Path, embedder: Embedder | None) -> Assistant:
    project = load_project(dict(row.files))
    parser: NluService | None = None
    if row.nlu_version:
        parser = NluService(models_dir=models_dir, data_paths=[], embedder=embedder, default_language=project.language)
        try:
            parser.load(version=row.nlu_version)
        except (NluModelMissing, NluModelInvalid):
            log.warning("NLU model %s of assistant %s is missing; retraining", row.nlu_version, row.id)
            parser.train(data=project.nlu)
    source = (row.summary or {}).get("source_dir")
    stored = (row.summary or {}).get("endpoints_file")
    endpoints_file = Path(source) / "endpoints.yml" if source else Path(stored) if stored else None
    return Assistant(project, parser=parser, shoptalk_actions=SHOPTALK_ACTIONS, endpoints_file=endpoints_file)


# Which assistant is active, per database (keyed weakly by the engine's pool), trusted for ACTIVE_KEY_SECONDS:
# the engine asks on every message, an import or a deactivation is seen by every process within that time
# (at once in the process that made it).
ACTIVE_KEY_SECONDS = 1.0
_active_keys: weakref.WeakKeyDictionary[Any, tuple[float, tuple[int, str] | None]] = weakref.WeakKeyDictionary()


def _forget_active_key(session: AsyncSession) -> None:
    _active_keys.pop(session.get_bind().engine.pool, None)


async def _active_key(session: AsyncSession) -> tuple[int, str] | None:
    pool = session.get_bind().engine.pool
    cached = _active_keys.get(pool)
    now = time.monotonic()
    if cached is not None and now < cached[0]:
        return cached[1]
    key = await RasaRepository(session).active_key()
    _active_keys[pool] = (now + ACTIVE_KEY_SECONDS, key)
    return key


async def active_assistant(session: AsyncSession, *, models_dir: Path,
                           embedder: Embedder | None = None) -> Assistant | None:
    """The active imported assistant (built once per process), or None when ShopTalk's own bot answers."""
    repo = RasaRepository(session)
    key = await _active_key(session)
    if key is None:
        return None
    cached = _cache.get(key)
    if cached is not None:
        return cached
    row = await repo.by_id(key[0])
    assert row is not None
    if not row.files:
        return None  # a Rasa server answers (`active_server`); there is no project here to run
    built = await asyncio.to_thread(_build, row, models_dir, embedder)
    with _cache_lock:
        for stale in [known for known in _cache if known != key]:
            del _cache[stale]  # an older import no longer answers anyone
        _cache.setdefault(key, built)
    return _cache[key]


async def load_tracker(session: AsyncSession, *, conversation_id: int, sender_id: str, domain: Domain) -> Tracker:
    rows = await RasaRepository(session).events(conversation_id)
    return Tracker(sender_id, domain, [dict(row.event) for row in rows])


async def respond(session: AsyncSession, *, assistant: Assistant, conversation_id: int, sender_id: str, text: str,
                  channel: str, message_id: str | None = None, metadata: dict[str, Any] | None = None,
                  extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run one message through the assistant, storing the new Rasa events; the bot's messages."""
    tracker = await load_tracker(session, conversation_id=conversation_id, sender_id=sender_id,
                                 domain=assistant.domain)
    start = len(tracker.events)
    context = ActionContext(tracker=tracker, session=session, conversation_id=conversation_id, channel=channel,
                            extra=extra or {})
    replies = await assistant.handle_message(tracker, text, channel=channel, message_id=message_id,
                                             metadata=metadata, context=context)
    await RasaRepository(session).append(conversation_id, start, tracker.events[start:])
    return replies


async def conversation_of_sender(session: AsyncSession, *, sender_id: str) -> int:
    """The conversation a Rasa sender id names (Rasa's `/conversations/{sender_id}/tracker`); a number that is
    nobody's sender id is taken as ShopTalk's conversation id, as before."""
    found = await RasaRepository(session).conversation_of_sender(sender_id)
    if found is not None:
        return found
    if sender_id.isdigit() and int(sender_id) <= 2_147_483_647:
        return int(sender_id)
    raise RasaAssistantMissing(f"no conversation with sender id {sender_id!r}")


async def export_tracker(session: AsyncSession, *, conversation_id: int, models_dir: Path) -> dict[str, Any]:
    """Rasa's tracker JSON of a conversation (events from the tracker store)."""
    from bot.conversations.service import get_conversation

    conversation = await get_conversation(session, conversation_id=conversation_id)
    assistant = await active_assistant(session, models_dir=models_dir)
    domain = assistant.domain if assistant is not None else Domain()
    tracker = await load_tracker(session, conversation_id=conversation_id, sender_id=conversation.sender_id,
                                 domain=domain)
    if not tracker.events and assistant is None:
        raise RasaAssistantMissing(f"conversation {conversation_id} has no Rasa events")
    return tracker.to_rasa()
