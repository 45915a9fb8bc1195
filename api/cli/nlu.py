"""`shoptalk nlu`: train the intent/entity model, evaluate it on held-out data, parse one message."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from kit.errors import ShopTalkError

app = typer.Typer(help="NLU model: train | evaluate | parse.", no_args_is_help=True)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TESTS = [REPO_ROOT / "bench" / "data" / "nlu_shop_test_en.yml",
                 REPO_ROOT / "bench" / "data" / "nlu_shop_test_zh.yml"]

ModelsDirOption = Annotated[Path | None, typer.Option(help="Defaults to <SHOPTALK_DATA_DIR>/models")]


def _service(models_dir: Path | None) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from kit.settings import get_settings
    from nlu.service import NluService

    settings = get_settings()
    return NluService(models_dir=models_dir or Path(settings.data_dir) / "models",
                      default_language=settings.locale.default_locale)


def _echo(payload: dict[str, Any]) -> None:
    typer.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str))


def _fail(error: ShopTalkError) -> typer.Exit:
    typer.echo(f"{error.code}: {error.detail}", err=True)
    return typer.Exit(2)


@app.command()
def train(
    data: Annotated[list[Path] | None, typer.Option(help="Rasa YAML files or folders (default: shipped shop data)")]
    = None,
    models_dir: ModelsDirOption = None,
) -> None:
    """Train from Rasa NLU YAML, save the versioned artifact and print its validation figures."""
    service = _service(models_dir)
    if data is None:
        from kit.settings import get_settings
        from nlu.service import DEFAULT_DATA_DIR

        # Agents' intent corrections from the console (bot.handoff) join the shipped data.
        corrections = Path(get_settings().data_dir) / "nlu" / "corrections.yml"
        data = [DEFAULT_DATA_DIR, corrections] if corrections.is_file() else None
    try:
        report = service.train(data_paths=data)
    except ShopTalkError as error:
        raise _fail(error) from error
    _echo({"version": report.version, "path": str(report.path), "examples": report.examples,
           "intents": report.intents, "seconds": report.seconds, "metrics": report.metrics,
           "warnings": report.warnings})


@app.command()
def evaluate(
    test: Annotated[list[Path] | None, typer.Option(help="Held-out Rasa YAML (default: bench/data shop tests)")]
    = None,
    version: Annotated[str | None, typer.Option(help="Model version (default: newest)")] = None,
    models_dir: ModelsDirOption = None,
) -> None:
    """Intent accuracy per language, out-of-scope recall and entity F1 on held-out data."""
    from nlu.evaluation import evaluate as run_evaluation
    from nlu.training_data import load_training_data

    service = _service(models_dir)
    paths = test or [path for path in DEFAULT_TESTS if path.exists()]
    if not paths:
        typer.echo("no test files given and bench/data/nlu_shop_test_*.yml do not exist", err=True)
        raise typer.Exit(2)
    try:
        if version is not None:
            service.load(version=version)
        report = {str(path): run_evaluation(service, load_training_data([path])) for path in paths}
    except ShopTalkError as error:
        raise _fail(error) from error
    _echo(report)


@app.command()
def parse(
    text: Annotated[str, typer.Argument(help="The message")],
    embedding: Annotated[bool, typer.Option("--embedding", help="Include the message embedding")] = False,
    models_dir: ModelsDirOption = None,
) -> None:
    """Parse one message and print Rasa's /model/parse JSON (plus language)."""
    service = _service(models_dir)
    try:
        result = service.parse_sync(text)
    except ShopTalkError as error:
        raise _fail(error) from error
    _echo(result.to_rasa(include_embedding=embedding))
