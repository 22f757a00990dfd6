"""Users' files compressed as their names say (``reviews.csv.gz``, ``corpus.txt.xz``), read and written as pandas
reads and writes a CSV by its name (``compression="infer"``), with the compressions Python reads without another
package. A file that does not decompress is refused in one line."""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
from pathlib import Path

from ..config import ConfigError

COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_COMPRESSORS = {".gz": lambda data: gzip.compress(data, mtime=0), ".bz2": bz2.compress, ".xz": lzma.compress}


def inner_suffix(path: str | Path) -> str:
    """The suffix under a compression's, lower-cased: ``reviews.CSV.gz`` -> ``.csv``, ``a.tsv`` -> ``.tsv``."""
    path = Path(path)
    if path.suffix.lower() in COMPRESSIONS:
        path = path.with_suffix("")
    return path.suffix.lower()


def decompressed_bytes(path: str | Path, size: int = -1) -> bytes:
    """The first ``size`` bytes (all for -1) of ``path``'s content, decompressed for a .gz / .bz2 / .xz name
    and, for a .zip name, of its one file."""
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                names = [name for name in archive.namelist() if not name.endswith("/")]
                if len(names) != 1:
                    raise ConfigError(f"{path} holds {len(names)} files; give a zip archive of one file")
                with archive.open(names[0]) as f:
                    return f.read(size)
        with _OPENERS.get(suffix, open)(path, "rb") as f:
            return f.read(size)
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as e:
        if suffix not in COMPRESSIONS:
            raise
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ConfigError(f"{path} cannot be decompressed as {COMPRESSIONS[suffix]} ({reason}); give a file "
                          "compressed as its name says, or the file itself") from None


def read_text_file(path: str | Path, newline: str | None = None) -> str:
    """``open(path, encoding="utf-8-sig", newline=newline).read()`` of the decompressed content: UTF-8, a byte-order
    mark at the start dropped (Excel's "CSV UTF-8" and Windows Notepad write one; pandas drops it too, where it
    would stick to the first column's name); ``newline=None`` turns \\r\\n and \\r into \\n, ``""`` keeps line ends
    as written. Raises UnicodeDecodeError for other text."""
    return io.TextIOWrapper(io.BytesIO(decompressed_bytes(path)), encoding="utf-8-sig", newline=newline).read()


def compressed_as_named(path: str | Path, text: str) -> str | bytes:
    """``text`` as the contents of a file named ``path``: compressed for a .gz / .bz2 / .xz / .zip name, as
    pandas' ``to_csv`` would write it there, else the text itself. No time stamp goes into a gzip header or a
    zip entry, so the same text always gives the same bytes."""
    suffix = Path(path).suffix.lower()
    if suffix not in COMPRESSIONS:
        return text
    data = text.encode("utf-8")
    if suffix == ".zip":  # one member, named as the file without .zip (pandas' archive_name)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(zipfile.ZipInfo(Path(path).stem, date_time=(1980, 1, 1, 0, 0, 0)), data,
                             compress_type=zipfile.ZIP_DEFLATED)
        return buffer.getvalue()
    return _COMPRESSORS[suffix](data)


__all__ = ["COMPRESSIONS", "compressed_as_named", "decompressed_bytes", "inner_suffix", "read_text_file"]
