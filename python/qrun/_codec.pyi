"""Type stubs of the Rust codec; `qrun.reference_codec` documents what each function does."""

from collections.abc import Sequence
from typing import Any

__version__: str

JobTuple = tuple[bytes, str, str, str, tuple[Any, ...], dict[str, Any], int, int]
MalformedEntry = tuple[bytes, str, str, list[Any]]

def encode_payload(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[bytes, bytes]: ...
def pack_enqueue(
    sha: bytes,
    keys: Sequence[bytes],
    jobs: Sequence[tuple[str, str, Sequence[Any], dict[str, Any]]],
    attempt: int,
    enqueued_at_ms: int,
) -> bytes: ...
def decode_read_reply(reply: Any) -> tuple[list[JobTuple], list[MalformedEntry]]: ...
