"""Whether bytes are the file the plan asks for: every check the executor makes of content.

:func:`matches` compares a digest and size with the plan; :func:`hash_local` hashes a file
already on disk (the destination's, a seed's, the cache's), cancellable, with progress;
:func:`check_body` judges a try's complete body (decoding it when a server compressed it
anyway); :func:`check_metadata` compares a wheel's own METADATA with what the plan was
resolved from. They read files and never rename, delete or fetch anything but their own
temporary files: what follows from a check is the caller's.
"""

from __future__ import annotations

import functools
import gzip
import logging
import zlib
from collections.abc import Iterator
from pathlib import Path

from fetchplan._coremeta import MetadataDiffers, check_wheel_metadata
from fetchplan._fs import (
    CHUNK_SIZE,
    SizeMismatch,
    TooLarge,
    hash_file,
    read_chunks,
    write_verified,
)
from fetchplan.errors import HashMismatch
from fetchplan.executor.context import ArtifactFailed, Context
from fetchplan.executor.limits import MAX_UNSIZED_BYTES
from fetchplan.executor.outcome import Body, Received, Restart
from fetchplan.schemas.plan import Artifact

__all__ = ["check_body", "check_metadata", "hash_local", "matches"]

log = logging.getLogger(__name__)

_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def matches(artifact: Artifact, sha256: str, size: int) -> bool:
    """Whether content of this digest and size is the file the plan asks for."""
    if artifact.size is not None and size != artifact.size:
        return False
    return artifact.sha256 is None or sha256 == artifact.sha256


def hash_local(path: Path, ctx: Context, destination: str) -> tuple[str, int]:
    """The sha256 and size of a file on disk, shown as progress of ``destination``."""
    hashed = hash_file(
        path,
        cancel=ctx.raise_if_cancelled,
        progress=functools.partial(ctx.progress.advance, destination, network=False),
    )
    return hashed.sha256, hashed.size


def check_body(
    artifact: Artifact, part: Path, body: Body, *, unsized: int = MAX_UNSIZED_BYTES
) -> Received | Restart:
    """The body if it is the planned file; else its decoded form if that is (a server that
    compressed it despite ``Accept-Encoding: identity``); else a final :class:`Restart`."""
    if matches(artifact, body.sha256, body.size):
        return Received(body)
    if body.encoding in _DECODERS:
        try:
            decoded = _decode_partial(artifact, part, body.encoding, unsized)
        except TooLarge as exc:
            return Restart(f"decoded body is larger than {exc.limit} bytes", final=True)
        if decoded is not None:
            return Received(decoded)
    if artifact.size is not None and body.size != artifact.size:
        return Restart(f"got {body.size} bytes, the plan says {artifact.size}", final=True)
    error = HashMismatch(artifact.destination, "sha256", artifact.sha256 or "", body.sha256)
    return Restart(str(error).split(": ", 1)[1], final=True)


def _decode_partial(artifact: Artifact, part: Path, encoding: str, unsized: int) -> Body | None:
    """The server ignored ``Accept-Encoding: identity``: try the body decoded, capped at the
    plan's size (``unsized`` when it gives none, else :class:`TooLarge`); it replaces the
    partial only if it matches."""
    limit = artifact.size if artifact.size is not None else unsized
    try:
        hashed = write_verified(
            _decoded(part, encoding), part, sha256=artifact.sha256, size=artifact.size, limit=limit
        )
    except (zlib.error, gzip.BadGzipFile, EOFError, SizeMismatch, HashMismatch):
        return None
    log.info(
        "%s: server sent it %s-encoded; the decoded file matches", artifact.destination, encoding
    )
    return Body(sha256=hashed.sha256, size=hashed.size, encoding="identity", resumed=False)


def _decoded(part: Path, encoding: str) -> Iterator[bytes]:
    """The partial's bytes decoded, in pieces of at most a chunk (a zip bomb stays small)."""
    decoder = zlib.decompressobj(_DECODERS[encoding])
    with part.open("rb") as src:
        for chunk in read_chunks(src):
            yield decoder.decompress(chunk, CHUNK_SIZE)
            while decoder.unconsumed_tail:
                yield decoder.decompress(decoder.unconsumed_tail, CHUNK_SIZE)
    yield decoder.flush()


def check_metadata(artifact: Artifact, path: Path) -> None:
    """Fail a wheel whose own METADATA is not what the plan was resolved from.

    The file stays where it is (it is the file the plan pins); the manifest does not list it.
    """
    if artifact.kind != "wheel" or artifact.metadata is None:
        return
    try:
        check_wheel_metadata(path, artifact.filename, artifact.metadata)
    except MetadataDiffers as exc:
        raise ArtifactFailed(artifact.destination, str(exc)) from None
