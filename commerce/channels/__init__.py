"""Sales channels and stock sync (push, pull, push-pull). Importing the package registers the stock listener
that queues channel pushes whenever stock changes."""
from commerce.channels.sync import register_stock_listener

register_stock_listener()
