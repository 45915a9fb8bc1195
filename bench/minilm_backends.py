"""MiniLM served three ways, measured side by side: the hand ONNX export vs sentence-transformers' backends.

    python bench/minilm_backends.py [--rounds 3] [--backends hand,st-onnx] [--st-python /venv/bin/python]

``hand`` is what the embedder serves (nlu/_minilm_onnx.py: the exported graph with mean pooling inside, our
tokenisation and length groups); ``st-onnx`` is ``SentenceTransformer(folder, backend="onnx")`` (optimum
exports the packaged weights, then ONNX Runtime); ``st-torch`` is ``SentenceTransformer(folder)``. Each
measurement runs in a fresh process, the backends interleaved (hand, st-onnx, hand, st-onnx, ...: the shared box
drifts 15-20 % over minutes), every ONNX session on one intra-op thread without spinning and torch on one
thread, as served. ``--st-python`` runs the sentence-transformers children with another interpreter (a venv
with ``sentence-transformers[onnx]``, which does not install beside the project's transformers 5).

Per child: first load (imports + model ready, the ONNX file already exported), RSS after load and peak,
and per batch size (1, 8, 32, 64: what the micro-batcher sends) the median and p99 ms per pass, texts/s and
CPU ms per text (this process; it moves much less with the box's load than the wall figures).
Vectors of ~320 benchmark sentences (banking77, clinc150, bitext, massive zh-CN) are compared with the hand
export's: max abs difference and min cosine of the unit rows. Prints one JSON line per child, then a summary.

Experiment log: docs/experiments.md.
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "benchmarks"
# (batch size, passes): about the same number of texts per size.
BATCHES = ((1, 320), (8, 60), (32, 20), (64, 10))
WARM_UP_PASSES = 5
MAX_TOKENS = 256


def benchmark_sentences(root: Path) -> list[str]:
    """~320 sentences, taken at a stride from four benchmark sets (English chat, and Chinese)."""
    texts: list[str] = []
    with (root / "banking77" / "test.csv").open(encoding="utf-8") as handle:
        texts += [row["text"] for row in csv.DictReader(handle)][::20][:120]
    clinc = json.loads((root / "clinc150" / "data_full.json").read_text(encoding="utf-8"))
    texts += [text for text, _ in clinc["test"]][::45][:100]
    with (root / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv").open(
            encoding="utf-8") as handle:
        texts += [row["instruction"] for row in csv.DictReader(handle)][::50][:50]
    with (root / "massive" / "zh-CN.dev.jsonl").open(encoding="utf-8") as handle:
        texts += [json.loads(line)["text"] for line in handle][::40][:50]
    return texts


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _load(backend: str, model_dir: Path, onnx_dir: Path) -> Any:
    """A callable texts -> unit rows (n, 384), for the backend, on one thread."""
    if backend == "hand":
        # The module alone, by its path: importing the nlu package would count the rest of nlu's imports too.
        spec = importlib.util.spec_from_file_location("_minilm_onnx", REPO_ROOT / "nlu" / "_minilm_onnx.py")
        assert spec is not None
        assert spec.loader is not None
        hand_export = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(hand_export)
        model = hand_export.OnnxMiniLM(model_dir, hand_export.ensure_onnx_file(model_dir, quantized=False), threads=1)

        def hand(texts: list[str]) -> npt.NDArray[np.float32]:
            rows = model.forward(texts)
            unit: npt.NDArray[np.float32] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
            return unit
        return hand
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    if backend == "st-torch":
        st = SentenceTransformer(str(model_dir), device="cpu")
    else:
        import onnxruntime as ort  # type: ignore[import-untyped]

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        kwargs = {"provider": "CPUExecutionProvider", "session_options": options}
        st = SentenceTransformer(str(onnx_dir), device="cpu", backend="onnx", model_kwargs=kwargs)
    st.max_seq_length = MAX_TOKENS

    def sentence_transformers(texts: list[str]) -> npt.NDArray[np.float32]:
        rows: npt.NDArray[np.float32] = st.encode(texts, batch_size=32, convert_to_numpy=True,
                                                  normalize_embeddings=True, show_progress_bar=False)
        return rows
    return sentence_transformers


def export_st_onnx(model_dir: Path, onnx_dir: Path) -> float:
    """Let sentence-transformers (optimum) export the packaged weights once into ``onnx_dir``; seconds."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    started = time.perf_counter()
    SentenceTransformer(str(model_dir), device="cpu", backend="onnx").save(str(onnx_dir))
    return time.perf_counter() - started


