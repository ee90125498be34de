"""The stand-in's generation endpoints: Stability's synchronous priced v2beta operations, taken
as its document describes them.

Each is a ``POST`` of ``multipart/form-data``; the fields its "How to use" section requires must
be there (``prompt`` where it is required), ``model`` must be one the Credits section prices
(where the price depends on it), ``output_format`` one of the document's. ``Accept: image/*``
(or ``audio/*``) answers the file itself, ``application/json`` a JSON body with it in base64,
both with ``finish-reason`` and ``seed`` headers. The asynchronous ones (creative upscale,
replace-background-and-relight, Stable Audio 3, answered with an id to poll) are not served.
What a call costs is the price catalogue's (``stability_user.prices``), charged by ``_api``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass

from ._media import MEDIA_TYPES, media

__all__ = [
    "GENERATIONS",
    "FormError",
    "Generation",
    "accepted",
    "generation_body",
    "read_form",
    "seed_of",
]

_IMAGE_FORMATS = ("png", "jpeg", "webp")
_AUDIO_FORMATS = ("mp3", "wav")
_SEED_MAX = 4_294_967_294


class FormError(ValueError):
    """A request body that is not the ``multipart/form-data`` an endpoint takes (its 400)."""


@dataclass(frozen=True, slots=True)
class Generation:
    """One endpoint: what it requires and what it answers with.

    Attributes:
        output: ``"image"``, ``"audio"`` or ``"3d"``: what the answer holds.
        required: The form fields the document requires.
        formats: ``output_format``'s values, the default first; none for a 3D model.
        one_of: Fields of which at least one must be given (outpaint's directions).
    """

    output: str
    required: tuple[str, ...]
    formats: tuple[str, ...] = _IMAGE_FORMATS
    one_of: tuple[str, ...] = ()

    def problem(self, form: Mapping[str, str]) -> str | None:
        """What is wrong with ``form`` (the 400's message), or ``None``."""
        for field in self.required:
            if not form.get(field, "").strip():
                return f"{field}: is required"
        if self.one_of and not any(form.get(field, "").strip() for field in self.one_of):
            return f"{', '.join(self.one_of)}: at least one is required"
        chosen = form.get("output_format")
        if self.formats and chosen is not None and chosen not in self.formats:
            return f"output_format: must be one of {', '.join(self.formats)}"
        return None

    def kind(self, form: Mapping[str, str]) -> str:
        """The file the answer holds: the ``output_format`` asked for, else the default."""
        return (form.get("output_format") or self.formats[0]) if self.formats else "glb"


def _image(*required: str, formats: tuple[str, ...] = _IMAGE_FORMATS) -> Generation:
    return Generation("image", required, formats)


def _audio(*required: str) -> Generation:
    return Generation("audio", required, _AUDIO_FORMATS)


# The synchronous priced operations of Stability's v2beta document, with the fields each one's
# description requires ("The body of the request should include" / "must include"); the tests
# hold this table to the document.
GENERATIONS: dict[str, Generation] = {
    "/v2beta/3d/stable-fast-3d": Generation("3d", ("image",), ()),
    "/v2beta/3d/stable-point-aware-3d": Generation("3d", ("image",), ()),
    "/v2beta/audio/stable-audio-2/text-to-audio": _audio("prompt"),
    "/v2beta/audio/stable-audio-2/audio-to-audio": _audio("prompt", "audio"),
    "/v2beta/audio/stable-audio-2/inpaint": _audio("prompt", "audio"),
    "/v2beta/stable-image/upscale/conservative": _image("image", "prompt"),
    "/v2beta/stable-image/upscale/fast": _image("image"),
    "/v2beta/stable-image/edit/erase": _image("image"),
    "/v2beta/stable-image/edit/inpaint": _image("image", "prompt"),
    "/v2beta/stable-image/edit/outpaint": Generation(
        "image", ("image",), _IMAGE_FORMATS, ("left", "right", "up", "down")
    ),
    "/v2beta/stable-image/edit/search-and-replace": _image("image", "prompt", "search_prompt"),
    "/v2beta/stable-image/edit/search-and-recolor": _image("image", "prompt", "select_prompt"),
    "/v2beta/stable-image/edit/remove-background": _image("image", formats=("png", "webp")),
    "/v2beta/stable-image/generate/ultra": _image("prompt"),
    "/v2beta/stable-image/generate/core": _image("prompt"),
    "/v2beta/stable-image/generate/sd3": _image("prompt"),
    "/v2beta/stable-image/control/sketch": _image("image", "prompt"),
    "/v2beta/stable-image/control/structure": _image("image", "prompt"),
    "/v2beta/stable-image/control/style": _image("image", "prompt"),
    "/v2beta/stable-image/control/style-transfer": _image("init_image", "style_image"),
}


def read_form(content_type: str | None, body: bytes) -> dict[str, str]:
    """The fields of a ``multipart/form-data`` body: text fields decoded, a file's field
    present (its content unread). ``FormError`` for any other body."""
    import email.parser
    import email.policy

    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise FormError(f"content-type: must be multipart/form-data, not {media_type or 'none'}")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        raise FormError("body: not a valid multipart/form-data body")
    form: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise FormError("body: a part without a form field name")
        if part.get_filename() is not None:
            form[name] = "(file)"
            continue
        payload = part.get_payload(decode=True)
        try:
            form[name] = payload.decode("utf-8") if isinstance(payload, bytes) else ""
        except UnicodeDecodeError:
            raise FormError(f"{name}: not UTF-8 text") from None
    return form


def accepted(accept: str | None, output: str) -> bool | None:
    """Whether the answer is JSON (``True``) or the file (``False``); ``None`` when ``accept``
    takes neither. No ``Accept`` header, or ``*/*``, takes the file."""
    if output == "3d":
        return False
    kinds = [item.split(";")[0].strip().lower() for item in (accept or "*/*").split(",")]
    for kind in kinds:
        if kind == "application/json":
            return True
        if kind in {"*/*", f"{output}/*"} or kind.startswith(f"{output}/"):
            return False
    return None


def seed_of(form: Mapping[str, str], fallback: int) -> int:
    """The ``seed`` asked for, or ``fallback`` when it is absent or 0 (a random one)."""
    text = form.get("seed", "").strip()
    if text.isdigit() and 0 < int(text) <= _SEED_MAX:
        return int(text)
    return fallback % _SEED_MAX + 1


def generation_body(
    generation: Generation, form: Mapping[str, str], as_json: bool, filtered: bool, seed: int
) -> tuple[dict[str, str], bytes]:
    """The headers and body of a successful generation (a content-filtered one is a success
    too: the document says the result comes back blurred, and is charged)."""
    kind = generation.kind(form)
    data = media(kind)
    reason = "CONTENT_FILTERED" if filtered else "SUCCESS"
    headers = {"finish-reason": reason, "seed": str(seed)}
    if not as_json:
        return {"Content-Type": MEDIA_TYPES[kind], **headers}, data
    field = "audio" if generation.output == "audio" else "image"
    body = {field: base64.b64encode(data).decode("ascii"), "finish_reason": reason, "seed": seed}
    return {"Content-Type": "application/json", **headers}, json.dumps(body).encode()
