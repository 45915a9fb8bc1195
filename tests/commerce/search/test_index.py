"""The in-memory product index: typo tolerance, Chinese words, incremental updates, odd queries."""
from __future__ import annotations

import numpy as np

from commerce.search.index import IndexedProduct, ProductIndex, search_tokens


def product(product_id: int, title_en: str, title_zh: str = "", tags: tuple[str, ...] = (),
            version: str = "1") -> IndexedProduct:
    return IndexedProduct(product_id=product_id, version=version, titles=[t for t in (title_en, title_zh) if t],
                          tags=list(tags), brand="", category=[], attributes=[], descriptions=[])


def shop() -> ProductIndex:
    index = ProductIndex()
    index.upsert([
        product(1, "20,000 mAh USB-C Power Bank", "快充移动电源", ("power bank", "battery")),
        product(2, "Active Noise Cancelling Wireless Earbuds", "主动降噪真无线蓝牙耳机", ("earbuds", "headphones")),
        product(3, "Heavyweight Organic Cotton Hoodie", "重磅有机棉连帽卫衣", ("hoodie", "t-shirt")),
        product(4, "Gooseneck Electric Kettle", "温控手冲细口电热水壶", ("kettle",)),
    ])
    return index


def ids(index: ProductIndex, query: str) -> list[int]:
    return [r.product_id for r in index.rank(query, mode="lexical")]


def test_misspelt_and_run_together_words_still_find_the_product() -> None:
    index = shop()
    assert ids(index, "headphnes")[:1] == [2]
    assert ids(index, "electirc kettle")[:1] == [4]
    assert ids(index, "powerbank")[:1] == [1]
    assert ids(index, "tshirt")[:1] == [3]
    # Two letters swapped are one typo, as one letter changed is.
    assert ids(index, "kettel")[:1] == [4]


def test_chinese_queries_match_segmented_words() -> None:
    index = shop()
    assert ids(index, "我想买降噪耳机")[:1] == [2]
    assert ids(index, "电热水壶")[:1] == [4]
    assert "电热水壶" in search_tokens("温控手冲细口电热水壶")


def test_changed_and_removed_products_are_updated_in_place() -> None:
    index = shop()
    index.upsert([product(4, "Stovetop Kettle Whistling", version="2")])
    assert index.version_of(4) == "2"
    assert ids(index, "gooseneck") == []
    assert ids(index, "whistling") == [4]
    index.remove([4])
    assert ids(index, "kettle") == []
    assert len(index) == 3


def test_odd_queries_give_results_or_nothing_never_an_error() -> None:
    index = shop()
    for query in ["😀🎉", "x" * 500, "'; DROP TABLE products; --", "<script>alert(1)</script>", "", "   ", "%_*"]:
        ranked = index.rank(query, embedding=np.zeros(896, np.float32))
        assert isinstance(ranked, list)
    assert ids(index, "😀🎉") == [1, 2, 3, 4]  # no words at all: the index lists everything, the service decides


def test_dense_only_candidates_come_from_vectors_across_languages() -> None:
    index = ProductIndex()
    vectors = np.eye(4, 896, k=384, dtype=np.float32)  # multilingual part only, one axis per product
    index.upsert([product(i + 1, f"item {i}") for i in range(4)], vectors)
    query = vectors[2]
    ranked = index.rank("無關的詞", embedding=query, mode="dense")
    assert [r.product_id for r in ranked] == [3]


def test_a_single_product_catalog() -> None:
    index = ProductIndex()
    index.upsert([product(9, "Bamboo Steamer", "竹蒸笼")])
    assert ids(index, "steamer") == [9]
    assert ids(index, "kettle") == []


def test_what_a_product_is_outranks_a_description_that_mentions_it() -> None:
    from dataclasses import replace

    from commerce.search.index import Weights
    from commerce.search.service import STRONG_MATCH

    socks = replace(product(1, "Wool Socks", tags=("socks",)),
                    descriptions=["Cushioned socks for sneakers and sneakers fans: sneakers, sneakers."])
    sneakers = replace(product(2, "Canvas Sneakers", tags=("sneakers",)),
                       descriptions=["A canvas shoe with a rubber sole for every day, in black and white."])
    for weights, first in ((Weights(identity=0.0), 1), (Weights(), 2)):
        index = ProductIndex(weights)
        index.upsert([socks, sneakers])
        ranked = index.rank("sneakers", mode="lexical")
        assert ranked[0].product_id == first
    # With the title counted, the socks score under half of the sneakers: shown as an alternative, not a match.
    assert ranked[1].lexical < STRONG_MATCH * ranked[0].lexical


def bilingual_shop() -> ProductIndex:
    index = ProductIndex()
    index.upsert([
        product(1, "Felted Wool Slippers", "羊毛毡拖鞋"), product(2, "Cloud Slippers", "云朵拖鞋"),
        product(3, "Leather Slippers", "真皮拖鞋"), product(4, "Leather Wallet", "真皮钱包"),
        product(5, "Canvas Wallet", "帆布钱包"), product(6, "Slim Wallet", "超薄钱包"),
        product(7, "Suede House Slippers"),  # English only
        product(8, "钥匙包"),  # Chinese only
    ])
    return index


def test_a_chinese_word_finds_english_only_products_by_the_catalogs_own_bilingual_titles() -> None:
    index = bilingual_shop()
    assert index.translations.of("拖鞋") == ["slipper"]
    assert index.translations.of("slipper") == ["拖鞋"]
    assert index.translations.of("leather") == []  # together with 真皮 in 2 bilingual titles only: too few
    assert 7 in ids(index, "拖鞋")
    assert 7 not in ids(index, "钱包")
    # A translation counts less than the word itself: the products that say it rank first.
    assert ids(index, "拖鞋")[-1] == 7
    index.weights = index.weights.__class__(translation=0.0)
    assert 7 not in ids(index, "拖鞋")


def test_translations_follow_updates_and_removals() -> None:
    index = bilingual_shop()
    index.remove([1, 2])
    assert index.translations.of("拖鞋") == []  # together in one title only now
    assert 7 not in ids(index, "拖鞋")
    index.upsert([product(1, "Felted Wool Slippers", "羊毛毡拖鞋"), product(2, "Cloud Slippers", "云朵拖鞋")])
    assert index.translations.of("拖鞋") == ["slipper"]
    index.upsert([product(1, "Felted Wool Socks", "羊毛袜")])  # no longer a slipper
    assert index.translations.of("拖鞋") == []
