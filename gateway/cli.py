"""The ``carpark-gateway`` command: run the daemon, migrate the database, create users.

Exit codes: 0 success, 1 the action failed (e.g. duplicate e-mail), 2 bad usage or a
configuration error (argparse's convention), so that scripts can tell them apart.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from email.utils import parseaddr

import structlog

from gateway.config import ConfigError, load_config
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


if __name__ == "__main__":
    raise SystemExit(main())
