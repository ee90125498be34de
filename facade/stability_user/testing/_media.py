"""What the stand-in's generation endpoints answer with: the smallest valid file of each kind.

A 1x1 grey image (PNG, JPEG, WebP), a little silence (WAV, MP3), an empty glTF scene (GLB):
real files any decoder opens, a few hundred bytes at most, so a program's own handling of a
result (saving it, decoding it, measuring it) runs against the stand-in as against the API.
"""

from __future__ import annotations

import base64
import struct
import zlib

__all__ = ["MEDIA_TYPES", "media"]

# Made once with Pillow (Image.new("L", (1, 1), 128), JPEG quality 50 optimized; WebP
# lossless): a JPEG or WebP encoder is no part of the standard library.
_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRT"
    "c4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAAAP/EABQQAQAAAAAA"
    "AAAAAAAAAAAAAAD/2gAIAQEAAD8AP//Z"
)
_WEBP = base64.b64decode("UklGRh4AAABXRUJQVlA4TBEAAAAvAAAAAAdQwAIWsP+BiOh/AAA=")

# Each format a generation may ask for (``output_format``) and its media type.
MEDIA_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "glb": "model/gltf-binary",
}


def _png() -> bytes:
    """A 1x1 8-bit greyscale PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x80")  # filter type 0, one grey pixel
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _wav() -> bytes:
    """A millisecond of silence: 44.1 kHz, stereo, 16-bit PCM."""
    frames = 44
    data = bytes(frames * 4)
    fmt = struct.pack("<HHIIHH", 1, 2, 44100, 44100 * 4, 4, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


def _mp3() -> bytes:
    """One MPEG-1 Layer III frame of silence: 128 kbit/s, 44.1 kHz, mono, no CRC; its side
    information all zero (no main data: every granule is silent)."""
    header = bytes((0xFF, 0xFB, 0x90, 0xC0))
    length = 144 * 128_000 // 44_100  # 417 bytes, header included, no padding
    return header + bytes(length - len(header))


def _glb() -> bytes:
    """A glTF 2.0 binary holding an empty scene (the asset's version alone)."""
    document = b'{"asset":{"version":"2.0"}}'
    document += b" " * (-len(document) % 4)  # chunks are 4-byte aligned, padded with spaces
    total = 12 + 8 + len(document)
    return (
        b"glTF"
        + struct.pack("<II", 2, total)
        + struct.pack("<I", len(document))
        + b"JSON"
        + document
    )


_MADE = {
    "png": _png,
    "jpeg": lambda: _JPEG,
    "webp": lambda: _WEBP,
    "mp3": _mp3,
    "wav": _wav,
    "glb": _glb,
}


def media(kind: str) -> bytes:
    """The file of ``kind`` (a key of ``MEDIA_TYPES``)."""
    return _MADE[kind]()
