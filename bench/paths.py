"""Output files that never destroy inputs and never appear half-written.

* :func:`refuse_overwrite` — an output path that names one of the inputs (the same file, by
  inode when both exist, else by resolved path) is refused with :class:`OutputPathError`
  before anything is written: ``export --store s.sqlite --csv s.sqlite`` would otherwise
  replace every stored run with a CSV, ``solve INST --out INST`` the instance.
* :func:`atomic_write_text` — the text goes to a temporary file in the target's folder,
  gets the permissions a plain ``open(path, "w")`` would give (``0666 & ~umask``, 0644 under
  the usual umask; ``mkstemp`` alone makes 0600), and replaces the target in one
  ``os.replace``: a reader sees the old file or the new one, never a prefix.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench.errors import InstanceFileError, OutputPathError

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
"""Files SQLite keeps next to a database; overwriting them corrupts it just as surely."""


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


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with the usual file permissions (see module docstring);
    :class:`OutputPathError` (one line) when the folder cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{path}: is a directory; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputPathError(f"{path}: cannot write here ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def full_layer_files(names) -> list[Path]:
    """The full-layer instance files among ``names`` (``maskbench extract`` output; ``*.crop*`` files
    are skipped). Raises :class:`InstanceFileError` when one is missing or none is left."""
    paths = [Path(x) for x in names if ".crop" not in Path(x).name]
    missing = [str(x) for x in paths if not x.is_file()]
    if missing:
        raise InstanceFileError(f"no such instance file: {', '.join(missing)}")
    if not paths:
        raise InstanceFileError("no full-layer instance files given (run 'maskbench extract' first)")
    return paths
