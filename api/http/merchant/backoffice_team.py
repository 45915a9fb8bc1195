"""Back office agents and rules, and insights.

Agents and rules: the people who answer shoppers (agent and supervisor accounts: availability, capacity, last seen)
and the shop's hand-off rules (`bot.handoff.rules.EscalationRules`: what sends a shopper to a person, mixed replies,
auto-assignment, opening hours, the SLA's warn and breach minutes). The form is checked by the same model the
console's PUT /api/v1/agent/rules takes; every change is in the audit log with what changed.

Insights: what the old /merchant/insights and /merchant/learning pages showed, and more: conversations, hand-offs
and resolutions, the questions the FAQ did not answer and those the bot did not understand, zero-result and
abandoned searches, missing FAQ translations, what agents taught the bot, CSAT, and how recommendations sell."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

import knowledge_base as kb
from api import accounts
from api.deps import get_database
from api.http.agent.realtime import events_of
from api.http.merchant.backoffice import (
    Editor,
    PageRoute,
    Staff,
    Viewer,
    field_error,
    form_dict,
    invalid,
    redirect,
    render,
    start_of_today,
)
from bot import handoff
from bot import insights as conversation_insights
from bot.handoff.rules import EscalationRules
from commerce.orders.figures import order_figures
from commerce.recommend import service as recommendations
from commerce.search import service as search
from kit.errors import InvalidInput, ShopTalkError

router = APIRouter(route_class=PageRoute, include_in_schema=False)
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
PERIODS = (1, 7, 30, 90)
CHECKBOXES = ("on_request", "on_complaint", "on_negative_wording", "auto_assign")
NUMBERS = ("low_confidence_in_a_row", "unhelpful_in_a_row", "sla_warn_minutes", "sla_breach_minutes")


# ---------------------------------------------------------------------------------------------- rules

def rules_form(rules: EscalationRules) -> dict[str, Any]:
    hours = rules.opening_hours
    form: dict[str, Any] = {name: "on" if getattr(rules, name) else "" for name in CHECKBOXES}
    form.update({name: str(getattr(rules, name)) for name in NUMBERS})
    form.update({
        "low_confidence_below": "" if rules.low_confidence_below is None else str(rules.low_confidence_below),
        "order_value_above": "" if rules.order_value_above is None else str(rules.order_value_above),
        "order_value_currency": rules.order_value_currency, "mixed_reply_default": rules.mixed_reply_default,
        "mixed_reply_by_intent": "\n".join(f"{k} = {v}" for k, v in sorted(rules.mixed_reply_by_intent.items())),
        "hours_always_open": "on" if hours.always_open else "", "hours_timezone": hours.timezone,
        "hours_opens": hours.opens.strftime("%H:%M"), "hours_closes": hours.closes.strftime("%H:%M")})
    for day in range(7):
        form[f"hours_day_{day}"] = "on" if day in hours.days else ""
    return form


def _rules_field(loc: list[str], message: str) -> str:
    if loc and loc[0] == "opening_hours":
        return f"hours_{loc[1]}" if len(loc) > 1 else ("hours_days" if "day" in message else "hours_opens")
    return loc[0]


def rules_from_form(form: dict[str, str]) -> EscalationRules:
    """The form as EscalationRules: the model the console's API validates with, so the same rules refuse."""
    by_intent: dict[str, str] = {}
    for number, line in enumerate((raw for raw in form.get("mixed_reply_by_intent", "").splitlines() if raw.strip()),
                                  start=1):
        name, sep, choice = line.partition("=")
        if not sep:
            raise InvalidInput(f"Line {number}: write intent = answer_and_offer or draft_for_agent.",
                               code="invalid_rules", field="mixed_reply_by_intent")
        by_intent[name.strip()] = choice.strip()
    values: dict[str, Any] = {name: bool(form.get(name)) for name in CHECKBOXES}
    values.update({name: form.get(name, "").strip() for name in NUMBERS})
    values.update({
        "low_confidence_below": form.get("low_confidence_below", "").strip() or None,
        "order_value_above": form.get("order_value_above", "").strip() or None,
        "order_value_currency": form.get("order_value_currency", "").strip(),
        "mixed_reply_default": form.get("mixed_reply_default", ""), "mixed_reply_by_intent": by_intent,
        "opening_hours": {"always_open": bool(form.get("hours_always_open")),
                          "timezone": form.get("hours_timezone", "").strip(),
                          "days": [d for d in range(7) if form.get(f"hours_day_{d}")],
                          "opens": form.get("hours_opens", "").strip(),
                          "closes": form.get("hours_closes", "").strip()}})
    try:
        return EscalationRules.model_validate(values)
    except ValidationError as error:
        message = str(error.errors()[0].get("msg", ""))
        raise invalid(error, field_of=lambda loc: _rules_field(loc, message),
                      whole="sla_breach_minutes" if "sla_" in message else "form") from None


