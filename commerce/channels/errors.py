from __future__ import annotations

from kit.errors import InvalidInput, NotFound, ShopTalkError, Unauthorized


class InvalidChannelConfig(InvalidInput):
    code = "invalid_channel_config"
    title = "Invalid sales channel settings"


class InvalidSignature(Unauthorized):
    code = "invalid_signature"
    title = "Signature missing or wrong"


class ChannelUnreachable(ShopTalkError):
    code = "channel_unreachable"
    status = 502
    title = "The sales channel did not answer as expected"


class NoConnector(InvalidInput):
    code = "channel_has_no_connector"
    title = "This sales channel has no connector"


class DeadLetterNotFound(NotFound):
    code = "dead_letter_not_found"
    title = "No such dead-lettered event"
