"""Type stubs of the Rust codec; `qrun.reference_codec` documents what each function does."""

from collections.abc import Sequence
from typing import Any

__version__: str
__all__ = ["__version__", "encode_payload", "pack_enqueue", "decode_read_reply"]

_JobTuple = tuple[bytes, str, str, str, tuple[Any, ...], dict[str, Any], int, int]
_MalformedEntry = tuple[bytes, str, str, list[Any]]

def encode_payload(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[bytes, bytes]: ...
def pack_enqueue(
    sha: bytes,
    keys: Sequence[bytes],
    jobs: Sequence[tuple[str, str, Sequence[Any], dict[str, Any]]],
    attempt: int,
    enqueued_at_ms: int,
) -> bytes: ...
def decode_read_reply(reply: Any) -> tuple[list[_JobTuple], list[_MalformedEntry]]: ...
