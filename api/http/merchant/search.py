"""Merchant search controls: synonyms, boosts, buries, pins, the zero-result/abandoned report, a test search.

REST under /api/v1/search (merchant token); the page is the back office's search settings (/backoffice/search).
"""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.auth import MerchantDep
from api.deps import SessionDep
from api.params import PathId
from commerce.catalog.service import all_products
from commerce.search import service as search

router = APIRouter(tags=["search"])


class SynonymsIn(BaseModel):
    terms: list[str] = Field(min_length=2, max_length=20)


class SynonymsOut(BaseModel):
    id: int
    terms: list[str]


class RuleIn(BaseModel):
    kind: Literal["boost", "bury", "pin"]
    product: str = Field(min_length=1, max_length=120, description="product slug")
    query: str | None = Field(default=None, max_length=200, description="null: every query (boost/bury only)")
    position: int = Field(default=1, ge=1, le=50)


class RuleOut(BaseModel):
    id: int
    kind: str
    product: str
    query: str | None
    position: int


class ReportRowOut(BaseModel):
    query: str
    language: str
    searches: int
    results: int


class ReportOut(BaseModel):
    days: int
    zero_results: list[ReportRowOut]
    abandoned: list[ReportRowOut]


class HitOut(BaseModel):
    product: str
    title: str
    sku: str
    score: float


class SearchOut(BaseModel):
    total: int
    hits: list[HitOut]


async def _slugs(session: SessionDep) -> dict[int, str]:
    return {p.id: p.slug for p in await all_products(session)}


@router.get("/api/v1/search/synonyms", response_model=list[SynonymsOut])
async def list_synonyms(_: MerchantDep, session: SessionDep) -> list[SynonymsOut]:
    return [SynonymsOut(id=s.id, terms=s.terms) for s in await search.list_synonyms(session)]


@router.post("/api/v1/search/synonyms", response_model=SynonymsOut, status_code=201)
async def add_synonyms(body: SynonymsIn, _: MerchantDep, session: SessionDep) -> SynonymsOut:
    row = await search.add_synonyms(session, terms=body.terms)
    return SynonymsOut(id=row.id, terms=row.terms)


@router.delete("/api/v1/search/synonyms/{synonym_id}", status_code=204)
async def delete_synonyms(synonym_id: PathId, _: MerchantDep, session: SessionDep) -> None:
    await search.delete_synonyms(session, synonym_id=synonym_id)


@router.get("/api/v1/search/rules", response_model=list[RuleOut])
async def list_rules(_: MerchantDep, session: SessionDep) -> list[RuleOut]:
    slugs = await _slugs(session)
    return [RuleOut(id=r.id, kind=r.kind, product=slugs.get(r.product_id, str(r.product_id)), query=r.query,
                    position=r.position) for r in await search.list_rules(session)]


@router.post("/api/v1/search/rules", response_model=RuleOut, status_code=201)
async def add_rule(body: RuleIn, _: MerchantDep, session: SessionDep) -> RuleOut:
    row = await search.add_rule(session, kind=body.kind, product_slug=body.product, query=body.query,
                                position=body.position)
    return RuleOut(id=row.id, kind=row.kind, product=body.product, query=row.query, position=row.position)


@router.delete("/api/v1/search/rules/{rule_id}", status_code=204)
async def delete_rule(rule_id: PathId, _: MerchantDep, session: SessionDep) -> None:
    await search.delete_rule(session, rule_id=rule_id)


@router.get("/api/v1/search/report", response_model=ReportOut)
async def report(_: MerchantDep, session: SessionDep, days: Annotated[int, Query(ge=1, le=366)] = 30,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50) -> ReportOut:
    found = await search.search_report(session, days=days, limit=limit)
    return ReportOut(days=found.days,
                     zero_results=[ReportRowOut(**r.__dict__) for r in found.zero_results],
                     abandoned=[ReportRowOut(**r.__dict__) for r in found.abandoned])


@router.get("/api/v1/search/products", response_model=SearchOut)
async def try_search(_: MerchantDep, session: SessionDep, q: Annotated[str, Query(max_length=2000)] = "",
                     country: Annotated[str | None, Query(min_length=2, max_length=2)] = None,
                     limit: Annotated[int, Query(ge=1, le=50)] = 20) -> SearchOut:
    """The merchant's own test search (lexical + synonyms + rules; not recorded in the shopper report)."""
    result = await search.search_products(session, query=q, country=country.upper() if country else None,
                                          limit=limit)
    products = await search.hit_products(session, product_ids=[h.product_id for h in result.hits])
    hits = []
    for hit in result.hits:
        product = products.get(hit.product_id)
        if product is None:
            continue  # retired since the search ran
        hits.append(HitOut(product=product.slug, title=product.title.get("en") or next(iter(product.title.values())),
                           sku=hit.sku, score=hit.score))
    return SearchOut(total=result.total, hits=hits)
