"""The ``carpark-gateway`` command: run the daemon, migrate the database, create users,
read plates from images and measure plate recognition on a labelled folder (``lpr``).

Exit codes: 0 success, 1 the action failed (e.g. duplicate e-mail), 2 bad usage or a
configuration error (argparse's convention), so that scripts can tell them apart.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from email.utils import parseaddr

import structlog

from gateway.config import ConfigError, LprConfig, load_config
from gateway.errors import GatewayError
from gateway.logging import setup_logging
from gateway.services import users
from gateway.store import Store
from gateway.timeutil import SystemClock


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carpark-gateway", description=__doc__)
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="TOML config file (default: $CARPARK_CONFIG, else config/gateway.toml)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the daemon (applies pending migrations first)")
    sub.add_parser("migrate", help="apply pending database migrations and exit")
    user = sub.add_parser("user", help="manage accounts").add_subparsers(
        dest="user_command", required=True
    )
    create = user.add_parser("create", help="create an account (how admins and operators are made)")
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--role", required=True, choices=["admin", "operator", "customer"])
    create.add_argument("--name", default=None, help="full name (default: the e-mail's local part)")
    lpr = sub.add_parser("lpr", help="plate recognition with the [lpr] models").add_subparsers(
        dest="lpr_command", required=True
    )
    read = lpr.add_parser(
        "read", help="print the plates found in images, with confidence and timing"
    )
    read.add_argument("images", nargs="+", metavar="IMAGE")
    evaluate = lpr.add_parser(
        "eval",
        help="accuracy and timing on a labelled folder (openalpr <name>.txt files, or annotations.csv crops)",
    )
    evaluate.add_argument("directory", metavar="DIR")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object instead")
    evaluate.add_argument("--limit", type=int, default=None, metavar="N", help="the first N images")
    evaluate.add_argument(
        "--misses", action="store_true", help="also list every image not read exactly, and why"
    )
    evaluate.add_argument(
        "--errata",
        metavar="FILE",
        default=None,
        help="label corrections (set, image, published, corrected, why; e.g. bench/lpr_label_errata.tsv)",
    )
    models = lpr.add_parser(
        "models", help="the detector and OCR models: install them, show where they are"
    ).add_subparsers(dest="models_command", required=True)
    install = models.add_parser(
        "install",
        help="put the pinned models in the state directory, each checked against its SHA-256",
    )
    install.add_argument(
        "--from",
        dest="origin",
        default=None,
        metavar="DIR_OR_URL",
        help="a folder (USB stick, ../shared/lpr/models) or base URL holding the files"
        " (default: their public release addresses)",
    )
    models.add_parser("list", help="the pinned files: size, SHA-256, licence, source, address")
    models.add_parser("where", help="which model files the daemon would load, and from where")
    for command in (read, evaluate):
        command.add_argument(
            "--max-side", type=int, default=None, metavar="PX", help="override lpr.max_side_px"
        )
        command.add_argument(
            "--upscale",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="override lpr.upscale: enlarge regions smaller than --max-side (up to 2x)",
        )
        command.add_argument(
            "--refine",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="override lpr.refine: confirm each candidate on a window zoomed to the plate",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(f"carpark-gateway: configuration error: {err}", file=sys.stderr)
        return 2
    setup_logging(config.logging.level, config.logging.format)
    log = structlog.get_logger("gateway.cli")

    if args.command == "lpr" and args.lpr_command == "models":
        return _lpr_models(config.lpr, args)
    if args.command == "lpr":
        return _lpr(config.lpr, args)

    if args.command == "run":
        from gateway.daemon import run_daemon

        try:
            run_daemon(config)
        except ConfigError as err:
            print(f"carpark-gateway: configuration error: {err}", file=sys.stderr)
            return 2
        return 0

    store = Store(config.database.path, busy_timeout_ms=config.database.busy_timeout_ms)
    try:
        applied = store.migrate()
        if args.command == "migrate":
            log.info("migrated", database=config.database.path, applied=applied or "none pending")
            return 0
        return _create_user(store, args)
    finally:
        store.close()


def _create_user(store: Store, args: argparse.Namespace) -> int:
    email = args.email.strip().lower()
    if "@" not in parseaddr(email)[1]:
        print(f"carpark-gateway: not an e-mail address: {args.email!r}", file=sys.stderr)
        return 2
    if len(args.password) < 8:
        print("carpark-gateway: the password must be at least 8 characters", file=sys.stderr)
        return 2
    name = args.name or email.split("@")[0]
    password_hash = users.hash_password(args.password)
    try:
        user_id = store.write_sync(
            lambda db: users.create_user(
                db,
                email=email,
                password_hash=password_hash,
                full_name=name,
                role=args.role,
                phone=None,
                now=SystemClock().now(),
            )
        )
    except GatewayError as err:
        print(f"carpark-gateway: {err.detail}", file=sys.stderr)
        return 1
    print(f"created {args.role} {email} (id {user_id})")
    return 0


def _lpr_models(lpr: LprConfig, args: argparse.Namespace) -> int:
    """``lpr models install|list|where``: no model is loaded, so a site without them can run it."""
    from drivers.camera import models
    from drivers.camera.lpr import LprModelError, model_paths

    if args.models_command == "list":
        print("\n".join(models.describe()))
        return 0
    if args.models_command == "where":
        try:
            paths = model_paths(lpr)
        except LprModelError as err:
            print(f"carpark-gateway: {err}", file=sys.stderr)
            return 1
        print(f"found in the {paths.found_in}")
        for role, path in (
            ("detector", paths.detector),
            ("ocr", paths.ocr),
            ("ocr_config", paths.ocr_config),
        ):
            print(f"  {role:<10} {path}")
        return 0
    try:
        target = models.install(lpr.state_dir, args.origin, report=print)
    except models.ModelInstallError as err:
        print(f"carpark-gateway: models not installed: {err}", file=sys.stderr)
        return 1
    print(f"installed in {target}")
    if lpr.models_dir:
        print(
            f"note: [lpr] models_dir / CARPARK_LPR_DIR = {lpr.models_dir} is set and wins over"
            " the state directory",
            file=sys.stderr,
        )
    return 0


def _lpr(lpr: LprConfig, args: argparse.Namespace) -> int:
    """``lpr read`` and ``lpr eval``: the pipeline the lane cameras run, on files."""
    import json
    import time

    import cv2

    from drivers.camera.lpr import LprModelError, LprPipeline
    from drivers.camera.lpr_eval import Progress, evaluate, load_errata, load_samples

    if args.lpr_command == "eval" and args.limit is not None and args.limit < 1:
        print("carpark-gateway: --limit must be at least 1", file=sys.stderr)
        return 2
    options: dict[str, object] = {
        key: value
        for key, value in (("upscale", args.upscale), ("refine", args.refine))
        if value is not None
    }
    if args.max_side is not None:
        if args.max_side < 64:
            print("carpark-gateway: --max-side must be at least 64", file=sys.stderr)
            return 2
        options["max_side_px"] = args.max_side
    try:
        pipeline = LprPipeline.from_config(lpr, **options)
    except LprModelError as err:
        print(f"carpark-gateway: {err}", file=sys.stderr)
        return 2

    if args.lpr_command == "read":
        failed = 0
        for path in args.images:
            image = cv2.imread(path, cv2.IMREAD_COLOR) if os.path.isfile(path) else None
            if image is None:
                print(f"{path}: cannot read the image", file=sys.stderr)
                failed += 1
                continue
            started = time.perf_counter()
            reads = pipeline.process(image)
            elapsed_ms = (time.perf_counter() - started) * 1000
            print(f"{path}: {len(reads)} plate(s) in {elapsed_ms:.0f} ms")
            for r in reads:
                x, y, w, h = r.box
                chars = " ".join(f"{c:.2f}" for c in r.char_confidences)
                print(
                    f"  {r.text:<10} confidence {r.confidence:.2f}  box {x},{y},{w}x{h}"
                    f"  detection {r.detection_score:.2f}  chars [{chars}]"
                )
        return 1 if failed else 0

    try:
        errata = load_errata(args.errata) if args.errata else None
        samples = load_samples(args.directory, args.limit, errata)
    except (OSError, ValueError) as err:
        print(f"carpark-gateway: {err}", file=sys.stderr)
        return 2
    progress = Progress(len(samples), "lpr eval ")
    try:
        result = evaluate(pipeline, samples, on_step=progress.step)
    finally:
        progress.close()
    if args.json:
        print(json.dumps(result.as_json(misses=args.misses)))
        return 0

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 100:.1f} %"

    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f} ms"

    print(f"images               {result.n} ({result.unreadable} unreadable)")
    print(f"exact plate          {pct(result.exact)}")
    print(f"  ignoring O/0, I/1  {pct(result.exact_ignoring_o0_i1)}")
    print(f"  most confident     {pct(result.exact_top)}")
    print(f"character accuracy   {pct(result.char_accuracy)}")
    print(f"detection recall     {pct(result.detection_recall)}  (IoU >= 0.5)")
    print(
        f"per frame            p50 {ms(result.ms_per_frame_p50)}, p99 {ms(result.ms_per_frame_p99)}"
    )
    if args.misses:
        print(f"\nmisses ({len(result.misses)}): image, label, read, why")
        for miss in result.misses:
            print(f"  {miss.image:<44} {miss.label:<10} {miss.read or '-':<10} {miss.why}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
