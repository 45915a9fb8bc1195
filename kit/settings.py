from __future__ import annotations

import base64
import binascii
import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from limits import parse_many
from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev-secret-change-me", "password"})
DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./var/shoptalk.db"


class DatabaseSettings(BaseModel):
    url: str = DEFAULT_SQLITE_URL
    echo: bool = False
    pool_size: int = 10


class RedisSettings(BaseModel):
    url: str | None = None


class SecuritySettings(BaseModel):
    secret_key: SecretStr = SecretStr("dev-secret-change-me")
    telegram_bot_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    session_ttl_seconds: int = 8 * 3600
    # Signs REST channel requests (X-ShopTalk-Signature, HMAC-SHA256); unset: only channel tokens are accepted.
    rest_channel_secret: SecretStr | None = None
    # An order proven owned in a chat (e-mail or postcode) must be proven again after this long.
    verified_order_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    # Encrypts secrets kept in the database (web chat identity secrets): 32 random bytes, base64url. Required in
    # production; development and test derive one from secret_key when it is unset.
    data_encryption_key: SecretStr | None = None


class TelegramSettings(BaseModel):
    """How the Telegram channel runs (the bot token and webhook secret are in `security`).

    mode: auto = webhook when a webhook secret is set, else polling; or polling / webhook / off.
    api_base: another Bot API server (a self-hosted one, or the tests' loopback double).
    webhook_url: the public URL of `POST /webhooks/telegram`; in webhook mode the app registers it with
    setWebhook (and the secret) at start."""

    mode: Literal["auto", "polling", "webhook", "off"] = "auto"
    api_base: str | None = None
    webhook_url: str | None = None


class RestChannelSettings(BaseModel):
    """Who may post to the Rasa-compatible REST channel (`POST /webhooks/rest/webhook`).

    auth: token = each request carries a `channel` (or admin) API token, or an X-ShopTalk-Signature made with
    `security.rest_channel_secret`; open = anyone may speak as any sender: development only, never the default.
    signature_tolerance_seconds: how far a signature's timestamp may be from now (replays outside it fail)."""

    auth: Literal["token", "open"] = "token"
    signature_tolerance_seconds: int = Field(default=300, ge=1)


class WhatsAppSettings(BaseModel):
    """The WhatsApp Business Platform (Cloud API) channel; on when `phone_number_id` and `access_token` are set.

    app_secret: signs the webhook's POSTs (X-Hub-Signature-256); verify_token: echoed in the GET verification.
    templates: the approved message templates the shop may send outside the 24-hour window, name -> language
    code (env JSON: SHOPTALK_WHATSAPP__TEMPLATES='{"order_update": "en_US"}').
    api_base: Graph API's address (the tests' double in tests). window_hours: the customer-service window."""

    phone_number_id: str | None = None
    access_token: SecretStr | None = None
    app_secret: SecretStr | None = None
    verify_token: SecretStr | None = None
    api_base: str = "https://graph.facebook.com"
    api_version: str = "v21.0"
    templates: dict[str, str] = Field(default_factory=dict)
    window_hours: int = Field(default=24, ge=1)
    media_max_bytes: int = Field(default=16 * 1024 * 1024, ge=1)  # a shopper's larger file is not fetched
    # Client-side pacing before Graph API (Cloud API throughput: 80 messages/s per number; the pair rate limit:
    # about 1 message per 6 s to one shopper after a burst of 45). Shared through Redis when `redis.url` is set.
    messages_per_second: float = Field(default=80.0, gt=0)
    pair_messages_per_second: float = Field(default=1 / 6, gt=0)
    pair_burst: int = Field(default=45, ge=1)


class WeChatSettings(BaseModel):
    """A WeChat Official Account (服务号); on when `app_id`, `app_secret` and `token` are set.

    token: the URL-verification and message-signature token; encoding_aes_key: the 43-character key of the
    safe mode (messages AES-encrypted), unset for plain mode. passive_reply_seconds: how long a message may
    wait for the bot's answer inside WeChat's 5-second window; later replies go by the customer-service API.
    api_base: WeChat's API host (the tests' double in tests). default_locale: replies before the shopper writes."""

    app_id: str | None = None
    app_secret: SecretStr | None = None
    token: SecretStr | None = None
    encoding_aes_key: SecretStr | None = None
    api_base: str = "https://api.weixin.qq.com"
    passive_reply_seconds: float = Field(default=4.0, gt=0, le=4.8)
    # When the app stops: how long answers still being made after the passive window may finish (they are stored
    # and their replies queued in the outbox) before they are cancelled.
    late_answer_grace_seconds: float = Field(default=10.0, ge=0, le=60)
    default_locale: str = "zh"
    publish_menu: bool = True  # set the account's custom menu (search, orders, cart) when the app starts
    media_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)  # a shopper's larger picture is not fetched
    # A product's page for WeChat's article (图文) cards, "{product_id}" filled in; unset: cards are pictures + text.
    product_url: str | None = None


class LocaleSettings(BaseModel):
    default_locale: str = "en"
    default_currency: str = "EUR"
    default_country: str = "DE"


class LimitSettings(BaseModel):
    max_body_bytes: int = 1_000_000
    max_message_chars: int = 4_000
    reservation_ttl_seconds: int = 15 * 60


