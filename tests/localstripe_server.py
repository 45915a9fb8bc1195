"""localstripe (the stateful fake of Stripe's API the tests and the checkout benchmark talk to), kept in memory.

As shipped, localstripe saves its whole store to the fixed file /tmp/localstripe.pickle after every write and loads
it when it starts. Every localstripe on the machine shares that one file: one killed while writing leaves it
truncated and every later start dies with UnpicklingError ("localstripe did not start" in every payment test),
objects of earlier runs leak into later ones, and each write re-dumps the whole store, slower as a session goes on.
`command(port)` starts localstripe with a fresh store of its own that never touches the disk.
"""
from __future__ import annotations

import sys

# Run with `python -c` (a script in tests/ would put tests/ first on sys.path, where tests/http.py hides the
# standard library's http package).
_IN_MEMORY = (
    "from localstripe import resources, server\n"
    "resources.Store.try_load_from_disk = lambda self: None\n"
    "resources.Store.dump_to_disk = lambda self: None\n"
    "server.start()\n"
)


def command(port: int) -> list[str]:
    """The command line that serves a fresh in-memory localstripe on port `port`."""
    return [sys.executable, "-c", _IN_MEMORY, "--port", str(port)]
