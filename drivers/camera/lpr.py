"""Plate detection (LPD-YuNet) and recognition (fast-plate-ocr) on camera frames.

Everything here is synchronous and CPU-bound: the lane camera calls
:meth:`LprPipeline.process` from its worker thread, never from the event loop. One pipeline
may be shared by threads (each model runs under its own lock), but a pipeline per camera
thread keeps two lanes from waiting on each other.

Choices, measured on the 2-core development machine with the labelled images of
``../shared/lpr/data`` (exact = the read on the labelled plate equals its label, on whole
frames; ``bench/lpr.py`` prints the current figures):

* **Detector runtime: OpenCV ``cv2.dnn``**, not ONNX Runtime. ONNX Runtime runs the
  model faster at its export size (13 ms against 18-30 ms at 320x240), but its input is
  fixed at 1x3x240x320 there, so a lane region would have to be squeezed into 320x240
  (plates too small: recall 91-94 %, exact 82-84 % on lane regions) or tiled (4 tiles for
  640x360, no faster). ``cv2.dnn`` (OpenCV 5's new engine; ``ENGINE_CLASSIC`` is 2-3x
  slower) takes any size; time follows the pixels: 15 ms at 320x180, 34 ms at 480x270,
  52-59 ms at 640x360, 120 ms at 960x540, 210-300 ms at 1280x720 (unloaded machine).
  The int8 model is slower than fp32 in ``cv2.dnn``.
* **ONNX Runtime must not spin**: by default its threads busy-wait after each OCR run and
  take the CPU from the next detection (150 ms instead of 55 ms at 640x360 on 2 cores).
* **Inputs are letterboxed to a multiple of 32** (padded right and bottom): at other sizes
  the network's outputs no longer line up with the prior boxes.
* **Boxes come from the regression head** (centre and size), not from the bounding box of
  the four predicted corners (US 84.7 % against 82.9 %, EU 89.8 % against 88.9 %, one
  padding); straightening the plate from the corners is worse still (65.8 %).
* **OCR on the crop at two paddings**, ``padding`` and ``padding + 0.05`` (10 and 15 %),
  keeping the more confident read (one batch): US 86.0 -> 89.6 %, EU 88.9 % both ways.
  Three paddings (5/10/15 % or 10/15/20 %) gave US 87.4 %; a wider crop (30 % across) as a
  third candidate did not help; choosing by mean or by minimum confidence made no
  difference.
* **Plate size at the network decides recall and box quality.** At one pass, plates under
  ~40 px at the network's scale are missed (US recall 70 % at 22 px, 90 % at 33 px, 96 %
  at 44 px), and the time follows the pixels, so one ``max_side_px`` could not serve both
  a lane region (40 ms) and a whole 1280x720 frame (US 89.6 % at 960 px, 120-155 ms).
* **Two passes (the default, ``refine``).** With a low threshold, a cheap pass still
  finds the plates (US frames shrunk to 480 px: 98.6 % of the labelled plates among the
  candidates at score 0.05, the plate first in 90 % of frames); the default first pass is
  at half the camera's resolution; each of
  the best 4 candidates is then detected again on a window zoomed so the plate is 128 px
  wide, which gives the box its quality and confirms it at 0.3. The zoom is the automatic
  upscaling: small plates are enlarged, large ones reduced; a candidate already sure and
  64 px wide is kept as it is (1 US image less, fewer zooms). Measured, exact against the
  published labels, whole sets: US 89.6 %, EU 92.6 %, and on the synthetic Argentinian
  composite (``bench/lpr.py``) 91.8 % against the plain pipeline's 89.1 %. A first pass at
  a fixed 480 px instead (1280x720 frames shrunk 0.375x) lost thin 3:1 plates: that
  composite fell to 86-87 %; a window with more context (width and height each side
  1.0/2.0 instead of 0.6/1.2) recovers them but costs EU 2 points, so it is only the retry
  of a candidate the first window misses. Refining was a loss as a third pass after a
  960 px pass (US -3.6 points): it pays as the cheap first pass's partner.
* **Tentative candidates.** Close-up plates (250-330 px) score only 0.06-0.2 at half
  resolution and are not found again on a 128 px window; a big candidate (64 px at its
  scale) above 0.1 goes to the OCR as tentative and is kept only when read at
  ``min_confidence`` (US +1, EU +1 image): the OCR tells a plate from a car body.
* **Three views per plate for the OCR**: the zoomed box padded 10 % and 15 %, and the first
  pass's box padded 10 % (the two boxes err differently; +1 to +3 images on each set), the
  most confident read kept. Averaging the views' probabilities instead was worse (US
  -1.3 points), so was a contrast-equalised view (US -1.8) and the box of the detector's
  four corners (US -0.9).
* **A digit prior for O/0 and I/1** (:data:`DIGIT_PRIOR`): see there.
* Score threshold 0.3 (``[lpr] detection_score``): the zoo's default 0.8 finds 19 % of the
  EU plates.

Confidence of a read (:attr:`OcrRead.confidence`) is the **minimum** of its character
probabilities: one doubtful character makes the whole plate doubtful, which is what a gate
decision needs (the mean hides a single bad character behind six good ones).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from fast_plate_ocr.core.process import postprocess_output, resize_image

from drivers.camera.models import LprModelError, ModelPaths, find_models
from gateway.config import LprConfig, lpr_directory

__all__ = ["LprModelError", "LprPipeline", "PlateDetector", "PlateRecognizer"]

Box = tuple[int, int, int, int]  # x, y, w, h in pixels
_Box = tuple[float, float, float, float]  # the same, before rounding
Image = npt.NDArray[Any]  # uint8 HxWx3 BGR (checked by as_bgr)
Padding = float | tuple[float, float]  # of the box's size on each side: both ways, or (x, y)

# LPD-YuNet's anchors, as in the OpenCV Zoo's lpd_yunet.py (opencv/opencv_zoo).
_MIN_SIZES = ((10.0, 16.0, 24.0), (32.0, 48.0), (64.0, 96.0), (128.0, 192.0, 256.0))
_STEPS = (8, 16, 32, 64)
_VARIANCE = (0.1, 0.2)
_STRIDE = 32  # inputs are padded to a multiple of this
_NMS_IOU = 0.3
# The second pass: context around a first-pass box, and the plate width it is scaled to.
_REFINE_CONTEXT = (0.6, 1.2)  # fraction of the box's width (each side), of its height
# A candidate not found again on that window is tried once more on a wider one: thin plates
# (3:1 and wider) with little around them score low on a tight window.
_WIDE_CONTEXT = (1.0, 2.0)
_WIDE_RETRY_SCORE = 0.1  # ... if its first-pass score was at least this
# A candidate already sure in the first pass and this wide at its scale needs no zoom.
_SURE_PLATE_PX = 64
# A big candidate (that wide) that the zoomed pass does not confirm but that scored at least
# this is handed to the OCR as tentative: close-up plates score low on small windows, and
# the OCR tells a plate from a car body (a tentative read below min_confidence is dropped).
_TENTATIVE_SCORE = 0.1
_REFINE_PLATE_PX = 128.0
_REFINE_MIN_IOU = 0.3  # a refined box must overlap the first one this much to replace it
_SAME_PLATE_IOU = 0.5  # two candidates that refine to boxes overlapping this much are one plate
_MAX_UPSCALE = 2.0  # with upscale=True, small regions are enlarged at most this much
_MAX_ROI_ASPECT = 40  # a region thinner than 1:40 holds no plate


@dataclass(frozen=True)
class Detection:
    box: tuple[int, int, int, int]  # x, y, w, h in full-frame pixels
    score: float
    # The first pass's box of a plate the zoomed pass found again: a second view that the
    # OCR also reads (the two boxes err differently).
    coarse: tuple[int, int, int, int] | None = None
    # Not confirmed by the zoomed pass: kept only if the OCR reads it confidently.
    tentative: bool = False


@dataclass(frozen=True)
class OcrRead:
    text: str  # without the model's pad characters
    confidence: float  # the minimum of char_confidences (0.0 for an empty read)
    char_confidences: tuple[float, ...]


@dataclass(frozen=True)
class FrameRead:
    text: str
    confidence: float  # as OcrRead.confidence
    char_confidences: tuple[float, ...]
    box: tuple[int, int, int, int]  # the detected plate, x, y, w, h in full-frame pixels
    detection_score: float
    crop: npt.NDArray[np.uint8]  # BGR, the padded crop fed to OCR


# -- input checks -------------------------------------------------------------------------


def as_bgr(image: Any, what: str = "frame") -> Image:
    """A 3-channel uint8 BGR view of ``image``, or ValueError saying what is wrong with it."""
    if image is None:
        raise ValueError(f"{what} is None (the image could not be read?)")
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{what} must be a numpy array, got {type(image).__name__}")
    if image.size == 0 or image.ndim not in (2, 3):
        raise ValueError(f"{what} is empty or not an image (shape {image.shape})")
    if image.dtype != np.uint8:
        raise ValueError(f"{what} must be 8-bit (uint8), got {image.dtype}")
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] != 3:
        raise ValueError(f"{what} must have 1, 3 or 4 channels, got {image.shape[2]}")
    return image


def _clip_roi(shape: tuple[int, ...], roi: Sequence[int] | None) -> Box:
    height, width = shape[:2]
    if roi is None:
        return (0, 0, width, height)
    if len(roi) != 4:
        raise ValueError(f"roi must be (x, y, w, h), got {roi!r}")
    x, y, w, h = (int(v) for v in roi)
    if w <= 0 or h <= 0:
        raise ValueError(f"roi {roi!r} has no area")
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(width, x + w), min(height, y + h)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"roi {roi!r} lies outside the {width}x{height} frame")
    return (x0, y0, x1 - x0, y1 - y0)


def padded_box(box: Sequence[float], padding: Padding, shape: tuple[int, ...]) -> Box:
    """``box`` grown on each side by ``padding`` of its size (one fraction, or (width, height)
    fractions), clipped to the image."""
    x, y, w, h = (float(v) for v in box)
    px, py = (padding, padding) if isinstance(padding, int | float) else padding
    height, width = shape[:2]
    x0 = max(0, round(x - w * px))
    y0 = max(0, round(y - h * py))
    x1 = min(width, round(x + w + w * px))
    y1 = min(height, round(y + h + h * py))
    return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def crop(image: Image, box: Box) -> Image:
    x, y, w, h = box
    return image[y : y + h, x : x + w]


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return float(inter / union) if union > 0 else 0.0


# -- model files --------------------------------------------------------------------------


def _model_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise LprModelError(f"{what} not found: {path}")
    try:
        with path.open("rb") as f:
            f.read(1)
    except OSError as err:
        raise LprModelError(f"{what} is not readable: {path}: {err}") from err
    return path


def _is_hub_name(value: str) -> bool:
    """A fast-plate-ocr hub name (``cct-xs-v1-global-model``) rather than a file path."""
    return "/" not in value and "\\" not in value and not value.endswith((".onnx", ".yaml"))


# -- detection ----------------------------------------------------------------------------


class PlateDetector:
    """LPD-YuNet through ``cv2.dnn``, on a region of the frame.

    The region (``roi``, clipped to the frame) is downscaled so that its longer side is at
    most ``max_side_px`` (with ``upscale``, also enlarged up to 2x to reach it), letterboxed
    to a multiple of 32 and run through the network; boxes scoring at least
    ``score_threshold`` are kept after non-maximum suppression, optionally refined by a
    second pass on a zoomed window around each (``refine``), mapped back to full-frame
    pixels and dropped when narrower than ``min_plate_width_px``.

    Time is roughly proportional to the pixels fed to the network (see the module's
    figures): a lane's region of interest and ``max_side_px`` set the cost. Plates need to
    be about 40 px wide at the network's scale to be found reliably.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        score_threshold: float = 0.3,
        min_plate_width_px: int = 40,
        max_side_px: int = 640,
        first_pass_scale: float = 0.5,
        upscale: bool = False,
        refine: bool = True,
        candidate_score: float = 0.05,
        max_candidates: int = 4,
        refine_plate_px: float = _REFINE_PLATE_PX,
    ) -> None:
        path = _model_file(Path(model_path), "plate detector model")
        try:
            self._net = cv2.dnn.readNet(str(path))
        except cv2.error as err:
            raise LprModelError(f"plate detector model is not a usable ONNX model: {path}") from err
        if self._net.empty():
            raise LprModelError(f"plate detector model is not a usable ONNX model: {path}")
        self.model_path = path
        self.score_threshold = score_threshold
        self.min_plate_width_px = min_plate_width_px
        self.max_side_px = max_side_px
        self.first_pass_scale = first_pass_scale
        self.refine = refine
        self.upscale = upscale
        self.candidate_score = min(candidate_score, score_threshold)
        self.max_candidates = max_candidates
        self.refine_plate_px = refine_plate_px
        self._priors: dict[tuple[int, int], npt.NDArray[np.float32]] = {}
        self._lock = threading.Lock()
        try:  # fail at start-up, not on the first car, if the file is a model of something else
            self._raw(np.zeros((240, 320, 3), np.uint8), 0.99)
        except (cv2.error, ValueError) as err:
            raise LprModelError(f"plate detector model does not run as LPD-YuNet: {path}") from err

    def detect(self, frame_bgr: Any, roi: Sequence[int] | None = None) -> list[Detection]:
        """Plates in ``roi`` (x, y, w, h; the whole frame when None), best score first."""
        frame = as_bgr(frame_bgr)
        rx, ry, rw, rh = _clip_roi(frame.shape, roi)
        if rw < self.min_plate_width_px or max(rw, rh) > _MAX_ROI_ASPECT * min(rw, rh):
            return []
        region = crop(frame, (rx, ry, rw, rh))
        scale = self.max_side_px / max(rw, rh)
        scale = min(scale, _MAX_UPSCALE if self.upscale else 1.0)
        if self.refine:
            # The first pass only finds candidates: half the camera's resolution is enough,
            # and the same plate has the same size there in a lane region or a whole frame.
            scale = min(scale, self.first_pass_scale)
            boxes, scores, coarse, tentative = self._cascade(region, scale)
        else:
            boxes, scores = self._detect_scaled(region, scale, self.score_threshold)
            coarse, tentative = list(boxes), [False] * len(boxes)
        found: list[Detection] = []
        for (x, y, w, h), score, first, maybe in zip(boxes, scores, coarse, tentative, strict=True):
            if w < self.min_plate_width_px:
                continue
            full = _clip_box((round(x) + rx, round(y) + ry, round(w), round(h)), frame.shape)
            fx, fy, fw, fh = first
            view = _clip_box((round(fx) + rx, round(fy) + ry, round(fw), round(fh)), frame.shape)
            found.append(
                Detection(
                    box=full,
                    score=float(score),
                    coarse=view if view != full else None,
                    tentative=maybe,
                )
            )
        found.sort(key=lambda d: d.score, reverse=True)
        return found

    def _cascade(
        self, region: Image, scale: float
    ) -> tuple[list[_Box], list[float], list[_Box], list[bool]]:
        """A coarse pass with a low threshold, each candidate confirmed on a zoomed window.

        The coarse pass at ``max_side_px`` finds where plates may be, down to
        ``candidate_score``; each of the best ``max_candidates`` is detected again on its
        window scaled so the plate is ``refine_plate_px`` wide (enlarged when small, reduced
        when large: the upscaling is chosen from the plate's size, not by a flag), and kept
        when that pass scores it at least ``score_threshold``. A candidate that was already
        sure in the coarse pass but is lost on its window keeps its coarse box.
        """
        boxes, scores = self._detect_scaled(region, scale, self.candidate_score)
        ranked = sorted(zip(boxes, scores, strict=True), key=lambda bs: bs[1], reverse=True)
        kept: list[tuple[_Box, float, _Box, bool]] = []
        for box, score in ranked[: self.max_candidates]:
            big = box[2] * scale >= _SURE_PLATE_PX
            if score >= self.score_threshold and big:
                final = (box, score, box, False)  # big and sure already: no zoom needed
            else:
                refined = self._refined(region, box, _REFINE_CONTEXT)
                if refined is None and score >= _WIDE_RETRY_SCORE:
                    refined = self._refined(region, box, _WIDE_CONTEXT)
                if refined is not None:
                    final = (*refined, box, False)
                elif score >= self.score_threshold or (big and score >= _TENTATIVE_SCORE):
                    final = (box, score, box, score < self.score_threshold)
                else:
                    continue
            if all(iou(final[0], other[0]) < _SAME_PLATE_IOU for other in kept):
                kept.append(final)
        return (
            [k[0] for k in kept],
            [k[1] for k in kept],
            [k[2] for k in kept],
            [k[3] for k in kept],
        )

    # The network, the prior boxes and the decoding follow the zoo's lpd_yunet.py.
    def _detect_scaled(
        self, image: Image, scale: float, threshold: float
    ) -> tuple[list[tuple[float, float, float, float]], list[float]]:
        """Boxes (x, y, w, h in ``image`` pixels) and scores, with ``image`` scaled by ``scale``."""
        h, w = image.shape[:2]
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        if (sw, sh) != (w, h):
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            image = cv2.resize(image, (sw, sh), interpolation=interpolation)
        boxes, scores = self._raw(image, threshold)
        return [(x / scale, y / scale, bw / scale, bh / scale) for x, y, bw, bh in boxes], scores

    def _raw(
        self, image: Image, threshold: float
    ) -> tuple[list[tuple[float, float, float, float]], list[float]]:
        h, w = image.shape[:2]
        # At least two strides each way: below that the network's outputs and the zoo's
        # prior boxes no longer line up (a zoomed window or a scaled region can be that small).
        least = 2 * _STRIDE
        ph, pw = -(-max(h, least) // _STRIDE) * _STRIDE, -(-max(w, least) // _STRIDE) * _STRIDE
        if (ph, pw) != (h, w):
            image = cv2.copyMakeBorder(image, 0, ph - h, 0, pw - w, cv2.BORDER_CONSTANT, value=0)
        blob = cv2.dnn.blobFromImage(image)
        with self._lock:
            self._net.setInput(blob)
            loc, conf, iou_ = self._net.forward(["loc", "conf", "iou"])
        priors = self._priors_for(pw, ph)
        if len(priors) != len(loc):
            raise ValueError(f"detector output ({len(loc)} boxes) does not match {pw}x{ph} priors")
        scores = np.sqrt(conf[:, 1] * np.clip(iou_[:, 0], 0.0, 1.0))
        keep = scores >= threshold
        if not keep.any():
            return [], []
        p, loc, scores = priors[keep], loc[keep], scores[keep]
        size = np.array([pw, ph], np.float32)
        centre = (p[:, 0:2] + loc[:, 0:2] * _VARIANCE[0] * p[:, 2:4]) * size
        wh = p[:, 2:4] * np.exp(loc[:, 2:4] * _VARIANCE[1]) * size
        xywh = np.hstack([centre - wh / 2, wh])
        kept = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), threshold, _NMS_IOU)
        boxes: list[tuple[float, float, float, float]] = []
        out_scores: list[float] = []
        for i in np.asarray(kept, dtype=np.int64).reshape(-1):
            x, y, bw, bh = (float(v) for v in xywh[i])
            # Boxes reaching into the letterbox padding are cut at the image.
            x1, y1 = min(x + bw, float(w)), min(y + bh, float(h))
            x, y = max(0.0, x), max(0.0, y)
            if x1 - x < 2 or y1 - y < 2:
                continue
            boxes.append((x, y, x1 - x, y1 - y))
            out_scores.append(float(scores[i]))
        return boxes, out_scores

    def _refined(
        self, region: Image, box: _Box, context: tuple[float, float] = _REFINE_CONTEXT
    ) -> tuple[_Box, float] | None:
        """The box (and score) found again on a window around ``box`` zoomed so the plate is
        ``refine_plate_px`` wide, or None when that pass does not confirm it."""
        x, y, w, h = box
        if w < 4 or h < 2 or h > w * 2:  # nothing to zoom, or not plate-shaped
            return None
        cx, cy = context
        wx0 = max(0, int(x - cx * w))
        wy0 = max(0, int(y - cy * h))
        wx1 = min(region.shape[1], int(np.ceil(x + w + cx * w)))
        wy1 = min(region.shape[0], int(np.ceil(y + h + cy * h)))
        window = (wx0, wy0, wx1 - wx0, wy1 - wy0)
        if window[2] < 2 or window[3] < 2:
            return None
        scale = self.refine_plate_px / w
        boxes, scores = self._detect_scaled(crop(region, window), scale, self.score_threshold)
        best: tuple[tuple[float, float, float, float], float] | None = None
        for (bx, by, bw, bh), score in zip(boxes, scores, strict=True):
            candidate = (bx + wx0, by + wy0, bw, bh)
            if iou(candidate, box) >= _REFINE_MIN_IOU and (best is None or score > best[1]):
                best = (candidate, score)
        return best

    def _priors_for(self, width: int, height: int) -> npt.NDArray[np.float32]:
        key = (width, height)
        if key not in self._priors:
            if len(self._priors) > 64:  # many window sizes from the second pass
                self._priors.clear()
            self._priors[key] = _priors(width, height)
        return self._priors[key]


