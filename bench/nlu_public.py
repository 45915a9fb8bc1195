"""NLU benchmark: banking77, clinc150 (Larson threshold), massive en/zh, the shipped shop model, speed.

Prints one JSON object. Protocols: ../shared/benchmarks/README.md. Embeddings of the public sets are
cached under var/cache/nlu_bench (the encoders are frozen), so reruns only pay for classifiers.

    python bench/nlu_public.py [--data ../shared/benchmarks] [--massive-test-en PATH --massive-test-zh PATH]
                               [--only banking77,clinc150,clinc150_finetuned,clinc150_oos_class,massive,
                                       massive_zero_shot,shop,speed]
                               [--processes N]

The default run leaves out `clinc150_finetuned` (a MiniLM fine-tune of about 33 minutes on this 2-core machine,
over the 20-minute budget for the whole benchmark; the served classifier meets the clinc150 target without it):
name it in `--only` to run it.

`speed` runs with SHOPTALK_NLU_PROCESSES encoder processes (the default: one per core, at most 2), or
`--processes N` (0 = passes on threads of the benchmark process); its CPU figures add the encoder
processes' CPU (from /proc) to this process's.

Experiment log (variants tried and dropped, with their figures): docs/experiments.md.
"""
# Over 500 lines: one script per benchmark, so its sections share the data loaders and cached embeddings.

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import hashlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from _common import ROOT, percentile
from proc_cpu import cpu_seconds

from nlu.classifier import ClassifierConfig, IntentClassifier
from nlu.embedder import get_embedder

DEFAULT_DATA = ROOT.parent / "shared" / "benchmarks"
CACHE_DIR = ROOT / "var" / "cache" / "nlu_bench"
SHOP_TESTS = [ROOT / "bench" / "data" / f"nlu_shop_test_{language}.yml" for language in ("en", "zh")]
# Weights of the character n-gram model tried on validation/dev data (0 = embeddings only).
LEXICAL_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0)
# clinc150's classifier: two MLPs on the embeddings beside half-weighted LR and char 1-5 n-grams, chosen on
# val+oos_val; the trials and their figures: docs/experiments.md.
CLINC_CLASSIFIER = {"mlp_hidden": 1024, "mlp_seeds": 2, "mlp_epochs": 40, "mlp_batch": 64, "embedding_weight": 0.5,
                    "analyzer": "char", "ngram_range": (1, 5),
                    # its own settings above, whatever the size of the set (not the served ensemble's)
                    "ensemble_min_examples_per_intent": 1e9}

Split = tuple[list[str], list[str]]
Matrix = npt.NDArray[np.float32]
Embed = Callable[[list[str]], Matrix]


# ---------------------------------------------------------------- data


def load_banking77(root: Path) -> dict[str, Split]:
    out: dict[str, Split] = {}
    for split in ("train", "test"):
        with (root / "banking77" / f"{split}.csv").open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        out[split] = ([r["text"] for r in rows], [r["category"] for r in rows])
    return out


def load_clinc150(root: Path) -> dict[str, Split]:
    raw = json.loads((root / "clinc150" / "data_full.json").read_text(encoding="utf-8"))
    return {key: ([t for t, _ in value], [label for _, label in value]) for key, value in raw.items()}


def load_jsonl(path: Path) -> Split:
    texts: list[str] = []
    labels: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(row["intent"])
    return texts, labels


def load_massive(root: Path, locale: str) -> dict[str, Split]:
    return {split: load_jsonl(root / "massive" / f"{locale}.{split}.jsonl") for split in ("train", "dev")}


def cached_embeddings(texts: list[str]) -> Matrix:
    """Embedder rows for texts, cached under var/cache so iterations skip the forward pass."""
    encoder = get_embedder().encoder_id
    # float32 rows (ONNX or torch: the same vectors) keep the cache names they always had.
    salt = "" if encoder == "minilm-fp32+use3" else encoder + "\n"
    digest = hashlib.sha1((salt + "\n".join(texts)).encode("utf-8")).hexdigest()[:20]
    path = CACHE_DIR / f"emb-{digest}-{len(texts)}.npy"
    if path.exists():
        rows: Matrix = np.load(path)
        return rows
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    rows = get_embedder().encode(texts)
    np.save(path, rows)
    return rows


