"""Imported Rasa assistants: the merchant imports a project; Rasa tooling reads a conversation's tracker."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as FastPath
from pydantic import BaseModel, Field

from api.auth import AgentDep, MerchantDep
from api.deps import SessionDep, SettingsDep
from bot.rasa import service
from bot.rasa.errors import RasaAssistantMissing, RasaProjectInvalid
from bot.rasa.project import MAX_PROJECT_BYTES

router = APIRouter(tags=["rasa"])


class ProjectIn(BaseModel):
    files: dict[str, str] = Field(description="The project's YAML files by path, e.g. {'config.yml': '...', "
                                              "'domain.yml': '...', 'data/nlu.yml': '...', 'endpoints.yml': '...'}")


class AssistantOut(BaseModel):
    assistant_id: int
    name: str
    nlu_version: str | None
    summary: dict[str, Any]


@router.post("/api/v1/rasa/import", response_model=AssistantOut, status_code=201)
async def import_rasa_project(body: ProjectIn, request: Request, session: SessionDep, settings: SettingsDep,
                              _: MerchantDep) -> AssistantOut:
    """Validate and import a Rasa 3.x project; it answers shoppers from now on. A project with problems is
    refused with every problem's file and line, and the assistant serving before keeps serving."""
    if sum(len(text) for text in body.files.values()) > MAX_PROJECT_BYTES:
        raise RasaProjectInvalid([{"file": "<request>", "line": None, "problem": "the project is over 10 MB"}])
    files = {path: text for path, text in body.files.items() if path.endswith((".yml", ".yaml"))}
    report = await service.import_project(session, files=files, models_dir=service.models_dir_of(settings.data_dir),
                                          embedder=getattr(getattr(request.app.state, "nlu", None), "embedder", None))
    return AssistantOut(assistant_id=report.assistant_id, name=report.name, nlu_version=report.nlu_version,
                        summary=report.summary)


@router.get("/api/v1/rasa/assistant", response_model=AssistantOut)
async def active_rasa_assistant(session: SessionDep, _: MerchantDep) -> AssistantOut:
    """The imported assistant answering shoppers."""
    row = await service.active_row(session)
    if row is None:
        raise RasaAssistantMissing("no Rasa assistant is active; ShopTalk's own bot answers")
    return AssistantOut(assistant_id=row.id, name=row.name, nlu_version=row.nlu_version, summary=row.summary)


class EndpointsIn(BaseModel):
    text: str = Field(max_length=100_000, description="The new endpoints.yml, e.g. 'action_endpoint:\\n  url: "
                                                     "http://actions:5055/webhook'")


@router.put("/api/v1/rasa/assistant/endpoints")
async def replace_rasa_endpoints(body: EndpointsIn, session: SessionDep, settings: SettingsDep,
                                 _: MerchantDep) -> dict[str, Any]:
    """Replace an uploaded assistant's endpoints.yml: the action server is read from it when the next action
    runs (no re-import, as for a project imported from a folder, whose own file is edited instead)."""
    return await service.replace_endpoints(session, text=body.text,
                                           models_dir=service.models_dir_of(settings.data_dir))


@router.delete("/api/v1/rasa/assistant", status_code=204)
async def deactivate_rasa_assistant(session: SessionDep, _: MerchantDep) -> None:
    """ShopTalk's own bot answers again (the imported projects stay stored)."""
    await service.deactivate(session)


@router.get("/conversations/{sender_id}/tracker")
async def conversation_tracker(sender_id: Annotated[str, FastPath(min_length=1, max_length=200)],
                               session: SessionDep, settings: SettingsDep, _: AgentDep) -> dict[str, Any]:
    """Rasa's tracker JSON of a conversation by its Rasa sender id (events from ShopTalk's tracker store), as
    Rasa's HTTP API gives it; a number that is nobody's sender id is read as ShopTalk's conversation id."""
    conversation_id = await service.conversation_of_sender(session, sender_id=sender_id)
    return await service.export_tracker(session, conversation_id=conversation_id,
                                        models_dir=service.models_dir_of(settings.data_dir))
