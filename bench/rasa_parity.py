"""ShopTalk against real Rasa 3.6.21 on unchanged Rasa projects, turn by turn.

For each project: real Rasa (a Python 3.10 venv with rasa==3.6.21, made once and cached) trains the project;
`rasa run --enable-api` serves it on the REST channel; the project's own actions run on one rasa-sdk action
server that both Rasa and ShopTalk call. The same conversations go through both: the project's test stories
(their user messages) and at least --generated more made from its stories and rules with varied phrasing (other
training examples of the same intent), digressions, corrections, /restart and out-of-scope messages. Per turn
the actions each ran after the user's message are compared (action_listen and action_session_start left out).

Prints one JSON document: per project test stories passed (rasa test / shoptalk rasa test), action-level agreement
over every turn, the differing turns with both answers, training seconds, messages per second.

    python bench/rasa_parity.py --project /work/shared/rasa-projects/helpdesk-assistant \
        --rasa-venv /work/rasa310 --work /work/rasa-work [--epochs 30] [--generated 200]

A config the real Rasa cannot run here (spaCy models are not downloadable) is changed in the oracle's copy only
(those components dropped) and the change is listed under "oracle_config_changes"; --epochs caps DIET/TED epochs
in the oracle's copy when this machine is too slow to train them fully (also listed).
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (the project on the import path, models offline)
import httpx
import yaml
from rasa_oracle import RASA_VERSION, ensure_rasa, run_logged, serve_command, start_logged, stop, wait_up

SKIPPED_ACTIONS = {"action_listen", "action_session_start"}
DUCKLING_DOUBLE_PORT = 18765
DUCKLING_DOUBLE_URL = f"http://127.0.0.1:{DUCKLING_DOUBLE_PORT}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def oracle_copy(project: Path, work: Path, epochs: int | None,
                policy_epochs: int | None = None) -> tuple[Path, list[str]]:
    """The project copied for real Rasa, with the changes this machine needs (listed)."""
    target = work / project.name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(project, target, ignore=shutil.ignore_patterns("models", "results", "__pycache__"))
    config_path = target / "config.yml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    changes: list[str] = []
    pipeline = []
    for component in config.get("pipeline") or []:
        if str(component.get("name", "")).startswith("Spacy"):
            changes.append(f"dropped {component['name']} (spaCy model not installable offline)")
            continue
        if component.get("name") == "DucklingEntityExtractor":
            # No Duckling server here: both sides get the same answers from ShopTalk's local extractor, served
            # over Duckling's HTTP API to real Rasa (`duckling_double`); ShopTalk falls back to it in-process.
            changes.append(f"DucklingEntityExtractor url {component.get('url')} -> {DUCKLING_DOUBLE_URL} "
                           "(nlu/duckling.py behind Duckling's /parse)")
            component["url"] = DUCKLING_DOUBLE_URL
        if epochs and "epochs" in component and int(component["epochs"]) > epochs:
            changes.append(f"{component['name']} epochs {component['epochs']} -> {epochs}")
            component["epochs"] = epochs
        pipeline.append(component)
    config["pipeline"] = pipeline
    cap = policy_epochs or epochs
    for policy in config.get("policies") or []:
        if cap and "epochs" in policy and int(policy["epochs"]) > cap:
            changes.append(f"{policy['name']} epochs {policy['epochs']} -> {cap}")
            policy["epochs"] = cap
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return target, changes


def train_rasa(rasa: Path, folder: Path, reuse: Path | None = None) -> tuple[Path, float | None]:
    """Real Rasa's model of the folder (cached by the hash of its files); seconds spent training (None: cached).
    `reuse`: a model real Rasa trained earlier on this same copy (e.g. in the background) goes into the cache."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.yml")):
        if "models" not in path.parts:
            digest.update(path.read_bytes())
    model = folder.parent / "models-cache" / f"{folder.name}-{digest.hexdigest()[:12]}.tar.gz"
    model.parent.mkdir(parents=True, exist_ok=True)
    if reuse is not None and not model.exists():
        shutil.copy(reuse, model)
    if model.exists():
        return model, None
    started = time.monotonic()
    run_logged([str(rasa), "train", "--out", str(model.parent), "--fixed-model-name", model.name[:-7]],
               cwd=folder, log=folder.parent / f"{folder.name}-train.log")
    return model, time.monotonic() - started


