"""Recommendations: buy-again, bought-with, item-to-item, content-based and popularity, blended."""