# ---------------------------------------------------------------- helpers


def _accuracy(predicted: list[str], truth: list[str]) -> float:
    return round(100.0 * float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)])), 2)


def _fit(texts: list[str], labels: list[str], config: ClassifierConfig,
         embed: Embed | None = None) -> tuple[IntentClassifier, float]:
    started = time.perf_counter()
    classifier = IntentClassifier(config=config)
    classifier.fit((embed or cached_embeddings)(texts), texts, labels)
    return classifier, time.perf_counter() - started


def _predict(classifier: IntentClassifier, parts: tuple[npt.NDArray[np.float64], Any], weight: float) -> list[str]:
    dense, lexical = parts
    scores = dense if lexical is None or weight == 0 else dense + weight * lexical
    return [classifier.labels[i] for i in scores.argmax(axis=1)]


# ---------------------------------------------------------------- benchmarks


def bench_banking77(root: Path, config: ClassifierConfig) -> dict[str, Any]:
    data = load_banking77(root)
    classifier, seconds = _fit(*data["train"], config)
    test_texts, test_labels = data["test"]
    parts = classifier.score_parts(cached_embeddings(test_texts), test_texts)
    # No validation split in banking77: the n-gram weight is the one chosen on clinc150/massive dev data.
    return {
        "protocol": "train on train.csv, accuracy on test.csv; features MiniLM+USE embeddings + char n-gram SVM",
        # the fitted (resolved) config's weight: a set this size gets the served ensemble's settings
        "accuracy": _accuracy(_predict(classifier, parts, classifier.config.tfidf_weight), test_labels),
        "accuracy_embeddings_only": _accuracy(_predict(classifier, parts, 0.0), test_labels),
        "lexical_weight": classifier.config.tfidf_weight, "mlps": len(classifier.state()["mlps"]),
        "fit_seconds": round(seconds, 1),
        "target": 93.7,
    }


def _larson(classifier: IntentClassifier, probs: npt.NDArray[np.float64], labels: list[str]) -> float:
    return classifier.choose_threshold(probs, labels, oos_labels=frozenset({"oos"}))


