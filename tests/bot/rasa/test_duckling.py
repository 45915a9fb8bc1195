"""DucklingEntityExtractor: a Duckling server's answer when it answers, else the same dimensions found locally."""
from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from bot.rasa.assistant import Assistant
from bot.rasa.project import load_project, read_project_folder
from nlu.duckling import DucklingExtractor, extract_locally

REF = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)


def _found(text: str, language: str = "en") -> list[tuple[str, str, object]]:
    return [(m["dim"], m["body"], m["value"].get("value")) for m in extract_locally(text, language=language,
                                                                                   reference=REF)]


def test_english_dimensions_in_ducklings_shape() -> None:
    assert _found("I want three hundred and twenty five") == [("number", "three hundred and twenty five", 325.0)]
    assert _found("pay $50 tomorrow at 3pm") == [("amount-of-money", "$50", 50.0),
                                                 ("time", "tomorrow at 3pm", "2026-12-08T15:00:00.000+00:00")]
    assert _found("the 3rd one") [0] == ("ordinal", "3rd", 3)
    assert _found("wait 2 hours") == [("duration", "2 hours", 2)]
    assert _found("mail a.b@x.com or call +1 415 555 0132") == [("email", "a.b@x.com", "a.b@x.com"),
                                                                 ("phone-number", "+1 415 555 0132", "+14155550132")]
    money = extract_locally("pay 100 euros", reference=REF)[0]
    assert money["value"] == {"value": 100.0, "unit": "EUR", "type": "value"}
    assert (money["start"], money["end"]) == (4, 13)


def test_chinese_dimensions() -> None:
    assert _found("我要三个，第二个", "zh") == [("number", "三", 3.0), ("ordinal", "第二", 2)]
    assert _found("转账100元", "zh") == [("amount-of-money", "100元", 100.0)]
    assert _found("等5分钟", "zh") == [("duration", "5分钟", 5)]


def _times(text: str) -> list[tuple[str, str, str]]:
    return [(m["body"], m["value"]["value"], m["value"]["grain"]) for m in extract_locally(text, language="zh",
                                                                                           reference=REF)
            if m["dim"] == "time"]


def test_chinese_time_expressions_are_times_with_duckling_grain_not_numbers() -> None:
    # REF is Monday 2026-12-07 10:00 UTC.
    assert _times("明天下午三点") == [("明天下午三点", "2026-12-08T15:00:00.000+00:00", "hour")]
    assert _times("下周一可以吗") == [("下周一", "2026-12-14T00:00:00.000+00:00", "day")]
    # "in N days": the reference moved, one grain finer than the unit (Duckling's inDuration)
    assert _times("3天后") == [("3天后", "2026-12-10T10:00:00.000+00:00", "hour")]
    assert _times("三天后送到") == [("三天后", "2026-12-10T10:00:00.000+00:00", "hour")]
    assert _times("2小时后") == [("2小时后", "2026-12-07T12:00:00.000+00:00", "minute")]
    assert _times("今天晚上8点半") == [("今天晚上8点半", "2026-12-07T20:30:00.000+00:00", "minute")]
    assert _times("后天上午10点") == [("后天上午10点", "2026-12-09T10:00:00.000+00:00", "hour")]
    assert _times("周五") == [("周五", "2026-12-11T00:00:00.000+00:00", "day")]
    assert _times("3月5号") == [("3月5号", "2027-03-05T00:00:00.000+00:00", "day")]  # the next 5 March
    for text in ("明天下午三点", "下周一", "3天后"):
        assert [m["dim"] for m in extract_locally(text, language="zh", reference=REF)] == ["time"], text
    # numbers, money and durations stay what they were
    assert _found("我要三个", "zh") == [("number", "三", 3.0)]
    assert _found("等三天", "zh") == [("duration", "三天", 3)]


