"""The ``facebrain`` command.

::

    facebrain run [CONFIG] [--out DIR] [--from STAGE] [--scheduler ADDRESS] [--set KEY=VALUE ...]
    facebrain validate CONFIG [--set KEY=VALUE ...]
    facebrain show-config [CONFIG] [--set KEY=VALUE ...]
    facebrain list-models [PATTERN]

Without CONFIG, ``run`` uses the built-in demo (``configs/demo.yaml`` shipped in
the package). Exit status: 0 on success, 2 for an invalid config or command
line, 1 when a stage fails.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from . import __version__
    from .pipeline import STAGE_NAMES

    p = argparse.ArgumentParser(prog="facebrain", description=(
        "Face networks, layer by layer, compared with face-selective brain regions."))
    p.add_argument("--version", action="version", version=f"facebrain {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run the pipeline (reusing finished stages)")
    r.add_argument("config", nargs="?", help="YAML config (default: the built-in demo)")
    r.add_argument("--out", help="run directory (default: results/<config name>)")
    r.add_argument("--from", dest="from_stage", choices=STAGE_NAMES, metavar="STAGE",
                   help=f"recompute from this stage on ({', '.join(STAGE_NAMES)})")
    r.add_argument("--scheduler", help="dask scheduler address (tcp://host:8786) or local:N")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set models[0].train.epochs=1")

    v = sub.add_parser("validate", help="check a config without running it")
    v.add_argument("config")
    v.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    s = sub.add_parser("show-config", help="print the validated config with every default")
    s.add_argument("config", nargs="?")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    lm = sub.add_parser("list-models", help="list registered network architectures")
    lm.add_argument("pattern", nargs="?", help="shell-style filter, e.g. 'resnet*'")
    return p


def _skip_exit_collection() -> None:
    """Let the console script exit without garbage-collecting what it imported.

    At exit, after the non-daemon threads are joined and the atexit handlers have run,
    CPython collects cyclic garbage while clearing the modules: for torch (and
    ``torch._dynamo``, matplotlib, xarray, dask) that took 1.4-1.8 s of a 7-8 s cached
    ``facebrain run`` (measured: 1.7-1.8 s -> 0.3-0.4 s). :func:`gc.freeze`, registered
    here so that it runs among the atexit handlers, moves every tracked object to the
    permanent generation, which that last collection skips; the process's memory goes
    back to the OS when it ends. Objects freed by reference counting, open files
    included, are still finalised as before; only ``__del__`` of objects left in cycles
    at exit is not run, which Python does not promise anyway. Every file a run writes
    is closed when its stage ends. Only the console script does this: a caller of
    :func:`main` (a test, a notebook) keeps its collector.
    """
    import atexit
    import gc

    atexit.register(gc.freeze)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``facebrain`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "run":
        # OpenMP threads sleep at barriers (OMP_WAIT_POLICY=PASSIVE) only when the run's
        # threads would not have idle cores to themselves; otherwise they spin first, as
        # libgomp does by default (see pipeline._openmp). Same results either way. libgomp reads
        # the variable when torch loads, hence before anything imports torch; a value
        # already in the environment is kept.
        from .pipeline._openmp import set_wait_policy

        set_wait_policy(args.config, args.overrides)
    if argv is None:  # the console script (a caller passing argv keeps its own malloc)
        from ._allocator import keep_freed_memory

        keep_freed_memory()  # freed batches stay in the process: no page faults per batch
        _skip_exit_collection()
    from .errors import ConfigError, FacebrainError
    from .pipeline import load_config, run

    try:
        if args.command == "list-models":
            from .models import list_models

            for name in list_models(args.pattern):
                print(name)
            return 0
        if args.command == "validate":
            cfg = load_config(args.config, overrides=args.overrides)
            print(f"{args.config}: valid ({len(cfg.stimuli)} stimulus sets, "
                  f"{len(cfg.models)} models, {len(cfg.transfer.directions)} transfer directions, "
                  f"brain: {cfg.brain.source})")
            return 0
        if args.command == "show-config":
            print(load_config(args.config, overrides=args.overrides).to_yaml(), end="")
            return 0
        res = run(args.config, out=args.out, from_stage=args.from_stage,
                  scheduler=args.scheduler, overrides=args.overrides)
        # only what this run wrote (an older report in the folder was removed, not reused)
        for path in res.written:
            if path.name in ("report.html", "results.nc"):
                print(f"{'report' if path.suffix == '.html' else 'results'}: {path}")
        return 0
    except ConfigError as err:
        print(f"facebrain: invalid config: {err}", file=sys.stderr)
        return 2
    except FacebrainError as err:
        print(f"facebrain: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("facebrain: interrupted; finished stages are kept, rerun to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
