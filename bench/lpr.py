"""Plate recognition benchmark: detection time, OCR throughput, accuracy on the labelled sets.

    .venv/bin/python bench/lpr.py [--limit N] [--frames 30] [--no-accuracy]

Reads the models and the labelled images of ``[lpr] directory`` (``CARPARK_LPR_DIR``,
default ``../shared/lpr``), and prints:

1. detection ms per frame (p50 / p99) on a lane-sized region of interest (640x360 around
   the plate of 1280x720 frames of the US set) at several ``max_side_px``, and on the whole
   1280x720 frames for comparison;
2. OCR plates per second at batch 1, 8 and 32 (ground-truth crops padded 10 %, colour
   conversion and resizing included);
3. the accuracy table of the whole pipeline (detection + OCR, as ``lpr eval``) on each data
   set: the configured pipeline on whole frames, then the variants worth comparing.

Timings are wall-clock on this machine, single process, after a warm-up; other load on the
machine shows in them (the p99 first).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# bench/ holds ocpp.py: keep this folder off sys.path so ``import ocpp`` is the library.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2

from drivers.camera.lpr import LprPipeline, PlateDetector, padded_box
from drivers.camera.lpr_eval import Sample, evaluate, lane_roi, load_samples, percentile
from gateway.config import LprConfig, lpr_directory

LANE_ROI = (640, 360)


def detection_times(cfg: LprConfig, samples: list[Sample], frames: int) -> None:
    hd = [s for s in samples if cv2.imread(str(s.image)).shape[:2] == (720, 1280)][:frames]
    images = [(cv2.imread(str(s.image)), s) for s in hd]
    print(f"\n== Detection, ms per frame (p50 / p99 over {len(images)} US frames of 1280x720)")
    cases = [
        (f"lane ROI {LANE_ROI[0]}x{LANE_ROI[1]}", 640, LANE_ROI),
        (f"lane ROI {LANE_ROI[0]}x{LANE_ROI[1]}", 480, LANE_ROI),
        (f"lane ROI {LANE_ROI[0]}x{LANE_ROI[1]}", 320, LANE_ROI),
        ("full frame 1280x720", 960, None),
        ("full frame 1280x720", 1280, None),
    ]
    directory = Path(cfg.directory)
    for label, side, roi_size in cases:
        detector = PlateDetector(
            directory / cfg.detector_model,
            score_threshold=cfg.detection_score,
            min_plate_width_px=cfg.min_plate_width_px,
            max_side_px=side,
        )
        detector.detect(images[0][0])  # warm-up
        times: list[float] = []
        for image, sample in images:
            assert sample.box is not None
            roi = (
                lane_roi(image.shape, sample.box, sample.image.name, roi_size) if roi_size else None
            )
            started = time.perf_counter()
            detector.detect(image, roi)
            times.append((time.perf_counter() - started) * 1000)
        print(
            f"  {label:<22} max_side_px {side:>4}:"
            f"  p50 {percentile(times, 50):6.1f}  p99 {percentile(times, 99):6.1f}"
        )


def ocr_throughput(pipeline: LprPipeline, samples: list[Sample]) -> None:
    crops = []
    for s in samples:
        image = cv2.imread(str(s.image))
        if image is not None and s.box is not None:
            x, y, w, h = padded_box(s.box, 0.10, image.shape)
            crops.append(image[y : y + h, x : x + w])
    crops = (crops * (256 // max(1, len(crops)) + 1))[:256]
    print(f"\n== OCR, plates per second ({len(crops)} crops, BGR->RGB and resize included)")
    recognizer = pipeline.recognizer
    recognizer.read(crops[:32])  # warm-up
    for batch in (1, 8, 32):
        rounds = []
        for _ in range(3):
            started = time.perf_counter()
            for i in range(0, len(crops), batch):
                recognizer.read(crops[i : i + batch])
            rounds.append(len(crops) / (time.perf_counter() - started))
        print(f"  batch {batch:>2}: {statistics.median(rounds):6.0f} plates/s")


def accuracy_table(cfg: LprConfig, data: Path, limit: int | None) -> None:
    print("\n== Accuracy, whole pipeline (detection + OCR; ar-crops: OCR only)")
    header = (
        f"  {'data set':<13} {'variant':<36} {'n':>4} {'exact':>6} {'O0/I1':>6}"
        f" {'chars':>6} {'recall':>6} {'p50 ms':>7} {'p99 ms':>7}"
    )
    print(header)
    default = LprPipeline.from_config(cfg)
    variants: list[tuple[str, str, LprPipeline, tuple[int, int] | None]] = [
        ("openalpr-us", f"configured ({cfg.max_side_px} px)", default, None),
        ("openalpr-eu", f"configured ({cfg.max_side_px} px)", default, None),
        ("ar-crops", "configured", default, None),
        ("openalpr-eu", f"upscaled to {cfg.max_side_px} px", _with(cfg, upscale=True), None),
        (
            "openalpr-eu",
            f"upscaled to {cfg.max_side_px} px + refine",
            _with(cfg, upscale=True, refine=True),
            None,
        ),
        ("openalpr-us", f"+ refine ({cfg.max_side_px} px)", _with(cfg, refine=True), None),
        ("openalpr-us", "full frame 1280 px", _with(cfg, max_side_px=1280), None),
    ]
    for side in (640, 480):
        lane = _with(cfg, max_side_px=side)
        for name in ("openalpr-us", "openalpr-eu"):
            variants.append((name, f"lane ROI 640x360, {side} px", lane, LANE_ROI))
    for name, label, pipeline, roi_size in variants:
        folder = data / name
        if not folder.is_dir():
            print(f"  {name:<13} (missing: {folder})")
            continue
        result = evaluate(pipeline, load_samples(folder, limit), roi_size=roi_size)
        print(
            f"  {name:<13} {label:<36} {result.n:>4} {_pct(result.exact)} "
            f"{_pct(result.exact_ignoring_o0_i1)} {_pct(result.char_accuracy)} "
            f"{_pct(result.detection_recall)} {_ms(result.ms_per_frame_p50)} {_ms(result.ms_per_frame_p99)}",
            flush=True,
        )


def _with(cfg: LprConfig, **options: object) -> LprPipeline:
    return LprPipeline.from_config(cfg, **options)


def _pct(value: float | None) -> str:
    return f"{'n/a':>6}" if value is None else f"{value * 100:6.1f}"


def _ms(value: float | None) -> str:
    return f"{'n/a':>7}" if value is None else f"{value:7.1f}"


def trigger_to_read(directory: str, vehicles: int, max_side: int) -> None:
    """A camera lane as the daemon runs it: presence loop on -> voted PlateRead, per vehicle.

    The folder camera shows the lane-sized crop of one photograph (as a fixed lane camera
    would frame the plate zone); the loop arms the camera, the capture and LPR threads read
    frames until the vote is confident, and the lane gets its credential.
    """
    import shutil
    import tempfile

    from gateway.logging import setup_logging
    from tests.conftest import ManualClock, config_from, start_daemon
    from tests.peers import wait_for

    setup_logging("warning", "json")
    tmp = Path(tempfile.mkdtemp(prefix="carpark-bench-lpr-"))
    sample = next(
        s for s in load_samples(Path(directory) / "data" / "openalpr-eu") if s.plate == "FWE50"
    )
    frame = cv2.imread(str(sample.image))
    assert sample.box is not None
    x, y, w, h = lane_roi(frame.shape, sample.box, sample.image.name, LANE_ROI)
    (tmp / "cam").mkdir()
    cv2.imwrite(str(tmp / "cam" / "lane.jpg"), frame[y : y + h, x : x + w])
    sim = {"driver": "simulated"}
    config = config_from(
        tmp,
        lanes=[
            {
                "id": "entry-1",
                "kind": "entry",
                "barrier": {"driver": "simulated", "travel_s": 0.01},
                "presence_loop": sim,
                "safety_loop": sim,
                "camera": {
                    "driver": "folder",
                    "folder": str(tmp / "cam"),
                    "fps": 30,
                    "min_reads": 2,
                },
            }
        ],
        lpr={"directory": directory, "max_side_px": max_side, "evidence_dir": str(tmp / "ev")},
    )
    daemon, thread = start_daemon(config, ManualClock())
    assert daemon.lanes is not None and daemon._loop is not None
    lane = daemon.lanes.get("entry-1")
    latencies = []
    try:
        time.sleep(1.0)  # the capture thread has frames
        for _ in range(vehicles):
            before, decided = lane.last_read_latency_ms, lane.state.last_decision
            daemon._loop.call_soon_threadsafe(lane.devices.presence_loop.set, True)
            wait_for(lambda b=before: lane.last_read_latency_ms != b, timeout=10, interval=0.002)
            latencies.append(lane.last_read_latency_ms)
            # The vehicle drives through once the lane has decided (the first entry is
            # granted, the repeats are refused by anti-passback): safety loop on, presence
            # off, safety off, so the lane never waits on its back-out timer.
            wait_for(
                lambda d=decided: (
                    lane.state.last_decision is not d and lane.state.phase in ("idle", "granted")
                ),
                timeout=10,
            )
            for loop, value in (
                ("safety_loop", True),
                ("presence_loop", False),
                ("safety_loop", False),
            ):
                # One change at a time: the simulated loop reports its level, not pulses.
                daemon._loop.call_soon_threadsafe(getattr(lane.devices, loop).set, value)
                field = "safety" if loop == "safety_loop" else "presence"
                wait_for(lambda f=field, v=value: getattr(lane.state, f) == v, timeout=10)
            wait_for(lambda: lane.state.phase == "idle" and not lane.state.presence, timeout=10)
    finally:
        daemon.request_stop()
        thread.join(15)
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"\n== Trigger (presence loop) -> voted PlateRead, {vehicles} vehicles, lane ROI {LANE_ROI[0]}x"
        f"{LANE_ROI[1]}, max_side_px {max_side}, 2 agreeing reads or one at >= 0.95"
    )
    print(
        f"  p50 {percentile(latencies, 50):7.1f} ms  p99 {percentile(latencies, 99):7.1f} ms"
        f"  max {max(latencies):7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="images per data set (default all)")
    parser.add_argument("--frames", type=int, default=30, help="frames for the detection timings")
    parser.add_argument("--no-accuracy", action="store_true", help="timings only")
    parser.add_argument(
        "--vehicles", type=int, default=40, help="vehicles for the trigger-to-read latency"
    )
    args = parser.parse_args()
    directory = str(lpr_directory(os.environ.get("CARPARK_LPR_DIR") or LprConfig().directory))
    cfg = LprConfig(directory=directory)
    data = Path(directory) / "data"
    us = load_samples(data / "openalpr-us")
    print(
        f"carpark-gateway LPR benchmark: {os.cpu_count()} CPUs, OpenCV {cv2.__version__},"
        f" cv2 threads {cv2.getNumThreads()}, models in {Path(directory).resolve()}"
    )
    print(
        f"[lpr] detection_score {cfg.detection_score}, min_plate_width_px {cfg.min_plate_width_px},"
        f" padding {cfg.padding}, max_side_px {cfg.max_side_px}"
    )
    if hasattr(os, "getloadavg"):
        print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    detection_times(cfg, us, args.frames)
    ocr_throughput(LprPipeline.from_config(cfg), us[:64])
    trigger_to_read(directory, args.vehicles, 480)
    if not args.no_accuracy:
        accuracy_table(cfg, data, args.limit)
    if hasattr(os, "getloadavg"):
        print("\nload average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
