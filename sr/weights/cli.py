"""``python -m sr.weights list | where NAME | verify [NAME...] | fetch NAME...``

- ``list``: every registry entry with file, size, sha256 (when known), source and licence, and whether
  it is on disk.
- ``where NAME``: the path the file is expected at (exit 1 when it is not there).
- ``verify [--full] [NAME...]``: check the files on disk (size, sha256): ok / unverified / missing / mismatch;
  exit 1 when any named entry (or, without names, any present file) is missing or mismatched. The sha256 is
  memoised beside each file keyed by inode, size and times; ``--full`` hashes every file's bytes again.
- ``convert SOURCE [--sha256 HEX] [--out PATH]``: turn a pickled or TorchScript checkpoint that you trust into
  a tensors-only safetensors file, the only form the project reads for such files. SOURCE is a registry name
  (its recorded sha256 is the trusted one; the output is the entry made from it, e.g. ``clip_rn50`` ->
  ``clip_rn50_state``) or a file path with ``--sha256`` stating the hash you trust. The bytes are hashed
  first and nothing is unpickled unless the hash matches.
- ``fetch NAME...``: download over HTTP(S) into the weights directory (temporary file, sha256 and size
  checked when recorded, atomic rename). Google Drive sources print the manual steps, or use ``gdown``
  when it is installed. Offline, it says so in one line and exits 1.

``--weights-dir`` overrides ``$IRSR_WEIGHTS_DIR`` / the default directory.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from sr import cli
from sr import weights as W
from sr.atomic import atomic_path
from sr.cli import cli_entry
from sr.errors import UserError
from sr.ownership import add_overwrite_option, claim_file
from sr.vocab import OPT_WEIGHTS_DIR

_DRIVE = re.compile(r"drive\.google\.com/.*?(?:folders/|id=|file/d/)([\w-]+)")
_CHUNK = 1 << 20


class FetchError(UserError):
    """A weights download failed (offline, HTTP error, checksum mismatch)."""


def _human(size: int | None) -> str:
    if size is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return "?"


def cmd_list(args) -> int:
    reg = W.registry()
    root = W.weights_dir(args.weights_dir)
    print(f"weights directory: {root}")
    for name, ent in sorted(reg.items()):
        on_disk = W.path_of(name, args.weights_dir).is_file()  # demo/ files live in the repository
        print(f"{'*' if on_disk else ' '} {name}")
        print(f"    file:    {ent.file}" + (f"  ({_human(ent.size)})" if ent.size else ""))
        print(f"    source:  {ent.source}")
        if ent.checked:
            print(f"    checked: {ent.checked}")
        if ent.sha256:
            print(f"    sha256:  {ent.sha256}")
        if ent.licence:
            print(f"    licence: {ent.licence}")
        if ent.used_by:
            print(f"    used by: {', '.join(ent.used_by)}")
    print("(* = present in the weights directory)")
    return 0


def cmd_where(args) -> int:
    path = W.path_of(args.name, args.weights_dir)
    print(path)
    return 0 if path.is_file() else 1


def cmd_verify(args) -> int:
    names = args.names or sorted(W.registry())
    explicit = bool(args.names)
    bad = 0
    for name in names:
        status, detail = W.verify(name, args.weights_dir, full=args.full)
        if status == "missing" and not explicit:
            print(f"missing     {name}: {detail}")
            continue
        print(f"{status:<11} {name}: {detail}")
        bad += status in ("missing", "mismatch")
    return 1 if bad else 0


def _drive_steps(name: str, ent: W.WeightsEntry, dest: Path, drive_id: str) -> str:
    return (
        f"{name}: the source is Google Drive ({ent.url}), which cannot be downloaded without a browser or gdown.\n"
        f"  1. open {ent.url} and download {Path(ent.file).name}"
        + (f" (Drive id {drive_id})" if drive_id else "")
        + "\n"
        f"  2. place it at {dest}\n"
        f"  3. check it: python -m sr.weights verify {name}\n"
        f"  (or `pip install gdown` and run this command again)"
    )


def _download(url: str, dest: Path, ent: W.WeightsEntry, timeout: float) -> None:
    digest = hashlib.sha256()
    size = 0
    with atomic_path(dest) as tmp:
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "irsr-weights/1"})
            with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as out:
                while block := response.read(_CHUNK):
                    out.write(block)
                    digest.update(block)
                    size += len(block)
        except urllib.error.HTTPError as exc:
            raise FetchError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FetchError(
                f"cannot download {url}: the machine looks offline or the host is unreachable "
                f"({reason}). Download it elsewhere and place it at {dest}."
            ) from None
        if ent.size is not None and size != ent.size:
            raise FetchError(f"download of {url} has {size} bytes, expected {ent.size}; nothing was written")
        if ent.sha256 is not None and digest.hexdigest() != ent.sha256:
            raise FetchError(
                f"download of {url} has sha256 {digest.hexdigest()}, expected {ent.sha256}; nothing was written"
            )


def fetch(name: str, weights_dir=None, *, force: bool = False, timeout: float = 60.0) -> Path:
    """Download entry ``name`` into the weights directory; returns its path. Raises FetchError."""
    ent = W.entry(name)
    dest = W.path_of(name, weights_dir)
    if dest.is_file() and not force:
        status, detail = W.verify(name, weights_dir)
        if status in ("ok", "unverified"):
            return dest
        raise FetchError(f"{name}: {detail}; re-run with --force to replace it")
    if not ent.url:
        raise FetchError(
            f"{name}: no public source is known ({ent.notes or 'see configs/weights.yaml'}); place the file at {dest}"
        )
    drive = _DRIVE.search(ent.url)
    if drive or "drive.google.com" in ent.url:
        drive_id = drive.group(1) if drive else ""
        if importlib.util.find_spec("gdown") is None or "folders/" in ent.url:
            raise FetchError(_drive_steps(name, ent, dest, drive_id))
        import gdown  # optional

        with atomic_path(dest) as tmp:
            if gdown.download(id=drive_id, output=str(tmp), quiet=False) is None:
                raise FetchError(_drive_steps(name, ent, dest, drive_id))
            if ent.sha256 is not None and W.sha256_of(tmp) != ent.sha256:
                raise FetchError(f"{name}: the Drive download's sha256 differs from the registry; nothing was written")
        return dest
    if not ent.url.startswith(("http://", "https://")):
        raise FetchError(f"{name}: cannot fetch {ent.url!r} (not an http(s) URL); place the file at {dest}")
    _download(ent.url, dest, ent, timeout)
    return dest


def cmd_fetch(args) -> int:
    failed = 0
    for name in args.names:
        try:
            path = fetch(name, args.weights_dir, force=args.force, timeout=args.timeout)
        except FetchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        status, _ = W.verify(name, args.weights_dir)
        print(f"{name}: {path} ({status})")
    return 1 if failed else 0


def cmd_convert(args) -> int:
    from safetensors.torch import save_file

    from sr.checkpoint import extract_state_dict, load_trusted_pickle

    if args.source in W.registry():
        path = W.resolve(args.source, args.weights_dir)
        expected = args.sha256 or W.entry(args.source).sha256
        made = W.converted_entry(args.source)
        out = args.out or (W.path_of(made.name, args.weights_dir) if made else path.with_suffix(".safetensors"))
    else:
        path = Path(args.source).expanduser()
        if not path.is_file():
            raise UserError(f"{args.source!r} is neither a registry entry nor a file")
        expected, out = args.sha256, args.out or path.with_suffix(".safetensors")
    # an explicit --out that is a user's file is refused, not replaced; the default target is the registry's converted
    # file in the weights directory (or beside the source): the registry's sha256 and verify govern it
    owned = claim_file(args.out, "converted weights", overwrite=args.overwrite) if args.out else None
    obj = load_trusted_pickle(path, expected)
    state = extract_state_dict(obj.state_dict() if hasattr(obj, "state_dict") else obj)
    with owned.writing(out) if owned else atomic_path(out) as tmp:
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in state.items()},
            str(tmp),
            metadata={"converted_from": path.name, "source_sha256": expected.lower()},
        )
    print(f"{path} (sha256 {expected.lower()}) -> {out} ({len(state)} tensors)")
    return 0


def build_parser() -> cli.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m sr.weights", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        OPT_WEIGHTS_DIR,
        type=cli.dir_path,
        default=None,
        help=f"weights directory (default: $IRSR_WEIGHTS_DIR or {W.DEFAULT_WEIGHTS_DIR})",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list every registry entry").set_defaults(func=cmd_list)
    where = sub.add_parser("where", help="print where an entry's file is expected")
    where.add_argument("name")
    where.set_defaults(func=cmd_where)
    verify = sub.add_parser("verify", help="check files on disk against the registry")
    verify.add_argument("names", nargs="*")
    verify.add_argument("--full", action="store_true", help="hash every file's bytes (ignore the sha256 memo)")
    verify.set_defaults(func=cmd_verify)
    convert = sub.add_parser("convert", help="turn a trusted pickle / TorchScript file into safetensors")
    convert.add_argument("source", help="a registry name or a file path")
    convert.add_argument("--sha256", help="the sha256 you trust (default: the registry's)")
    convert.add_argument("--out", type=cli.out_file, help="output .safetensors (default: see above)")
    add_overwrite_option(convert)
    convert.set_defaults(func=cmd_convert)
    fetch_p = sub.add_parser("fetch", help="download entries (needs network access)")
    fetch_p.add_argument("names", nargs="+")
    fetch_p.add_argument("--force", action="store_true", help="replace a file that fails verification")
    fetch_p.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds")
    fetch_p.set_defaults(func=cmd_fetch)
    return parser


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
