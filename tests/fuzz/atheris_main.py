"""One atheris fuzzer process: ``python -m tests.fuzz.atheris_main NAME [libFuzzer flags] [corpus dirs]``.

tinyopt is imported inside ``atheris.instrument_imports()`` so its bytecode reports coverage; anything
but ``TinyoptError`` escapes and libFuzzer records it as a crash (libFuzzer's
``-timeout`` is a hard stop; inputs slower than 2 s are saved to ``build/fuzz/slow`` and re-timed alone).
"""

from __future__ import annotations

import hashlib
import sys
import time
import warnings

import atheris

with atheris.instrument_imports(include=["tinyopt"]):  # every loader the harnesses reach, lazily or not
    import tinyopt._yaml
    import tinyopt.cli.infer
    import tinyopt.cli.validate
    import tinyopt.compress.checkpoint
    import tinyopt.compress.container
    import tinyopt.compress.recipe
    import tinyopt.convert.convert
    import tinyopt.data.csv
    import tinyopt.data.idx
    import tinyopt.data.wav
    import tinyopt.export.c
    import tinyopt.graph.onnx_import
    import tinyopt.graph.spec
    import tinyopt.graph.tflite_import
    import tinyopt.pipeline.config  # noqa: F401
    from tinyopt.errors import TinyoptError

from tests.fuzz.harness import BUILD, KNOWN_BUGS, SLOW_S, target


def main() -> None:
    name = sys.argv.pop(1)
    fn = target(name)
    known = KNOWN_BUGS.get(name, ())
    slow_dir = BUILD / "slow"
    warnings.simplefilter("ignore")

    def one(data: bytes) -> None:
        t0 = time.perf_counter()
        try:
            fn(data)
        except TinyoptError:
            pass
        except known:  # a bug in a file we may not edit; counted by run_all, listed in the report
            (BUILD / "known").mkdir(parents=True, exist_ok=True)
            (BUILD / "known" / f"{name}-{hashlib.sha1(data).hexdigest()[:16]}").write_bytes(data)
        if time.perf_counter() - t0 > SLOW_S:  # re-timed alone by run_all: the machine may be loaded
            slow_dir.mkdir(parents=True, exist_ok=True)
            (slow_dir / f"{name}-{hashlib.sha1(data).hexdigest()[:16]}").write_bytes(data)

    atheris.Setup(sys.argv, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
