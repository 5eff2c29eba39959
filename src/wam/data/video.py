"""Video streams of a LeRobot dataset, encoded and decoded with the ffmpeg binary that ``imageio[ffmpeg]`` ships.

Three encodings, one per kind of image:

* ``rgb``          — H.264 (libx264, yuv420p, CRF 18): lossy, what LeRobot itself does; ~0.1 KB/frame at 64×64;
* ``rgb_lossless`` — H.264 RGB (libx264rgb, QP 0): bit-exact and still inter-frame coded, a few times larger;
* ``depth``        — FFV1 gray16le: bit-exact 16-bit, intra-only (every frame decodes on its own).

Depth is stored as uint16 millimetres (see :func:`depth_to_mm`); FFV1 is the lossless codec of the bundled
ffmpeg that takes 16-bit grey (x264 stops at 10 bits, x265's lossless mode at 12).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Metres per stored depth unit (millimetres). Depth is quantised to this step: |error| <= 0.5 mm.
DEPTH_SCALE_M = 0.001


@dataclass(frozen=True)
class VideoCodec:
    """How one kind of image is written to an mp4 stream."""

    codec: str
    """ffmpeg encoder name."""
    pix_fmt: str
    """Pixel format inside the stream."""
    pix_fmt_in: str
    """Pixel format of the raw frames we pipe in (and ask back when decoding)."""
    channels: int
    """Channels per pixel of the raw frames."""
    dtype: str
    """numpy dtype of the raw frames."""
    lossless: bool
    """Whether decoding gives back the exact frames."""
    params: tuple[str, ...] = ()
    """Extra ffmpeg output options."""


CODECS: dict[str, VideoCodec] = {
    "rgb": VideoCodec("libx264", "yuv420p", "rgb24", 3, "uint8", False, ("-crf", "18", "-preset", "medium")),
    "rgb_lossless": VideoCodec("libx264rgb", "rgb24", "rgb24", 3, "uint8", True, ("-qp", "0", "-preset", "medium")),
    "depth": VideoCodec("ffv1", "gray16le", "gray16le", 1, "uint16", True, ("-coder", "1", "-context", "1")),
}


def depth_to_mm(depth_m: np.ndarray) -> np.ndarray:
    """Metric depth (metres) to the stored uint16 millimetres: ``rint(1000 * depth)`` in float64, clipped to 0..65535."""
    return np.clip(np.rint(np.asarray(depth_m, np.float64) * 1000.0), 0, 65535).astype(np.uint16)


def mm_to_depth(depth_mm: np.ndarray) -> np.ndarray:
    """Stored uint16 millimetres back to float32 metres (``float32(mm) / 1000``)."""
    return depth_mm.astype(np.float32) / np.float32(1000.0)


class VideoWriter:
    """Append frames to one mp4 file through an ffmpeg pipe; call :meth:`close` to finish the file."""

    def __init__(self, path: Path, kind: str, height: int, width: int, fps: float):
        import imageio_ffmpeg

        if kind not in CODECS:
            raise ValueError(f"unknown video kind {kind!r}; expected one of {sorted(CODECS)}")
        self.codec = CODECS[kind]
        if self.codec.pix_fmt == "yuv420p" and (height % 2 or width % 2):
            raise ValueError(
                f"lossy H.264 (yuv420p) needs even image sides, got {height}x{width}; use an even image_size "
                "or the lossless RGB mode"
            )
        self.path, self.shape, self.frames = Path(path), (height, width, self.codec.channels), 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._gen = imageio_ffmpeg.write_frames(
            str(self.path),
            (width, height),
            pix_fmt_in=self.codec.pix_fmt_in,
            pix_fmt_out=self.codec.pix_fmt,
            codec=self.codec.codec,
            fps=fps,
            quality=None,
            macro_block_size=1,
            ffmpeg_log_level="error",
            output_params=list(self.codec.params),
        )
        self._gen.send(None)

    def append(self, frames: np.ndarray) -> None:
        """Write a block of frames (N, H, W, C) of the codec's dtype."""
        if frames.shape[1:] != self.shape or frames.dtype != np.dtype(self.codec.dtype):
            raise ValueError(
                f"{self.path.name}: expected frames (N, {self.shape}) {self.codec.dtype}, got {frames.shape} {frames.dtype}"
            )
        # ffmpeg reads the raw pixels; gray16le needs little-endian bytes whatever the host.
        self._gen.send(np.ascontiguousarray(frames, dtype=np.dtype(self.codec.dtype).newbyteorder("<")).tobytes())
        self.frames += len(frames)

    def size_bytes(self) -> int:
        """Bytes written to disk so far (the container trailer comes on close)."""
        return os.path.getsize(self.path) if self.path.exists() else 0

    def close(self) -> None:
        """Flush and finish the file."""
        self._gen.close()


def decode(path: Path, kind: str) -> np.ndarray:
    """All frames of an mp4 stream written with ``kind``, as (N, H, W, C) uint8 (rgb) or uint16 (depth)."""
    import imageio_ffmpeg

    codec = CODECS[kind]
    itemsize = np.dtype(codec.dtype).itemsize
    # passthrough: one output frame per stored frame, never duplicated or dropped to fit a frame rate.
    gen = imageio_ffmpeg.read_frames(
        str(path), pix_fmt=codec.pix_fmt_in, bpp=codec.channels * itemsize, output_params=["-fps_mode", "passthrough"]
    )
    meta = next(gen)
    width, height = meta["size"]
    raw = b"".join(gen)
    frame_bytes = width * height * codec.channels * itemsize
    if len(raw) % frame_bytes:
        raise ValueError(f"{path}: decoded {len(raw)} bytes, not a whole number of {width}x{height} frames")
    dt = np.dtype(codec.dtype).newbyteorder("<")
    return np.frombuffer(raw, dtype=dt).astype(codec.dtype).reshape(-1, height, width, codec.channels)
