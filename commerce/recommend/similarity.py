"""Item-to-item matrices from a customers x items matrix: cosine, RP3beta, EASE, and their top-k rows."""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from commerce.recommend.interactions import FloatArray


def _cosine(customers: Any, shrink: float) -> FloatArray:
    together = np.asarray((customers.T @ customers).todense(), dtype=np.float64)
    norms = np.sqrt(np.asarray(customers.sum(axis=0)).ravel())
    return together / (np.outer(norms, norms) + shrink + 1e-12)


def _rp3beta(customers: Any, alpha: float, beta: float) -> FloatArray:
    customer_to_item = _row_normalised(customers)
    item_to_customer = _row_normalised(customers.T.tocsr())
    if alpha != 1.0:
        customer_to_item.data **= alpha
        item_to_customer.data **= alpha
    walk = np.asarray((item_to_customer @ customer_to_item).todense(), dtype=np.float64)
    popularity = np.asarray(customers.sum(axis=0), dtype=np.float64).ravel()
    result: FloatArray = walk / np.power(np.maximum(popularity, 1.0), beta)[None, :]
    return result


def _ease(customers: Any, l2: float) -> FloatArray:
    """EASE's closed form B = -P / diag(P), P = (X'X + l2 I)^-1.

    The regularised Gram matrix is symmetric positive definite, so P comes from a Cholesky factor in
    float32 (about 5x less CPU than a float64 LU inverse; the scores agree to ~1e-6 relative)."""
    gram = np.asarray((customers.T @ customers).todense(), dtype=np.float32)
    gram[np.diag_indices_from(gram)] += np.float32(l2)
    factor, info = lapack.spotrf(gram, lower=False, clean=False, overwrite_a=True)
    if info != 0:
        raise ValueError(f"EASE: Gram matrix not positive definite (LAPACK info {info}); raise l2")
    upper, info = lapack.spotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise ValueError(f"EASE: Cholesky inverse failed (LAPACK info {info})")
    inverse = np.triu(upper).astype(np.float64)
    inverse += np.triu(inverse, 1).T
    result: FloatArray = -inverse / np.diag(inverse)[None, :]
    return result


def _row_normalised(matrix: Any) -> Any:
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums, dtype=np.float64), where=sums > 0)
    return (sp.diags(scale) @ matrix).tocsr()


def _top_k_rows(dense: FloatArray, k: int) -> Any:
    n = dense.shape[0]
    if n == 0:
        return sp.csr_matrix((0, 0))
    k = min(k, n)
    columns = np.argpartition(-dense, k - 1, axis=1)[:, :k]
    rows = np.repeat(np.arange(n), k)
    values = dense[rows, columns.ravel()]
    keep = values > 0
    return sp.csr_matrix((values[keep], (rows[keep], columns.ravel()[keep])), shape=dense.shape)


def _top_k_sparse_rows(matrix: Any, k: int) -> Any:
    matrix = matrix.tocsr()
    rows, cols, vals = [], [], []
    for row in range(matrix.shape[0]):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        if start == end:
            continue
        data, indices = matrix.data[start:end], matrix.indices[start:end]
        if end - start > k:
            keep = np.argpartition(-data, k - 1)[:k]
            data, indices = data[keep], indices[keep]
        rows.append(np.full(indices.size, row))
        cols.append(indices)
        vals.append(data)
    if not rows:
        return sp.csr_matrix(matrix.shape)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=matrix.shape)


def _strongest_anchor(similarity: Any, anchors: list[int], item: int) -> int | None:
    if not anchors or similarity.shape[0] == 0:
        return None
    column = np.asarray(similarity[anchors, item].todense()).ravel()
    best = int(np.argmax(column))
    return int(anchors[best]) if column[best] > 0 else None

