"""all-MiniLM-L6-v2 through ONNX Runtime: the packaged weights exported once to ONNX (optionally int8).

The exported graph includes the mean pooling, so one ``session.run`` gives the sentence vectors
``SentenceTransformer.encode`` would (before normalisation). The export needs torch and onnx, and
runs once per machine: the file is cached under ``SHOPTALK_NLU_CACHE_DIR`` (default
``~/.cache/shoptalk/nlu``), keyed by the packaged weights, written atomically, and checked against
the torch model before it is used. Serving needs only onnxruntime and tokenizers.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

MINILM_DIM = 384
# sentence_bert_config.json of all-MiniLM-L6-v2: longer inputs are truncated to this many word pieces.
MAX_TOKENS = 256
# Chunk size inside one forward pass: texts sorted by token count, padded to the longest of their chunk.
CHUNK = 32
# A chunk takes rows up to this factor (+1 token) longer than its shortest row.
PAD_SLACK = 1.1
EXPORT_FORMAT = 1
# The exported graph must reproduce torch's pooled vectors this closely (float32 round-off only).
EXPORT_TOLERANCE = 1e-4

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_PROBES = ["where is my order #12345?", "我的订单什么时候到", "do you ship hoodies to Germany in size XL", " "]


def cache_dir() -> Path:
    """Where exported encoders live (not in the repository)."""
    configured = os.environ.get("SHOPTALK_NLU_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shoptalk" / "nlu"


def _weights_key(model_dir: Path) -> str:
    weights = model_dir / "model.safetensors"
    stat = weights.stat()
    digest = hashlib.sha1(f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{EXPORT_FORMAT}".encode())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _export_lock(folder: Path) -> Iterator[None]:
    """One exporting process at a time per cache folder (others wait, then reuse its file)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".export.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _torch_pooled(model: Any, tokenizer: Any, texts: list[str]) -> npt.NDArray[np.float32]:
    import torch

    tokens = tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
    with torch.inference_mode():
        states = model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    out: npt.NDArray[np.float32] = pooled.numpy().astype(np.float32)
    return out


def _export(model_dir: Path, target: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir)).eval()

    class Pooled(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            states = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)

    # One unpadded sentence: tracing a padded sample records a mask path that is wrong for other shapes
    # (the check below catches it).
    sample = tokenizer(["a warm up sentence"], return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in _INPUTS}
    axes["pooled"] = {0: "batch"}
    # Taken before the export: after tracing, this module's own outputs were off in our runs.
    expected = _torch_pooled(model, tokenizer, _PROBES)
    staging = Path(tempfile.mkstemp(prefix=".minilm-", suffix=".onnx", dir=target.parent)[1])
    try:
        with torch.no_grad():
            torch.onnx.export(Pooled(model), tuple(sample[name] for name in _INPUTS), str(staging),
                              input_names=list(_INPUTS), output_names=["pooled"], dynamic_axes=axes,
                              opset_version=17, dynamo=False)
        got = OnnxMiniLM(model_dir, staging).forward(_PROBES)
        error = float(np.abs(expected - got).max())
        if not error <= EXPORT_TOLERANCE:
            raise RuntimeError(f"ONNX export of MiniLM differs from torch by {error:.2e} (> {EXPORT_TOLERANCE})")
        staging.chmod(0o644)
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)


def _quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-untyped]

    staging = Path(tempfile.mkstemp(prefix=".minilm-int8-", suffix=".onnx", dir=target.parent)[1])
    try:
        quantize_dynamic(str(source), str(staging), weight_type=QuantType.QInt8, per_channel=True)
        staging.chmod(0o644)
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)


def ensure_onnx_file(model_dir: Path, *, quantized: bool, folder: Path | None = None) -> Path:
    """The cached ONNX file of the packaged MiniLM (exported, and quantized, on first use)."""
    folder = folder or cache_dir()
    key = _weights_key(model_dir)
    fp32 = folder / f"minilm-l6-v2-{key}-fp32.onnx"
    int8 = folder / f"minilm-l6-v2-{key}-int8.onnx"
    wanted = int8 if quantized else fp32
    if wanted.exists():
        return wanted
    with _export_lock(folder):
        if not fp32.exists():
            _export(model_dir, fp32)
        if quantized and not int8.exists():
            _quantize(fp32, int8)
    return wanted


class OnnxMiniLM:
    """Mean-pooled MiniLM vectors from an ONNX file; ``forward`` is thread-safe (one intra-op thread)."""

    def __init__(self, model_dir: Path, onnx_file: Path, *, threads: int = 1, chunk: int = CHUNK) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning worker threads steal the other core from the USE pass and from other processes.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self.onnx_file = onnx_file
        # Dynamically quantised graphs scale activations over the whole input tensor, so a sentence's
        # vector would depend on the others in its chunk (cosine down to 0.991): they run with chunk=1.
        self.chunk = max(1, chunk)
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # The packaged tokenizer.json pads every input to 128 and truncates at 128; we pad per chunk.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer = tokenizer

    def forward(self, batch: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(batch), MINILM_DIM), dtype=np.float32)
        if not batch:
            return out
        encodings = self.tokenizer.encode_batch(list(batch), add_special_tokens=True)
        for chunk in self._chunks([len(e.ids) for e in encodings]):
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, index in enumerate(chunk):
                tokens = encodings[index].ids
                ids[row, :len(tokens)] = tokens
                mask[row, :len(tokens)] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            out[chunk] = self.session.run(["pooled"], feeds)[0]
        return out

    def _chunks(self, lengths: list[int]) -> list[list[int]]:
        """Rows grouped for passes: sorted by token count, a new group when a row is more than
        ``PAD_SLACK`` longer than its group's first row (padding is paid-for compute: on a batch of
        mixed 11-17-token chat messages one padded pass cost 15 % more CPU than length groups) or
        the group holds ``chunk`` rows."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        chunks: list[list[int]] = []
        for index in order:
            if chunks and len(chunks[-1]) < self.chunk and \
                    lengths[index] <= lengths[chunks[-1][0]] * PAD_SLACK + 1:
                chunks[-1].append(index)
            else:
                chunks.append([index])
        return chunks