async def _rules_page(request: Request, who: Staff, *, form: dict[str, Any] | None = None,
                      error: dict[str, Any] | None = None, status: int = 200) -> HTMLResponse:
    async with get_database(request).sessions() as session:
        rules = await handoff.rules.rules_of(session, shop_id=who.shop_id)
        people = [a for a in await accounts.team(session, shop_id=who.shop_id)
                  if a.role in ("agent", "supervisor") and a.disabled_at is None]
        history = (await accounts.audit_events(session, area="rules", limit=10))[1]
    return render(request, "rules.html", {"people": people, "form": form or rules_form(rules), "error": error,
                                          "days": DAYS, "history": history,
                                          "notice": request.query_params.get("notice")}, status=status, who=who)


@router.get("/backoffice/rules")
async def rules_page(request: Request, who: Viewer) -> HTMLResponse:
    who.require("rules")
    return await _rules_page(request, who)


@router.post("/backoffice/rules")
async def save_rules(request: Request, who: Editor) -> Response:
    who.require("rules")
    form = form_dict(await request.form())
    try:
        rules = rules_from_form(form)
        async with get_database(request).unit_of_work() as session:
            _, changed = await accounts.save_rules_audited(session, shop_id=who.shop_id, new=rules, actor=who.actor)
    except ShopTalkError as error:
        if error.status in (401, 403):
            raise
        return await _rules_page(request, who, form=form, error=field_error(error), status=error.status)
    await events_of(request.app).publish(who.shop_id, {"type": "settings"})  # open consoles reload their rules
    return redirect("/backoffice/rules", notice="Rules saved." if changed else "Nothing changed.")


# -------------------------------------------------------------------------------------------- insights

@router.get("/backoffice/insights")
async def insights(request: Request, who: Viewer, days: int = 7) -> HTMLResponse:
    who.require("insights")
    days = days if days in PERIODS else 7
    since = start_of_today() - timedelta(days=days - 1)
    async with get_database(request).sessions() as session:
        figures = await conversation_insights.conversation_figures(session, since=since, shop_id=who.shop_id)
        gaps = await conversation_insights.question_gaps(session, since=since)
        orders = await order_figures(session, since=since)
        report = await search.search_report(session, days=days, limit=20)
        missing = await kb.missing_translations(session)
        learned = await handoff.learning.learning_counts(session, shop_id=who.shop_id)
        csat = await handoff.csat.csat_per_agent(session, shop_id=who.shop_id)
        per_model = await recommendations.performance(session, since=since)
        per_channel = await recommendations.channel_performance(session, since=since)
    return render(request, "insights.html", {
        "days": days, "periods": PERIODS, "since": since, "figures": figures, "gaps": gaps, "orders": orders,
        "report": report, "missing": missing, "learned": learned, "csat": csat, "per_model": per_model,
        "per_channel": per_channel}, who=who)
