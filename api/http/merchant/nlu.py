"""Rasa-compatible NLU endpoints: POST /model/parse, POST /model/train, GET /model/nlu."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from pydantic import BaseModel, Field

from api.auth import AgentDep, MerchantDep
from api.deps import SessionDep
from kit.errors import InvalidInput
from kit.settings import Settings
from nlu.errors import NluModelInvalid, NluModelMissing
from nlu.service import NluService, get_nlu_service
from nlu.training_data import parse_training_data

router = APIRouter(tags=["nlu"])

# Rasa's own limit for training uploads is generous; ours keeps a bad upload from eating memory.
MAX_TRAINING_BYTES = 5_000_000


class ParseIn(BaseModel):
    text: str = Field(description="The message to parse; longer texts are truncated for the model only.")
    message_id: str | None = None


class TrainOut(BaseModel):
    version: str
    examples: int
    intents: list[str]
    seconds: float
    warnings: list[str]
    metrics: dict[str, Any]


class ModelOut(BaseModel):
    version: str
    trained_at: str
    intents: list[str]
    threshold: float
    margin: float
    metrics: dict[str, Any]


def _service_for(settings: Settings) -> NluService:
    shared = get_nlu_service()
    models_dir = Path(settings.data_dir) / "models"
    if shared.models_dir.resolve() == models_dir.resolve():
        return shared
    return NluService(models_dir=models_dir, embedder=shared.embedder,
                      default_language=settings.locale.default_locale)


async def load_model(app: FastAPI) -> None:
    """The app's NLU service, with the newest saved model loaded when there is one."""
    service = _service_for(app.state.settings)
    app.state.nlu = service
    try:
        # Serve the newest saved model right away; with none, the first parse trains from the shipped data.
        await asyncio.to_thread(service.load)
    except (NluModelMissing, NluModelInvalid):
        pass


def _nlu(request: Request) -> NluService:
    service: NluService | None = getattr(request.app.state, "nlu", None)
    if service is None:
        service = _service_for(request.app.state.settings)
        request.app.state.nlu = service
    return service


@router.post("/model/parse")
async def parse_message(
    body: ParseIn, request: Request, _: AgentDep, session: SessionDep,
    include_embedding: Annotated[bool, Query(description="Also return the 896-d message embedding")] = False,
) -> dict[str, Any]:
    """Intent, ranking, entities (Rasa offsets) and language of one message, in Rasa's response shape. With an
    imported Rasa assistant active, its own model parses (its intents, only its entities), as Rasa would."""
    limit = request.app.state.settings.limits.max_message_chars
    if len(body.text) > max(limit, 10_000):
        raise InvalidInput(f"text is longer than {max(limit, 10_000)} characters", code="nlu_text_too_long")
    from bot.rasa.service import active_assistant, models_dir_of

    assistant = await active_assistant(session, models_dir=models_dir_of(request.app.state.settings.data_dir))
    if assistant is not None and not include_embedding:
        return await assistant.parse(body.text)
    result = await _nlu(request).parse(body.text)
    return result.to_rasa(include_embedding=include_embedding)


@router.post("/model/train", response_model=TrainOut)
async def train_model(request: Request, _: MerchantDep) -> TrainOut:
    """Train from a Rasa NLU YAML body (Content-Type application/x-yaml); a malformed file is refused
    with its line and problem and the current model keeps serving."""
    raw = await request.body()
    if len(raw) > MAX_TRAINING_BYTES:
        raise InvalidInput(f"training data is larger than {MAX_TRAINING_BYTES} bytes", code="nlu_training_too_large")
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput("training data must be UTF-8 text", code="nlu_training_data_invalid") from error
    data = parse_training_data(content, source="request body")
    report = await asyncio.to_thread(_nlu(request).train, data=data)
    return TrainOut(version=report.version, examples=report.examples, intents=report.intents,
                    seconds=report.seconds, warnings=report.warnings, metrics=report.metrics)


@router.get("/model/nlu", response_model=ModelOut)
async def model_info(request: Request, _: AgentDep) -> ModelOut:
    """The model serving now."""
    service = _nlu(request)
    model = service.model
    if model is None:
        model = await asyncio.to_thread(service.ensure_model)
    return ModelOut(version=model.version, trained_at=model.trained_at, intents=model.intents,
                    threshold=model.classifier.threshold, margin=model.classifier.margin, metrics=model.metrics)
