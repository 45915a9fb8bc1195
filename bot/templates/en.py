"""English reply templates."""
from __future__ import annotations

TEMPLATES: dict[str, str] = {
    # small talk
    "greet": "Hi{name_part}! I can find products, track orders, quote delivery to your country and answer "
             "questions about the shop. What are you looking for?",
    "goodbye": "Bye for now, happy to help any time.",
    "thanks": "You're welcome!",
    "help": "I can: search products (\"red kettle under 50 euros\"), show recommendations, manage your cart and "
            "checkout, track an order (\"where is order #10023?\"), quote delivery, duties and VAT to your "
            "country, and answer questions about shipping and returns.",
    "affirm_nothing": "Great. What can I do for you?",
    "deny_nothing": "No problem. Anything else I can help with?",
    "button.search": "Search products",
    "button.order_status": "Track an order",
    "button.cart": "View cart",
    "button.human": "Talk to a person",
    # policy
    "did_this_help": "Did this help?",
    "button.yes": "Yes",
    "button.no": "No",
    "feedback_thanks": "Thanks for letting me know!",
    "feedback_sorry": "Sorry about that. Would you like to talk to a person?",
    "not_understood": "Sorry, I'm not sure I understood. Could you say it differently? You can also pick one "
                      "of these:",
    "out_of_scope": "That's outside what I can help with here. I can search products, track orders, and answer "
                    "questions about delivery, customs and returns.",
    "handoff": "I'm passing you to a member of our team; they'll reply here as soon as they can. Your "
               "conversation so far is saved.",
    "handoff_complaint": "I'm sorry to hear that. I'm passing you to a member of our team; they'll reply here "
                         "as soon as they can.",
    # the shop's escalation rules (bot/handoff): a person offered, or requests switched off
    "offer_person": "Would you rather talk to a person?",
    "handoff_unavailable": "I can't put you through to a person here, but I can help with products, orders "
                           "and your cart.",
    "complaint_no_person": "I'm sorry to hear that. Let me see what I can do.",
    "feedback_sorry_no_person": "Sorry about that. Could you say it differently, or search the shop?",
    "faq_none_no_person": "I don't have an answer to that yet. Could you say it differently?",
    # bad input
    "unsupported": "Sorry, I can only read text messages. Please type your question.",
    "edited": "I saw you edited a message. I only act on new messages, so please send the corrected text "
              "again.",
    "too_long": "That's a long message; I read the first {limit} characters.",
    "unknown_button": "Sorry, that button has expired. What would you like to do?",
    "empty": "I didn't get any text. What can I do for you?",
    "apology": "Sorry, something went wrong on my side ({code}). Please try again or ask something else.",
    # search
    "search_results": "Here is what I found{for_query} ({first}-{last} of {total}):",
    "search_results_more": "Show more",
    "search_none": "I couldn't find anything{for_query} that is in stock for delivery to {country}. Try other "
                   "words or fewer filters.",
    "search_ask": "What are you looking for? For example \"black hoodie size L\" or \"tea set\".",
    "search_no_more": "That's everything I found.",
    "button.details": "Details",
    "button.add_to_cart": "Add to cart",
    "button.more_like_this": "More like this",
    "product_details": "{title}\n{description}\nPrice: {price}\nOptions in stock: {options}",
    "product_gone": "Sorry, that product is no longer available.",
    "more_like_this": "Similar products:",
    "more_like_this_none": "I found nothing similar in stock right now.",
    # recommendations
    "recommendations": "You might like these:",
    "reason.buy_again": "You bought this before",
    "reason.bought_with": "Often bought with {anchor}",
    "reason.item_to_item": "Shoppers who bought {anchor} also bought this",
    "reason.similar_product": "New, and similar to {anchor}",
    "reason.popularity": "Popular in {country}",
    "reason.new_in_shop": "New in the shop",
    "recommendations_none": "I have no suggestions in stock right now.",
    # cart
    "cart_added": "Added {quantity} x {title} to your cart.",
    "cart_removed": "Removed {title} from your cart.",
    "cart_updated": "{title}: quantity is now {quantity}.",
    "cart_view": "Your cart:\n{lines}\nSubtotal: {subtotal}",
    "cart_line": "- {quantity} x {title} ({sku}): {amount}",
    "cart_empty": "Your cart is empty.",
    "cart_which": "Which product should I add? Here are the ones I showed you:",
    "cart_no_stock": "Sorry, only {available} of {title} in stock.",
    "cart_not_in": "{sku} is not in your cart.",
    "cart_bad_quantity": "I can add between 1 and {most} of one product at a time.",
    "button.checkout": "Checkout",
    "button.remove": "Remove {sku}",
    "button.more": "+1 {sku}",
    "button.less": "-1 {sku}",
    "button.view_cart": "View cart",
    # checkout
    "ask_country": "Which country should we deliver to?",
    "ask_email": "What e-mail address should we send the order confirmation to?",
    "ask_postcode": "What is the postcode of the delivery address?",
    "bad_email": "That doesn't look like an e-mail address. Please type it like name@example.com.",
    "bad_postcode": "That doesn't look like a postcode. Please type the postcode of the delivery address.",
    "bad_country": "I don't know that country. Please type its name, e.g. \"Germany\".",
    "checkout_summary": "Please check your order before I place it:\n{lines}\nGoods: {goods}\nShipping ({service}, "
                        "{days_min}-{days_max} working days): {shipping}\n"
                        "Duties: {duties}\nTaxes: {taxes}\nTotal: {total}\nDelivery to {country}, postcode "
                        "{postcode}; confirmation to {email}.\nPress \"Place order\" (or reply yes) to reserve the "
                        "items.",
    "checkout_changed": "Your cart or its prices changed since that summary, so I haven't placed the order. Here is "
                        "the new one:",
    "checkout_confirm_ask": "Shall I place the order? Press \"Place order\", or \"Change cart\" to change it.",
    "button.place_order": "Place order",
    "button.change_cart": "Change cart",
    "button.ship_with": "{service}, {days_min}-{days_max} days: {price}",
    # The shipped delivery services' names; shoppers in English see the name the shop gave each service.
    "service.standard": "Standard (tracked parcel)",
    "service.express": "Express (insured courier)",
    "order_created": "Order #{number} is placed and your items are reserved.\nOrder reference: {ref} (keep it: "
                     "with it, your postcode is enough to look the order up).\nGoods: {goods}\nShipping: "
                     "{shipping}\nDuties: {duties}\nTaxes: {taxes}\nTotal: {total}\nStatus: awaiting payment.",
    "checkout_empty": "Your cart is empty, so there is nothing to check out yet.",
    "checkout_no_stock": "Sorry, {sku} just sold out (only {available} left). I left your cart as it was; "
                         "please change it and try again.",
    "checkout_not_sellable": "Sorry, {title} can't be delivered to {country}. Please remove it and try again.",
    # order status
    "ask_order_number": "What is your order number or order reference? It looks like #10023 or ST-7K3MQ-9XPAB.",
    "ask_order_number_or_pick": "Which order? Type its number or reference, or pick one:",
    "ask_order_proof": "To protect your privacy, please type the e-mail address used for order #{number}.",
    "ask_order_proof_ref": "To protect your privacy, please type the e-mail address or the postcode used for "
                           "order {number}.",
    "order_proof_needs_email": "A postcode alone is not enough with an order number. Please type the e-mail address "
                               "used for order #{number}, or ask with the order reference from your confirmation "
                               "(like ST-7K3MQ-9XPAB): with it, the postcode is enough.",
    "order_not_matched": "I couldn't find an order with those details. Please check the order number or reference "
                         "and the e-mail address or postcode.",
    "order_rate_limited": "Too many attempts. Please wait {wait} before trying again, or ask to talk to a person.",
    "wait.seconds": "{count} seconds",
    "wait.minutes": "{count} minutes",
    "order_status": "Order #{number}: {status}.\nReference: {ref}\n{history}{tracking}",
    "order_history_line": "- {when}: {status}",
    "order_tracking": "\nCarrier: {carrier}, tracking number {tracking}",
    "status.pending_payment": "awaiting payment",
    "status.paid": "paid",
    "status.packed": "packed",
    "status.shipped": "shipped",
    "status.delivered": "delivered",
    "status.cancelled": "cancelled",
    "status.return_requested": "return requested",
    "status.refunded": "refunded",
    "cancel_order_handoff": "I'll pass your cancellation request for order #{number} to our team; they'll "
                            "confirm here.",
    # cross-border
    "ask_quote_country": "Which country should I quote delivery to?",
    "quote": "Delivered to {country}{product_part}:\nGoods: {goods}\nShipping: {shipping}\nDuties: {duties}\n"
             "VAT / taxes: {taxes}\nTotal: {total}\n{collector}\nDelivery in {days_min}-{days_max} days.",
    "quote_collect_seller": "Duties and taxes are included and paid by us: nothing to pay on delivery.",
    "quote_collect_carrier": "Duties and taxes are collected by the carrier on delivery.",
    "quote_unavailable": "I can't give a delivered price for {country} right now; our team can help.",
    "shipping_times": "Delivery to {country} takes {days_min}-{days_max} days and costs {shipping} for a "
                      "typical parcel.",
    "returns_rules": "Returns from {country}: you have {days} days after delivery to return items. {conditions}"
                     "Return shipping is paid by {payer}. Duties refunded: {duties}.",
    "returns_sentence": "{text}. ",
    "payer.shopper": "you",
    "payer.shop": "us",
    "word.yes": "yes",
    "word.no": "no",
    "not_shipped": "Sorry, we don't deliver to {country} at the moment.",
    "not_sellable_there": "Sorry, that product can't be delivered to {country}.",
    "which_product_quote": "For which product? Here are some you looked at:",
    "currency_set": "Got it, I'll show prices in {currency}.",
    "country_set": "Got it, delivering to {country}.",
    # faq
    "faq_did_you_mean": "Did you mean one of these?",
    "faq_none": "I don't have an answer to that yet. Would you like to talk to a person?",
}
