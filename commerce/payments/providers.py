"""Payment providers behind one interface: Stripe (official library), Telegram Payments, offline (bank transfer,
cash on delivery). Each is built at the edge from settings and handed to `commerce.payments.service`."""
from __future__ import annotations

from typing import Any, Protocol, cast

import stripe

from commerce.payments.errors import InvalidSignature, NoPaymentMethod, ProviderRefused, ProviderUnavailable
from commerce.payments.schemas import OFFLINE, Charge, ProviderPayment
from kit.settings import PaymentSettings


class PaymentProvider(Protocol):
    name: str
    # True when opening a payment is a network call (Stripe): it is made after the payment row is committed, with
    # no lock held (commerce.payments.service.complete_payment); False: opened in the caller's transaction.
    remote: bool

    def link(self, charge: Charge) -> str | None:
        """Where the shopper pays, known before the provider is called (None: in the chat, or offline)."""
        ...

    async def create(self, *, charge: Charge, method_types: list[str], idempotency_key: str) -> ProviderPayment:
        """Open a payment for `charge`; ProviderUnavailable when the provider does not answer."""
        ...

    async def refund(self, *, reference: str, amount_minor: int, currency: str, idempotency_key: str) -> str | None:
        """Give back `amount_minor`; the provider's refund id (None for an offline refund made by a person)."""
        ...

    async def find(self, *, charge: Charge) -> ProviderPayment | None:
        """The payment already opened at the provider for `charge.payment_id` (a create whose answer was lost);
        None when there is none. Called before creating again after an ambiguous failure."""
        ...

    async def cancel(self, *, reference: str) -> str:
        """Close an open payment so it can no longer be paid (its order was cancelled or expired): "cancelled" (now
        or before), "paid" (too late: the money was taken, the provider's payment event flags the order) or
        "processing" (ask again later); ProviderUnavailable when the provider does not answer."""
        ...


class StripeProvider:
    """PaymentIntents with the payment method types the merchant enabled (card, alipay, wechat_pay); the shopper
    pays on the shop's pay page (Stripe's Payment Element) linked from the chat."""

    name = "stripe"
    remote = True

    def __init__(self, *, secret_key: str, pay_page_url: str, api_base: str | None = None,
                 timeout_seconds: float = 10.0) -> None:
        # No retries inside the library: complete_payment retries with the payment's own idempotency key.
        options: dict[str, Any] = {"http_client": stripe.HTTPXClient(timeout=timeout_seconds),
                                   "max_network_retries": 0}
        if api_base:
            options["base_addresses"] = {"api": api_base}
        self._client = stripe.StripeClient(secret_key, **options)
        self._pay_page_url = pay_page_url.rstrip("/")

    async def create(self, *, charge: Charge, method_types: list[str], idempotency_key: str) -> ProviderPayment:
        params: dict[str, Any] = {
            "amount": charge.amount_minor, "currency": charge.currency.lower(),
            "payment_method_types": method_types or ["card"],
            "metadata": {"order_id": str(charge.order_id), "order_number": charge.number,
                         "order_ref": charge.public_ref, "payment_id": str(charge.payment_id or "")}}
        intent = await self._call(self._client.v1.payment_intents.create_async(
            params=cast(Any, params), options={"idempotency_key": idempotency_key}))
        return ProviderPayment(reference=str(intent.id), url=self.link(charge))

    def link(self, charge: Charge) -> str | None:
        return f"{self._pay_page_url}/pay/{charge.public_ref}"

    # How many of the newest payment intents `find` looks through (Stripe lists newest first, strongly consistent;
    # its search API lags by up to a minute, too late for a retry).
    FIND_LIMIT = 1000

    async def find(self, *, charge: Charge) -> ProviderPayment | None:
        """The intent a lost create made for our payment row (metadata payment_id and the order's unguessable public
        reference: ids alone repeat across databases sharing a Stripe account), so a retry reuses
        it instead of leaving a second, unpaid intent: the idempotency key alone cannot be relied on (a fake
        ignores it; Stripe forgets keys after 24 h). Only intents that were not cancelled are reused."""
        if charge.payment_id is None:
            return None
        page = await self._call(self._client.v1.payment_intents.list_async(params={"limit": 100}))
        seen = 0
        while True:
            for intent in page.data:
                metadata = intent.metadata.to_dict() if intent.metadata else {}
                if metadata.get("payment_id") == str(charge.payment_id) and \
                        metadata.get("order_ref") == charge.public_ref and intent.status != "canceled" and \
                        int(intent.amount) == charge.amount_minor and str(intent.currency).upper() == charge.currency:
                    return ProviderPayment(reference=str(intent.id), url=self.link(charge))
            seen += len(page.data)
            if not page.has_more or not page.data or seen >= self.FIND_LIMIT:
                return None
            page = await self._call(self._client.v1.payment_intents.list_async(
                params={"limit": 100, "starting_after": page.data[-1].id}))

    async def cancel(self, *, reference: str) -> str:
        """Cancel the intent unless it already is (a redelivery) or was paid meanwhile (Stripe refuses to cancel a
        succeeded intent; its payment_intent.succeeded event makes the payment `late` and flags the order)."""
        intent = await self._call(self._client.v1.payment_intents.retrieve_async(reference))
        state = _cancel_state(str(intent.status))
        if state is not None:
            return state
        try:
            await self._call(self._client.v1.payment_intents.cancel_async(reference))
        except ProviderRefused:  # it moved between our read and the cancel: say what it is now
            intent = await self._call(self._client.v1.payment_intents.retrieve_async(reference))
            state = _cancel_state(str(intent.status))
            if state is None:
                raise
            return state
        return "cancelled"

    async def client_secret(self, reference: str) -> str:
        """The secret the pay page's Payment Element needs (never stored, never logged)."""
        intent = await self._call(self._client.v1.payment_intents.retrieve_async(reference))
        return str(intent.client_secret)

    async def refund(self, *, reference: str, amount_minor: int, currency: str, idempotency_key: str) -> str | None:
        """A refund whose answer was lost (the caller rolled back and retries later, maybe after Stripe forgot the
        key, or on a fake that ignores keys) is found by the key in its metadata and returned, not made twice."""
        earlier = await self._call(self._client.v1.refunds.list_async(
            params={"payment_intent": reference, "limit": 100}))
        for made in earlier.data:
            if made.metadata and made.metadata.to_dict().get("idempotency_key") == idempotency_key and \
                    made.status != "failed":
                return str(made.id)
        refund = await self._call(self._client.v1.refunds.create_async(
            params={"payment_intent": reference, "amount": amount_minor,
                    "metadata": {"idempotency_key": idempotency_key}},
            options={"idempotency_key": idempotency_key}))
        return str(refund.id)

    @staticmethod
    async def _call(request: Any) -> Any:
        try:
            return await request
        except (stripe.APIConnectionError, stripe.RateLimitError) as error:
            raise ProviderUnavailable("Stripe did not answer; try again in a moment.",
                                      provider="stripe") from error
        except stripe.APIError as error:
            if (error.http_status or 500) >= 500:  # Stripe's side failed: safe to retry with the same key
                raise ProviderUnavailable("Stripe had an error; try again in a moment.", provider="stripe",
                                          http_status=error.http_status) from error
            raise ProviderRefused(f"Stripe refused: {error.user_message or error.code or 'error'}",
                                  provider="stripe", stripe_code=error.code) from error
        except stripe.StripeError as error:
            # The message is Stripe's (no key in it); the request id lets a person find it in the dashboard.
            raise ProviderRefused(f"Stripe refused: {error.user_message or error.code or 'error'}",
                                  provider="stripe", stripe_code=error.code) from error