def bench_clinc150(root: Path, config: ClassifierConfig, embed: Embed | None = None) -> dict[str, Any]:
    cached_embeddings = embed or globals()["cached_embeddings"]
    data = load_clinc150(root)
    classifier, seconds = _fit(*data["train"], config, cached_embeddings)
    # Per-split caches, so the in-scope and OOS splits are embedded once each.
    val_rows = np.concatenate([cached_embeddings(data["val"][0]), cached_embeddings(data["oos_val"][0])])
    test_rows = np.concatenate([cached_embeddings(data["test"][0]), cached_embeddings(data["oos_test"][0])])
    val_texts = data["val"][0] + data["oos_val"][0]
    val_labels = data["val"][1] + ["oos"] * len(data["oos_val"][0])
    val_parts = classifier.score_parts(val_rows, val_texts)
    test_texts = data["test"][0] + data["oos_test"][0]
    test_labels = data["test"][1] + ["oos"] * len(data["oos_test"][0])
    test_parts = classifier.score_parts(test_rows, test_texts)
    in_val = len(data["val"][0])
    in_test = len(data["test"][0])
    choices = []
    for weight in LEXICAL_WEIGHTS:
        dense, lexical = val_parts
        if weight and lexical is None:
            continue
        scores = dense if weight == 0 or lexical is None else dense + weight * lexical
        classifier.temperature = 1.0
        classifier.calibrate_temperature(scores[:in_val], val_labels[:in_val])
        probs = _softmax(scores / classifier.temperature)
        threshold = _larson(classifier, probs, val_labels)
        val_acc = _larson_accuracy(classifier, probs, val_labels, threshold)
        choices.append((val_acc, weight, classifier.temperature, threshold))
    val_acc, weight, temperature, threshold = max(choices)
    # Second rejection signal: cosine to the nearest training utterance, thresholds chosen jointly on val.
    train_rows = cached_embeddings(data["train"][0])
    val_sim = _nearest_similarity(val_rows, train_rows)
    test_sim = _nearest_similarity(test_rows, train_rows)
    dense, lexical = val_parts
    val_scores = dense if weight == 0 or lexical is None else dense + weight * lexical
    val_probs = _softmax(val_scores / temperature)
    knn_acc, knn_prob_threshold, knn_sim_threshold = _larson_two_signals(classifier, val_probs, val_sim, val_labels)
    dense, lexical = test_parts
    test_scores = dense if weight == 0 or lexical is None else dense + weight * lexical
    test_probs = _softmax(test_scores / temperature)
    knn_rejected = (test_probs.max(axis=1) < knn_prob_threshold) | (test_sim < knn_sim_threshold)
    knn_predicted = [classifier.labels[i] for i in test_probs.argmax(axis=1)]
    knn_result = {
        "in_scope_accuracy": round(100.0 * float(np.mean([(not knn_rejected[i]) and knn_predicted[i] == test_labels[i]
                                                          for i in range(len(data["test"][0]))])), 2),
        "oos_recall": round(100.0 * float(np.mean(knn_rejected[len(data["test"][0]):])), 2),
        "probability_threshold": round(knn_prob_threshold, 4), "similarity_threshold": round(knn_sim_threshold, 4),
        "validation_accuracy_151_classes": round(100.0 * knn_acc, 2),
    }
    dense, lexical = test_parts
    scores = dense if weight == 0 or lexical is None else dense + weight * lexical
    probs = _softmax(scores / temperature)
    predicted = [classifier.labels[i] for i in probs.argmax(axis=1)]
    rejected = probs.max(axis=1) < threshold
    in_scope_correct = [(not rejected[i]) and predicted[i] == test_labels[i] for i in range(in_test)]
    oos_rejected = [bool(rejected[i]) for i in range(in_test, len(test_labels))]
    return {
        "protocol": "train on train (no oos_train), temperature, n-gram weight and threshold chosen on "
                    "val+oos_val by Larson's rule, reported on test+oos_test",
        "in_scope_accuracy": round(100.0 * float(np.mean(in_scope_correct)), 2),
        "oos_recall": round(100.0 * float(np.mean(oos_rejected)), 2),
        "in_scope_accuracy_no_rejection": _accuracy(predicted[:in_test], test_labels[:in_test]),
        "threshold": round(threshold, 4), "temperature": round(temperature, 3), "lexical_weight": weight,
        "validation_accuracy_151_classes": round(100.0 * val_acc, 2),
        "with_nearest_neighbour_rejection": knn_result,
        "fit_seconds": round(seconds, 1),
        "target": {"in_scope_accuracy": 96.2, "oos_recall": 60.0},
    }


def _nearest_similarity(rows: Matrix, train_rows: Matrix) -> npt.NDArray[np.float64]:
    best = np.full(len(rows), -1.0)
    for start in range(0, len(rows), 1024):
        block = rows[start:start + 1024] @ train_rows.T
        best[start:start + 1024] = block.max(axis=1)
    return best


def _larson_two_signals(classifier: IntentClassifier, probs: npt.NDArray[np.float64],
                        similarity: npt.NDArray[np.float64], labels: list[str]) -> tuple[float, float, float]:
    """Best validation accuracy (OOS as a class) over pairs of probability and similarity thresholds."""
    predicted = np.array([classifier.labels[i] for i in probs.argmax(axis=1)])
    truth = np.array(labels)
    is_oos = truth == "oos"
    right = predicted == truth
    confidence = probs.max(axis=1)
    best = (-1.0, 0.0, -1.0)
    for prob_threshold in np.unique(np.quantile(confidence, np.linspace(0, 0.5, 101))):
        for sim_threshold in np.unique(np.quantile(similarity, np.linspace(0, 0.5, 101))):
            rejected = (confidence < prob_threshold) | (similarity < sim_threshold)
            accuracy = float(np.where(is_oos, rejected, ~rejected & right).mean())
            if accuracy > best[0] + 1e-12:
                best = (accuracy, float(prob_threshold), float(sim_threshold))
    return best


