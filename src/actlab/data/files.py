"""Files on disk: data roots, checksums, atomic downloads and archive extraction, caches.

Nothing here leaves a half-written file that could later look complete: downloads and
extractions go to a temporary name in the destination directory and are renamed into
place only after they are verified (``os.replace`` is atomic on one file system).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from actlab.data.base import DatasetError
from actlab.paths import default_data_root
from actlab.progress import progress_bar

log = logging.getLogger(__name__)

#: Replaces the scheme and host of every official URL (an institutional mirror).
MIRROR_ENV = "ACTLAB_MIRROR"
DOWNLOAD_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Resource:
    """One official file: where it comes from and its MD5 as published."""

    filename: str
    url: str
    md5: str


def resolve_data_root(data_dir: str | os.PathLike | None) -> Path:
    """The data directory: the given one (CLI flag or study file), else ``$ACTLAB_DATA``,
    else ``~/.cache/actlab/data``. A directory the user names (the first two) must be an
    existing directory: data is never looked for elsewhere in its place."""
    if data_dir:
        root, named = Path(data_dir).expanduser(), "the data directory"
    elif os.environ.get("ACTLAB_DATA"):
        root, named = default_data_root(), "$ACTLAB_DATA"
    else:
        return default_data_root()
    if not root.is_dir():
        problem = "is a file, not a directory" if root.exists() else "does not exist"
        raise DatasetError(f"{named} {root} {problem}: point --data-dir (or the study "
                           "file's data.data_dir, or $ACTLAB_DATA) at the folder that holds "
                           "the datasets")
    return root


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def mirrored(url: str) -> str:
    mirror = os.environ.get(MIRROR_ENV)
    if not mirror:
        return url
    path = url.split("://", 1)[-1].split("/", 1)[-1]
    return f"{mirror.rstrip('/')}/{path}"


def download(resource: Resource, directory: Path) -> Path:
    """Download ``resource`` into ``directory``, verify its MD5, then move it into place.

    Raises :class:`DatasetError` (naming the URL and the reason) when the network is
    unreachable or the checksum does not match; no partial file is left behind.
    """
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / resource.filename
    url = mirrored(resource.url)
    handle, temp_name = tempfile.mkstemp(prefix=f".{resource.filename}.", suffix=".part",
                                         dir=directory)
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out, \
                urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with progress_bar(f"downloading {resource.filename}", total) as advance:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    advance(len(block))
        actual = md5sum(temp)
        if actual != resource.md5:
            raise DatasetError(f"{url} downloaded with MD5 {actual}, expected {resource.md5}: "
                               "the file is corrupt or not the official one; nothing was kept")
        os.replace(temp, target)
    except (urllib.error.URLError, OSError) as exc:
        raise DatasetError(f"could not download {url}: {exc}") from None
    finally:
        temp.unlink(missing_ok=True)
    log.info("downloaded %s (MD5 verified)", target)
    return target


def extract(archive: Path, destination: Path) -> None:
    """Unpack a .tar(.gz) or .zip into ``destination`` (a temporary sibling first, then
    renamed, so an interrupted extraction is never mistaken for a complete one)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        log.warning("extracting %s to %s (once)", archive, destination)
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as handle:
                handle.extractall(temp)
        else:
            try:
                with tarfile.open(archive) as handle:
                    handle.extractall(temp, filter="data")
            except tarfile.TarError as exc:
                raise DatasetError(f"{archive} is not a readable tar or zip archive ({exc}); "
                                   "it may be truncated: delete it and provide it again") from None
        if destination.exists():  # another process finished first
            return
        os.replace(temp, destination)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(payload)
        os.replace(temp_name, path)
    finally:
        Path(temp_name).unlink(missing_ok=True)
