"""Reading the user's calibration text strictly: the bytes must decode in the declared encoding.

Decoding with ``errors="replace"`` turned every byte of a Latin-1 or UTF-16 file into U+FFFD
silently, so the model was calibrated on replacement characters. Here a file must decode in
``encoding`` (UTF-8 unless ``--encoding`` says otherwise), else one line names the file, the byte
offset and the encoding to try.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from models.errors import CalibrationError

DEFAULT_ENCODING = "utf-8"


def check_encoding(encoding: str) -> str:
    """``encoding`` if Python knows it, else :class:`CalibrationError`."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise CalibrationError(f"unknown text encoding {encoding!r} (e.g. utf-8, latin-1, utf-16)") from None


def read_text(path: str | Path, encoding: str = DEFAULT_ENCODING) -> str:
    """The text of ``path`` decoded strictly in ``encoding`` (a UTF-8 byte-order mark is dropped)."""
    path = Path(path)
    codec = check_encoding(encoding)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CalibrationError(f"calibration text {str(path)!r}: cannot read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig" if codec == "utf-8" else codec)
    except UnicodeDecodeError as exc:
        raise CalibrationError(f"calibration text {str(path)!r} is not valid {codec} (byte {exc.start}: "
                               f"{exc.reason}); convert it to UTF-8 or give its encoding with --encoding") from None
