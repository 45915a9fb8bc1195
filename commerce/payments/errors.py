from __future__ import annotations

from kit.errors import Conflict, Forbidden, InvalidInput, NotFound, ShopTalkError


class InvalidSignature(InvalidInput):
    code = "invalid_webhook_signature"
    status = 400
    title = "The webhook's signature does not verify"


class PaymentNotPossible(Conflict):
    """The order is not (or no longer) waiting for payment: paid, expired, cancelled."""

    code = "payment_not_possible"
    title = "This order cannot be paid now"


class ProviderUnavailable(ShopTalkError):
    code = "payment_provider_unavailable"
    status = 503
    title = "The payment provider did not answer"


class ProviderRefused(ShopTalkError):
    code = "payment_provider_refused"
    status = 502
    title = "The payment provider refused the request"


class RefundNotPossible(Conflict):
    code = "refund_not_possible"
    title = "This refund cannot be made"


class NoPaymentMethod(NotFound):
    code = "no_payment_method"
    title = "No payment method is offered for this destination and channel"


class RefundOutsidePolicy(Conflict):
    """`extra`: breaches ({"window": {window_days, delivered_at}, "non_returnable": {categories}}), may_override."""

    code = "refund_outside_policy"
    title = "This refund is outside the destination's return policy"


class OverrideNotAllowed(Forbidden):
    code = "refund_override_not_allowed"
    title = "Only a supervisor or the owner can refund outside the return policy"
