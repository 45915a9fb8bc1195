"""CSV and JSON files of FAQ entries: one row per entry and language, keyed by `key`."""
from __future__ import annotations

import csv
import io
import json
from typing import Any

from knowledge_base.errors import FaqImportRejected

CSV_COLUMNS = ("key", "language", "status", "questions", "answer", "tags", "countries", "channels")
# Several phrasings share one cell, one per line; lists like tags are comma-separated.
QUESTION_SEPARATOR = "\n"


def _split(cell: str, separator: str) -> list[str]:
    return [part.strip() for part in cell.split(separator) if part.strip()]


def parse_csv(text: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Records and per-row errors (row 1 is the header, so data rows start at 2)."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise FaqImportRejected("The CSV file is empty.", code="empty_import", errors=[]) from None
    except csv.Error as error:
        raise FaqImportRejected(f"The CSV header cannot be read: {error}.", code="malformed_csv", errors=[]) from None
    missing = [c for c in ("key", "language", "questions", "answer") if c not in header]
    if missing:
        raise FaqImportRejected(f"The CSV header lacks the column(s) {', '.join(missing)}; expected "
                                f"{', '.join(CSV_COLUMNS)}.", code="malformed_csv", errors=[])
    records: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    row_number = 1
    while True:
        row_number += 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            errors.append({"row": row_number, "code": "malformed_row", "detail": f"Unreadable CSV row: {error}."})
            break
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            errors.append({"row": row_number, "code": "wrong_column_count",
                           "detail": f"Expected {len(header)} cells, found {len(row)}."})
            continue
        cells = dict(zip(header, row, strict=True))
        records.append({"_row": row_number, "key": cells.get("key", ""), "language": cells.get("language", ""),
                        "status": cells.get("status") or "draft",
                        "questions": _split(cells.get("questions", ""), QUESTION_SEPARATOR),
                        "answer": cells.get("answer", ""), "tags": _split(cells.get("tags", ""), ","),
                        "countries": _split(cells.get("countries", ""), ","),
                        "channels": _split(cells.get("channels", ""), ",")})
    return records, errors


def parse_json(text: str) -> list[dict[str, Any]]:
    """A list of records, or {"entries": [...]} (also the demo file's grouped form with `translations`)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise FaqImportRejected(f"The JSON file is not valid JSON: {error.msg} at line {error.lineno}.",
                                code="malformed_json", errors=[]) from None
    items = data.get("entries") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise FaqImportRejected("Expected a list of entries or {\"entries\": [...]}.", code="malformed_json",
                                errors=[])
    records: list[dict[str, Any]] = []
    for number, item in enumerate(items, start=1):
        if isinstance(item, dict) and isinstance(item.get("translations"), dict):
            for language, text_of in item["translations"].items():
                body = text_of if isinstance(text_of, dict) else {}
                records.append({**{k: v for k, v in item.items() if k != "translations"}, **body,
                                "language": language, "_row": number})
        elif isinstance(item, dict):
            records.append({**item, "_row": number})
        else:
            records.append({"_row": number, "key": "", "_invalid": True})
    return records


def to_csv(records: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for record in records:
        writer.writerow([record["key"], record["language"], record["status"],
                         QUESTION_SEPARATOR.join(record["questions"]), record["answer"],
                         ",".join(record["tags"]), ",".join(record["countries"]), ",".join(record["channels"])])
    return out.getvalue()


def to_json(records: list[dict[str, Any]]) -> str:
    return json.dumps({"version": 1, "entries": records}, ensure_ascii=False, indent=1)