def duckling_double() -> Any:
    """Duckling's HTTP API (`POST /parse`, form fields text, locale, dims, reftime) answered by ShopTalk's local
    extractor, so real Rasa's DucklingEntityExtractor and ShopTalk see the same entities (a thread; .shutdown())."""
    import datetime as dt
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs

    from nlu.duckling import extract_locally

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0))
                                                 .decode("utf-8")).items()}
            dims = json.loads(form["dims"]) if form.get("dims") else None
            locale = form.get("locale") or "en_US"
            reference = dt.datetime.fromtimestamp(int(form["reftime"]) / 1000, dt.UTC) if form.get("reftime") \
                else None
            body = json.dumps(extract_locally(form.get("text", ""), dimensions=dims, language=locale.split("_")[0],
                                              reference=reference)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    try:
        server = ThreadingHTTPServer(("127.0.0.1", DUCKLING_DOUBLE_PORT), Handler)
    except OSError:
        # another parity run (e.g. a --train-only one still training) serves the same double there
        answer = httpx.post(f"{DUCKLING_DOUBLE_URL}/parse", data={"text": "two", "locale": "en_US"}, timeout=10)
        if not isinstance(answer.json(), list):
            raise
        return None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---------------------------------------------------------------- conversations
def _examples(project: Any) -> dict[str, list[str]]:
    by_intent: dict[str, list[str]] = {}
    for example in project.nlu.examples:
        by_intent.setdefault(example.intent.split("/")[0], []).append(example.text)
    return by_intent


def _say(step: Any, examples: dict[str, list[str]], rng: random.Random) -> str | None:
    if step.text:
        return str(step.text)
    if step.intent and examples.get(step.intent):
        return rng.choice(examples[step.intent])
    if step.intent:
        return f"/{step.intent}"
    return None


def conversations(project: Any, *, generated: int, seed: int = 0) -> list[dict[str, Any]]:
    """The project's test stories' user messages, then `generated` more from its stories and rules."""
    from bot.rasa.stories import OrStep, UserStep

    rng = random.Random(seed)
    examples = _examples(project)
    out: list[dict[str, Any]] = []
    for flow in project.tests:
        texts = [s.text or f"/{s.intent}" for s in flow.steps if isinstance(s, UserStep)]
        out.append({"name": f"test: {flow.name}", "kind": "test_story", "messages": texts})
    sources = [f for f in project.flows if any(isinstance(s, UserStep | OrStep) for s in f.steps)]
    digressions = [i for i in ("bot_challenge", "help", "greet", "thankyou", "out_of_scope", "chitchat")
                   if i in examples]
    kinds = ["phrasing", "digression", "correction", "restart", "out_of_scope", "back", "fallback"]
    answers = [f"/{i}" for i in ("affirm", "deny") if i in examples]
    nonsense = ["what is the capital of peru", "blorp fizzle", "can you sing me a song about tractors",
                "asdf qwerty", "¿dónde está la biblioteca?", "the moon is made of cheese"]
    for index in range(generated):
        flow = sources[index % len(sources)]
        kind = kinds[index % len(kinds)]
        messages: list[str] = []
        for step in flow.steps:
            if isinstance(step, OrStep):
                options = [o for o in step.options if isinstance(o, UserStep)]
                if not options:
                    continue
                step = rng.choice(options)
            if not isinstance(step, UserStep):
                continue
            said = _say(step, examples, rng) if not step.text else (
                rng.choice(examples.get(step.intent or "", [step.text])) if kind != "correction" else step.text)
            if said:
                messages.append(said)
        if not messages:
            continue
        cut = rng.randrange(len(messages) + 1)
        if kind == "digression" and digressions:
            messages.insert(cut, rng.choice(examples[rng.choice(digressions)]))
        elif kind == "correction":
            messages.insert(cut, messages[max(cut - 1, 0)])  # the user says the same thing again
        elif kind == "restart":
            messages = [*messages[:cut], "/restart", *messages]
        elif kind == "out_of_scope":
            messages.insert(cut, rng.choice(nonsense))
        elif kind == "back":  # Rasa's default intent: action_back undoes the last user turn
            messages.insert(cut, "/back")
        elif kind == "fallback":  # low confidence, then an answer to a two-stage fallback's question
            messages[cut:cut] = [rng.choice(nonsense), rng.choice(answers or ["/out_of_scope"]), rng.choice(nonsense)]
        out.append({"name": f"{kind}: {flow.name}", "kind": kind, "messages": messages})
    return out


# ---------------------------------------------------------------- running them
async def rasa_turns(url: str, sender: str, messages: list[str], client: httpx.AsyncClient) \
        -> list[tuple[list[str], list[str]]]:
    """(actions, texts) of each turn through real Rasa's REST channel and its tracker."""
    turns: list[tuple[list[str], list[str]]] = []
    for message in messages:
        reply = await client.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": message})
        reply.raise_for_status()
        tracker = (await client.get(f"{url}/conversations/{sender}/tracker",
                                    params={"include_events": "ALL"})).json()
        events = tracker.get("events") or []
        # this message's turn: what follows its user event (the tracker's event list is not append-only across
        # a restart, so positions from the previous turn cannot be used)
        last_user = max((i for i, e in enumerate(events) if e.get("event") == "user"), default=-1)
        new = events[last_user + 1:]
        actions = [str(e.get("name")) for e in new if e.get("event") == "action" and e.get("name")
                   not in SKIPPED_ACTIONS]
        turns.append((actions, [str(r.get("text", "")) for r in reply.json()]))
    return turns


async def rasa_parses(url: str, messages: list[str], client: httpx.AsyncClient) -> list[str]:
    """Each message as real Rasa's NLU read it, written as Rasa's `/intent@confidence{entities}` shortcut."""
    out = []
    for message in messages:
        if message.startswith("/"):
            out.append(message)
            continue
        parsed = (await client.post(f"{url}/model/parse", json={"text": message})).json()
        intent = (parsed.get("intent") or {}).get("name") or "nlu_fallback"
        entities: dict[str, Any] = {}
        for entity in parsed.get("entities") or []:
            entities.setdefault(str(entity["entity"]), entity.get("value"))
        out.append(f"/{intent}" + (json.dumps(entities) if entities else ""))
    return out


async def shoptalk_turns(assistant: Any, sender: str, messages: list[str]) -> list[tuple[list[str], list[str]]]:
    from bot.rasa.tracker import Tracker

    tracker = Tracker(sender, assistant.domain)
    turns: list[tuple[list[str], list[str]]] = []
    for message in messages:
        start = len(tracker.events)
        replies = await assistant.handle_message(tracker, message, channel="rest")
        new = tracker.events[start:]
        # counted as on Rasa's side: what follows the turn's last user event (a two-stage fallback's
        # clarification re-logs the message, and real Rasa's tracker is read from there)
        last_user = max((i for i, e in enumerate(new) if e.get("event") == "user"), default=-1)
        actions = [str(e.get("name")) for e in new[last_user + 1:] if e.get("event") == "action"
                   and e.get("name") not in SKIPPED_ACTIONS]
        turns.append((actions, [str(r.get("text", "")) for r in replies]))
    return turns


def rasa_test_stories(rasa: Path, folder: Path, model: Path, out: Path) -> dict[str, Any]:
    """`rasa test core --e2e` on the project's test stories (what `rasa test` runs on them: the user texts through the
    NLU too, as `shoptalk rasa test` does): stories and actions passed, as Rasa counts them."""
    tests = folder / "tests"
    if not tests.is_dir():
        return {"stories": 0}
    run_logged([str(rasa), "test", "core", "--e2e", "--stories", str(tests), "--model", str(model), "--out",
                str(out), "--no-plot"], cwd=folder, log=out.parent / f"{folder.name}-rasa-test.log", check=False)
    report = out / "story_report.json"
    failed = out / "failed_test_stories.yml"
    failed_names: list[str] = []
    if failed.exists():
        loaded = yaml.safe_load(failed.read_text(encoding="utf-8")) or {}
        failed_names = [str(s.get("story")) for s in loaded.get("stories") or []]
    figures: dict[str, Any] = {"failed_stories": failed_names}
    if report.exists():
        data = json.loads(report.read_text(encoding="utf-8"))
        figures["action_accuracy"] = (data.get("accuracy") if isinstance(data.get("accuracy"), float) else None)
        figures["conversation_accuracy"] = (data.get("conversation_accuracy") or {})
    return figures


async def run_project(args: argparse.Namespace, project_dir: Path, rasa: Path) -> dict[str, Any]:
    from bot.rasa.action_server import ActionServerClient
    from bot.rasa.assistant import Assistant
    from bot.rasa.project import load_project, read_project_folder
    from bot.rasa.testing import run_test_stories
    from nlu.service import NluService

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    folder, changes = oracle_copy(project_dir, work, args.epochs, args.policy_epochs)
    reuse = dict(item.split("=", 1) for item in args.reuse_model).get(project_dir.name)
    model, rasa_seconds = train_rasa(rasa, folder, Path(reuse) if reuse else None)
    if args.train_only:
        return {"project": project_dir.name, "oracle_config_changes": changes, "model": str(model),
                "rasa_train_seconds": round(rasa_seconds, 1) if rasa_seconds is not None else "cached"}
    python = rasa.parent / "python"
    action_port, rasa_port = free_port(), free_port()
    (folder / "endpoints.yml").write_text(f'action_endpoint:\n  url: "http://127.0.0.1:{action_port}/webhook"\n',
                                          encoding="utf-8")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        if args.rasa_url:  # a real Rasa already serving this project's model (and its actions, if any)
            rasa_url = args.rasa_url
        elif (folder / "actions").exists():
            actions_log = work / f"{project_dir.name}-actions.log"
            actions = start_logged([str(python), "-m", "rasa_sdk", "--actions", "actions", "--port",
                                    str(action_port)], cwd=folder, log=actions_log)
            processes.append(actions)
            wait_up(f"http://127.0.0.1:{action_port}/health", actions, 300, log=actions_log)
        if not args.rasa_url:
            server_log = work / f"{project_dir.name}-rasa-run.log"
            server = start_logged(serve_command(rasa, model, rasa_port, folder), cwd=folder, log=server_log)
            processes.append(server)
            rasa_url = f"http://127.0.0.1:{rasa_port}"
            wait_up(f"{rasa_url}/status", server, 1800, log=server_log)  # TensorFlow loads slowly on a busy box

        project = load_project(read_project_folder(project_dir))  # unchanged, as a user imports it
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="parity-nlu-") as models:
            parser = NluService(models_dir=Path(models), data_paths=[], default_language=project.language)
            parser.train(data=project.nlu)
            shoptalk_seconds = time.monotonic() - started
            assistant = Assistant(project, parser=parser, action_client=ActionServerClient(
                args.action_url or f"http://127.0.0.1:{action_port}/webhook", timeout=10))
            shoptalk_tests = await run_test_stories(assistant)
            rasa_tests = {"skipped": "--no-rasa-test"} if args.no_rasa_test else \
                rasa_test_stories(rasa, folder, model, work / f"{project_dir.name}-rasa-test")
            talks = conversations(project, generated=args.generated, seed=args.seed)
            total = agree = same_nlu_agree = 0
            differing: list[dict[str, Any]] = []
            same_nlu_differing: list[dict[str, Any]] = []
            by_kind: dict[str, list[int]] = {}
            rasa_time = shop_time = 0.0
            messages = 0
            dump = Path(args.dump).open("a", encoding="utf-8") if args.dump else None
            async with httpx.AsyncClient(timeout=60) as client:
                for index, talk in enumerate(talks):
                    sender = f"parity-{index}-{int(time.time())}"
                    clock = time.monotonic()
                    theirs = await rasa_turns(rasa_url, sender, talk["messages"], client)
                    rasa_time += time.monotonic() - clock
                    clock = time.monotonic()
                    ours = await shoptalk_turns(assistant, sender, talk["messages"])
                    shop_time += time.monotonic() - clock
                    # the dialogue alone: ShopTalk given what Rasa's NLU read, turn by turn
                    read = await rasa_parses(rasa_url, talk["messages"], client)
                    ours_same_nlu = await shoptalk_turns(assistant, sender + "-nlu", read)
                    for turn, (r_turn, s_turn) in enumerate(zip(theirs, ours_same_nlu, strict=True)):
                        same_nlu_agree += r_turn[0] == s_turn[0]
                        if r_turn[0] != s_turn[0]:
                            same_nlu_differing.append({"conversation": talk["name"], "turn": turn,
                                                       "message": talk["messages"][turn], "rasa_read": read[turn],
                                                       "rasa": r_turn[0], "shoptalk": s_turn[0]})
                    messages += len(talk["messages"])
                    if dump is not None:  # real Rasa's side of every turn, to score ShopTalk again offline
                        dump.write(json.dumps({"project": project_dir.name, "name": talk["name"],
                                               "kind": talk["kind"], "messages": talk["messages"], "read": read,
                                               "rasa": [t[0] for t in theirs]}, ensure_ascii=False) + "\n")
                        dump.flush()
                    for turn, (message, (r_actions, r_texts), (s_actions, s_texts)) in enumerate(
                            zip(talk["messages"], theirs, ours, strict=True)):
                        total += 1
                        same = r_actions == s_actions
                        agree += same
                        counts = by_kind.setdefault(talk["kind"], [0, 0])
                        counts[0] += same
                        counts[1] += 1
                        if not same:
                            differing.append({"conversation": talk["name"], "turn": turn, "message": message,
                                              "rasa": r_actions, "shoptalk": s_actions,
                                              "rasa_said": r_texts, "shoptalk_said": s_texts})
    finally:
        stop(reversed(processes))
    return {
        "project": project_dir.name,
        "oracle_config_changes": changes,
        "rasa_train_seconds": round(rasa_seconds, 1) if rasa_seconds is not None else "cached",
        "shoptalk_train_seconds": round(shoptalk_seconds, 1),
        "test_stories": {"shoptalk": {"passed": shoptalk_tests.passed, "total": len(shoptalk_tests.stories),
                                      "actions": f"{shoptalk_tests.actions_correct}/{shoptalk_tests.actions_total}",
                                      "failed": [s.name for s in shoptalk_tests.stories if not s.passed]},
                         "rasa": rasa_tests},
        "conversations": len(talks),
        "turns": total,
        "action_agreement": round(agree / total, 4) if total else None,
        "agreement_by_kind": {k: round(v[0] / v[1], 4) for k, v in sorted(by_kind.items())},
        "dialogue_agreement_with_rasas_nlu": round(same_nlu_agree / total, 4) if total else None,
        "dialogue_differing_turns": same_nlu_differing[: args.show],
        "dialogue_differing_turns_total": len(same_nlu_differing),
        "messages_per_second": {"rasa_rest": round(messages / rasa_time, 1) if rasa_time else None,
                                "shoptalk_engine": round(messages / shop_time, 1) if shop_time else None},
        "differing_turns": differing[: args.show],
        "differing_turns_total": len(differing),
    }


