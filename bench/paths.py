"""Output files that never destroy inputs, never replace links or devices, and never appear half-written.

The discipline every maskbench writer follows (``docs/safety.md`` states it for users):

* :func:`output_file` — before any long work: resolve the final path (a symlink is followed, so
  the file it points to is written and the link stays a link); refuse, in one line
  (:class:`OutputPathError`), a path that is or resolves to one of the command's inputs (the same
  file by inode when both exist, else the same resolved path), a directory, or a special file
  (FIFO, device, socket: ``/dev/stdout`` is a link to one; ``-`` is how standard output is
  asked for); check that the folder can be written. Returns the resolved target.
* :func:`output_directory` — the same for a folder of outputs (``report --out``, ``prune --save``):
  it must not be a file, an input, inside an input folder or contain one; the files it already
  holds that the command would write are checked like :func:`output_file`.
* :func:`atomic_write_text` / :func:`atomic_write_bytes` — the bytes go to a temporary file in the
  target's folder, get the permissions a plain ``open(path, "w")`` would give (``0666 & ~umask``),
  and replace the (resolved) target in one ``os.replace``: a reader sees the old file or the new
  one, never a prefix; a symlink keeps pointing where it pointed.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from bench.errors import InstanceFileError, OutputPathError

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
"""Files SQLite keeps next to a database; overwriting them corrupts it just as surely."""

STDOUT = "-"
"""The output path that means standard output (where a command offers it)."""


def _same_path(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def refuse_overwrite(output: str | Path, *inputs: str | Path) -> None:
    """Raise :class:`OutputPathError` if ``output`` is any of ``inputs``."""
    out = Path(output)
    for item in inputs:
        if _same_path(out, Path(item)):
            raise OutputPathError(f"{output}: refusing to overwrite the input {item}; choose another output path")


def store_files(store_path: str | Path) -> list[Path]:
    """A SQLite store and its side files: every path an output must not name."""
    path = Path(store_path)
    return [path] + [path.with_name(path.name + suffix) for suffix in SQLITE_SIDE_FILES]


def file_mode() -> int:
    """Permissions of a newly created plain file under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _kind(mode: int) -> str | None:
    """Words for a special file type, None for a regular file or a directory."""
    for test, word in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return word
    return None


SYSTEM_TREES = ("/dev/", "/proc/")
"""Where a path (or a link on the way) must not lead: ``/dev/stdout`` → ``/proc/self/fd/1`` resolves to
whatever standard output is (with ``> file`` that file, which an atomic replace would swap away)."""


def _system_hop(given: Path) -> str | None:
    """The first path under :data:`SYSTEM_TREES` on ``given``'s chain of links, or None."""
    hop = Path(os.path.abspath(given))
    for _ in range(40):
        if any(str(hop).startswith(tree) or str(hop) == tree.rstrip("/") for tree in SYSTEM_TREES):
            return str(hop)
        if not hop.is_symlink():
            return None
        hop = Path(os.path.abspath(hop.parent / os.readlink(hop)))
    return None


def final_target(path: str | Path) -> Path:
    """The regular file ``path`` stands for: symlinks followed; one-line refusals of a directory or a
    special file, or a path that is or leads through ``/dev`` or ``/proc`` (the writers replace the
    resolved target, so a link is never replaced)."""
    given = Path(path)
    system = _system_hop(given)
    if system is not None:
        via = f" (via {system})" if system != str(Path(os.path.abspath(given))) else ""
        raise OutputPathError(f"{given}: is a device or a process's stream{via}; maskbench writes only regular "
                              f"files (use '{STDOUT}' for standard output where the option allows it)")
    target = given.resolve()
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise OutputPathError(f"{given}: cannot write here ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise OutputPathError(f"{given}: is a directory; give a file name")
    kind = _kind(mode)
    if kind:
        via = f" (via the link to {target})" if target != given.absolute() else ""
        raise OutputPathError(f"{given}: is {kind}{via}; maskbench writes only regular files "
                              f"(use '{STDOUT}' for standard output where the option allows it)")
    return target


def check_writable(folder: str | Path, what: str | Path) -> None:
    """One-line :class:`OutputPathError` unless a file can be created in ``folder`` (or, when it does not
    exist yet, in its nearest existing ancestor): tried for real, so root, read-only mounts and ACLs
    all answer truthfully. Nothing is left behind."""
    probe = Path(folder)
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise OutputPathError(f"{what}: cannot write here ({probe} is not a directory)")
    try:
        with tempfile.TemporaryFile(prefix=".maskbench-probe.", dir=probe):
            pass
    except OSError as exc:
        raise OutputPathError(f"{what}: cannot write here ({exc.strerror or exc})") from None


def output_file(path: str | Path, *inputs: str | Path) -> Path:
    """The checked, resolved target for an output file (see module docstring); call before long work."""
    target = final_target(path)
    refuse_overwrite(path, *inputs)
    refuse_overwrite(target, *inputs)
    check_writable(target.parent, path)
    return target


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def output_directory(path: str | Path, *inputs: str | Path,
                     writes: Callable[[str], bool] = lambda name: True) -> Path:
    """The checked, resolved folder for a command's output files.

    Refused: a path that is not a folder; a folder that is an input or lies inside an input folder
    (``prune --save`` onto the model directory); an existing entry named like a file
    the command writes (``writes(name)``) that is, or links to, an input, a folder or a special
    file (``report --out`` where ``report.md`` is the store); a folder that cannot be written."""
    given = Path(path)
    folder = given.resolve()
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{given}: is a file, not a directory; give a folder for the output files")
    resolved_inputs = [Path(item).resolve() for item in inputs]
    for item, resolved in zip(inputs, resolved_inputs):
        if _inside(folder, resolved):
            raise OutputPathError(f"{given}: refusing to write into the input {item}; choose another folder")
    if folder.is_dir():
        for entry in sorted(folder.iterdir()):
            if not writes(entry.name):
                continue
            if entry.resolve() in resolved_inputs or any(
                    entry.exists() and Path(i).exists() and os.path.samefile(entry, i) for i in inputs):
                raise OutputPathError(f"{entry}: is the input {entry.resolve()}; refusing to overwrite it, "
                                      "choose another folder")
            final_target(entry)
    check_writable(folder, given)
    return folder


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to (the resolved target of) ``path`` atomically with the usual permissions;
    :class:`OutputPathError` (one line) for a directory, a special file or an unwritable folder."""
    target = final_target(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputPathError(f"{path}: cannot write here ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, file_mode())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8 (newlines as given)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_figure(fig, path: str | Path, **savefig_kwargs) -> Path:
    """``fig.savefig`` into memory, then :func:`atomic_write_bytes` (format from the suffix)."""
    import io

    buffer = io.BytesIO()
    fmt = Path(path).suffix.lstrip(".") or None
    fig.savefig(buffer, format=fmt, **savefig_kwargs)
    return atomic_write_bytes(path, buffer.getvalue())


def full_layer_files(names: Iterable) -> list[Path]:
    """The full-layer instance files among ``names`` (``maskbench extract`` output; ``*.crop*`` files
    are skipped). Raises :class:`InstanceFileError` when one is missing or none is left."""
    paths = [Path(x) for x in names if ".crop" not in Path(x).name]
    missing = [str(x) for x in paths if not x.is_file()]
    if missing:
        raise InstanceFileError(f"no such instance file: {', '.join(missing)}")
    if not paths:
        raise InstanceFileError("no full-layer instance files given (run 'maskbench extract' first)")
    return paths
