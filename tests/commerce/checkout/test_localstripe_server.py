"""The tests' localstripe keeps its store in memory: nothing read from or written to /tmp/localstripe.pickle."""
from __future__ import annotations

import os
from pathlib import Path

import stripe

SHARED_FILE = Path("/tmp/localstripe.pickle")


def _state() -> tuple[int, int] | None:
    try:
        stat = SHARED_FILE.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


def test_our_localstripe_neither_reads_nor_writes_the_machine_wide_store(localstripe: str) -> None:
    before = _state()
    client = stripe.StripeClient("sk_test_local", base_addresses={"api": localstripe},
                                 http_client=stripe.HTTPXClient(allow_sync_methods=True))
    created = client.v1.customers.create({"email": f"store-{os.getpid()}@example.com"})
    assert client.v1.customers.retrieve(created.id).email == created.email
    assert _state() == before  # localstripe as shipped dumps its whole store there after every write
