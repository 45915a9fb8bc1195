"""Commerce core: catalog, inventory, orders, shoppers, sales channels and stock sync, cross-border, search,
recommendations.

Other packages call the service modules (`commerce.catalog.service`, `commerce.inventory.service`,
`commerce.orders.service`, `commerce.shoppers.service`, `commerce.channels.service`,
`commerce.cross_border`, `commerce.search`, `commerce.recommend`), never the tables.
"""
