"""The `shoptalk` command line: the process commands (`api.cli.process`) and one module per command group."""
from __future__ import annotations

import typer

from api.cli import agent, demo, nlu, process, rasa, rates, recommend, tokens
from commerce.channels import register_stock_listener

app = typer.Typer(help="ShopTalk: conversational commerce and support.", no_args_is_help=True)
app.command()(process.serve)
app.command()(process.migrate)
app.command()(process.worker)
app.add_typer(demo.app, name="demo")
app.add_typer(tokens.app, name="token")
app.add_typer(nlu.app, name="nlu")
app.add_typer(recommend.app, name="recommend")
app.add_typer(rates.app, name="rates")
app.add_typer(rasa.app, name="rasa")
app.add_typer(agent.app, name="agent")


@app.callback()
def _start() -> None:
    # Stock a command changes (the demo's, an order placed in `rasa test`) queues its channel pushes.
    register_stock_listener()


def main() -> None:
    app()
