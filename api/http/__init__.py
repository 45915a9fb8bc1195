"""HTTP routers grouped by who calls them: `shopper/` (the chat channels), `agent/` (the agent console),
`merchant/` (the shop's own API and pages), `public/` (health, and the shopper-facing cross-border answers);
`middleware.py` runs before every route. `api.app.ROUTERS` lists what the app includes, in matching order."""
