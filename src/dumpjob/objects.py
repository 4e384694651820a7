"""Reading a stored dump back as a stream: compressed chunks, then raw (decompressed) chunks."""

from __future__ import annotations

from collections.abc import Iterator

from botocore.exceptions import BotoCoreError, ClientError

from .aws import error_code
from .compress import decompressor
from .errors import StorageError, VerifyFailedError
from .upload import storage_error

CHUNK = 1 << 20


def stored_chunks(s3, bucket: str, key: str) -> Iterator[bytes]:
    url = f"s3://{bucket}/{key}"
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            raise StorageError(f"no object at {url}") from None
        raise storage_error("reading", url, exc) from None
    except BotoCoreError as exc:
        raise storage_error("reading", url, exc) from None
    try:
        yield from body.iter_chunks(CHUNK)
    except BotoCoreError as exc:
        raise storage_error("reading", url, exc) from None
    finally:
        body.close()


def raw_chunks(chunks: Iterator[bytes], url: str) -> Iterator[bytes]:
    """Decompress gzip (one or more members), zstd or plain data; VerifyFailedError when truncated."""
    decoder = None
    for chunk in chunks:
        if decoder is None:
            decoder = decompressor(chunk[:4])
        try:
            out = decoder.decompress(chunk)
        except Exception as exc:  # zlib.error, zstandard.ZstdError
            raise VerifyFailedError(f"{url} is not a valid compressed stream ({exc})") from None
        if out:
            yield out
    if decoder is not None and not getattr(decoder, "complete", getattr(decoder, "eof", True)):
        raise VerifyFailedError(f"{url} ends in the middle of its compressed stream (truncated)")


def split_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Lines without their "\\n"; memory is bounded by the longest line."""
    carry = b""
    for chunk in chunks:
        data = carry + chunk if carry else chunk
        lines = data.split(b"\n")
        carry = lines.pop()
        yield from lines
    if carry:
        yield carry