def _priors(width: int, height: int) -> npt.NDArray[np.float32]:
    fh, fw = (height + 1) // 2 // 2, (width + 1) // 2 // 2
    rows: list[npt.NDArray[np.float32]] = []
    for min_sizes, step in zip(_MIN_SIZES, _STEPS, strict=True):
        fh, fw = fh // 2, fw // 2
        ys, xs = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        cx = ((xs + 0.5) * step / width).reshape(-1, 1)
        cy = ((ys + 0.5) * step / height).reshape(-1, 1)
        n = len(min_sizes)
        grid = np.empty((fh * fw, n, 4), np.float32)
        grid[:, :, 0] = cx
        grid[:, :, 1] = cy
        grid[:, :, 2] = np.array(min_sizes) / width
        grid[:, :, 3] = np.array(min_sizes) / height
        rows.append(grid.reshape(-1, 4))
    return np.concatenate(rows).astype(np.float32)


def _clip_box(box: Box, shape: tuple[int, ...]) -> Box:
    x, y, w, h = box
    height, width = shape[:2]
    x0, y0 = max(0, x), max(0, y)
    return (x0, y0, max(0, min(width, x + w) - x0), max(0, min(height, y + h) - y0))


# -- recognition --------------------------------------------------------------------------

# Plates hold the digits 0 and 1 far more often than the letters O and I (many plate series
# leave those letters out): 158 zeros to 40 Os and 154 ones to 32 Is over the US, EU and
# Argentinian labels. When the OCR hesitates between the two, the digit is the better bet;
# the model's probability of the digit is doubled (then renormalised), so a letter still
# wins whenever the model is more than twice as sure of it. Measured on ground-truth crops:
# US 88.3 -> 90.5 %, EU and AR unchanged; 5x starts to cost EU reads. Other look-alikes
# (B/8, S/5, Z/2, G/6) gain nothing and are left alone.
DIGIT_PRIOR = {"0": 2.0, "1": 2.0}