# Short classification fine-tune of MiniLM on clinc150 `train` (cosine-softmax head, mean pooling),
# then the same frozen-feature protocol as `clinc150` with the tuned MiniLM half. Weights are cached
# under var/cache/nlu_bench (never committed); a rerun only re-scores.
FINETUNE = {"epochs": 1.0, "lr": 1e-4, "batch": 32, "max_tokens": 32, "scale": 20.0, "seed": 0, "warmup": 0.06}


def finetune_minilm(texts: list[str], labels: list[str], name: str) -> tuple[Path, float]:
    """Fine-tuned MiniLM folder (transformers format) and the seconds spent tuning (0 when cached)."""
    key = hashlib.sha1(json.dumps([FINETUNE, len(texts)], sort_keys=True).encode()).hexdigest()[:10]
    folder = CACHE_DIR / f"minilm-{name}-ft-{key}"
    if (folder / "model.safetensors").exists():
        return folder, 0.0
    import math
    import random

    import torch
    from transformers import AutoModel, AutoTokenizer

    from nlu.embedder import minilm_model_dir

    started = time.perf_counter()
    torch.manual_seed(int(FINETUNE["seed"]))
    shuffle = random.Random(int(FINETUNE["seed"]))
    names = sorted(set(labels))
    targets = torch.tensor([names.index(label) for label in labels])
    tokenizer = AutoTokenizer.from_pretrained(minilm_model_dir())
    model = AutoModel.from_pretrained(minilm_model_dir())
    head = torch.nn.Linear(384, len(names))  # the bias is unused by the cosine logits
    batch = int(FINETUNE["batch"])
    steps = int(math.ceil(len(texts) / batch) * FINETUNE["epochs"])
    warmup = max(1.0, FINETUNE["warmup"] * steps)
    optimiser = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=FINETUNE["lr"], weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, (steps - step) / steps))
    model.train()
    step = 0
    while step < steps:
        order = list(range(len(texts)))
        shuffle.shuffle(order)
        for offset in range(0, len(order), batch):
            if step >= steps:
                break
            chunk = order[offset:offset + batch]
            tokens = tokenizer([texts[i] for i in chunk], padding=True, truncation=True,
                               max_length=int(FINETUNE["max_tokens"]), return_tensors="pt")
            states = model(**tokens).last_hidden_state
            mask = tokens["attention_mask"].unsqueeze(-1).float()
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            logits = (torch.nn.functional.normalize(pooled, dim=-1)
                      @ torch.nn.functional.normalize(head.weight, dim=-1).T) * FINETUNE["scale"]
            loss = torch.nn.functional.cross_entropy(logits, targets[chunk])
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            step += 1
    staging = Path(tempfile.mkdtemp(prefix=".ft-", dir=CACHE_DIR))
    model.save_pretrained(str(staging))
    tokenizer.save_pretrained(str(staging))
    os.replace(staging, folder)
    return folder, time.perf_counter() - started


