"""A model version's sequence weights beside its Delta tables: written by the batch stage, mapped by serving.

On a local lake serving memory-maps the files where the stage wrote them; from an object store it first copies
them once into sequence.cache_dir (per version, so a rollback finds its weights again without a download).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pyarrow import fs

from recsys.sequence.gru import GruWeights, load, save


def _filesystem(uri: str) -> tuple[fs.FileSystem, str]:
    uri = uri.replace("s3a://", "s3://", 1)  # Spark's scheme for what pyarrow calls s3
    return fs.FileSystem.from_uri(uri if "://" in uri else str(Path(uri).resolve()))


def write_weights(weights: GruWeights, uri: str) -> None:
    """Replace the weights at `uri` (a retried stage rewrites them whole)."""
    filesystem, path = _filesystem(uri)
    with tempfile.TemporaryDirectory() as tmp:
        save(weights, Path(tmp))
        filesystem.create_dir(path, recursive=True)
        fs.copy_files(tmp, path, source_filesystem=fs.LocalFileSystem(), destination_filesystem=filesystem)


def read_weights(uri: str, cache_dir: str) -> GruWeights | None:
    """The weights at `uri`, memory-mapped; None when that version has none (trained before the model
    existed, or with sequence.enabled false)."""
    filesystem, path = _filesystem(uri)
    if filesystem.get_file_info(path).type != fs.FileType.Directory:
        return None
    if isinstance(filesystem, fs.LocalFileSystem):
        return load(Path(path))
    local = Path(cache_dir) / Path(path).name
    if not local.is_dir():
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(dir=cache_dir))
        fs.copy_files(path, str(partial), source_filesystem=filesystem, destination_filesystem=fs.LocalFileSystem())
        try:
            os.rename(partial, local)  # whole or not at all: another worker may be copying the same version
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)  # it won: use its copy
    return load(local)