@pytest.fixture
def duckling_server() -> Iterator[tuple[str, list[dict[str, list[str]]]]]:
    """A stand-in speaking Duckling's wire protocol (form-encoded POST /parse, JSON list back)."""
    asked: list[dict[str, list[str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            asked.append(parse_qs(body))
            answer = [{"body": "seven", "start": 4, "end": 9, "dim": "number", "latent": False,
                       "value": {"value": 7, "type": "value"}}]
            payload = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", asked
    server.shutdown()


async def test_a_duckling_server_that_answers_is_used(duckling_server: tuple[str, list[dict[str, list[str]]]]) \
        -> None:
    url, asked = duckling_server
    entities = await DucklingExtractor(url=url, dimensions=["number"]).extract("buy seven")
    assert entities == [{"start": 4, "end": 9, "text": "seven", "value": 7, "confidence": 1.0,
                         "additional_info": {"value": 7, "type": "value"}, "entity": "number",
                         "extractor": "DucklingEntityExtractor"}]
    assert asked[0]["text"] == ["buy seven"]
    assert asked[0]["locale"] == ["en_US"]


async def test_no_duckling_server_extracts_locally() -> None:
    entities = await DucklingExtractor(url="http://127.0.0.1:9", dimensions=["number"]).extract("buy 7 cakes")
    assert [(e["entity"], e["value"], e["extractor"]) for e in entities] == [("number", 7.0,
                                                                               "DucklingEntityExtractor")]


async def test_an_imported_project_with_duckling_gets_its_numbers(project_copy: Path) -> None:
    config = project_copy / "config.yml"
    text = config.read_text(encoding="utf-8")
    assert '    url: http://localhost:8000\n    dimensions: ["time"]' in text
    config.write_text(text.replace('    url: http://localhost:8000\n    dimensions: ["time"]',
                                   "    url: http://127.0.0.1:9\n    dimensions: [number]"), encoding="utf-8")
    project = load_project(read_project_folder(project_copy))
    assert any(r["component"] == "DucklingEntityExtractor" and r["status"] == "used" for r in project.report)

    class NoEntities:
        async def parse(self, text: str) -> dict[str, object]:
            return {"text": text, "intent": {"name": "inform", "confidence": 0.99},
                    "intent_ranking": [{"name": "inform", "confidence": 0.99}],
                    "entities": [{"entity": "quantity", "value": "2", "start": 0, "end": 1}]}

    parsed = await Assistant(project, parser=NoEntities()).parse("2 cakes please")
    assert [(e["entity"], e["value"]) for e in parsed["entities"]] == [("number", 2.0)]  # ShopTalk's quantity gone


def test_a_month_is_a_month_as_duckling_reads_it() -> None:
    # Duckling: the month's first day, grain month ("January 2019", "in march" = the next March, "last month")
    found = extract_locally("how much did I earn in January 2019", dimensions=["time"], reference=REF)
    assert [(m["body"], m["value"]["value"], m["value"]["grain"]) for m in found] == [
        ("in January 2019", "2019-01-01T00:00:00.000+00:00", "month")]
    assert [(m["value"]["value"], m["value"]["grain"]) for m in extract_locally(
        "what did I spend last month", dimensions=["time"], reference=REF)] == [
        ("2026-11-01T00:00:00.000+00:00", "month")]
    assert _found("pay $50 on march 3rd")[1] == ("time", "on march 3rd", "2027-03-03T00:00:00.000+00:00")


async def test_an_annotated_entity_named_like_a_duckling_dimension_is_kept(project_copy: Path) -> None:
    # financial-demo annotates `[balance]{"entity": "amount-of-money", "value": "current balance"}` and lists
    # amount-of-money among Duckling's dimensions: DIET reports the annotated one beside Duckling's
    nlu = project_copy / "data" / "nlu.yml"
    text = (project_copy / "config.yml").read_text(encoding="utf-8")
    (project_copy / "config.yml").write_text(text.replace(
        '    url: http://localhost:8000\n    dimensions: ["time"]',
        "    url: http://127.0.0.1:9\n    dimensions: [number, amount-of-money]"), encoding="utf-8")
    domain = project_copy / "domain.yml"
    domain.write_text(domain.read_text(encoding="utf-8").replace("entities:\n", "entities:\n  - amount-of-money\n", 1),
                      encoding="utf-8")
    with nlu.open("a", encoding="utf-8") as handle:
        handle.write('\n- intent: inform\n  examples: |\n    - what is my account [balance]{"entity": '
                     '"amount-of-money", "value": "current balance"}\n')
    project = load_project(read_project_folder(project_copy))

    class Annotated:
        async def parse(self, text: str) -> dict[str, object]:
            start = text.index("balance")
            return {"text": text, "intent": {"name": "inform", "confidence": 0.99},
                    "intent_ranking": [{"name": "inform", "confidence": 0.99}],
                    "entities": [{"entity": "amount-of-money", "value": "balance", "start": start,
                                  "end": start + 7, "extractor": "LookupEntityExtractor"},
                                 {"entity": "amount-of-money", "value": 50, "start": 0, "end": 3,
                                  "extractor": "RegexEntityExtractor"}]}

    parsed = await Assistant(project, parser=Annotated()).parse("$50 of my balance")
    assert sorted((e["entity"], str(e["value"]), e["extractor"]) for e in parsed["entities"]) == [
        ("amount-of-money", "50.0", "DucklingEntityExtractor"),  # ShopTalk's own money pattern gives way
        ("amount-of-money", "current balance", "LookupEntityExtractor")]