def tuned_embeddings(folder: Path) -> Embed:
    """Rows like `cached_embeddings` with the MiniLM half from the tuned weights (USE half unchanged)."""
    from concurrent.futures import ThreadPoolExecutor

    from nlu._minilm_onnx import OnnxMiniLM, ensure_onnx_file
    from nlu.embedder import MINILM_DIM

    model: list[OnnxMiniLM] = []

    def embed(texts: list[str]) -> Matrix:
        digest = hashlib.sha1(("\n".join(texts)).encode("utf-8")).hexdigest()[:20]
        path = CACHE_DIR / f"emb-{folder.name}-{digest}-{len(texts)}.npy"
        if path.exists():
            cached: Matrix = np.load(path)
            return cached
        if not model:
            model.append(OnnxMiniLM(folder, ensure_onnx_file(folder, quantized=False, folder=CACHE_DIR / "onnx")))
        rows = cached_embeddings(texts).copy()
        shares = [list(range(k, len(texts), 2)) for k in range(2)]
        with ThreadPoolExecutor(max_workers=2) as pool:
            parts = list(pool.map(lambda share: model[0].forward([texts[i] or " " for i in share]), shares))
        for share, part in zip(shares, parts, strict=True):
            norms = np.linalg.norm(part, axis=1, keepdims=True)
            rows[share, :MINILM_DIM] = part / np.maximum(norms, 1e-12) / np.sqrt(2.0)
        np.save(path, rows)
        return rows

    return embed


def bench_clinc150_finetuned(root: Path, config: ClassifierConfig) -> dict[str, Any]:
    data = load_clinc150(root)
    folder, seconds = finetune_minilm(*data["train"], name="clinc150")
    started = time.perf_counter()
    result = bench_clinc150(root, config, embed=tuned_embeddings(folder))
    result["protocol"] = ("MiniLM fine-tuned on clinc150 train only (cosine-softmax classification), then the "
                          "clinc150 protocol: " + result["protocol"])
    result["finetune"] = dict(FINETUNE)
    result["finetune_seconds"] = round(seconds, 1) if seconds else "cached"
    result["score_seconds"] = round(time.perf_counter() - started, 1)
    return result


def bench_clinc150_oos_class(root: Path, config: ClassifierConfig) -> dict[str, Any]:
    """The "oos as a class" method: oos_train joins training as class `oos`, plus Larson's threshold."""
    data = load_clinc150(root)
    texts = data["train"][0] + data["oos_train"][0]
    labels = data["train"][1] + ["oos"] * len(data["oos_train"][0])
    started = time.perf_counter()
    classifier = IntentClassifier(config=config)
    classifier.fit(np.concatenate([cached_embeddings(data["train"][0]), cached_embeddings(data["oos_train"][0])]),
                   texts, labels)
    seconds = time.perf_counter() - started
    val_rows = np.concatenate([cached_embeddings(data["val"][0]), cached_embeddings(data["oos_val"][0])])
    val_texts = data["val"][0] + data["oos_val"][0]
    val_labels = data["val"][1] + ["oos"] * len(data["oos_val"][0])
    classifier.calibrate_temperature(classifier.decision_scores(val_rows, val_texts), data["val"][1])
    threshold = classifier.choose_threshold(classifier.predict_proba(val_rows, val_texts), val_labels,
                                            oos_labels=frozenset({"oos"}))
    test_rows = np.concatenate([cached_embeddings(data["test"][0]), cached_embeddings(data["oos_test"][0])])
    test_texts = data["test"][0] + data["oos_test"][0]
    probs = classifier.predict_proba(test_rows, test_texts)
    predicted = [classifier.labels[i] for i in probs.argmax(axis=1)]
    rejected = [p == "oos" or c < threshold for p, c in zip(predicted, probs.max(axis=1), strict=True)]
    in_test = len(data["test"][0])
    return {
        "protocol": "train on train + oos_train (oos as a class), threshold by Larson's rule on val+oos_val",
        "in_scope_accuracy": round(100.0 * float(np.mean([not rejected[i] and predicted[i] == data["test"][1][i]
                                                          for i in range(in_test)])), 2),
        "oos_recall": round(100.0 * float(np.mean(rejected[in_test:])), 2),
        "threshold": round(threshold, 4), "fit_seconds": round(seconds, 1),
    }


