"""MiniLM through ONNX Runtime against the torch model it is exported from."""

from __future__ import annotations

import numpy as np
import pytest

from nlu.embedder import Embedder

TEXTS = ["where is my order #12345?", "我的订单什么时候到", "", "x" * 3000,
         "do you ship hoodies to Germany in size XL", "🙂🙂", "a"]


@pytest.mark.slow
def test_onnx_float32_gives_the_torch_vectors() -> None:
    onnx = Embedder(backend="onnx", workers=1)
    torch = Embedder(backend="torch", workers=1)
    assert onnx.encoder_id == torch.encoder_id
    assert np.abs(onnx.encode(TEXTS) - torch.encode(TEXTS)).max() < 1e-4


@pytest.mark.slow
def test_int8_vectors_are_close_and_do_not_depend_on_the_batch() -> None:
    int8 = Embedder(backend="onnx-int8", workers=1)
    exact = Embedder(backend="onnx", workers=1)
    assert int8.encoder_id != exact.encoder_id
    batched = int8.encode(TEXTS)
    alone = np.stack([int8.encode([text])[0] for text in TEXTS])
    assert np.abs(batched - alone).max() < 1e-5
    minilm = Embedder.english_part(batched) * Embedder.english_part(exact.encode(TEXTS))
    assert float(minilm.sum(axis=1).min()) > 0.9


@pytest.mark.slow  # loads the real encoders (MiniLM + USE)
def test_float32_rows_do_not_depend_on_their_batch() -> None:
    # Passes group rows by token count: a row's vector must not move with its neighbours (stored KB
    # and product vectors are compared with fresh ones).
    embedder = Embedder(backend="onnx", workers=1, processes=0)
    texts = [*TEXTS, "word " * 400, *(f"do you have red hoodies in size {n}" for n in range(38, 44)),
             *(f"我的订单{n}什么时候到" for n in range(20000, 20006))]
    batched = embedder.encode(texts)
    alone = np.stack([embedder.encode([text])[0] for text in texts])
    assert np.abs(batched - alone).max() < 1e-5


def test_passes_group_rows_of_similar_length() -> None:
    from nlu._minilm_onnx import OnnxMiniLM

    model = OnnxMiniLM.__new__(OnnxMiniLM)
    model.chunk = 3
    chunks = model._chunks([11, 30, 11, 12, 256, 13, 11])
    assert sorted(i for chunk in chunks for i in chunk) == list(range(7))
    assert chunks[0] == [0, 2, 6]  # three 11-token rows; the chunk is full
    assert chunks[1] == [3, 5]  # 12 and 13 tokens
    assert chunks[2:] == [[1], [4]]  # long rows alone, not padding the short ones
