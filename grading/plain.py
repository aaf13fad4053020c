"""Values as plain data: a JSON tree plus numpy arrays, loaded without executing anything.

The sandboxed record step (:mod:`grading.record`) writes what student functions returned with
:func:`encode`; the judge reads it back with :func:`decode`, which builds only tensors, arrays,
numbers, strings, lists, tuples and dicts, checks every node, and never unpickles. Strings that
the judge does not already know (from the probes) come back as ``"<text>"``, so no text written
by student code reaches a grade or its reason.

Imported in the sandbox as a plain module (``import plain``): standard library, numpy and
torch only.
"""

from __future__ import annotations

import json

import numpy as np
import torch

MAX_ELEMENTS = 4_000_000  # per array
MAX_ITEMS = 1_000  # per list, tuple or dict
MAX_DEPTH = 8
MAX_TEXT = 200
OTHER_TEXT = "<text>"


class BadData(ValueError):
    """The recorded data is not of the expected form (a broken or forged results file)."""


class Unsupported:
    """A value the record step could not write as data (a student object of some other type)."""

    def __repr__(self) -> str:
        return "<unsupported value>"


class Arrays:
    """The arrays of one results file, named a0, a1, ..."""

    def __init__(self, data: dict | None = None) -> None:
        self.data = dict(data or {})

    def add(self, array: np.ndarray) -> str:
        if array.dtype == object or array.size > MAX_ELEMENTS:
            raise BadData("array too large or of object dtype")
        key = f"a{len(self.data)}"
        self.data[key] = np.ascontiguousarray(array)
        return key

    def get(self, key) -> np.ndarray:
        if not isinstance(key, str) or key not in self.data:
            raise BadData(f"no array {key!r}")
        return self.data[key]


def _tensor_array(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    if t.is_sparse or t.is_quantized:
        raise TypeError
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()
    return t.resolve_conj().resolve_neg().numpy()


def encode(value, arrays: Arrays, depth: int = 0) -> dict:
    """A JSON-able node for ``value`` (its arrays go into ``arrays``)."""
    if depth > MAX_DEPTH:
        return {"t": "unsupported"}
    if value is None:
        return {"t": "none"}
    if isinstance(value, bool):
        return {"t": "bool", "v": value}
    if isinstance(value, int) and type(value) is int:
        return {"t": "int", "v": value} if abs(value) < 2**62 else {"t": "float", "v": float(value)}
    if isinstance(value, float) and type(value) is float:
        return {"t": "float", "v": repr(value)}
    if isinstance(value, str) and type(value) is str:
        return {"t": "str", "v": value[:MAX_TEXT]}
    try:
        if isinstance(value, torch.Tensor):
            return {"t": "tensor", "a": arrays.add(_tensor_array(value)), "dtype": str(value.dtype),
                    "requires_grad": bool(value.requires_grad), "grad_fn": value.grad_fn is not None}
        if isinstance(value, np.ndarray):
            return {"t": "ndarray", "a": arrays.add(np.array(value))}
        if isinstance(value, np.generic):
            return {"t": "npscalar", "a": arrays.add(np.array(value))}
    except (TypeError, ValueError, RuntimeError, BadData):
        return {"t": "unsupported"}
    if type(value) in (list, tuple) and len(value) <= MAX_ITEMS:
        return {"t": type(value).__name__, "items": [encode(v, arrays, depth + 1) for v in value]}
    if type(value) is dict and len(value) <= MAX_ITEMS and all(type(k) is str for k in value):
        return {"t": "dict", "items": {k[:MAX_TEXT]: encode(v, arrays, depth + 1) for k, v in value.items()}}
    return {"t": "unsupported"}


def _torch_dtype(name) -> torch.dtype:
    if not isinstance(name, str) or not name.startswith("torch."):
        raise BadData("bad dtype")
    dtype = getattr(torch, name[len("torch."):], None)
    if not isinstance(dtype, torch.dtype):
        raise BadData("bad dtype")
    return dtype


def decode(node, arrays: Arrays, strings: frozenset = frozenset(), depth: int = 0):
    """The value of a node written by :func:`encode`; raises :class:`BadData` on anything else.

    Tensors come back detached; ``requires_grad`` and ``grad_fn`` are reported in the node and
    applied by the judge's replay (:mod:`grading.judge`)."""
    if depth > MAX_DEPTH + 1 or not isinstance(node, dict):
        raise BadData("bad node")
    kind = node.get("t")
    if kind == "none":
        return None
    if kind == "bool" and isinstance(node.get("v"), bool):
        return node["v"]
    if kind == "int" and type(node.get("v")) is int:
        return node["v"]
    if kind == "float" and isinstance(node.get("v"), str):
        try:
            return float(node["v"])
        except ValueError as err:
            raise BadData("bad float") from err
    if kind == "str" and isinstance(node.get("v"), str):
        return node["v"] if node["v"] in strings else OTHER_TEXT
    if kind == "tensor":
        array = arrays.get(node.get("a"))
        dtype = _torch_dtype(node.get("dtype"))
        try:
            return torch.from_numpy(np.array(array)).to(dtype)
        except (TypeError, RuntimeError) as err:
            raise BadData("bad tensor") from err
    if kind == "ndarray":
        return np.array(arrays.get(node.get("a")))
    if kind == "npscalar":
        array = arrays.get(node.get("a"))
        if array.ndim != 0:
            raise BadData("bad scalar")
        return array[()]
    if kind in ("list", "tuple") and isinstance(node.get("items"), list):
        items = [decode(v, arrays, strings, depth + 1) for v in node["items"][:MAX_ITEMS]]
        return items if kind == "list" else tuple(items)
    if kind == "dict" and isinstance(node.get("items"), dict):
        return {(k if k in strings else OTHER_TEXT): decode(v, arrays, strings, depth + 1)
                for k, v in list(node["items"].items())[:MAX_ITEMS]}
    if kind == "unsupported":
        return Unsupported()
    raise BadData(f"unknown node type {str(kind)[:20]!r}")


def dump(tree, arrays: Arrays, folder) -> None:
    """Write ``results.json`` and ``arrays.npz`` into ``folder`` (each replaced whole)."""
    import os

    tmp = os.path.join(folder, "arrays.tmp.npz")
    np.savez(tmp, **arrays.data)
    os.replace(tmp, os.path.join(folder, "arrays.npz"))
    tmp = os.path.join(folder, "results.tmp.json")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(tree, f, allow_nan=True)
    os.replace(tmp, os.path.join(folder, "results.json"))


def load(folder, max_bytes: int = 256 * 2**20):
    """Read what :func:`dump` wrote: (tree, arrays). Never unpickles; bounds the sizes."""
    import os
    import zipfile

    paths = [os.path.join(folder, "results.json"), os.path.join(folder, "arrays.npz")]
    for path in paths:
        if not os.path.isfile(path) or os.path.islink(path):
            raise BadData("no results")
        if os.path.getsize(path) > max_bytes:
            raise BadData("results too large")
    with zipfile.ZipFile(paths[1]) as z:  # a zip bomb would be large only once unpacked
        if sum(i.file_size for i in z.infolist()) > max_bytes:
            raise BadData("results too large")
    try:
        with open(paths[0], encoding="utf-8") as f:
            tree = json.load(f)
        with np.load(paths[1], allow_pickle=False) as npz:
            arrays = Arrays({k: npz[k] for k in npz.files})
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, RecursionError, MemoryError) as err:
        raise BadData("unreadable results") from err
    return tree, arrays
