"""Channel adapters: verify, dedupe and normalise inbound updates; render and send outbound replies.

Each adapter only translates; the conversation engine (`bot.handle_inbound`) does the talking.
"""
