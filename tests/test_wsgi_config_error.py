"""`gunicorn wsgi:app` with a bad WXBOT_* value: one line and exit code 3 (gunicorn's
"worker failed to boot", so the master stops), as `wxbot serve` says it, not a traceback
repeated by every worker gunicorn forks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("WXBOT_HTTP_TIMEOUT", "nan", "WXBOT_HTTP_TIMEOUT"),
        ("WXBOT_DATABSE_URL", "sqlite:///x.sqlite3", "WXBOT_DATABASE_URL"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_3(tmp_path: Path, name, value, said) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WXBOT_")}
    env |= {"WXBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}", name: value}
    done = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert said in done.stderr
