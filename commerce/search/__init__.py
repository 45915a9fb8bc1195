"""Product search: hybrid lexical (BM25) and semantic ranking with shop filters.

Service API: `commerce.search.service.search_products` and `similar_products`.
"""