def _character_prior(alphabet: str) -> npt.NDArray[np.float32]:
    return np.array([DIGIT_PRIOR.get(ch, 1.0) for ch in alphabet], np.float32)


class PlateRecognizer:
    """fast-plate-ocr's ``LicensePlateRecognizer`` from a local model, or from a hub name.

    ``model`` is an ONNX file with its plate config ``plate_config`` (the offline
    directory), or a hub name such as ``"cct-xs-v1-global-model"`` that fast-plate-ocr
    downloads on first use (machines with internet; ``plate_config`` is then ignored).
    Crops are BGR (as OpenCV gives them) and converted to the model's colour mode here.
    """

    def __init__(
        self, model: str | Path, plate_config: str | Path | None = None, *, digit_prior: bool = True
    ) -> None:
        import onnxruntime as ort
        from fast_plate_ocr import LicensePlateRecognizer

        self._lock = threading.Lock()
        # ONNX Runtime's worker threads spin for a while after each run by default; on a
        # 2-core box they then steal the CPU from cv2.dnn (detection 150 ms instead of 55 ms
        # at 640x360 when OCR runs between detections).
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        text = str(model)
        try:
            if isinstance(model, str) and _is_hub_name(model) and not Path(model).exists():
                self.model_name = model
                self._ocr = LicensePlateRecognizer(
                    hub_ocr_model=model,  # type: ignore[arg-type]
                    device="cpu",
                    sess_options=options,
                )
            else:
                path = _model_file(Path(model), "OCR model")
                if plate_config is None:
                    raise LprModelError(f"OCR model {path} needs its plate config file")
                config = _model_file(Path(plate_config), "OCR plate config")
                self.model_name = path.stem
                self._ocr = LicensePlateRecognizer(
                    onnx_model_path=path,
                    plate_config_path=config,
                    device="cpu",
                    sess_options=options,
                )
        except LprModelError:
            raise
        except Exception as err:  # onnxruntime, yaml, pydantic, network: all mean "cannot load"
            where = text if plate_config is None else f"{text} (config {plate_config})"
            raise LprModelError(f"OCR model cannot be loaded: {where}: {err}") from err
        self._gray = self._ocr.config.image_color_mode == "grayscale"
        alphabet = self._ocr.config.alphabet
        self._prior = (
            _character_prior(alphabet) if digit_prior else np.ones(len(alphabet), np.float32)
        )

    def read(self, crops_bgr: Sequence[Any]) -> list[OcrRead]:
        """One read per crop, in order, in one batch through the model."""
        if not crops_bgr:
            return []
        config = self._ocr.config
        batch = np.stack(
            [
                resize_image(
                    self._prepare(c, i),
                    config.img_height,
                    config.img_width,
                    image_color_mode=config.image_color_mode,
                    keep_aspect_ratio=config.keep_aspect_ratio,
                    interpolation_method=config.interpolation,
                    padding_color=config.padding_color,
                )
                for i, c in enumerate(crops_bgr)
            ]
        ).astype(np.uint8)
        if batch.ndim == 3:  # grayscale models take (N, H, W, 1)
            batch = batch[..., None]
        with self._lock:
            output = self._ocr.model.run([self._ocr.plate_output_name], {"input": batch})[0]
        slots = np.asarray(output, np.float32).reshape(len(batch), config.max_plate_slots, -1)
        slots = slots * self._prior
        slots /= slots.sum(axis=-1, keepdims=True)
        reads: list[OcrRead] = []
        for prediction in postprocess_output(
            slots,
            max_plate_slots=config.max_plate_slots,
            model_alphabet=config.alphabet,
            pad_char=config.pad_char,
            return_confidence=True,
        ):
            text = prediction.plate
            probs = prediction.char_probs
            chars = tuple(float(p) for p in probs[: len(text)]) if probs is not None else ()
            reads.append(
                OcrRead(text=text, confidence=min(chars, default=0.0), char_confidences=chars)
            )
        return reads

    def _prepare(self, image: Any, index: int) -> Image:
        bgr = as_bgr(image, f"crop {index}")
        if self._gray:
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def model_paths(cfg: LprConfig) -> ModelPaths:
    """The model files of ``[lpr]``, looked up as :func:`~drivers.camera.models.find_models` says."""
    return find_models(
        detector=cfg.detector_model,
        ocr=cfg.ocr_model,
        ocr_config=cfg.ocr_config,
        models_dir=cfg.models_dir,
        state_dir=cfg.state_dir or ".",
        development=lpr_directory(cfg.directory),
        need_ocr_files=not _is_hub_name(cfg.ocr_model),
    )


