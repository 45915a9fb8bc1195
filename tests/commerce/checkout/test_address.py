from __future__ import annotations

import pytest

from commerce.checkout import service as checkout
from commerce.checkout.address import address_fields, validate_address
from commerce.checkout.errors import InvalidAddress
from commerce.checkout.schemas import AddressIn
from kit.db import Database


def us(**changes: str) -> AddressIn:
    fields = {"country": "US", "recipient": "Ann Lee", "street": ["1600 Amphitheatre Pkwy"], "city": "Mountain View",
              "region": "California", "postcode": "94043", "phone": "(650) 253-0000"}
    fields.update(changes)
    return AddressIn.model_validate(fields)


def test_a_us_address_is_normalised() -> None:
    address = validate_address(us())
    assert (address.region, address.postcode, address.phone) == ("CA", "94043", "+16502530000")


def test_a_wrong_postcode_names_the_expected_format() -> None:
    with pytest.raises(InvalidAddress) as caught:
        validate_address(us(postcode="9404"))
    assert caught.value.extra["field"] == "postcode"
    assert "90000" in caught.value.extra["expected"]
    assert "90000" in caught.value.detail


def test_an_unknown_region_lists_the_regions() -> None:
    with pytest.raises(InvalidAddress) as caught:
        validate_address(us(region="Atlantis"))
    assert caught.value.extra["field"] == "region"
    assert "AL" in caught.value.extra["expected"]


def test_a_missing_city_and_a_bad_phone_are_named() -> None:
    with pytest.raises(InvalidAddress) as caught:
        validate_address(us(city=""))
    assert (caught.value.extra["field"], caught.value.extra["reason"]) == ("city", "required")
    with pytest.raises(InvalidAddress) as caught:
        validate_address(us(phone="123"))
    assert caught.value.extra["field"] == "phone"
    assert caught.value.extra["expected"].startswith("+1")


def test_chinese_address_and_fields_per_country() -> None:
    address = validate_address(AddressIn(country="CN", recipient="王芳", street=["建国门内大街 18 号"], city="东城区",
                                         region="北京市", postcode="100005", phone="13800138000"))
    assert address.phone == "+8613800138000"
    assert address_fields("CN") == ["recipient", "street", "city", "region", "postcode", "phone"]
    assert "postcode" not in address_fields("HK")
    with pytest.raises(InvalidAddress) as caught:
        validate_address(AddressIn(country="CN", recipient="王芳", street=["x"], city="东城区",
                                   region="北京市", postcode="1000", phone="13800138000"))
    assert caught.value.extra["field"] == "postcode"
    with pytest.raises(InvalidAddress) as caught:
        validate_address(AddressIn(country="CN", recipient="王芳", street=["x"], city="Gotham", region="北京市",
                                   postcode="100005", phone="13800138000"))
    assert caught.value.extra["field"] == "city"
    assert "朝阳区" in caught.value.extra["expected"]


async def test_returning_shopper_gets_the_last_address(db: Database) -> None:
    async with db.unit_of_work() as session:
        assert await checkout.last_address(session, owner="telegram:42") is None
        await checkout.save_address(session, owner="telegram:42", data=us())
        await checkout.save_address(session, owner="telegram:42", data=us(postcode="94040"))
        with pytest.raises(InvalidAddress):
            await checkout.save_address(session, owner="telegram:42", data=us(postcode="x"))
    async with db.sessions() as session:
        last = await checkout.last_address(session, owner="telegram:42")
        assert last is not None
        assert last.postcode == "94040"
        assert await checkout.last_address(session, owner="telegram:43") is None
