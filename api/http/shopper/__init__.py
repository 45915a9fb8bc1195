"""The chat channels shoppers write through: Telegram and REST webhooks, the web chat page and socket."""
