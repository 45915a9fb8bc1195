"""Open to anyone: health checks and the shopper-facing cross-border answers (quotes, shipping, returns)."""