def _softmax(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    out: npt.NDArray[np.float64] = exp / exp.sum(axis=1, keepdims=True)
    return out


def _larson_accuracy(classifier: IntentClassifier, probs: npt.NDArray[np.float64], labels: list[str],
                     threshold: float) -> float:
    predicted = np.array([classifier.labels[i] for i in probs.argmax(axis=1)])
    rejected = probs.max(axis=1) < threshold
    truth = np.array(labels)
    correct = np.where(truth == "oos", rejected, (~rejected) & (predicted == truth))
    return float(correct.mean())


def served_config() -> ClassifierConfig:
    """The classifier every shop model and imported Rasa project trains (`nlu.model.train_model`'s default)."""
    return ClassifierConfig()


def served_intents(classifier: IntentClassifier, texts: list[str]) -> list[str]:
    """Intents of `texts` through the service's own parse path (`NluService.classify`: language detection, the
    language-aware mix of the heads). The model's rejection threshold is left at 0: accuracy counts the top
    intent, as the papers do."""
    from nlu.model import NluModel
    from nlu.service import NluService
    from nlu.training_data import TrainingData

    model = NluModel(version="bench", classifier=classifier, entity_data=TrainingData())
    with tempfile.TemporaryDirectory(prefix="nlu-bench-") as scratch:
        service = NluService(models_dir=Path(scratch), data_paths=[], embedder=get_embedder())
        return [result.intent for result in service.classify(model, texts, cached_embeddings(texts))]


def _massive_fit(root: Path, locale: str) -> tuple[IntentClassifier, dict[str, Any]]:
    texts, labels = load_massive(root, locale)["train"]
    started, cpu_started = time.perf_counter(), time.process_time()
    classifier, _ = _fit(texts, labels, served_config())
    return classifier, {"fit_seconds": round(time.perf_counter() - started, 1),
                        "fit_cpu_seconds": round(time.process_time() - cpu_started, 1)}


def bench_massive(root: Path, tests: dict[str, Path | None], locales: tuple[str, ...] = ("en-US", "zh-CN"),
                  models: dict[str, IntentClassifier] | None = None) -> dict[str, Any]:
    """The served classifier (its default config, its parse path) per language: train on train, accuracy on
    dev, and on test only when the kept-aside file is given. Every setting was chosen on dev."""
    out: dict[str, Any] = {"protocol": "per language: the served classifier trained on train; dev accuracy; test "
                                       "reported only when its file is given; settings chosen on dev only",
                           "classifier": dataclasses.asdict(served_config())}
    for locale in locales:
        classifier, timing = _massive_fit(root, locale)
        if models is not None:
            models[locale] = classifier
        dev_texts, dev_labels = load_massive(root, locale)["dev"]
        result: dict[str, Any] = {"dev_accuracy": _accuracy(served_intents(classifier, dev_texts), dev_labels),
                                  **timing}
        test_path = tests.get(locale)
        if test_path is not None:
            test_texts, test_labels = load_jsonl(test_path)
            result["test_accuracy"] = _accuracy(served_intents(classifier, test_texts), test_labels)
            result["test_file"] = str(test_path)
        out[locale] = result
    if set(locales) != {"en-US", "zh-CN"}:
        return out
    key = "test_accuracy" if "test_accuracy" in out["zh-CN"] and "test_accuracy" in out["en-US"] else "dev_accuracy"
    out["gap_en_minus_zh"] = round(out["en-US"][key] - out["zh-CN"][key], 2)
    out["gap_measured_on"] = key
    out["target"] = {"en-US": 89.5, "zh-CN": 87.0, "gap": 2.5}
    return out


def bench_massive_zero_shot(root: Path, test_zh: Path | None,
                            english: IntentClassifier | None = None) -> dict[str, Any]:
    """An assistant trained on en-US only (as every imported Rasa project) parsing zh-CN shoppers: the served
    classifier, whose language-aware mix scores Chinese with the multilingual heads alone."""
    timing: dict[str, Any] = {}
    if english is None:
        english, timing = _massive_fit(root, "en-US")
    zh_dev = load_massive(root, "zh-CN")["dev"]
    out: dict[str, Any] = {"protocol": "train on en-US train only, accuracy on zh-CN dev (test when given)",
                           "dev_accuracy": _accuracy(served_intents(english, zh_dev[0]), zh_dev[1]),
                           **timing, "target": 75.0}
    if test_zh is not None:
        test_texts, test_labels = load_jsonl(test_zh)
        out["test_accuracy"] = _accuracy(served_intents(english, test_texts), test_labels)
        out["test_file"] = str(test_zh)
    return out


def bench_shop(models_dir: Path) -> dict[str, Any]:
    from nlu.evaluation import evaluate
    from nlu.service import NluService
    from nlu.training_data import load_training_data

    service = NluService(models_dir=models_dir)
    started = time.perf_counter()
    cpu_started = time.process_time()
    report = service.train()
    wall = time.perf_counter() - started
    out: dict[str, Any] = {
        "train_seconds_including_embedding": round(wall, 1),
        "train_cpu_seconds_including_embedding": round(time.process_time() - cpu_started, 1),
        "train_examples": report.examples, "intents": len(report.intents),
        "validation": report.metrics.get("validation"), "model_version": report.version,
        "target_train_seconds": 60, "cpu_load_average_1min": round(os.getloadavg()[0], 2),
    }
    started = time.perf_counter()
    cpu_started = time.process_time()
    service.train()
    out["retrain_seconds_with_embedding_cache"] = round(time.perf_counter() - started, 1)
    out["retrain_cpu_seconds_with_embedding_cache"] = round(time.process_time() - cpu_started, 1)
    for path in SHOP_TESTS:
        if path.exists():
            result = evaluate(service, load_training_data([path]))
            result.pop("mistakes", None)
            out[path.stem] = result
    return out


def _process_rss_mb(pids: list[int]) -> list[float]:
    out = []
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        out.append(round(kb / 1024, 1))
    return out


async def _speed(models_dir: Path, processes: int | None) -> dict[str, Any]:
    from nlu.embedder import Embedder
    from nlu.service import NluService

    embedder = get_embedder() if processes is None else Embedder(processes=processes)
    service = NluService(models_dir=models_dir, embedder=embedder)
    service.ensure_model()
    started = time.perf_counter()
    pids = embedder.start_processes()
    start_seconds = time.perf_counter() - started
    texts = [f"where is my order #{10000 + i}, it was {i} days ago" if i % 3 == 0 else
             f"do you have red hoodies in size {i % 5 + 38}" if i % 3 == 1 else
             f"我的订单{20000 + i}什么时候到" for i in range(600)]
    for text in texts[:10]:
        await service.parse(text)
    single: list[float] = []
    single_cpu: list[float] = []
    for text in texts[:300]:
        started = time.perf_counter()
        cpu_started = time.process_time() + cpu_seconds(pids)
        await service.parse(text)
        single.append((time.perf_counter() - started) * 1000)
        single_cpu.append((time.process_time() + cpu_seconds(pids) - cpu_started) * 1000)
    single.sort()
    queue = list(texts) * 2

    async def caller() -> int:
        done = 0
        while queue:
            await service.parse(queue.pop())
            done += 1
        return done

    batches_before = service.embedder.micro_batches
    started = time.perf_counter()
    cpu_started = time.process_time()
    workers_started = cpu_seconds(pids)
    done = sum(await asyncio.gather(*(caller() for _ in range(64))))
    pool = embedder.encoder_pool()
    if pool is not None and pool.restarts:
        raise RuntimeError(f"encoder processes restarted {pool.restarts} times during the speed run")
    elapsed = time.perf_counter() - started
    main_cpu_ms = (time.process_time() - cpu_started) * 1000 / done
    worker_cpu_ms = (cpu_seconds(pids) - workers_started) * 1000 / done
    cpu_ms = main_cpu_ms + worker_cpu_ms
    return {
        "single_parse_ms": {"p50": round(percentile(single, 0.5), 2),
                            "p99": round(percentile(single, 0.99), 2), "n": len(single),
                            "cpu_ms_median": round(statistics.median(single_cpu), 2)},
        "concurrent_64_callers": {"parses": done, "seconds": round(elapsed, 2),
                                  "parses_per_second": round(done / elapsed, 1),
                                  "forward_passes": service.embedder.micro_batches - batches_before,
                                  # CPU time of this process (all threads) per parse, less sensitive to
                                  # the other load on the box than the wall figures. 2000 / this is an
                                  # upper bound on two idle cores, not a prediction: parts of a parse
                                  # hold the GIL (measured at load ~2: 147/s with 6.6 ms).
                                  "cpu_ms_per_parse": round(cpu_ms, 2),
                                  "cpu_ms_per_parse_serving_process": round(main_cpu_ms, 2),
                                  "cpu_ms_per_parse_encoder_processes": round(worker_cpu_ms, 2),
                                  # CPU seconds (all processes) / wall seconds: how many cores the run kept busy.
                                  "cores_busy": round(cpu_ms * done / 1000 / elapsed, 2)},
        "embedder_backend": service.embedder.backend, "embedder_workers": service.embedder.workers,
        "encoder_processes": len(pids), "encoder_process_start_seconds": round(start_seconds, 2),
        "encoder_process_rss_mb": _process_rss_mb(pids),
        "cpu_load_average_1min": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
        "target": {"p99_ms": 25, "parses_per_second": 300},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--massive-test-en", type=Path, default=None, help="en-US test jsonl (id,text,intent)")
    parser.add_argument("--massive-test-zh", type=Path, default=None, help="zh-CN test jsonl (id,text,intent)")
    parser.add_argument("--only", default="banking77,clinc150,clinc150_oos_class,massive,massive_zero_shot,shop,speed")
    parser.add_argument("--massive-locales", default="en-US,zh-CN", help="comma list; the gap needs both")
    parser.add_argument("--processes", type=int, default=None,
                        help="speed: encoder processes (default: SHOPTALK_NLU_PROCESSES, else in-process)")
    parser.add_argument("--lexical-weight", type=float, default=ClassifierConfig().tfidf_weight)
    args = parser.parse_args()
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    config = dataclasses.replace(ClassifierConfig(), tfidf_weight=args.lexical_weight)
    started = time.perf_counter()
    result: dict[str, Any] = {"embedder": "all-MiniLM-L6-v2 + USE multilingual v3 (896-d, frozen)",
                              "classifier": dataclasses.asdict(config)}
    get_embedder().load()
    if "banking77" in wanted:
        result["banking77"] = bench_banking77(args.data, config)
    if "clinc150" in wanted:
        clinc_config = dataclasses.replace(config, **CLINC_CLASSIFIER)  # type: ignore[arg-type]
        result["clinc150"] = {"classifier": dataclasses.asdict(clinc_config),
                              **bench_clinc150(args.data, clinc_config)}
    if "clinc150_finetuned" in wanted:
        result["clinc150_finetuned"] = bench_clinc150_finetuned(args.data, config)
    if "clinc150_oos_class" in wanted:
        result["clinc150_oos_class"] = bench_clinc150_oos_class(args.data, config)
    massive_models: dict[str, IntentClassifier] = {}
    if "massive" in wanted:
        result["massive"] = bench_massive(args.data, {"en-US": args.massive_test_en, "zh-CN": args.massive_test_zh},
                                          tuple(x.strip() for x in args.massive_locales.split(",") if x.strip()),
                                          massive_models)
    if "massive_zero_shot" in wanted:
        result["massive_zero_shot"] = bench_massive_zero_shot(args.data, args.massive_test_zh,
                                                              massive_models.get("en-US"))
    with tempfile.TemporaryDirectory(prefix="nlu-bench-") as scratch:
        models_dir = Path(scratch)
        if "shop" in wanted:
            result["shop"] = bench_shop(models_dir)
        if "speed" in wanted:
            result["speed"] = asyncio.run(_speed(models_dir, args.processes))
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
