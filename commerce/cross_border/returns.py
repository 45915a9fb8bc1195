"""Returns: the policy a shopper's country gets, and how much a return refunds."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from commerce.cross_border.errors import RowNotFound
from commerce.cross_border.geography import require_country
from commerce.cross_border.models import ReturnPolicy
from commerce.cross_border.repository import CrossBorderRepository
from commerce.cross_border.schemas import Refund, ReturnPolicyView
from commerce.money import quantize, require_currency
from commerce.orders.models import Order
from kit.clock import utcnow
from kit.errors import InvalidInput


def _texts(policy: ReturnPolicy, locale: str | None) -> tuple[str, list[str], str]:
    """(locale, conditions, notes): the translation for `locale` ('zh-CN' finds 'zh'), else English."""
    translations = policy.translations or {}
    if locale:
        wanted = locale.strip().lower().replace("_", "-")
        language = wanted.split("-", 1)[0]
        keys = [wanted, language] + sorted(k for k in translations if k.split("-", 1)[0] == language)
        for key in keys:
            text = translations.get(key)
            if text and text.get("conditions") is not None:
                return key, list(text["conditions"]), str(text.get("notes") or "")
    return "en", list(policy.conditions), policy.notes


async def return_policy(session: AsyncSession, *, country: str, locale: str | None = None) -> ReturnPolicyView:
    """The return window, conditions and refund rules for a shopper in `country`.

    The most specific policy wins: the country itself, then its region (EU: 14-day withdrawal right), then
    the shop's default ('*'). Conditions and notes come in `locale` when the policy has that translation
    (its language alone also matches), in English otherwise; `locale` in the view says which. Raises
    UnknownCountry.
    """
    code = require_country(country)
    repo = CrossBorderRepository(session)
    tax = await repo.tax_rate(country=code, on=utcnow().date())
    scopes = [code] + ([tax.region] if tax and tax.region != code else []) + ["*"]
    policy = await repo.return_policy(scopes)
    if policy is None:
        raise RowNotFound("The shop has no return policy set up.", code="no_return_policy")
    text_locale, conditions, notes = _texts(policy, locale)
    return ReturnPolicyView(
        country=code, scope=policy.scope, locale=text_locale, window_days=policy.window_days,
        conditions=conditions, notes=notes, legal_basis=policy.legal_basis, source_url=policy.source_url,
        refunds_outbound_shipping=policy.refunds_outbound_shipping, duties_refundable=policy.duties_refundable,
        return_shipping_paid_by=policy.return_shipping_paid_by, restocking_fee_percent=policy.restocking_fee_percent,
        non_returnable_categories=list(policy.non_returnable_categories or []))


def refund_amount(order: Order, *, policy: ReturnPolicyView, returned_goods: Decimal | None = None,
                  return_label_cost: Decimal = Decimal(0)) -> Refund:
    """What a return of `returned_goods` (goods value; default: everything) from `order` refunds.

    Goods, and taxes the shop collected, are refunded in proportion. Duties the shop collected are refunded
    when the policy says so. Outbound shipping is refunded only when the whole order comes back and the policy
    refunds it (EU/UK withdrawal). A prepaid return label is deducted when the shopper pays return shipping.
    """
    currency = require_currency(order.currency)
    subtotal = order.subtotal
    goods = subtotal if returned_goods is None else returned_goods
    if goods < 0 or goods > subtotal:
        raise InvalidInput(f"The returned goods value must be between 0 and the order's goods {subtotal}.",
                           code="invalid_refund_amount")
    share = goods / subtotal if subtotal > 0 else Decimal(0)
    whole = goods == subtotal
    shipping = order.shipping if (whole and policy.refunds_outbound_shipping) else Decimal(0)
    duties = quantize(order.duties * share, currency) if policy.duties_refundable else Decimal(0)
    taxes = quantize(order.taxes * share, currency)
    restocking = quantize(goods * policy.restocking_fee_percent / 100, currency)
    label = quantize(return_label_cost, currency) if policy.return_shipping_paid_by == "shopper" else Decimal(0)
    goods_q, shipping_q = quantize(goods, currency), quantize(shipping, currency)
    total = max(Decimal(0), goods_q + shipping_q + duties + taxes - restocking - label)
    return Refund(currency=currency, goods=goods_q, shipping=shipping_q, duties=duties, taxes=taxes,
                  restocking_fee=restocking, return_shipping_deducted=label, total=total)