# -- the pipeline -------------------------------------------------------------------------


class LprPipeline:
    """Detect plates in a frame's region of interest, crop each padded box, read them in one batch.

    Each plate is read on crops at ``paddings`` (by default the configured padding and 5
    points more) and the most confident read is kept, with that crop. Reads come back most
    confident first; a detection the OCR reads as nothing is dropped. Judging a read
    (``[lpr] min_confidence``, plate formats, voting over frames) is the caller's job.
    """

    def __init__(
        self,
        detector: PlateDetector,
        recognizer: PlateRecognizer,
        *,
        padding: float = 0.10,
        extra_paddings: Sequence[float] = (0.05,),
        verify_confidence: float = 0.6,
    ) -> None:
        self.detector = detector
        self.recognizer = recognizer
        self.verify_confidence = verify_confidence  # a tentative detection's read needs this
        self.paddings = (padding, *(padding + extra for extra in extra_paddings))

    @classmethod
    def from_config(cls, cfg: LprConfig, **detector_options: Any) -> LprPipeline:
        """The pipeline of ``[lpr]``, its models found as :func:`~drivers.camera.models.find_models`
        says (a missing set raises :class:`LprModelError` naming the install command).
        ``detector_options`` override :class:`PlateDetector` settings (``max_side_px``...)."""
        hub = _is_hub_name(cfg.ocr_model)
        paths = model_paths(cfg)
        options: dict[str, Any] = {
            "score_threshold": cfg.detection_score,
            "min_plate_width_px": cfg.min_plate_width_px,
            "max_side_px": cfg.max_side_px,
            "first_pass_scale": cfg.first_pass_scale,
            "upscale": cfg.upscale,
            "refine": cfg.refine,
            "candidate_score": cfg.candidate_score,
            "max_candidates": cfg.max_candidates,
            "refine_plate_px": float(cfg.refine_plate_px),
            **detector_options,
        }
        detector = PlateDetector(paths.detector, **options)
        if hub:
            recognizer = PlateRecognizer(cfg.ocr_model)
        else:
            recognizer = PlateRecognizer(paths.ocr, paths.ocr_config)
        return cls(detector, recognizer, padding=cfg.padding, verify_confidence=cfg.min_confidence)

    def process(self, frame_bgr: Any, roi: Sequence[int] | None = None) -> list[FrameRead]:
        frame = as_bgr(frame_bgr)
        detections = self.detector.detect(frame, roi)
        return self.read_boxes(frame, detections)

    def read_boxes(self, frame_bgr: Any, detections: Sequence[Detection]) -> list[FrameRead]:
        """OCR on given plate boxes (e.g. ground truth), with the pipeline's paddings."""
        frame = as_bgr(frame_bgr)
        crops: list[Image] = []
        owners: list[int] = []
        for n, detection in enumerate(detections):
            views = [padded_box(detection.box, padding, frame.shape) for padding in self.paddings]
            if detection.coarse is not None and detection.coarse != detection.box:
                views.append(padded_box(detection.coarse, self.paddings[0], frame.shape))
            for box in views:
                if box[2] >= 2 and box[3] >= 2:
                    crops.append(crop(frame, box))
                    owners.append(n)
        if not crops:
            return []
        best: dict[int, tuple[OcrRead, Image]] = {}
        for owner, image, read in zip(owners, crops, self.recognizer.read(crops), strict=True):
            if owner not in best or read.confidence > best[owner][0].confidence:
                best[owner] = (read, image)
        reads = [
            FrameRead(
                text=read.text,
                confidence=read.confidence,
                char_confidences=read.char_confidences,
                box=detections[n].box,
                detection_score=detections[n].score,
                crop=image.copy(),
            )
            for n, (read, image) in best.items()
            if read.text
            and (not detections[n].tentative or read.confidence >= self.verify_confidence)
        ]
        reads.sort(key=lambda r: r.confidence, reverse=True)
        return reads
