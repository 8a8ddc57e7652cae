"""Accuracy and speed of the plate pipeline on a labelled folder (``lpr eval``, bench, tests).

Two folder formats are read:

* **openalpr** (``openalpr/benchmarks`` endtoend): one ``<name>.txt`` per image holding
  ``file<TAB>x<TAB>y<TAB>w<TAB>h<TAB>PLATE`` (one line per plate; the first is used).
  Whole frames: detection + OCR, exactly as the lane camera runs them.
* **crops** (fast-plate-ocr's benchmark): ``annotations.csv`` with ``image_path,plate_text``,
  each image a plate crop. OCR only; detection recall is then ``None``.

Figures, per labelled image that could be read:

* ``exact``: the plate read equals the label. In a frame, the read compared is the one whose
  box overlaps the labelled box most (a frame may show other cars' plates, which are not
  errors); no overlapping read is a miss.
* ``exact_top``: the frame's most confident read equals the label (what a lane with a tight
  region of interest acts on).
* ``exact_ignoring_o0_i1``: as ``exact`` with O/0 and I/1 counted as equal (the site's plate
  rules settle those by position later).
* ``char_accuracy``: 1 - edit distance / label length, at least 0, summed over the labels'
  characters (a missed plate scores 0).
* ``detection_recall``: a detection with IoU >= 0.5 with the labelled box.
* ``ms_per_frame_p50`` / ``_p99``: time in the pipeline per image, decoding excluded.
"""

from __future__ import annotations

import csv
import math
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

import cv2

from drivers.camera.lpr import Detection, LprPipeline, iou

IOU_MATCH = 0.5  # detection recall
_CONFUSABLE = str.maketrans("OI", "01")


@dataclass(frozen=True)
class Sample:
    image: Path
    plate: str
    box: tuple[int, int, int, int] | None  # None: the image is the plate crop


@dataclass(frozen=True)
class Miss:
    """An image whose labelled plate was not read exactly, and the likely reason."""

    image: str
    label: str
    read: str  # "" when nothing was read on the labelled plate
    why: str  # no plate detected | detected but not on the label's box | O/0 or I/1 | n edits


def exact_with_errata(
    result: EvalResult,
    samples: Sequence[Sample],
    errata: Mapping[tuple[str, str], str],
    set_name: str,
) -> float | None:
    """The exact rate of ``result`` (run on the published labels of ``samples``) against the
    corrected labels, without running the pipeline again: a corrected image counts when its
    read is the correction, and no longer counts for having matched the published label."""
    if not result.n:
        return None
    missed = {m.image: m.read for m in result.misses}
    hits = round((result.exact or 0.0) * result.n)
    for sample in samples:
        corrected = errata.get((set_name, sample.image.name))
        if corrected is None or corrected == sample.plate:
            continue
        if sample.image.name not in missed:
            hits -= 1  # read as the published label, which the photograph contradicts
        elif missed[sample.image.name] == corrected:
            hits += 1
    return hits / result.n


def _why(sample: Sample, text: str, detected: bool) -> str:
    if sample.box is not None and not detected and not text:
        return "no plate detected"
    if not text:
        return "no read on the labelled plate"
    if text.translate(_CONFUSABLE) == sample.plate.translate(_CONFUSABLE):
        return "O/0 or I/1 only"
    edits = edit_distance(text, sample.plate)
    return f"{edits} edit{'s' if edits > 1 else ''}"


@dataclass(frozen=True)
class EvalResult:
    n: int
    unreadable: int
    exact: float | None
    exact_top: float | None
    exact_ignoring_o0_i1: float | None
    char_accuracy: float | None
    detection_recall: float | None
    ms_per_frame_p50: float | None
    ms_per_frame_p99: float | None
    misses: tuple[Miss, ...]

    @property
    def misreads(self) -> tuple[tuple[str, str, str], ...]:
        """(image name, label, read) of every miss."""
        return tuple((m.image, m.label, m.read) for m in self.misses)

    def as_json(self, misses: bool = False) -> dict[str, Any]:
        extra = {"misses": [m.__dict__ for m in self.misses]} if misses else {}
        return {
            **extra,
            "n": self.n,
            "exact": self.exact,
            "char_accuracy": self.char_accuracy,
            "detection_recall": self.detection_recall,
            "ms_per_frame_p50": self.ms_per_frame_p50,
            "ms_per_frame_p99": self.ms_per_frame_p99,
            "exact_top": self.exact_top,
            "exact_ignoring_o0_i1": self.exact_ignoring_o0_i1,
            "unreadable": self.unreadable,
        }


def normalize(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


def load_errata(path: str | Path) -> dict[tuple[str, str], str]:
    """Label corrections, ``(set folder name, image name) -> corrected plate``, from a
    tab-separated file of ``set, image, published, corrected, why`` (``#`` comments)."""
    corrections: dict[tuple[str, str], str] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) < 4:
            raise ValueError(f"{path}:{number}: expected set, image, published, corrected, why")
        corrections[(fields[0], fields[1])] = normalize(fields[3])
    return corrections