def _cancel_state(status: str) -> str | None:
    """What an intent in `status` means to a cancel that need not (or cannot) be made; None: cancel it."""
    return {"canceled": "cancelled", "succeeded": "paid", "processing": "processing"}.get(status)


def verify_stripe_event(*, payload: bytes, signature: str | None, secret: str) -> dict[str, Any]:
    """The event, once `Stripe-Signature` verifies against `secret` (stripe.Webhook.construct_event: HMAC-SHA256
    of "t.payload", within Stripe's 5-minute tolerance); InvalidSignature otherwise."""
    if not signature:
        raise InvalidSignature("The request has no Stripe-Signature header.")
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret)
    except (stripe.SignatureVerificationError, ValueError) as error:
        raise InvalidSignature("The Stripe-Signature header does not verify.") from error
    data: dict[str, Any] = event.to_dict()
    return data


class TelegramProvider:
    """Telegram Payments: the bot sends an invoice whose payload names the payment; Telegram's
    successful_payment message confirms it. Refunds go through the payment provider's dashboard."""

    name = "telegram"
    remote = False

    def link(self, charge: Charge) -> str | None:
        return None

    async def create(self, *, charge: Charge, method_types: list[str], idempotency_key: str) -> ProviderPayment:
        return ProviderPayment(reference=f"tg:{charge.order_id}:{idempotency_key[-12:]}", url=None)

    async def refund(self, *, reference: str, amount_minor: int, currency: str, idempotency_key: str) -> str | None:
        return None  # made by a person in the provider's dashboard; recorded here

    async def find(self, *, charge: Charge) -> ProviderPayment | None:
        return None  # opened in our own transaction: nothing can be lost

    async def cancel(self, *, reference: str) -> str:
        return "cancelled"  # an invoice cannot be withdrawn; pre_checkout refuses it (check_before_charge)


class OfflineProvider:
    """Bank transfer or cash on delivery: the reference the shopper quotes is the order's public reference."""

    remote = False

    def __init__(self, name: str) -> None:
        self.name = name

    def link(self, charge: Charge) -> str | None:
        return None

    async def create(self, *, charge: Charge, method_types: list[str], idempotency_key: str) -> ProviderPayment:
        return ProviderPayment(reference=charge.public_ref, url=None)

    async def refund(self, *, reference: str, amount_minor: int, currency: str, idempotency_key: str) -> str | None:
        return None

    async def find(self, *, charge: Charge) -> ProviderPayment | None:
        return None

    async def cancel(self, *, reference: str) -> str:
        return "cancelled"  # nothing open anywhere: a transfer arriving later is recorded as late by a person


def provider_for(name: str, settings: PaymentSettings) -> PaymentProvider:
    """The provider called `name`, built from the payment settings; NoPaymentMethod when it is not configured."""
    if name == "stripe":
        if settings.stripe_secret_key is None:
            raise NoPaymentMethod("Stripe is not configured (SHOPTALK_PAYMENTS__STRIPE_SECRET_KEY).", provider=name)
        return StripeProvider(secret_key=settings.stripe_secret_key.get_secret_value(),
                              pay_page_url=settings.public_url,
                              api_base=settings.stripe_api_base, timeout_seconds=settings.timeout_seconds)
    if name == "telegram":
        return TelegramProvider()
    if name in OFFLINE:
        return OfflineProvider(name)
    raise NoPaymentMethod(f"Unknown payment provider {name!r}.", provider=name)