class RateLimitSettings(BaseModel):
    """Throttles (`kit.ratelimit`), in the limits package's notation ('20/second;600/minute': every part applies).

    Shared across processes through Redis when `redis.url` is set; otherwise counted per process."""

    enabled: bool = True
    key_prefix: str = "shoptalk:rl"  # Redis keys; shops sharing one Redis need different prefixes
    sign_in_client_failures: str = "10/15 minutes"  # wrong passwords per (IP, e-mail), then 429 for that client
    sign_in_free_failures: int = 5  # per e-mail from any client, before the back-off starts
    sign_in_backoff_base_seconds: float = 1.0
    sign_in_backoff_cap_seconds: float = 60.0  # the longest an attacker can keep the owner out
    sign_in_window_seconds: float = 900.0
    # A REST client is the shop's own server speaking for all its shoppers: a busy shop's whole chat load
    rest_client: str = "200/second;6000/minute"  # per credential (channel token id, or signed requests)
    rest_address: str = "20/second;600/minute"  # per IP where no credential names the client (open development mode)
    rest_sender: str = "10/second;120/minute"  # per shopper (sender id); a scripted client answers at ~5-10/s
    webchat_session: str = "10/second;120/minute"
    webchat_ip: str = "20/second;600/minute"

    @model_validator(mode="after")
    def _parse_limits(self) -> RateLimitSettings:
        for name in ("sign_in_client_failures", "rest_client", "rest_address", "rest_sender", "webchat_session",
                     "webchat_ip"):
            try:
                parse_many(getattr(self, name))
            except ValueError as error:
                raise ValueError(f"rate_limits.{name}: {error}") from error
        return self


class PaymentSettings(BaseModel):
    """Payments (issue 23): Stripe keys, where the shop's pay page is, and how long an unpaid order holds stock."""

    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None  # None: api.stripe.com; tests point it at localstripe
    stripe_publishable_key: str | None = None
    telegram_provider_token: SecretStr | None = None  # Telegram Payments provider token (None: Telegram Stars)
    public_url: str = "http://localhost:8000"  # the shop's address for pay links sent in the chat
    order_expiry_minutes: int = Field(default=60, ge=1, le=60 * 24 * 14)
    timeout_seconds: float = Field(default=10.0, gt=0)


class Settings(BaseSettings):
    """One settings object for the whole process; env prefix SHOPTALK_, nested with __."""

    model_config = SettingsConfigDict(
        env_prefix="SHOPTALK_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("./var")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    locale: LocaleSettings = Field(default_factory=LocaleSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    rest_channel: RestChannelSettings = Field(default_factory=RestChannelSettings)
    whatsapp: WhatsAppSettings = Field(default_factory=WhatsAppSettings)
    wechat: WeChatSettings = Field(default_factory=WeChatSettings)
    payments: PaymentSettings = Field(default_factory=PaymentSettings)

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment == "development":
            return self
        secret = self.security.secret_key.get_secret_value()
        if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 16:
            raise ValueError(
                "SHOPTALK_SECURITY__SECRET_KEY is a placeholder or shorter than 16 characters; "
                "set a real secret outside development"
            )
        return self

    @model_validator(mode="after")
    def _refuse_open_rest_channel(self) -> Settings:
        # An open REST channel lets any client speak as any shopper and see their verified orders.
        if self.rest_channel.auth == "open" and self.environment != "development":
            raise ValueError(
                "SHOPTALK_REST_CHANNEL__AUTH=open lets anyone post to the REST channel as any sender; it is allowed "
                "only with SHOPTALK_ENVIRONMENT=development. Use auth=token with a 'channel' API token or "
                "SHOPTALK_SECURITY__REST_CHANNEL_SECRET (signed requests)"
            )
        secret = self.security.rest_channel_secret
        if secret is not None and self.environment != "development" and len(secret.get_secret_value()) < 16:
            raise ValueError("SHOPTALK_SECURITY__REST_CHANNEL_SECRET is shorter than 16 characters")
        return self

    @model_validator(mode="after")
    def _require_data_encryption_key(self) -> Settings:
        # A clear error at start, not at the first identity check.
        data_encryption_key(self)
        return self


def data_encryption_key(settings: Settings) -> bytes:
    """The 32-byte key for secrets at rest: the configured one, or (development and test only) one derived from
    secret_key, so a demo needs no extra setting. Production without it refuses to start (Settings' validator)."""
    configured = settings.security.data_encryption_key
    if configured is not None:
        return _decode_data_key(configured.get_secret_value())
    if settings.environment == "production":
        raise ValueError(DATA_KEY_MISSING)
    secret = settings.security.secret_key.get_secret_value()
    return hashlib.sha256(b"shoptalk dev data key\x00" + secret.encode()).digest()


def _decode_data_key(value: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(value.strip() + "=" * (-len(value.strip()) % 4))
    except (ValueError, binascii.Error) as exc:
        raise ValueError("SHOPTALK_SECURITY__DATA_ENCRYPTION_KEY is not base64url") from exc
    if len(key) != 32:
        raise ValueError("SHOPTALK_SECURITY__DATA_ENCRYPTION_KEY must be 32 bytes (base64url, 43-44 characters)")
    return key


DATA_KEY_MISSING = ("SHOPTALK_SECURITY__DATA_ENCRYPTION_KEY is required in production (it encrypts the web chat "
                    "identity secrets at rest); make one with: python -c \"import base64, secrets; "
                    "print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())\"")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
