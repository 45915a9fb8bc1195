"""Back office search settings: run a shopper's query, pick products from the results (or from a second search)
to pin, boost or bury for it, manage synonym groups, and see the queries that found nothing. Products are picked
by searching, never by typing slugs; the rules are the search service's own (`commerce.search`)."""
from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api import accounts
from api.deps import get_database
from api.http.merchant.backoffice import Editor, PageRoute, Staff, Viewer, field_error, redirect, render
from commerce.catalog.service import all_products
from commerce.search import service as search
from kit.errors import InvalidInput, ShopTalkError

router = APIRouter(route_class=PageRoute, include_in_schema=False)


async def ranking(session: AsyncSession, query: str, *, country: str | None = None,
                  limit: int = 10) -> list[dict[str, Any]]:
    """How a query ranks for a shopper: the shopper's own search (`search.search_products`: words, synonyms, stock,
    where the product sells, then the merchant's pins, boosts and buries), each hit with the reasons for its place.
    The chat also weighs meaning (the message's embedding) when its model is loaded; this ranks by words."""
    if not query.strip():
        return []
    result = await search.search_products(session, query=query, country=country, limit=limit)
    products = await search.hit_products(session, product_ids=[h.product_id for h in result.hits])
    normal = search.normalise_query(query)
    rules = [r for r in await search.list_rules(session) if r.query is None or r.query == normal]
    rows = []
    for place, hit in enumerate(result.hits, start=1):
        product = products.get(hit.product_id)
        if product is None:
            continue  # retired since the search ran
        reasons = []
        for rule in (r for r in rules if r.product_id == hit.product_id):
            scope = "every query" if rule.query is None else f"“{rule.query}”"
            reasons.append({"pin": f"pinned at place {rule.position} for {scope}",
                            "boost": f"boosted for {scope} (+{search.BOOST})",
                            "bury": f"buried for {scope} (−{search.BURY})"}.get(rule.kind, rule.kind))
        if hit.lexical > 0:
            reasons.append(f"its words match the query (word score {hit.lexical:.2f})")
        if hit.dense > 0:
            reasons.append(f"close in meaning ({hit.dense:.2f})")
        if hit.alternative:
            reasons.append("shown as a close alternative: not the kind of thing asked for")
        rows.append({"place": place, "product_id": hit.product_id, "slug": product.slug, "title": product.title,
                     "score": hit.score, "sku": hit.sku, "reasons": reasons or ["listed"]})
    return rows


async def _hits(session: AsyncSession, query: str) -> list[dict[str, Any]]:
    return await ranking(session, query)


async def _page(request: Request, who: Staff, *, q: str, find: str, status: int = 200,
                error: dict[str, Any] | None = None) -> HTMLResponse:
    async with get_database(request).sessions() as session:
        slugs = {p.id: p.slug for p in await all_products(session)}
        rules = [{"id": r.id, "kind": r.kind, "product": slugs.get(r.product_id, str(r.product_id)), "query": r.query,
                  "position": r.position} for r in await search.list_rules(session)]
        synonyms = await search.list_synonyms(session)
        report = await search.search_report(session, days=30, limit=20)
        results = await _hits(session, q)
        found = await _hits(session, find) if find.strip() and find != q else []
    return render(request, "search.html", {"q": q, "find": find, "results": results, "found": found, "rules": rules,
                                           "synonyms": synonyms, "report": report, "error": error,
                                           "notice": request.query_params.get("notice")}, status=status, who=who)


@router.get("/backoffice/search")
async def settings(request: Request, who: Viewer, q: str = "", find: str = "") -> HTMLResponse:
    who.require("search")
    return await _page(request, who, q=q[:200], find=find[:200])


@router.post("/backoffice/search/rules")
async def add_rule(request: Request, who: Editor, kind: Annotated[str, Form(max_length=10)],
                   product: Annotated[str, Form(max_length=120)], q: Annotated[str, Form(max_length=200)] = "",
                   everywhere: Annotated[str, Form(max_length=3)] = "", position: Annotated[int, Form()] = 1,
                   find: Annotated[str, Form(max_length=200)] = "") -> Response:
    """`product` comes from a result row's button (a slug the search returned)."""
    who.require("search")
    try:
        query = None if everywhere and kind != "pin" else q.strip() or None
        if query is None and kind == "pin":
            raise InvalidInput("A pin is for one query: search for it first.", code="pin_needs_query", field="q")
        async with get_database(request).unit_of_work() as session:
            row = await search.add_rule(session, kind=kind, product_slug=product, query=query, position=position)
            await accounts.record(session, actor=who.actor, area="search", action=f"{kind} added", subject=product,
                                  details={"query": query or "every query", "position": row.position})
    except ShopTalkError as error:
        if error.status in (401, 403):
            raise
        return await _page(request, who, q=q, find=find, status=error.status, error=field_error(error))
    return redirect(f"/backoffice/search?q={quote(q)}", notice=f"{kind.title()} saved for {product}.")


@router.post("/backoffice/search/rules/{rule_id}/delete")
async def delete_rule(request: Request, who: Editor, rule_id: int, q: Annotated[str, Form(max_length=200)] = ""
                      ) -> Response:
    who.require("search")
    async with get_database(request).unit_of_work() as session:
        await search.delete_rule(session, rule_id=rule_id)
        await accounts.record(session, actor=who.actor, area="search", action="rule removed",
                              subject=f"rule {rule_id}")
    return redirect(f"/backoffice/search?q={quote(q)}", notice="Rule removed.")


@router.post("/backoffice/search/synonyms")
async def add_synonyms(request: Request, who: Editor, terms: Annotated[str, Form(max_length=1000)],
                       q: Annotated[str, Form(max_length=200)] = "") -> Response:
    who.require("search")
    try:
        words = [t.strip() for t in terms.replace("，", ",").split(",") if t.strip()]
        if len(words) < 2:
            raise InvalidInput("A synonym group needs at least two words, separated by commas.",
                               code="too_few_terms", field="terms")
        async with get_database(request).unit_of_work() as session:
            row = await search.add_synonyms(session, terms=words)
            await accounts.record(session, actor=who.actor, area="search", action="synonyms added",
                                  subject=", ".join(row.terms)[:200])
    except ShopTalkError as error:
        if error.status in (401, 403):
            raise
        return await _page(request, who, q=q, find="", status=error.status, error=field_error(error))
    return redirect(f"/backoffice/search?q={quote(q)}", notice="Synonyms saved.")


@router.post("/backoffice/search/synonyms/{synonym_id}/delete")
async def delete_synonyms(request: Request, who: Editor, synonym_id: int) -> Response:
    who.require("search")
    async with get_database(request).unit_of_work() as session:
        await search.delete_synonyms(session, synonym_id=synonym_id)
        await accounts.record(session, actor=who.actor, area="search", action="synonyms removed",
                              subject=f"group {synonym_id}")
    return redirect("/backoffice/search", notice="Synonym group removed.")
