"""The merchant's web chat sites: the storefront origins allowed to embed the chat, and the identity
verification secret their servers sign logged-in customers' ids with (shown once, when made)."""
from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from api.auth import MerchantDep
from api.deps import SessionDep, get_settings_dep
from bot.channels import webchat_sites as sites

router = APIRouter(prefix="/api/v1/webchat/sites", tags=["web chat"])


class SiteIn(BaseModel):
    allowed_origins: list[str] = Field(max_length=sites.MAX_ORIGINS,
                                       description="Storefront origins, e.g. https://shop.example (no path)")


class SiteOut(BaseModel):
    """A site as listed: never the identity secret."""

    shop: str
    allowed_origins: list[str]
    identity_verification: bool = Field(description="Whether a secret is set; signed identities are then accepted")
    snippet: str = Field(description="The script tag to add to the storefront's pages")


class SecretOut(BaseModel):
    shop: str
    identity_secret: str = Field(description="Shown this once. The storefront's server sends "
                                             "hex(HMAC-SHA256(secret, customer_id)) as the customer's signature, "
                                             "or of customer_id + '\\n' + email when it passes the e-mail too "
                                             "(docs/webchat-identity.md)")


def _out(shown: sites.SiteView, request: Request) -> SiteOut:
    base = str(request.base_url)
    snippet = f'<script src="{base}widget.js" data-shop="{shown.shop}" async></script>'
    return SiteOut(shop=shown.shop, allowed_origins=shown.allowed_origins,
                   identity_verification=shown.identity_verification, snippet=snippet)


@router.get("", response_model=list[SiteOut])
async def list_sites(request: Request, session: SessionDep, _: MerchantDep) -> list[SiteOut]:
    return [_out(sites.view(site), request) for site in await sites.list_sites(session)]


@router.get("/{shop}", response_model=SiteOut)
async def get_site(shop: str, request: Request, session: SessionDep, _: MerchantDep) -> SiteOut:
    return _out(sites.view(await sites.get_site(session, shop=shop)), request)


@router.put("/{shop}", response_model=SiteOut)
async def save_site(shop: str, data: SiteIn, request: Request, session: SessionDep, _: MerchantDep) -> SiteOut:
    """Create or replace the site's allowed origins; a page of any other origin cannot show the chat."""
    site = await sites.save_site(session, shop=shop, allowed_origins=data.allowed_origins)
    return _out(sites.view(site), request)


@router.post("/{shop}/identity-secret", response_model=SecretOut, status_code=status.HTTP_201_CREATED)
async def rotate_identity_secret(shop: str, request: Request, session: SessionDep, _: MerchantDep) -> SecretOut:
    """A new identity secret (the old one stops verifying at once); stored encrypted, shown in this answer only."""
    box = sites.SecretBox.of(get_settings_dep(request))
    return SecretOut(shop=shop, identity_secret=await sites.rotate_identity_secret(session, shop=shop, box=box))


@router.delete("/{shop}/identity-secret", status_code=status.HTTP_204_NO_CONTENT)
async def disable_identity_verification(shop: str, session: SessionDep, _: MerchantDep) -> Response:
    await sites.disable_identity_verification(session, shop=shop)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
