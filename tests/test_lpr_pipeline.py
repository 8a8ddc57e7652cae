"""The plate pipeline on the real labelled images of ``[lpr] directory`` (``../shared/lpr``).

Accuracy floors sit a little under what the pipeline measures on fixed subsets (the first
images of each set in name order), so that a regression in detection, cropping or OCR
fails here. The whole sets are measured by ``bench/lpr.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.camera.lpr import (
    Detection,
    LprModelError,
    LprPipeline,
    PlateDetector,
    PlateRecognizer,
    padded_box,
)
from drivers.camera.lpr_eval import Sample, evaluate, load_samples
from gateway.config import LprConfig, lpr_directory

ROOT = Path(__file__).resolve().parent.parent
LPR_DIR = lpr_directory(LprConfig().directory).resolve()  # ../shared/lpr: models and photographs
DATA = LPR_DIR / "data"
MODELS = LPR_DIR / "models"
SUBSET = 60  # images per set: keeps this file well under a minute on 2 cores

pytestmark = pytest.mark.skipif(
    not (LPR_DIR / "models").is_dir() or not DATA.is_dir(),
    reason=f"no LPR models and labelled images at {LPR_DIR} (../shared/lpr)",
)


@pytest.fixture(scope="module")
def config() -> LprConfig:
    return LprConfig(directory=str(LPR_DIR))


@pytest.fixture(scope="module")
def pipeline(config: LprConfig) -> LprPipeline:
    return LprPipeline.from_config(config)


def subset(name: str) -> list[Sample]:
    return load_samples(DATA / name, SUBSET)


# -- accuracy -----------------------------------------------------------------------------

# OCR on ground-truth crops, the pipeline's two paddings (10 % and 15 %) voting by
# confidence, with the digit prior; ar-crops are crops already. Measured on these subsets:
# US 55/60, EU 55/60 (4 of the misses are labels with the letter O where the plate has a 0,
# see bench/lpr_label_errata.tsv), AR 55/60. Each floor allows one more miss.
CROP_FLOORS = {
    "openalpr-us": 0.90,
    "openalpr-eu": 0.90,
    "ar-crops": 0.90,
}


@pytest.mark.parametrize("name", sorted(CROP_FLOORS))
def test_ocr_on_ground_truth_crops(pipeline: LprPipeline, name: str) -> None:
    exact = n = 0
    misreads = []
    for sample in subset(name):
        image = cv2.imread(str(sample.image))
        assert image is not None, sample.image
        if sample.box is None:  # already a crop
            text = pipeline.recognizer.read([image])[0].text
        else:
            reads = pipeline.read_boxes(image, [Detection(box=sample.box, score=1.0)])
            text = reads[0].text if reads else ""
        n += 1
        exact += text == sample.plate
        if text != sample.plate:
            misreads.append((sample.plate, text))
    print(f"{name}: OCR on crops {exact}/{n} = {exact / n:.3f}; misreads {misreads}")
    assert exact / n >= CROP_FLOORS[name], misreads


# Whole pipeline at the defaults (two-pass detection on the whole frame, then OCR).
# Measured on these subsets: US exact 51/60 (0.850), recall 58/60, characters 0.944; EU
# exact 55/60 (0.917; 4 misses are the label errors above), recall 59/60, characters 0.976.
# Floors: one image less. The whole sets are bench/lpr.py's.
PIPELINE_FLOORS = {  # name: (exact, detection recall, character accuracy)
    "openalpr-us": (0.83, 0.95, 0.93),
    "openalpr-eu": (0.90, 0.96, 0.96),
}


@pytest.mark.parametrize("name", sorted(PIPELINE_FLOORS))
def test_detect_and_read_whole_frames(pipeline: LprPipeline, name: str) -> None:
    result = evaluate(pipeline, subset(name))
    print(f"{name}: {result.as_json()}; misreads {result.misreads}")
    exact, recall, chars = PIPELINE_FLOORS[name]
    assert result.n == SUBSET and result.unreadable == 0
    assert result.exact is not None and result.exact >= exact, result.misreads
    assert result.detection_recall is not None and result.detection_recall >= recall
    assert result.char_accuracy is not None and result.char_accuracy >= chars


def test_boxes_are_full_frame_pixels_inside_the_roi(pipeline: LprPipeline) -> None:
    sample = subset("openalpr-us")[0]
    image = cv2.imread(str(sample.image))
    assert sample.box is not None
    x, y, w, h = sample.box
    roi = (max(0, x - 200), max(0, y - 120), 480, 270)
    reads = pipeline.process(image, roi=roi)
    assert [r.text for r in reads][:1] == [sample.plate]
    rx, ry, rw, rh = reads[0].box
    assert abs(rx - x) < w * 0.3 and abs(ry - y) < h * 0.5  # the plate, in frame coordinates
    assert roi[0] <= rx and rx + rw <= roi[0] + roi[2] and ry + rh <= roi[1] + roi[3]
    crop = reads[0].crop
    assert crop.ndim == 3 and crop.shape[2] == 3 and crop.shape[1] >= rw
    assert 0.0 < reads[0].confidence <= 1.0
    assert reads[0].confidence == min(reads[0].char_confidences)
    assert len(reads[0].char_confidences) == len(reads[0].text)
    # A region away from the plate does not see it.
    assert all(r.text != sample.plate for r in pipeline.process(image, roi=(0, 0, 64, 64)))


def test_batched_ocr_matches_one_at_a_time(pipeline: LprPipeline) -> None:
    crops = []
    for sample in subset("openalpr-eu")[:8]:
        image = cv2.imread(str(sample.image))
        assert sample.box is not None
        x, y, w, h = padded_box(sample.box, 0.1, image.shape)
        crops.append(image[y : y + h, x : x + w])
    batched = pipeline.recognizer.read(crops)
    single = [pipeline.recognizer.read([c])[0] for c in crops]
    assert [r.text for r in batched] == [r.text for r in single]
    assert pipeline.recognizer.read([]) == []


# -- broken input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (None, "None"),
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((10, 10, 5), np.uint8), "channels"),
        ("frame.jpg", "numpy array"),
    ],
)
def test_bad_frames_are_value_errors(pipeline: LprPipeline, frame: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pipeline.process(frame)


def test_tiny_gray_and_bgra_frames_give_no_plates(pipeline: LprPipeline) -> None:
    assert pipeline.process(np.zeros((1, 1, 3), np.uint8)) == []
    assert pipeline.process(np.zeros((1, 1), np.uint8)) == []
    assert pipeline.process(np.full((240, 320), 128, np.uint8)) == []
    assert pipeline.process(np.zeros((240, 320, 4), np.uint8)) == []
    assert pipeline.process(np.zeros((2000, 3, 3), np.uint8)) == []


def test_bad_regions_of_interest(pipeline: LprPipeline) -> None:
    frame = np.zeros((240, 320, 3), np.uint8)
    with pytest.raises(ValueError, match="outside"):
        pipeline.process(frame, roi=(400, 0, 100, 100))
    with pytest.raises(ValueError, match="no area"):
        pipeline.process(frame, roi=(0, 0, 0, 100))
    with pytest.raises(ValueError, match=r"\(x, y, w, h\)"):
        pipeline.process(frame, roi=(0, 0, 100))  # type: ignore[arg-type]
    assert pipeline.process(frame, roi=(300, 200, 500, 500)) == []  # clipped to the frame


def test_unreadable_image_file(tmp_path: Path, pipeline: LprPipeline) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    image = cv2.imread(str(broken))
    assert image is None
    with pytest.raises(ValueError, match="None"):
        pipeline.process(image)
    with pytest.raises(ValueError, match="crop 0"):
        pipeline.recognizer.read([image])


def test_non_plate_images_give_no_confident_plate(pipeline: LprPipeline, config: LprConfig) -> None:
    rng = np.random.default_rng(6)
    noise = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    sky = np.zeros((360, 640, 3), np.uint8)
    sky[:] = np.linspace(255, 160, 360, dtype=np.uint8)[:, None, None]  # a blue-grey gradient
    sky[:, :, 2] = sky[:, :, 2] // 2
    for frame in (noise, sky):
        assert [r for r in pipeline.process(frame) if r.confidence >= config.min_confidence] == []
    # The OCR alone on crops that are not plates is not confident either.
    for read in pipeline.recognizer.read([noise[:64, :128], sky[:64, :128]]):
        assert read.confidence < config.min_confidence, read


# -- models -------------------------------------------------------------------------------


def test_missing_models_are_named(tmp_path: Path, config: LprConfig) -> None:
    missing = LprConfig(directory=str(tmp_path), detector_model="models/nope.onnx")
    with pytest.raises(LprModelError, match=r"plate models not found: models/nope\.onnx"):
        LprPipeline.from_config(missing)
    with pytest.raises(LprModelError, match=r"plate detector model not found: .*nope\.onnx"):
        PlateDetector(tmp_path / "nope.onnx")
    with pytest.raises(LprModelError, match=r"OCR model not found: .*absent\.onnx"):
        PlateRecognizer(tmp_path / "absent.onnx", MODELS / config.ocr_config)
    with pytest.raises(LprModelError, match=r"OCR plate config not found: .*absent\.yaml"):
        PlateRecognizer(MODELS / config.ocr_model, tmp_path / "absent.yaml")


def test_corrupt_models_are_named(tmp_path: Path, config: LprConfig) -> None:
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage, not a protobuf" * 10)
    with pytest.raises(LprModelError, match=r"corrupt\.onnx"):
        PlateDetector(corrupt)
    with pytest.raises(LprModelError, match=r"corrupt\.onnx"):
        PlateRecognizer(corrupt, MODELS / config.ocr_config)
    # A real model of the wrong kind is refused at load time as well.
    with pytest.raises(LprModelError, match=r"cct_xs_v1_global\.onnx"):
        PlateDetector(MODELS / config.ocr_model)
    # ... and so is a config pointing the pipeline at it.
    wrong = LprConfig(directory=str(LPR_DIR), detector_model=config.ocr_model)
    with pytest.raises(LprModelError, match=r"cct_xs_v1_global\.onnx"):
        LprPipeline.from_config(wrong)


def test_unknown_hub_name_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(LprModelError, match="no-such-model"):
        LprPipeline.from_config(LprConfig(directory=str(LPR_DIR), ocr_model="no-such-model"))


# -- CLI ----------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CARPARK_LPR_DIR": str(LPR_DIR)}
    return subprocess.run(
        [sys.executable, "-m", "gateway", "lpr", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_eval_json(tmp_path: Path) -> None:
    folder = tmp_path / "lane"
    folder.mkdir()
    for sample in load_samples(DATA / "openalpr-eu", 3):
        (folder / sample.image.name).symlink_to(sample.image)
        label = sample.image.with_suffix(".txt")
        (folder / label.name).symlink_to(label)
    (folder / "zz-broken.jpg").write_bytes(b"not an image")
    (folder / "zz-broken.txt").write_text("zz-broken.jpg\t1\t1\t50\t20\tAB123\n")
    done = run_cli("eval", str(folder), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {
        "n",
        "exact",
        "char_accuracy",
        "detection_recall",
        "ms_per_frame_p50",
        "ms_per_frame_p99",
    } <= set(result)
    assert result["n"] == 3 and result["unreadable"] == 1
    for key in ("exact", "char_accuracy", "detection_recall"):
        assert 0.0 <= result[key] <= 1.0
    assert result["detection_recall"] == 1.0
    assert 0 < result["ms_per_frame_p50"] <= result["ms_per_frame_p99"]
    assert "3/4" not in done.stdout and "4/4" in done.stderr  # the progress bar is on stderr


def test_cli_eval_lists_misses_and_applies_errata(tmp_path: Path) -> None:
    folder = tmp_path / "openalpr-eu"  # the errata name the set by its folder
    folder.mkdir()
    sample = next(s for s in load_samples(DATA / "openalpr-eu") if s.image.name == "eu3.jpg")
    (folder / "eu3.jpg").symlink_to(sample.image)
    x, y, w, h = sample.box or (0, 0, 0, 0)
    (folder / "eu3.txt").write_text(f"eu3.jpg\t{x}\t{y}\t{w}\t{h}\tFWE5O\n")  # a wrong label
    done = run_cli("eval", str(folder), "--misses")
    assert done.returncode == 0, done.stderr
    assert "misses (1)" in done.stdout
    line = next(ln for ln in done.stdout.splitlines() if ln.strip().startswith("eu3.jpg"))
    assert line.split()[1:3] == ["FWE5O", "FWE50"] and "O/0 or I/1 only" in line
    errata = tmp_path / "errata.tsv"
    errata.write_text(
        "# set\timage\tpublished\tcorrected\twhy\nopenalpr-eu\teu3.jpg\tFWE5O\tFWE50\tzero\n"
    )
    fixed = run_cli("eval", str(folder), "--misses", "--json", "--errata", str(errata))
    assert fixed.returncode == 0, fixed.stderr
    result = json.loads(fixed.stdout)
    assert result["exact"] == 1.0 and result["misses"] == []
    bad = run_cli("eval", str(folder), "--errata", str(tmp_path / "none.tsv"))
    assert bad.returncode == 2 and "none.tsv" in bad.stderr


def test_cli_eval_crops_has_no_detection_recall() -> None:
    done = run_cli("eval", str(DATA / "ar-crops"), "--json", "--limit", "5")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["n"] == 5 and result["detection_recall"] is None


def test_cli_read_prints_the_plate() -> None:
    sample = load_samples(DATA / "openalpr-us", 1)[0]
    done = run_cli("read", str(sample.image))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{sample.image}: 1 plate(s) in ") and lines[0].endswith(" ms")
    assert lines[1].split()[:2] == [sample.plate, "confidence"]


def test_cli_reports_a_missing_model(tmp_path: Path) -> None:
    env = {**os.environ, "CARPARK_LPR_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "lpr", "read", "x.jpg"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "plate models not found" in done.stderr and str(tmp_path) in done.stderr
    assert "carpark-gateway lpr models install" in done.stderr


def test_the_single_pass_from_the_config_file(tmp_path: Path) -> None:
    # [lpr] refine = false is the one-pass detector (what max_side_px alone decides).
    from gateway.config import load_config

    path = tmp_path / "gateway.toml"
    path.write_text(
        f'[site]\ndevelopment = true\n[lpr]\ndirectory = "{LPR_DIR}"\nrefine = false\n'
        "max_side_px = 960\n"
    )
    config = load_config(path, env={})
    assert config.lpr.refine is False and config.lpr.max_side_px == 960
    pipeline = LprPipeline.from_config(config.lpr)
    assert pipeline.detector.refine is False
    sample = subset("openalpr-eu")[4]  # eu3.jpg, FWE50
    reads = pipeline.process(cv2.imread(str(sample.image)))
    assert reads[0].text == sample.plate
    assert all(r.box for r in reads)


def test_two_pass_keys_are_checked(tmp_path: Path) -> None:
    from gateway.config import ConfigError, load_config

    for bad in ("candidate_score = 1.5", "max_candidates = 0", "refine_plate_px = 8"):
        path = tmp_path / "gateway.toml"
        path.write_text(f"[site]\ndevelopment = true\n[lpr]\n{bad}\n")
        with pytest.raises(ConfigError, match=r"\[lpr\]"):
            load_config(path, env={})


def test_upscale_must_be_a_boolean(tmp_path: Path) -> None:
    from gateway.config import ConfigError, load_config

    path = tmp_path / "gateway.toml"
    path.write_text('[site]\ndevelopment = true\n[lpr]\nupscale = "maybe"\n')
    with pytest.raises(ConfigError, match=r"lpr\.upscale"):
        load_config(path, env={})


def test_exact_with_errata_recounts_only_the_corrected_images() -> None:
    from drivers.camera.lpr_eval import EvalResult, Miss, exact_with_errata

    samples = [
        Sample(Path("a.jpg"), "OYO9", (0, 0, 1, 1)),  # published label wrong, read right
        Sample(Path("b.jpg"), "RKO1", (0, 0, 1, 1)),  # published label wrong, read as labelled
        Sample(Path("c.jpg"), "AB12", (0, 0, 1, 1)),  # right label, read right
        Sample(Path("d.jpg"), "CD34", (0, 0, 1, 1)),  # right label, misread
    ]
    misses = (Miss("a.jpg", "OYO9", "OY09", "O/0"), Miss("d.jpg", "CD34", "CD3", "1 edit"))
    result = EvalResult(
        n=4,
        unreadable=0,
        exact=0.5,
        exact_top=0.5,
        exact_ignoring_o0_i1=0.75,
        char_accuracy=0.9,
        detection_recall=1.0,
        ms_per_frame_p50=1.0,
        ms_per_frame_p99=1.0,
        misses=misses,
    )
    errata = {("set", "a.jpg"): "OY09", ("set", "b.jpg"): "RK01", ("other", "c.jpg"): "ZZ"}
    assert exact_with_errata(result, samples, errata, "set") == 0.5  # a gained, b lost
    assert exact_with_errata(result, samples, {("set", "a.jpg"): "OY09"}, "set") == 0.75
    assert exact_with_errata(result, samples, {}, "set") == 0.5
