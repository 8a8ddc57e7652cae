"""The README's walkthrough is true: its commands, pasted into bash as they are, work on
the empty site that ``make run CONFIG=config/empty.toml`` starts."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from gateway.config import load_config
from gateway.timeutil import SystemClock
from tests.conftest import running

ROOT = Path(__file__).parent.parent


def walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"<!-- walkthrough:[^>]*-->\n```bash\n(.*?)```", text, re.S)
    assert len(blocks) == 2, "the README's walkthrough blocks are marked <!-- walkthrough: ... -->"
    return "\n".join(blocks)


def test_the_readme_walkthrough_works_on_the_empty_site(tmp_path: Path) -> None:
    env = {"CARPARK_DB": str(tmp_path / "empty.db"), "CARPARK_HTTP_PORT": "0"}
    config = load_config(ROOT / "config" / "empty.toml", env=env)
    with running(config, SystemClock()) as gw:  # type: ignore[arg-type]
        script = walkthrough().replace("http://127.0.0.1:8000", gw.base_url)
        # Every request must succeed (curl fails on a 4xx/5xx), and every step must run.
        prelude = 'set -euo pipefail\ncurl() { command curl --fail-with-body "$@"; echo; }\n'
        result = subprocess.run(
            ["bash", "-c", prelude + script],
            cwd=ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"^TKT-[0-9A-F]+$", out, re.M), out
    assert '"can_exit":false' in out and '"can_exit":true' in out, out
    assert '"status":"completed"' in out, out  # the session of the exit
    assert '"reason":"ambulance"' in out and '"mode":"free_exit"' in out, out
