"""Images: metadata, an EXIF subset, and a small upright RGB copy for the embedder, cheaply and safely.

Only the formats in :data:`ALLOWED_FORMATS` are opened (Pillow would otherwise try every plugin it has on
untrusted bytes). The pixel count is checked from the header before anything is decoded, so a decompression
bomb is refused without allocating it. JPEGs are decoded at reduced scale (``draft``: the DCT scaling of
libjpeg), so a 12 MP photo is never fully decoded to make the embedder's input, which is 768 to 1024 px on
its long side: a 4032 x 3024 photo decodes straight to 1008 x 756, with no resampling at all. Titan accepts up
to 2048 px; more pixels than this only cost decode time and upload bytes.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from PIL import Image, ImageOps, UnidentifiedImageError

from app.errors import PermanentError

ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP")
EMBEDDING_SIDE = 1024  # the embedder input's longest side is at most this ...
EMBEDDING_MIN_SIDE = 768  # ... and a JPEG's reduced-scale decode keeps at least this
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_DATETIME_ORIGINAL, _DATETIME = 36867, 306
_MAKE, _MODEL, _ORIENTATION = 271, 272, 274
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_TEXT_LIMIT = 128


@dataclass(frozen=True)
class PreparedImage:
    width: int  # of the stored image, before orientation is applied
    height: int
    format: str
    mode: str
    frames: int
    exif: dict[str, Any] = field(default_factory=dict)
    embedding_input: bytes = field(
        default=b"", repr=False
    )  # upright RGB JPEG, longest side <= EMBEDDING_SIDE

    def fields(self) -> dict[str, Any]:
        """The document's ``image`` object."""
        image: dict[str, Any] = {
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "mode": self.mode,
        }
        if self.frames > 1:
            image["frames"] = self.frames
        if self.exif:
            image["exif"] = self.exif
        return image


def prepare_image(file: IO[bytes], *, key: str, max_pixels: int, index_gps: bool) -> PreparedImage:
    """Raise PermanentError for anything corrupt, truncated, unsupported or too large to decode."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we check the size ourselves
            image = Image.open(file, formats=ALLOWED_FORMATS)
        with image:
            width, height = image.size
            if width * height > max_pixels:
                raise PermanentError(
                    f"{key}: {width} x {height} px is over MAX_IMAGE_PIXELS={max_pixels} (a decompression "
                    "bomb is refused before decoding; raise the limit and redrive for a genuine huge image)",
                    error_class="ImageTooLarge",
                )
            exif = _exif_subset(image, index_gps=index_gps)
            frames = int(getattr(image, "n_frames", 1))
            source_format, source_mode = str(image.format), image.mode
            upright = _embedding_copy(image)
    except PermanentError:
        raise
    except UnidentifiedImageError:
        raise PermanentError(
            f"{key}: not a readable image (allowed formats: {', '.join(ALLOWED_FORMATS)})",
            error_class="UnreadableImage",
        ) from None
    except Image.DecompressionBombError as exc:
        raise PermanentError(f"{key}: {exc}", error_class="ImageTooLarge") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # Pillow's ways of saying "corrupt"
        raise PermanentError(
            f"{key}: corrupt or truncated image: {exc}", error_class="CorruptImage"
        ) from None
    buffer = io.BytesIO()
    upright.save(buffer, "JPEG", quality=90)
    return PreparedImage(
        width=width,
        height=height,
        format=source_format,
        mode=source_mode,
        frames=frames,
        exif=exif,
        embedding_input=buffer.getvalue(),
    )


def _embedding_copy(image: Image.Image) -> Image.Image:
    """Decode at the coarsest scale that keeps EMBEDDING_MIN_SIDE, fit in EMBEDDING_SIDE, upright, RGB."""
    if image.format == "JPEG":
        # libjpeg decodes at 1/2, 1/4 or 1/8 scale, the coarsest whose result still covers the box asked for.
        shrink = max(image.size) / EMBEDDING_MIN_SIDE
        if shrink > 1:
            image.draft("RGB", (math.ceil(image.width / shrink), math.ceil(image.height / shrink)))
    image.seek(0)  # the first frame of an animation
    image.thumbnail((EMBEDDING_SIDE, EMBEDDING_SIDE), Image.Resampling.BICUBIC)
    upright = ImageOps.exif_transpose(image) or image
    return _as_rgb(upright)


def _as_rgb(image: Image.Image) -> Image.Image:
    if image.mode in _SIXTEEN_BIT_MODES:  # 16-bit grey: scale to 8 bits instead of clipping at 255
        image = image.point(lambda value: value / 256).convert("L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):  # transparent areas become white, as a viewer shows them
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")


def _exif_subset(image: Image.Image, *, index_gps: bool) -> dict[str, Any]:
    exif = image.getexif()
    if not exif:
        return {}
    subset: dict[str, Any] = {}
    detail = exif.get_ifd(_EXIF_IFD)
    if captured := _exif_time(detail.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)):
        subset["captured_at"] = captured
    for name, tag in (("make", _MAKE), ("model", _MODEL)):
        if text := _exif_text(exif.get(tag)):
            subset[name] = text
    orientation = exif.get(_ORIENTATION)
    if isinstance(orientation, int) and 1 <= orientation <= 8:
        subset["orientation"] = orientation
    if index_gps and (gps := _gps(exif.get_ifd(_GPS_IFD))):
        subset["gps"] = gps
    return subset


def _exif_time(value: Any) -> str | None:
    text = _exif_text(value)
    if not text:
        return None
    try:
        return datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:  # "0000:00:00 00:00:00" and other placeholders cameras write
        return None


def _exif_text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text = value.replace("\x00", "").strip()
    return text[:_TEXT_LIMIT] or None


def _gps(gps: dict[int, Any]) -> dict[str, float] | None:
    try:
        latitude = _degrees(gps[2], gps[1])
        longitude = _degrees(gps[4], gps[3])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    return {"lat": round(latitude, 7), "lon": round(longitude, 7)}


def _degrees(dms: Any, ref: Any) -> float:
    degrees, minutes, seconds = (float(part) for part in dms)
    value = degrees + minutes / 60 + seconds / 3600
    return -value if str(ref).upper().startswith(("S", "W")) else value
