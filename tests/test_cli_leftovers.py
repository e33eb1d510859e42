"""Three defects of the `wxbot` command line, and the bounds of its numbers.

- `wxbot serve --workers/--threads/--graceful-timeout` had no upper bound: `--workers 100000`
  had gunicorn fork that many workers. Now a usage error (exit 2) past MAX_WORKERS (256),
  MAX_THREADS (64) and MAX_GRACEFUL_TIMEOUT (3600 s); gunicorn is never started here.
- `wxbot kb import` of a pipe (or another file that is not a regular one) without --format
  hung: telling its format opened it (and read it) before the import read it again. Now
  refused at once, naming the file; with --format it is read once (to a bound). Run in a
  subprocess with a deadline, so a hang fails the test instead of hanging it.
- `-A/--app` was accepted and ignored, `-e/--env-file` failed on python-dotenv: both are gone
  from the help and refused in one line; FLASK_APP/FLASK_ENV_FILE in the environment no
  longer change (or break) anything.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

import wxbot.serving
from wxbot import create_app
from wxbot.cli import cli
from wxbot.migrations.schema import upgrade

ROOT = Path(__file__).resolve().parent.parent
ONE_ROW = "question,answer\n营业时间,早九晚五\n".encode()
DEADLINE = 60.0  # seconds a subprocess may take (start-up included) before it counts as hung

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")


def run(app: Any, *args: str) -> Result:
    return app.test_cli_runner().invoke(cli, list(args))


def usage_error(result: Result) -> str:
    """Exit 2 (a bad option or argument), said in one line, no traceback."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


# --- serve: bounded numbers -------------------------------------------------------------


@pytest.fixture
def gunicorn_calls(monkeypatch, tmp_path) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """What `wxbot serve` would have started gunicorn with (it is never started). The app
    is built (AppGroup wraps every command in with_appcontext): on a database of the test's,
    not the default one in the source tree's instance/."""
    monkeypatch.setenv("WXBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'wxbot.sqlite3'}")
    calls: list[dict[str, Any]] = []

    def fake_run(load_app: Any, host: str, port: int, workers: Any, threads: Any, **kw: Any):  # type: ignore[no-untyped-def]
        calls.append({"workers": workers, "threads": threads, **kw})

    monkeypatch.setattr(wxbot.serving, "run", fake_run)
    return calls


@pytest.mark.parametrize(
    "option, value",
    [
        ("--workers", "100000"),
        ("--workers", "257"),
        ("--workers", str(10**30)),
        ("--threads", "65"),
        ("--threads", "1000000"),
        ("--graceful-timeout", "3601"),
        ("--graceful-timeout", "1" + "0" * 400),  # no float holds it
        # refused before too
        ("--workers", "0"),
        ("--workers", "-1"),
        ("--threads", "0"),
        ("--threads", "-4"),
        ("--graceful-timeout", "4"),
    ],
)
def test_serve_refuses_numbers_past_their_bounds(  # type: ignore[no-untyped-def]
    gunicorn_calls, option: str, value: str
) -> None:
    from click.testing import CliRunner

    line = usage_error(CliRunner().invoke(cli, ["serve", option, value]))
    assert f"Invalid value for '{option}'" in line and "is not in the range" in line
    assert gunicorn_calls == []


def test_serve_takes_the_largest_numbers_allowed(gunicorn_calls) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    args = ["serve", "--workers", "256", "--threads", "64", "--graceful-timeout", "3600"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert gunicorn_calls == [{"workers": 256, "threads": 64, "graceful_timeout": 3600}]


def test_serve_help_states_the_bounds() -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for bound in ("[1<=x<=256]", "[1<=x<=64]", "[5<=x<=3600]"):
        assert bound in text, result.output


def test_the_default_worker_count_stays_within_the_bound(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    no_cgroup = str(tmp_path / "none")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(1024)))
    assert wxbot.serving.default_workers(no_cgroup) == 256
    monkeypatch.delattr(os, "sched_getaffinity")  # not Linux: the host's count
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert wxbot.serving.default_workers(no_cgroup) == 1


