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