def load_samples(
    directory: str | Path,
    limit: int | None = None,
    errata: Mapping[tuple[str, str], str] | None = None,
) -> list[Sample]:
    """The labelled images of ``directory`` in a fixed (sorted) order, the first ``limit``;
    ``errata`` (see :func:`load_errata`) replaces the labels it names."""
    folder = Path(directory)
    if not folder.is_dir():
        raise ValueError(f"not a directory: {folder}")
    samples: list[Sample] = []
    annotations = folder / "annotations.csv"
    if annotations.is_file():
        with annotations.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"image_path", "plate_text"} <= set(reader.fieldnames):
                raise ValueError(f"{annotations}: expected the columns image_path,plate_text")
            for row in reader:
                samples.append(
                    Sample(folder / row["image_path"], normalize(row["plate_text"]), None)
                )
        samples.sort(key=lambda s: str(s.image))
    else:
        for label in sorted(folder.glob("*.txt")):
            sample = _openalpr_sample(label)
            if sample is not None:
                samples.append(sample)
    if not samples:
        raise ValueError(
            f"{folder}: no labelled images (expected <name>.txt files or annotations.csv)"
        )
    if errata:
        samples = [
            replace(s, plate=errata.get((folder.name, s.image.name), s.plate)) for s in samples
        ]
    return samples[:limit] if limit is not None else samples


def _openalpr_sample(label: Path) -> Sample | None:
    for line in label.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.strip().split("\t")
        if len(fields) < 6:
            continue
        try:
            x, y, w, h = (int(float(v)) for v in fields[1:5])
        except ValueError:
            continue
        return Sample(label.parent / fields[0], normalize(fields[5]), (x, y, w, h))
    return None


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class Progress:
    """A one-line progress bar on a stream (stderr): ``[#####.....] 45/222``."""

    def __init__(self, total: int, label: str = "", stream: TextIO | None = None) -> None:
        self.total, self.label = total, label
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self._drawn = -1

    def step(self) -> None:
        self.done += 1
        width = 30
        filled = width * self.done // max(1, self.total)
        if filled != self._drawn or self.done == self.total:
            self._drawn = filled
            bar = "#" * filled + "." * (width - filled)
            self.stream.write(f"\r{self.label}[{bar}] {self.done}/{self.total}")
            self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def lane_roi(
    shape: tuple[int, ...], box: tuple[int, int, int, int], name: str, size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """A ``size`` (w, h) region of the frame holding the labelled plate, as a lane camera's
    region of interest would: the plate's centre lands 20-80 % across it, at a place fixed by
    the image's name (so runs compare), and the region stays inside the frame."""
    height, width = shape[:2]
    w, h = min(size[0], width), min(size[1], height)
    x, y, bw, bh = box
    seed = zlib.crc32(name.encode())
    fx = 0.2 + 0.6 * (seed % 1000) / 1000
    fy = 0.2 + 0.6 * (seed // 1000 % 1000) / 1000
    rx = min(max(0, int(x + bw / 2 - fx * w)), width - w)
    ry = min(max(0, int(y + bh / 2 - fy * h)), height - h)
    return (rx, ry, w, h)


def evaluate(
    pipeline: LprPipeline,
    samples: Iterable[Sample],
    *,
    on_step: Callable[[], None] | None = None,
    roi_size: tuple[int, int] | None = None,
) -> EvalResult:
    """Run the pipeline over ``samples``; with ``roi_size`` (w, h) each frame is processed on
    a lane-sized region around its labelled plate (see :func:`lane_roi`) instead of whole."""
    exact = exact_top = loose = chars_right = chars_total = found = framed = n = unreadable = 0
    times: list[float] = []
    misses: list[Miss] = []
    for sample in samples:
        image = cv2.imread(str(sample.image), cv2.IMREAD_COLOR)
        if image is None or image.size == 0:
            unreadable += 1
            if on_step:
                on_step()
            continue
        n += 1
        started = time.perf_counter()
        if sample.box is None:
            ocr = pipeline.recognizer.read([image])[0]
            reads_text, top_text, detected = ocr.text, ocr.text, False
        else:
            roi = None
            if roi_size is not None:
                roi = lane_roi(image.shape, sample.box, sample.image.name, roi_size)
            detections = pipeline.detector.detect(image, roi)
            reads = pipeline.read_boxes(image, detections)  # = pipeline.process(image, roi)
            framed += 1
            reads_text, top_text = _match(reads, sample.box)
            detected = detections_recall(detections, sample.box)
        times.append((time.perf_counter() - started) * 1000)
        found += detected
        exact += reads_text == sample.plate
        exact_top += top_text == sample.plate
        loose += reads_text.translate(_CONFUSABLE) == sample.plate.translate(_CONFUSABLE)
        chars_right += max(0, len(sample.plate) - edit_distance(reads_text, sample.plate))
        chars_total += len(sample.plate)
        if reads_text != sample.plate:
            why = _why(sample, reads_text, detected)
            misses.append(Miss(sample.image.name, sample.plate, reads_text, why))
        if on_step:
            on_step()
    return EvalResult(
        n=n,
        unreadable=unreadable,
        exact=exact / n if n else None,
        exact_top=exact_top / n if n else None,
        exact_ignoring_o0_i1=loose / n if n else None,
        char_accuracy=chars_right / chars_total if chars_total else None,
        detection_recall=found / framed if framed else None,
        ms_per_frame_p50=percentile(times, 50) if times else None,
        ms_per_frame_p99=percentile(times, 99) if times else None,
        misses=tuple(misses),
    )


def _match(reads: Sequence[Any], box: tuple[int, int, int, int]) -> tuple[str, str]:
    """(the read overlapping the labelled plate most or "", the most confident read or "")."""
    top = reads[0].text if reads else ""
    overlaps = [(iou(r.box, box), r) for r in reads]
    overlaps = [(o, r) for o, r in overlaps if o > 0]
    if not overlaps:
        return "", top
    return max(overlaps, key=lambda pair: pair[0])[1].text, top


def detections_recall(detections: Sequence[Detection], box: tuple[int, int, int, int]) -> bool:
    return any(iou(d.box, box) >= IOU_MATCH for d in detections)
