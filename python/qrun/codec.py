"""The codec qrun runs with: the Rust ``qrun._codec`` when built, else the reference.

This is the only module that imports ``qrun._codec``. ``QRUN_NATIVE=0`` selects the
pure-Python reference codec (``qrun.reference_codec``), which defines the wire format; the
two are proven byte-identical by ``tests/unit/test_codec_parity.py``.
"""

from __future__ import annotations

import logging
import os

from . import reference_codec
from .reference_codec import FIELDS, encode_delayed_member, load_json

log = logging.getLogger(__name__)

__all__ = [
    "FIELDS",
    "NATIVE",
    "decode_read_reply",
    "encode_delayed_member",
    "encode_payload",
    "load_json",
    "pack_enqueue",
]


def _load_native():  # type: ignore[no-untyped-def]
    if os.environ.get("QRUN_NATIVE", "1") == "0":
        log.debug("qrun codec: reference (QRUN_NATIVE=0)")
        return None
    try:
        from . import _codec
    except ImportError as error:  # a source checkout without a built extension
        log.warning("qrun codec: Rust extension unavailable (%s); using the slower reference codec", error)
        return None
    log.debug("qrun codec: native %s", _codec.__file__)
    return _codec


_native = _load_native()

#: True when the Rust codec is active.
NATIVE: bool = _native is not None

_impl = _native if _native is not None else reference_codec
encode_payload = _impl.encode_payload
pack_enqueue = _impl.pack_enqueue
decode_read_reply = _impl.decode_read_reply
