"""The shop's own API (merchant, agent and admin tokens) and the merchant pages: catalog, stock, orders, FAQ,
cross-border rules, sales channels, search, insights, learning, Rasa and NLU models, API tokens."""
