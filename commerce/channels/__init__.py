"""Sales channels and stock sync (push, pull, push-pull). A process that changes stock calls
`register_stock_listener()` once at its start (the API's lifespan, the worker, the CLI) so stock changes queue
channel pushes."""
from commerce.channels.repository import PUSH_TOPIC
from commerce.channels.sync import register_stock_listener

__all__ = ["PUSH_TOPIC", "register_stock_listener"]
