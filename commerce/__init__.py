"""Commerce core: catalog, inventory, orders, shoppers, sales channels and stock sync, cross-border, search,
recommendations.

Other packages call the service modules (`commerce.catalog.service`, `commerce.inventory.service`,
`commerce.orders.service`, `commerce.shoppers.service`, `commerce.channels.service`,
`commerce.cross_border`, `commerce.search`, `commerce.recommend`), never the tables.
"""
# Every process that changes stock must queue channel pushes; importing the channels package registers
# its stock listener, so it is done here, whatever part of commerce a process imports first.
import commerce.channels  # noqa: F401
