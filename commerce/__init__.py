"""Commerce core: catalog, inventory, orders, shoppers, sales channels (and cross-border, search, recommend).

Other packages call the service modules (`commerce.catalog.service`, `commerce.inventory.service`,
`commerce.orders.service`, `commerce.shoppers.service`, `commerce.channels.service`), never the tables.
"""
