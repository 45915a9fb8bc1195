"""Routers included by the app factory: one module per audience or domain, each exposing `router`.

To add yours, append its module name here (one line, keep the list sorted by when it was added). The chat
channels come first: a request is matched against the routes in this order, and every message of every shopper
comes through them (matching the REST webhook behind the others cost ~150 us of CPU a request, ~2 % of a turn).
"""
ROUTER_MODULES: list[str] = [
    "api.routers.webhooks", "api.routers.webchat",
    "api.routers.health",
    "api.routers.catalog",
    "api.routers.stock",
    "api.routers.orders",
    "api.routers.faq",
    "api.routers.merchant_faq_page",
    "api.routers.quotes", "api.routers.cross_border_admin",
    "api.routers.channels",
    "api.routers.agent", "api.routers.agent_realtime", "api.routers.merchant_learning",
    "api.routers.rasa",
    "api.routers.merchant_search",
    "api.routers.nlu",
    "api.routers.merchant_insights",
    "api.routers.tokens",
]
