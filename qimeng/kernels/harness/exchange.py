"""Outputs handed from the candidate's worker to the judge through files in shared memory.

The candidate's worker writes each output tensor, row-major, into its own file (``<prefix>-<leaf>.bin``)
in a directory the harness made for the evaluation (under /dev/shm where it exists); the judge maps
the file read-only and compares it chunk by chunk, so no output travels through a pipe and none is
copied whole. Only the candidate's side writes there: the judge never puts a reference output in a file.
A leaf that is not a tensor travels as a JSON value (its ``repr`` when it has none).
"""

from __future__ import annotations

import json
import mmap
import os
import stat
import warnings
from pathlib import Path
from typing import Any

import torch

from qimeng.kernels.harness.checks import leaves


def dtype_named(name: str) -> torch.dtype | None:
    """``"float32"`` -> torch.float32; None for anything that is not a torch dtype."""
    value = getattr(torch, name, None) if name.isidentifier() else None
    return value if isinstance(value, torch.dtype) else None


def _scalar(value: Any) -> dict[str, Any]:
    try:
        json.dumps(value)
        return {"type": type(value).__name__, "value": value}
    except (TypeError, ValueError):
        return {"type": type(value).__name__, "repr": repr(value)}


class Writer:
    """The candidate's side: writes outputs into the exchange directory, reusing each file's pages."""

    def __init__(self, directory: Path | None) -> None:
        """``directory``: the exchange the judge reads; None keeps the buffers private (anonymous shared
        memory, the same kind of pages: the judge's own copies cost what the candidate's worker's do)."""
        self.directory = directory
        self._maps: dict[str, tuple[int, mmap.mmap, torch.Tensor]] = {}

    def _buffer(self, name: str, nbytes: int, pin: bool) -> torch.Tensor:
        held = self._maps.get(name)
        if held is not None and held[0] == nbytes:
            return held[2]
        if held is not None:
            del self._maps[name]
        if self.directory is None:
            mapped = mmap.mmap(-1, nbytes)
        else:
            fd = os.open(self.directory / name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                os.ftruncate(fd, nbytes)
                mapped = mmap.mmap(fd, nbytes)
            finally:
                os.close(fd)
        buffer = torch.frombuffer(mapped, dtype=torch.uint8)
        if pin:  # page-locked: device-to-host copies at full speed
            try:
                torch.cuda.cudart().cudaHostRegister(buffer.data_ptr(), nbytes, 0)
            except Exception:  # noqa: BLE001  (pageable memory works too, only slower)
                pass
        self._maps[name] = (nbytes, mapped, buffer)
        return buffer

    def write(self, value: Any, prefix: str) -> list[dict[str, Any]]:
        """Write every leaf of ``value``; returns what the judge needs to find and read them."""
        described = []
        for i, (path, leaf) in enumerate(leaves(value)):
            if not isinstance(leaf, torch.Tensor):
                described.append({"path": path, "tensor": False, **_scalar(leaf)})
                continue
            leaf = leaf.detach()
            nbytes = leaf.numel() * leaf.element_size()
            meta = {"path": path, "tensor": True, "dtype": str(leaf.dtype).removeprefix("torch."),
                    "shape": list(leaf.shape), "file": f"{prefix}-{i}.bin"}
            if nbytes:
                target = self._buffer(meta["file"], nbytes, leaf.is_cuda).view(leaf.dtype).view(leaf.shape)
                target.copy_(leaf)
            described.append(meta)
        if any(leaf.is_cuda for _, leaf in leaves(value) if isinstance(leaf, torch.Tensor)):
            torch.cuda.synchronize()
        return described


class Reader:
    """The judge's side: maps the candidate's files read-only (never following links)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def read(self, meta: dict[str, Any]) -> Any:
        """The leaf ``meta`` describes: a read-only tensor over the file, a value, or a str saying why not."""
        if not isinstance(meta, dict):
            return "the candidate described its output wrongly"
        if not meta.get("tensor"):
            return _Value(meta.get("type"), meta.get("value"), meta.get("repr"))
        dtype = dtype_named(str(meta.get("dtype")))
        shape = meta.get("shape")
        name = str(meta.get("file", ""))
        if dtype is None or not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            return "the candidate described its output wrongly"
        if "/" in name or not name.endswith(".bin"):
            return "the candidate named an output file outside the exchange directory"
        numel = 1
        for d in shape:
            numel *= d
        nbytes = numel * torch.empty((), dtype=dtype).element_size()
        if nbytes == 0:
            return torch.empty(shape, dtype=dtype)
        try:
            fd = os.open(self.directory / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a FIFO: no wait
        except OSError as exc:
            return f"the candidate's output file {name} cannot be opened ({exc.strerror})"
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size != nbytes:
                return f"the candidate's output file {name} holds {info.st_size} bytes, not {nbytes}"
            mapped = mmap.mmap(fd, nbytes, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a read-only buffer: torch warns that it is not writable
            flat = torch.frombuffer(mapped, dtype=torch.uint8)
        return flat.view(dtype).view(shape)


class _Value:
    """A leaf that is not a tensor, as the candidate's worker reported it."""

    def __init__(self, type_name: Any, value: Any, text: Any) -> None:
        self.type_name, self.value, self.text = type_name, value, text

    def matches(self, reference: Any) -> bool:
        if self.type_name != type(reference).__name__:
            return False
        return self.text == repr(reference) if self.text is not None else self.value == _scalar(reference).get("value")

    def __repr__(self) -> str:
        return self.text if self.text is not None else repr(self.value)