async def rescore(args: argparse.Namespace, project_dir: Path, rasa: Path) -> dict[str, Any]:
    """ShopTalk (as it is now) against real Rasa's recorded turns (`--dump` of an earlier run), with no Rasa
    running: whole-turn agreement (ShopTalk's NLU) and given Rasa's NLU, per kind, the differing turns."""
    from bot.rasa.action_server import ActionServerClient
    from bot.rasa.assistant import Assistant
    from bot.rasa.project import load_project, read_project_folder
    from nlu.service import NluService

    recorded = [json.loads(line) for line in Path(args.rescore).read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line)["project"] == project_dir.name]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    folder = work / f"{project_dir.name}-rescore"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(project_dir, folder)
    processes: list[subprocess.Popen[bytes]] = []
    action_url = None
    try:
        if (folder / "actions").exists():
            port, log = free_port(), work / f"{project_dir.name}-rescore-actions.log"
            actions = start_logged([str(rasa.parent / "python"), "-m", "rasa_sdk", "--actions", "actions",
                                    "--port", str(port)], cwd=folder, log=log)
            processes.append(actions)
            wait_up(f"http://127.0.0.1:{port}/health", actions, 300, log=log)
            action_url = f"http://127.0.0.1:{port}/webhook"
        project = load_project(read_project_folder(project_dir))
        with tempfile.TemporaryDirectory(prefix="parity-nlu-") as models:
            parser = None
            if not args.dialogue_only:  # --dialogue-only: only the dump's `read` column (Rasa's NLU) is replayed
                parser = NluService(models_dir=Path(models), data_paths=[], default_language=project.language)
                parser.train(data=project.nlu)
            assistant = Assistant(project, parser=parser, action_client=ActionServerClient(action_url, timeout=10)
                                  if action_url else None)
            total = agree = same_nlu_agree = 0
            by_kind: dict[str, list[int]] = {}
            differing: list[dict[str, Any]] = []
            for index, talk in enumerate(recorded):
                ours = [] if args.dialogue_only else await shoptalk_turns(assistant, f"rescore-{index}",
                                                                            talk["messages"])
                ours_same_nlu = await shoptalk_turns(assistant, f"rescore-{index}-nlu", talk["read"])
                for turn, rasa_actions in enumerate(talk["rasa"]):
                    total += 1
                    agree += bool(ours) and ours[turn][0] == rasa_actions
                    same = ours_same_nlu[turn][0] == rasa_actions
                    same_nlu_agree += same
                    counts = by_kind.setdefault(talk["kind"], [0, 0])
                    counts[0] += same
                    counts[1] += 1
                    if not same:
                        differing.append({"conversation": talk["name"], "turn": turn,
                                          "message": talk["messages"][turn], "rasa_read": talk["read"][turn],
                                          "rasa": rasa_actions, "shoptalk": ours_same_nlu[turn][0]})
    finally:
        stop(reversed(processes))
    return {"project": project_dir.name, "rescored_from": args.rescore, "conversations": len(recorded),
            "turns": total, "action_agreement": round(agree / total, 4) if total and not args.dialogue_only else None,
            "dialogue_agreement_with_rasas_nlu": round(same_nlu_agree / total, 4) if total else None,
            "dialogue_agreement_by_kind": {k: round(v[0] / v[1], 4) for k, v in sorted(by_kind.items())},
            "dialogue_differing_turns_total": len(differing), "dialogue_differing_turns": differing[: args.show]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", action="append", required=True, help="a Rasa project folder (repeatable)")
    parser.add_argument("--rasa-venv", default="var/rasa310", help="Python 3.10 venv with rasa==3.6.21 (made once)")
    parser.add_argument("--work", default="var/rasa-parity", help="where the oracle's copies and models go")
    parser.add_argument("--generated", type=int, default=200, help="conversations generated per project")
    parser.add_argument("--epochs", type=int, default=None, help="cap DIET/TED epochs in the oracle's copy")
    parser.add_argument("--policy-epochs", type=int, default=None, help="cap TED epochs (default: --epochs)")
    parser.add_argument("--reuse-model", action="append", default=[],
                        help="<project folder name>=<model.tar.gz> real Rasa trained on the same copy")
    parser.add_argument("--rasa-url", default=None,
                        help="use a real Rasa already running this project's model (`rasa run --enable-api`)")
    parser.add_argument("--action-url", default=None, help="with --rasa-url: the action server it uses")
    parser.add_argument("--no-rasa-test", action="store_true", help="skip `rasa test core` (it loads the model again)")
    parser.add_argument("--train-only", action="store_true", help="only train (and cache) real Rasa's models")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=40, help="differing turns printed per project")
    parser.add_argument("--rescore", default=None,
                        help="score ShopTalk against a --dump file of an earlier run instead (real Rasa not run)")
    parser.add_argument("--dialogue-only", action="store_true",
                        help="with --rescore: replay only Rasa's reading of each message (ShopTalk's NLU not trained)")
    parser.add_argument("--dump", default=None,
                        help="append each conversation with real Rasa's reading and actions per turn (JSON lines)")
    args = parser.parse_args()
    # a SIGTERM unwinds (its `finally` stops real Rasa and the action server, which run in their own sessions)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rasa = ensure_rasa(Path(args.rasa_venv))
    duckling = None if args.train_only else duckling_double()
    try:
        results = [asyncio.run((rescore if args.rescore else run_project)(args, Path(p), rasa))
                   for p in args.project]
    finally:
        if duckling is not None:
            duckling.shutdown()
    json.dump({"rasa_version": RASA_VERSION, "projects": results}, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