def cgroup(root: Path, files: dict[str, str]) -> str:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return str(root)


@pytest.mark.parametrize(
    ("files", "workers"),
    [
        ({"cpu.max": "200000 100000\n"}, 2),  # cgroup v2: docker run --cpus 2
        ({"cpu.max": "150000 100000\n"}, 2),  # 1.5 cores: rounded up
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu.max": "max 100000\n"}, 64),  # no quota: the cores it may run on
        ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),  # v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, 64),
        ({"cpu.max": "garbage\n"}, 64),  # unreadable: no quota assumed
        ({}, 64),
    ],
)
def test_the_default_worker_count_is_the_containers_not_the_hosts(  # type: ignore[no-untyped-def]
    monkeypatch, tmp_path: Path, files: dict[str, str], workers: int
) -> None:
    """A container limited to a few cores of a big host starts that many workers, not one
    per host core (each holds its own index and database pool)."""
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert wxbot.serving.default_workers(cgroup(tmp_path, files)) == workers


def test_the_default_worker_count_follows_the_cpu_affinity(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`taskset -c 0,1` or a cpuset: the cores the process may run on."""
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert wxbot.serving.default_workers(str(tmp_path)) == 2
    root = cgroup(tmp_path, {"cpu.max": "800000 100000\n"})  # a quota above the cpuset
    assert wxbot.serving.default_workers(root) == 2


# --- kb import: pipes and other files that are not regular ------------------------------


@pytest.fixture
def database(tmp_path: Path) -> str:
    """A SQLite database with the schema, for `wxbot` subprocesses (what they do with a pipe
    does not depend on the database)."""
    url = f"sqlite:///{tmp_path / 'wxbot.sqlite3'}"
    app = create_app({"database_url": url})
    try:
        upgrade(app.extensions["wxbot.engine"])
    finally:
        app.extensions["wxbot.bot"].close()
        app.extensions["wxbot.engine"].dispose()
    return url


def wxbot_process(database: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "WXBOT_DATABASE_URL": database,
        # the tree this test is in, not whichever one is installed
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.Popen(
        [sys.executable, "-c", "from wxbot.cli import main; main()", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        # a shell starts background jobs with SIGINT ignored; a terminal's Ctrl-C is not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        **kwargs,
    )


def finish(proc: subprocess.Popen[str], timeout: float = DEADLINE) -> tuple[int, str, str]:
    """The process's exit code, stdout and stderr; killed (and the test failed) if it hangs."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"hung for {timeout:.0f} s: {' '.join(proc.args)}\n{err[-2000:]}")  # type: ignore[arg-type]
    return proc.returncode, out, err


class Writer:
    """Writes ``data`` to a pipe from a thread once a reader has opened it; gives up at the
    deadline or the test's end, so a reader that never comes cannot block the test."""

    def __init__(self) -> None:
        self.opened = False
        self.threads: list[threading.Thread] = []
        self.stop = threading.Event()

    def __call__(self, fifo: Path, data: bytes) -> None:
        thread = threading.Thread(target=self._feed, args=(fifo, data), daemon=True)
        thread.start()
        self.threads.append(thread)

    def _feed(self, fifo: Path, data: bytes) -> None:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline and not self.stop.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
                self.stop.wait(0.02)
                continue
            self.opened = True
            os.set_blocking(fd, True)
            try:
                os.write(fd, data)
            except BrokenPipeError:  # the reader went away
                pass
            finally:
                os.close(fd)
            return


@pytest.fixture
def writer() -> Iterator[Writer]:
    feeder = Writer()
    yield feeder
    feeder.stop.set()
    for thread in feeder.threads:
        thread.join(DEADLINE)


@needs_fifo
@pytest.mark.parametrize("name", ["pipe", "faq.csv", "faq.txt"])
def test_a_pipe_without_format_is_refused_at_once_not_a_hang(  # type: ignore[no-untyped-def]
    database, tmp_path, name: str
) -> None:
    """Nobody writes to it: before, the command waited forever in the first open (the
    synonyms sniff), and with a writer it read the first 64 bytes and then waited again."""
    fifo = tmp_path / name
    os.mkfifo(fifo)
    code, out, err = finish(wxbot_process(database, "kb", "import", str(fifo)))
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, err
    assert f"{fifo} is a pipe, not a regular file" in errors[0]
    assert "--format" in errors[0]
    assert "Traceback" not in err


@needs_fifo
def test_a_pipe_with_a_writer_and_without_format_is_refused_and_loses_nothing(  # type: ignore[no-untyped-def]
    database, tmp_path, writer
) -> None:
    """Before, the sniff took the first bytes and the import then found the pipe empty (or
    waited for a writer that had gone): refused now before the pipe is opened at all."""
    fifo = tmp_path / "faq.csv"
    os.mkfifo(fifo)
    writer(fifo, ONE_ROW)
    code, _, err = finish(wxbot_process(database, "kb", "import", str(fifo)))
    assert code == 2, err
    assert "not a regular file" in err and "--format" in err
    assert not writer.opened  # nothing was read from it


@needs_fifo
@pytest.mark.parametrize(
    "fmt, name, data, summary",
    [
        ("csv", "pipe", ONE_ROW, "added 1"),
        ("txt", "faq.csv", "Q: 营业时间\nA: 早九晚五\n".encode(), "added 1"),
        (None, "synonyms-pipe", "樱桃 车厘子\n".encode(), "synonym groups: added 1"),
    ],
)
def test_a_pipe_is_read_once_with_format(  # type: ignore[no-untyped-def]
    database, tmp_path, writer, fmt: str | None, name: str, data: bytes, summary: str
) -> None:
    """--format (or a name that says "synonym", which needs no sniffing) reads it once, as
    process substitution `<(...)` and `/dev/stdin` are read."""
    fifo = tmp_path / name
    os.mkfifo(fifo)
    writer(fifo, data)
    args = ["kb", "import", str(fifo), *(["--format", fmt] if fmt else [])]
    code, out, err = finish(wxbot_process(database, *args))
    assert code == 0, err
    assert summary in out, out


@needs_fifo
def test_a_pipe_with_format_and_no_writer_waits_for_it_and_ctrl_c_stops_it(  # type: ignore[no-untyped-def]
    database, tmp_path
) -> None:
    """With --format the operator asked for the pipe to be read: the import waits for its
    writer, as `cat` does, and Ctrl-C ends the wait (exit 130, one line)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    proc = wxbot_process(database, "kb", "import", "--format", "csv", str(fifo))
    try:
        wchan = Path(f"/proc/{proc.pid}/wchan")
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                waiting_in = wchan.read_text()
            except OSError:
                pytest.skip("needs /proc/PID/wchan to see the wait")
            if "partner" in waiting_in or "fifo" in waiting_in:
                break  # blocked in the pipe's open, waiting for a writer
            time.sleep(0.05)
        else:
            if proc.poll() is None:
                pytest.skip("the wait is not visible in /proc/PID/wchan here")
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        code, _, err = finish(proc, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 130, err
    assert "Error: interrupted" in err and "Traceback" not in err


def test_a_device_without_format_is_refused(app) -> None:  # type: ignore[no-untyped-def]
    if not stat.S_ISCHR(os.stat(os.devnull).st_mode):
        pytest.skip("no character device at os.devnull")
    line = usage_error(run(app, "kb", "import", os.devnull))
    assert f"{os.devnull} is a character device, not a regular file" in line


def test_an_endless_device_with_format_is_read_to_a_bound_not_to_the_end(  # type: ignore[no-untyped-def]
    app, monkeypatch
) -> None:
    """`--format csv /dev/zero` (or an endless `yes |` on /dev/stdin) filled the memory."""
    import wxbot.qa.formats as formats

    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    monkeypatch.setattr(formats, "MAX_STREAM_BYTES", 1 << 20)  # not there before: fails
    result = run(app, "kb", "import", "--format", "csv", "/dev/zero")
    assert result.exit_code == 1, result.output
    assert "/dev/zero: more than 1 MB read from it, and it is not a regular file" in result.output
    assert "nothing written" in result.output


def test_an_endless_device_read_as_synonyms_is_read_to_a_bound_too(  # type: ignore[no-untyped-def]
    app, monkeypatch
) -> None:
    """`--format synonyms /dev/zero` read without a bound, as knowledge files were."""
    import wxbot.qa.formats as formats

    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    monkeypatch.setattr(formats, "MAX_STREAM_BYTES", 1 << 20)
    result = run(app, "kb", "import", "--format", "synonyms", "/dev/zero")
    assert result.exit_code == 1, result.output
    assert "/dev/zero: more than 1 MB read from it, and it is not a regular file" in result.output


@needs_fifo
def test_importing_a_pipe_from_code_does_not_sniff_it(tmp_path, writer) -> None:  # type: ignore[no-untyped-def]
    """The command line refuses a pipe without --format; code calling the importer is not
    behind that check: telling whether it is a synonyms file opened it (blocking until a
    writer came) and ate its first bytes. Now a pipe is never sniffed: it is read once, as
    its name's format."""
    from wxbot.qa import importer

    fifo = tmp_path / "faq.csv"
    os.mkfifo(fifo)
    writer(fifo, ONE_ROW)
    done: list[bool] = []
    thread = threading.Thread(target=lambda: done.append(importer.is_synonyms_file(str(fifo))))
    thread.start()
    thread.join(5)
    assert done == [False]  # at once, and without opening it
    assert not writer.opened
    rows, errors = importer.read_files([str(fifo)])
    assert errors == [] and len(rows) == 1


def test_regular_files_are_imported_as_before(app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    faq = tmp_path / "faq.csv"
    faq.write_bytes(ONE_ROW)
    link = tmp_path / "link.csv"  # a symlink to a regular file is a regular file
    link.symlink_to(faq)
    result = run(app, "kb", "import", str(link))
    assert result.exit_code == 0, result.output
    assert "added 1" in result.output


# --- Flask's options that mean nothing to wxbot -----------------------------------------


@pytest.mark.parametrize(
    "args, needle",
    [
        (["-A", "wsgi:app"], "-A/--app is not supported: wxbot builds its own app"),
        (["--app", "elsewhere:create_app"], "-A/--app is not supported"),
        (["--app=wsgi"], "-A/--app is not supported"),
        (["-e", __file__], "-e/--env-file is not supported: wxbot reads no env files"),
        (["--env-file", __file__], "-e/--env-file is not supported"),
    ],
)
def test_app_and_env_file_options_are_refused_in_one_line(  # type: ignore[no-untyped-def]
    app, args: list[str], needle: str
) -> None:
    """-A was accepted and ignored (the command ran on wxbot's own app), -e failed on
    python-dotenv, which wxbot does not install."""
    line = usage_error(run(app, *args, "sessions", "cleanup"))
    assert needle in line and "WXBOT_" in line


def test_help_offers_neither_app_nor_env_file(app) -> None:  # type: ignore[no-untyped-def]
    result = run(app, "--help")
    assert result.exit_code == 0, result.output
    for option in ("-A,", "--app", "-e,", "--env-file"):
        assert option not in result.output, result.output
    for command in ("init-db", "serve", "kb", "sessions", "chat", "flows"):
        assert f"  {command} " in result.output


def test_flask_variables_in_the_environment_change_nothing(app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Set for another project: FLASK_ENV_FILE made every wxbot command fail, FLASK_APP was
    taken and ignored."""
    monkeypatch.setenv("FLASK_ENV_FILE", "/nonexistent/.env")
    monkeypatch.setenv("FLASK_APP", "elsewhere:app")
    result = run(app, "sessions", "cleanup")
    assert result.exit_code == 0, result.output
    assert "deleted 0 expired contexts" in result.output
    assert run(app, "--help").exit_code == 0