def child(backend: str, model_dir: Path, onnx_dir: Path, texts_file: Path, out: Path) -> dict[str, Any]:
    """Measure one backend in this (fresh) process."""
    texts: list[str] = json.loads(texts_file.read_text(encoding="utf-8"))
    started = time.perf_counter()
    encode = _load(backend, model_dir, onnx_dir)
    encode(["warm up"])
    result: dict[str, Any] = {"backend": backend, "first_load_s": round(time.perf_counter() - started, 2),
                              "rss_after_load_mb": round(_rss_mb(), 1)}
    np.save(out, encode(texts))
    for size, passes in BATCHES:
        batches = [[texts[(k * size + j) % len(texts)] for j in range(size)] for k in range(passes)]
        for batch in batches[:WARM_UP_PASSES]:
            encode(batch)
        times = []
        cpu_started = time.process_time()
        for batch in batches:
            begun = time.perf_counter()
            encode(batch)
            times.append(time.perf_counter() - begun)
        cpu = time.process_time() - cpu_started
        ms = sorted(t * 1000 for t in times)
        result[f"batch_{size}"] = {"median_ms": round(statistics.median(ms), 3),
                                   "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 3),
                                   "texts_per_s": round(size * len(times) / sum(times), 1),
                                   "cpu_ms_per_text": round(cpu * 1000 / (size * len(times)), 3)}
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["load_avg_1m"] = os.getloadavg()[0]
    return result


def compare(reference: npt.NDArray[np.float32], rows: npt.NDArray[np.float32]) -> dict[str, float]:
    cosines = np.sum(reference * rows, axis=1)
    return {"max_abs_diff": float(np.abs(reference - rows).max()), "min_cosine": float(cosines.min()),
            "mean_cosine": float(cosines.mean())}


def measure(args: argparse.Namespace, model_dir: Path, backends: list[str], work: Path) -> dict[str, Any]:
    """Run the children (printing their lines) in ``work``; the summary."""
    from nlu._minilm_onnx import ensure_onnx_file

    texts_file = work / "texts.json"
    texts_file.write_text(json.dumps(benchmark_sentences(args.data), ensure_ascii=False), encoding="utf-8")
    onnx_dir = work / "st-onnx"
    started = time.perf_counter()
    ensure_onnx_file(model_dir, quantized=False)  # exported once per machine (cached); here it is timed
    summary: dict[str, Any] = {"hand_export_or_cache_s": round(time.perf_counter() - started, 2)}
    if "st-onnx" in backends:
        out = subprocess.run([args.st_python, __file__, "--export-only", "--model-dir", str(model_dir),
                              "--onnx-dir", str(onnx_dir)], check=True, capture_output=True, text=True).stdout
        summary.update(json.loads(out.strip().splitlines()[-1]))
    runs: dict[str, list[dict[str, Any]]] = {backend: [] for backend in backends}
    for round_ in range(args.rounds):
        for backend in backends:
            python = sys.executable if backend == "hand" else args.st_python
            out_file = work / f"{backend}-{round_}.npy"
            line = subprocess.run([python, __file__, "--child", backend, "--model-dir", str(model_dir),
                                   "--onnx-dir", str(onnx_dir), "--texts", str(texts_file), "--out", str(out_file)],
                                  check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            result = json.loads(line)
            result["round"] = round_
            print(json.dumps(result), flush=True)
            runs[backend].append(result)
    reference = np.load(work / "hand-0.npy")
    summary["sentences"] = int(reference.shape[0])
    for backend, results in runs.items():
        figures: dict[str, Any] = {
            "first_load_s": statistics.median(r["first_load_s"] for r in results),
            "rss_after_load_mb": statistics.median(r["rss_after_load_mb"] for r in results),
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in results),
            "vs_hand": compare(reference, np.load(work / f"{backend}-0.npy")),
        }
        for size, _ in BATCHES:
            key = f"batch_{size}"
            figures[key] = {name: statistics.median(r[key][name] for r in results)
                            for name in ("median_ms", "p99_ms", "texts_per_s", "cpu_ms_per_text")}
        summary[backend] = figures
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="hand,st-onnx")
    parser.add_argument("--st-python", default=sys.executable, help="interpreter with sentence-transformers[onnx]")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--child", choices=("hand", "st-onnx", "st-torch"), help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--onnx-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--texts", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--export-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_only:
        print(json.dumps({"st_onnx_export_s": round(export_st_onnx(args.model_dir, args.onnx_dir), 2)}))
        return
    if args.child:
        print(json.dumps(child(args.child, args.model_dir, args.onnx_dir, args.texts, args.out)))
        return

    backends = args.backends.split(",")
    if "hand" not in backends or not set(backends) <= {"hand", "st-onnx", "st-torch"}:
        parser.error("--backends: a comma list of hand (needed: the vectors are compared with it), st-onnx, st-torch")
    sys.path.insert(0, str(REPO_ROOT))
    from nlu.embedder import minilm_model_dir

    model_dir = Path(minilm_model_dir())
    with tempfile.TemporaryDirectory(prefix="minilm-backends-") as tmp:
        summary = measure(args, model_dir, backends, Path(tmp))
    print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    main()
