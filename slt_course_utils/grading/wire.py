"""What crosses between the grader and a student process, and how.

Grader → student: pickles (the grader is trusted; the student side may unpickle them). Functions the
checks build on the fly (lambdas, closures) are pickled *by value* (their code object), so that
autograd through them works on the student side.

Student → grader: never a pickle. Values are encoded as JSON trees of plain data — numbers, strings,
lists, tuples, dicts, NumPy arrays and torch tensors of numeric dtypes, fractions — and decoded into
fresh objects of those types, so nothing a student returns can run code in the grader or compare
equal to everything. Frames are length-prefixed and capped in size.
"""

from __future__ import annotations

import base64
import io
import json
import marshal
import os
import pickle
import struct
import types
from fractions import Fraction
from typing import Any

MAX_FRAME = 256 * 1024 * 1024  # a reply larger than this is refused (bytes of JSON)
MAX_DEPTH = 64
_HEADER = struct.Struct(">Q")


class WireError(Exception):
    """A frame or a value that the protocol does not allow."""


# ---- frames --------------------------------------------------------------------------------


def write_frame(fd: int, payload: bytes) -> None:
    """Write ``len(payload)`` (8 bytes, big-endian) then ``payload`` to the file descriptor."""
    data = _HEADER.pack(len(payload)) + payload
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_exactly(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the channel")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, limit: int = MAX_FRAME) -> bytes:
    (size,) = _HEADER.unpack(read_exactly(fd, _HEADER.size))
    if size > limit:
        raise WireError(f"a reply of {size} bytes is over the limit of {limit} bytes")
    return read_exactly(fd, size)


# ---- grader → student: pickles, functions by value -----------------------------------------


def _make_function(code: bytes, module: str, name: str, defaults: Any, closure: Any) -> types.FunctionType:
    import importlib
    import sys

    try:
        glob = importlib.import_module(module).__dict__ if module and module != "__main__" else sys.modules["__main__"].__dict__
    except ImportError:  # defined where the student side can't import (a test module): its globals are not needed
        glob = {"__builtins__": __builtins__, "__name__": module}
    cells = tuple(types.CellType(v) for v in closure) if closure is not None else None
    return types.FunctionType(marshal.loads(code), glob, name, defaults, cells)


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.FunctionType) and ("<lambda>" in obj.__qualname__ or "<locals>" in obj.__qualname__):
            closure = [c.cell_contents for c in obj.__closure__] if obj.__closure__ else None
            return _make_function, (marshal.dumps(obj.__code__), obj.__module__, obj.__name__, obj.__defaults__, closure)
        return NotImplemented


def dumps_request(obj: Any) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


# ---- student → grader: plain data only -----------------------------------------------------

_NUMERIC_KINDS = "biufc"


def encode(value: Any, depth: int = 0) -> Any:
    """A JSON-able tree for ``value``; raise WireError for anything that is not plain data."""
    import numpy as np

    if depth > MAX_DEPTH:
        raise WireError("the value is nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and type(value) is int:
        return {"int": str(value)}
    if type(value) is float:
        return {"float": repr(value)}
    if type(value) is complex:
        return {"complex": [repr(value.real), repr(value.imag)]}
    if type(value) is Fraction:
        return {"fraction": [str(value.numerator), str(value.denominator)]}
    if type(value) is bytes:
        return {"bytes": base64.b64encode(value).decode()}
    if type(value) is list:
        return [encode(v, depth + 1) for v in value]
    if isinstance(value, tuple) and type(value).__name__ != "Size":
        return {"tuple": [encode(v, depth + 1) for v in value]}
    if type(value) is dict:
        return {"dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        arr = np.asarray(value)
        if arr.dtype.kind not in _NUMERIC_KINDS:
            raise WireError(f"a NumPy value of dtype {arr.dtype}")
        tag = "ndarray" if isinstance(value, np.ndarray) else "npscalar"
        return {tag: [arr.dtype.str, list(arr.shape), base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode()]}
    torch = _torch()
    if torch is not None:
        if isinstance(value, torch.Size):
            return {"size": [int(v) for v in value]}
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu()
            if t.is_sparse or t.layout != torch.strided:
                t = t.to_dense()
            dtype = str(t.dtype).removeprefix("torch.")
            if t.dtype == torch.bfloat16:
                t = t.float()
            arr = t.contiguous().numpy()
            if arr.dtype.kind not in _NUMERIC_KINDS:
                raise WireError(f"a tensor of dtype {t.dtype}")
            return {"tensor": [dtype, arr.dtype.str, list(arr.shape), base64.b64encode(arr.tobytes()).decode()]}
    raise WireError(f"a value of type {type(value).__name__}")


def _torch():
    import sys

    return sys.modules.get("torch")


def dumps_reply(obj: dict) -> bytes:
    return json.dumps(obj, allow_nan=False).encode()


def loads_reply(data: bytes) -> dict:
    obj = json.loads(data.decode("utf-8"))
    if not isinstance(obj, dict):
        raise WireError("a reply that is not a JSON object")
    return obj


_DTYPES_OK = set("biufc")


def decode(tree: Any, depth: int = 0) -> Any:
    """Plain objects from an :func:`encode` tree sent by an untrusted process; WireError if malformed."""

    if depth > MAX_DEPTH:
        raise WireError("the value is nested too deeply")
    if tree is None or isinstance(tree, (bool, str)):
        return tree
    if isinstance(tree, list):
        return [decode(v, depth + 1) for v in tree]
    if not isinstance(tree, dict) or len(tree) != 1:
        raise WireError("a malformed value")
    ((tag, body),) = tree.items()
    try:
        if tag == "int":
            if len(body) > 4300:
                raise WireError("an integer with too many digits")
            return int(body)
        if tag == "float":
            return float(body)
        if tag == "complex":
            return complex(float(body[0]), float(body[1]))
        if tag == "fraction":
            return Fraction(int(body[0]), int(body[1]))
        if tag == "bytes":
            return base64.b64decode(body, validate=True)
        if tag == "tuple":
            return tuple(decode(v, depth + 1) for v in body)
        if tag == "dict":
            out = {}
            for k, v in body:
                key = decode(k, depth + 1)
                if isinstance(key, (list, dict)):
                    raise WireError("an unhashable dict key")
                out[key] = decode(v, depth + 1)
            return out
        if tag in ("ndarray", "npscalar"):
            arr = _array(body[0], body[1], body[2])
            return arr if tag == "ndarray" else arr.reshape(())[()]
        if tag == "size":
            import torch

            return torch.Size([int(v) for v in body])
        if tag == "tensor":
            import torch

            name, dtype, shape, data = body
            dt = getattr(torch, str(name), None)
            if not isinstance(dt, torch.dtype):
                raise WireError(f"an unknown tensor dtype {name!r}")
            return torch.from_numpy(_array(dtype, shape, data).copy()).to(dt)
    except WireError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, OverflowError, AttributeError) as err:
        raise WireError(f"a malformed {tag!r} value ({type(err).__name__})") from None
    raise WireError(f"an unknown value tag {tag!r}")


def _array(dtype: str, shape: list, data: str):
    import numpy as np

    dt = np.dtype(str(dtype))
    if dt.kind not in _DTYPES_OK or dt.hasobject:
        raise WireError(f"an array of dtype {dt}")
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise WireError("an array with a negative dimension")
    raw = base64.b64decode(data, validate=True)
    count = 1
    for s in shape:
        count *= s
    if count * dt.itemsize != len(raw):
        raise WireError("an array whose data does not match its shape")
    return np.frombuffer(raw, dtype=dt).reshape(shape).copy()
