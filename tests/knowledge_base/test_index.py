"""HybridIndex on its own: row layout, flat -> IVF move, in-place add/replace/remove."""
from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

from knowledge_base.index import (
    DIM,
    MINILM_DIM,
    HybridIndex,
    IndexedEntry,
    answer_paragraphs,
    fold_rows,
    stored_rows,
    texts_to_embed,
)


def _unit_halves(rng: np.random.Generator, n: int) -> np.ndarray:
    rows = rng.normal(size=(n, DIM)).astype(np.float32)
    rows[:, :MINILM_DIM] /= np.linalg.norm(rows[:, :MINILM_DIM], axis=1, keepdims=True)
    rows[:, MINILM_DIM:] /= np.linalg.norm(rows[:, MINILM_DIM:], axis=1, keepdims=True)
    return rows / np.float32(math.sqrt(2.0))


def _entry(entry_id: int, question: str, answer: str = "An answer.", **extra: object) -> IndexedEntry:
    return IndexedEntry(entry_id=entry_id, group_key=f"g{entry_id}", language="en", questions=(question,),
                        answer=answer, **extra)  # type: ignore[arg-type]


def test_answer_paragraphs_become_one_mean_row() -> None:
    answer = "First part.\n\nSecond part.\n \nThird."
    assert answer_paragraphs(answer) == ["First part.", "Second part.", "Third."]
    assert len(answer_paragraphs("\n\n".join(f"p{i}" for i in range(40)))) == 16
    texts = texts_to_embed(["Q1?", "Q2?"], answer)
    assert texts[:2] == ["Q1?", "Q2?"]
    assert texts[2:5] == ["First part.", "Second part.", "Third."]
    rows = _unit_halves(np.random.default_rng(1), len(texts))
    folded = fold_rows(rows, 2)
    assert folded.shape == (stored_rows(2), DIM)
    np.testing.assert_allclose(folded[2], rows[2:5].mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(folded[3], rows[-1])
    with pytest.raises(ValueError, match="expected at least"):
        fold_rows(rows[:3], 2)


def test_wrong_vector_count_is_refused() -> None:
    index = HybridIndex()
    with pytest.raises(ValueError, match="expected"):
        index.upsert(_entry(1, "Hello?"), _unit_halves(np.random.default_rng(0), 2))


def test_the_store_moves_to_ivf_once_large_and_still_adds_replaces_and_removes_in_place() -> None:
    rng = np.random.default_rng(11)
    index = HybridIndex(ann_from_rows=900)
    vectors: dict[int, np.ndarray] = {}
    for entry_id in range(1, 401):
        vectors[entry_id] = _unit_halves(rng, 3)
        index.upsert(_entry(entry_id, f"question number {entry_id} about topic{entry_id % 17}"), vectors[entry_id])
    assert index.vectors.approximate  # 1,200 rows >= 900
    assert index.vectors.ntotal == 1200

    def top(entry_id: int, rows: np.ndarray) -> int:
        result = index.search(f"question number {entry_id}", rows[0], language="en", k=3)
        return result.matches[0].entry_id

    for entry_id in (1, 57, 250, 400):
        assert top(entry_id, vectors[entry_id]) == entry_id
    # Replace entry 57 with new vectors: its new vector finds it, its old rows are gone.
    old = vectors[57]
    vectors[57] = _unit_halves(rng, 3)
    index.upsert(_entry(57, "question number 57 about topic6"), vectors[57])
    assert index.vectors.ntotal == 1200
    assert top(57, vectors[57]) == 57
    stale = index.search("zzz", old[0], language="en", k=400).matches
    assert all(m.dense < 0.5 for m in stale if m.entry_id == 57)  # the old rows are gone
    # Remove: never served again, even for its own vector and words.
    index.remove(250)
    assert 250 not in index
    result = index.search("question number 250 about topic12", vectors[250][0], language="en", k=10)
    assert all(m.entry_id != 250 for m in result.matches)
    assert index.vectors.ntotal == 1197
    # Entries added after the move are found too.
    vectors[999] = _unit_halves(rng, 3)
    index.upsert(_entry(999, "a brand new question"), vectors[999])
    assert top(999, vectors[999]) == 999
    assert index.memory_bytes() < index.vectors.ntotal * DIM * 4  # 8-bit codes


def test_scores_are_calibrated_and_filters_apply() -> None:
    rng = np.random.default_rng(5)
    index = HybridIndex()
    rows = {i: _unit_halves(rng, 3) for i in (1, 2)}
    index.upsert(_entry(1, "Import VAT in the UK", countries=frozenset({"GB"})), rows[1])
    index.upsert(_entry(2, "Import VAT in Germany"), rows[2])
    british = index.search("import VAT UK", rows[1][0], language="en", country="GB", k=2)
    assert british.matches[0].entry_id == 1
    assert 0.0 < british.matches[0].score < 1.0
    assert british.matches[0].score > british.matches[1].score
    german = index.search("import VAT UK", rows[1][0], language="en", country="DE", k=2)
    assert [m.entry_id for m in german.matches] == [2]
    assert index.search("nothing", rows[1][0], language="en", country="DE", channel="web", k=2).matches
    empty = HybridIndex().search("anything", rows[1][0], language="en")
    assert (empty.decision, empty.matches) == ("none", [])


async def test_the_move_to_ivf_runs_on_a_thread_while_queries_are_answered_and_edits_are_kept() -> None:
    rng = np.random.default_rng(17)
    index = HybridIndex(ann_from_rows=6_000, build_inline=False)
    vectors = {entry_id: _unit_halves(rng, 3) for entry_id in range(1, 2_001)}
    for entry_id, rows in vectors.items():
        index.upsert(_entry(entry_id, f"question number {entry_id}"), rows)
    assert index.vectors.ivf_due  # 6,000 rows, still exact: the add did not build
    assert not index.vectors.approximate

    def top(entry_id: int) -> int:
        return index.search(f"question number {entry_id}", vectors[entry_id][0], language="en", k=3).matches[0].entry_id

    move = asyncio.create_task(index.move_to_ivf())
    await asyncio.sleep(0)  # the task snapshots the rows and hands the build to a worker thread
    assert index.vectors.building is not None
    answered = 0
    while not move.done():
        # The event loop is free: exact search answers, and edits go on (journalled for the new index).
        assert not index.vectors.approximate
        probe = 8 + answered % 1_900
        assert top(probe) == probe
        if answered == 0:
            vectors[5] = _unit_halves(rng, 3)
            index.upsert(_entry(5, "question number 5 replaced"), vectors[5])
            index.remove(7)
            index.remove(1_999)  # rows not copied yet (the copy goes in chunks between turns of the loop)
            vectors[5_001] = _unit_halves(rng, 3)
            index.upsert(_entry(5_001, "question number 5001"), vectors[5_001])
        answered += 1
        await asyncio.sleep(0)
    await move
    assert answered >= 1
    assert index.vectors.approximate
    assert index.vectors.building is None
    assert index.vectors.ntotal == 5_997  # 2,000 + 1 added - 2 removed entries, 3 rows each
    assert top(5) == 5  # the replacement made during the build
    assert top(5_001) == 5_001  # the entry added during the build
    assert 7 not in index
    assert 1_999 not in index
    assert all(m.entry_id != 1_999 for m in index.search("x", vectors[1_999][0], language="en", k=10).matches)
    assert all(m.entry_id != 7 for m in index.search("question number 7", vectors[7][0], language="en", k=10).matches)


def test_a_failed_or_repeated_move_to_ivf_is_refused_clearly() -> None:
    rows = HybridIndex(ann_from_rows=10**9).vectors
    build = rows.begin_ivf()
    with pytest.raises(RuntimeError, match="already started"):
        rows.begin_ivf()
    rows.abandon_ivf()
    with pytest.raises(RuntimeError, match="not the one"):
        rows.finish_ivf(build, None)
