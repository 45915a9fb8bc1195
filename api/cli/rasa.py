"""`shoptalk rasa`: import a Rasa 3.x project, run its test stories, export ShopTalk's bot as a Rasa project."""
from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.rasa.errors import RasaProjectInvalid

app = typer.Typer(help="Rasa projects: import | test | export | connect.", no_args_is_help=True)


def _echo(payload: dict[str, Any]) -> None:
    typer.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str))


def _report_invalid(error: RasaProjectInvalid, *, doing: str = "nothing was imported") -> typer.Exit:
    for problem in error.problems:
        where = f"{problem['file']}:{problem['line']}" if problem.get("line") else str(problem["file"])
        typer.echo(f"{where}: {problem['problem']}", err=True)
    typer.echo(f"{len(error.problems)} problem(s); {doing}", err=True)
    return typer.Exit(2)


@app.command("import")
def import_command(path: Annotated[Path, typer.Argument(help="The Rasa project folder (as `rasa init` made it)")]) \
        -> None:
    """Validate the project, train its NLU and make it the assistant that answers shoppers."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from bot.rasa.project import load_project, read_project_folder
    from bot.rasa.service import import_project, models_dir_of
    from kit.db import Database
    from kit.settings import get_settings

    settings = get_settings()

    async def run() -> dict[str, Any]:
        database = Database(settings.database.url)
        try:
            async with database.unit_of_work() as session:
                report = await import_project(session, files=files, models_dir=models_dir_of(settings.data_dir),
                                              source_dir=path)
                return {"assistant_id": report.assistant_id, "name": report.name, "nlu_version": report.nlu_version,
                        **report.summary}
        finally:
            await database.dispose()

    try:
        files = read_project_folder(path)
        load_project(files)  # refuse a bad project before touching the database or training anything
        _echo(asyncio.run(run()))
    except RasaProjectInvalid as error:
        raise _report_invalid(error) from error


@app.command("test")
def run_test_stories_command(
    path: Annotated[Path, typer.Argument(help="The Rasa project folder")],
    nlu: Annotated[bool, typer.Option(help="Also cross-validate the NLU and print per-intent figures")] = True,
    folds: Annotated[int, typer.Option(help="Cross-validation folds for the NLU report")] = 3,
    live: Annotated[bool, typer.Option(help="Run each story through the whole engine (actions and the action "
                                            "server run) instead of predicting each step as `rasa test` does")]
    = False,
) -> None:
    """Run the project's test stories (tests/*.yml) as `rasa test` does; non-zero exit when any fails."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from bot.rasa.assistant import Assistant
    from bot.rasa.project import load_project, read_project_folder
    from bot.rasa.testing import nlu_cross_validation, run_test_stories
    from nlu.embedder import get_embedder
    from nlu.service import NluService

    try:
        project = load_project(read_project_folder(path))
    except RasaProjectInvalid as error:
        raise _report_invalid(error, doing="the project does not load, so no story was run") from error
    if nlu and len(project.nlu.intents) >= 2:
        smallest = _smallest_intent(project)
        if folds < 2 or folds > smallest:
            typer.echo(f"--folds {folds}: cross-validation needs 2 to {smallest} folds (the smallest intent has "
                       f"{smallest} examples); nothing was run", err=True)
            raise typer.Exit(2)
    for warning in project.warnings:
        typer.echo(f"warning: {warning}", err=True)
    embedder = get_embedder()
    with tempfile.TemporaryDirectory(prefix="rasa-test-") as models:
        parser = NluService(models_dir=Path(models), data_paths=[], embedder=embedder,
                            default_language=project.language)
        if len(project.nlu.intents) >= 2:
            parser.train(data=project.nlu)
        assistant = Assistant(project, parser=parser)
        report = asyncio.run(run_test_stories(assistant, live=live))
    for line in report.lines():
        typer.echo(line)
    if nlu and len(project.nlu.intents) >= 2:
        figures = nlu_cross_validation(project.nlu, embedder=embedder, folds=folds)
        typer.echo(f"\nNLU ({figures['folds']}-fold cross-validation, {figures['examples']} examples): "
                   f"accuracy {figures['accuracy']}, macro F1 {figures['macro_f1']}")
        typer.echo(f"{'intent':<32}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
        for intent, row in sorted(figures["per_intent"].items()):
            typer.echo(f"{intent:<32}{row['precision']:>10}{row['recall']:>10}{row['f1']:>10}{row['support']:>9}")
    if report.failed:
        raise typer.Exit(1)


def _smallest_intent(project: Any) -> int:
    counts: dict[str, int] = {}
    for example in project.nlu.examples:
        counts[example.intent] = counts.get(example.intent, 0) + 1
    return min(counts.values())


@app.command("export")
def export_command(
    path: Annotated[Path, typer.Argument(help="Folder to write the Rasa project into")],
    shoptalk: Annotated[bool, typer.Option("--shoptalk", help="Export ShopTalk's own bot (its NLU data and a "
                                                              "generated domain) instead of the imported "
                                                              "assistant")] = False,
) -> None:
    """Write the imported Rasa assistant back as its Rasa project (or, with --shoptalk, ShopTalk's own bot)."""
    if shoptalk:
        from bot.rasa.export import export_shoptalk_bot
        from nlu.service import DEFAULT_DATA_DIR

        counts = export_shoptalk_bot(path, nlu_dir=DEFAULT_DATA_DIR)
        _echo({"path": str(path), **counts})
        return
    from bot.rasa.errors import RasaAssistantMissing
    from bot.rasa.service import export_active
    from kit.db import Database
    from kit.settings import get_settings

    settings = get_settings()

    async def run() -> dict[str, Any]:
        database = Database(settings.database.url)
        try:
            async with database.unit_of_work() as session:
                return await export_active(session, target=path)
        finally:
            await database.dispose()

    try:
        _echo({"path": str(path), **asyncio.run(run())})
    except RasaAssistantMissing as error:
        typer.echo(str(error.detail), err=True)
        raise typer.Exit(2) from error


@app.command("connect")
def connect_command(
    url: Annotated[str, typer.Argument(help="The Rasa server, e.g. http://rasa:5005")],
    mode: Annotated[str, typer.Option(help="predict: /conversations/{id}/messages + predict + execute "
                                           "(needs `rasa run --enable-api`; ShopTalk's actions run in ShopTalk); "
                                           "rest: Rasa's REST channel webhook")] = "predict",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer")] = 10.0,
    token_env: Annotated[str | None, typer.Option(help="Environment variable holding Rasa's --auth-token")] = None,
    project: Annotated[Path | None, typer.Option(help="The Rasa project the server runs (kept for export)")] = None,
) -> None:
    """Keep your Rasa server: every turn goes to it, ShopTalk keeps channels, handoff, console and its actions."""
    from bot.rasa.errors import RasaServerSettingInvalid
    from bot.rasa.project import read_project_folder
    from bot.rasa.remote import RasaServer
    from bot.rasa.service import connect_server
    from kit.db import Database
    from kit.settings import get_settings

    try:
        server = RasaServer(url=url, mode=mode, timeout=timeout, token_env=token_env)
        files = read_project_folder(project) if project is not None else None
    except RasaServerSettingInvalid as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from error
    except RasaProjectInvalid as error:
        raise _report_invalid(error, doing="nothing was connected") from error
    settings = get_settings()

    async def run() -> dict[str, Any]:
        database = Database(settings.database.url)
        try:
            async with database.unit_of_work() as session:
                report = await connect_server(session, server=server, files=files)
                return {"assistant_id": report.assistant_id, "name": report.name, **report.summary}
        finally:
            await database.dispose()

    try:
        _echo(asyncio.run(run()))
    except RasaProjectInvalid as error:
        raise _report_invalid(error, doing="nothing was connected") from error
