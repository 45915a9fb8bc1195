"""`shoptalk rates import FILE`: XML or CSV by content, clear errors for bad files."""
from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app as shoptalk
from commerce.cross_border import convert
from commerce.cross_border.fx import DEMO_RATES_FILE
from kit.db import Database

runner = CliRunner()


async def _invoke(*args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(runner.invoke, shoptalk, list(args))
    return result.exit_code, result.output


async def test_import_ecb_xml_and_csv(db: Database, tmp_path: Path) -> None:
    code, output = await _invoke("rates", "import", str(DEMO_RATES_FILE), "--as-of", "2026-11-28",
                                 "--database-url", db.url)
    assert code == 0, output
    assert "(ecb-xml)" in output
    csv_file = tmp_path / "rates.csv"
    csv_file.write_text("date,base,currency,rate\n2026-11-28,USD,KWD,0.3071\n", encoding="utf-8")
    code, output = await _invoke("rates", "import", str(csv_file), "--database-url", db.url)
    assert code == 0, output
    assert "imported 1 rates" in output
    async with db.sessions() as session:
        gbp = await convert(session, amount=Decimal("100"), from_currency="EUR", to_currency="GBP",
                            on=date(2026, 11, 28))
        kwd = await convert(session, amount=Decimal("100"), from_currency="EUR", to_currency="KWD",
                            on=date(2026, 11, 28))
    assert gbp.rate == Decimal("0.8765")
    assert kwd.rate == Decimal("1.1570") * Decimal("0.3071")  # EUR -> USD -> KWD across two bases


async def test_bad_files_exit_with_a_code(db: Database, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("2026-11-28,EUR,NOTACURRENCY,1\n", encoding="utf-8")
    code, output = await _invoke("rates", "import", str(bad), "--database-url", db.url)
    assert code == 2
    assert "invalid_rates_file" in output
    code, output = await _invoke("rates", "import", str(tmp_path / "missing.xml"), "--database-url", db.url)
    assert code == 2
    assert "cannot read" in output
