"""``wxbot chat``: a terminal chat that plays the WeChat server against the bot.

Each line typed becomes a signed (and, with an EncodingAESKey, encrypted) callback request;
the reply is verified, decrypted and printed readably. In-process by default, or against a
running server with ``--url``.
"""

from __future__ import annotations

import io
import shlex
import sys
import time
from collections.abc import Callable
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from wxbot.messages.replies import (
    UNSENDABLE,
    Image,
    Music,
    News,
    Reply,
    Silent,
    Text,
    TransferToHuman,
    Video,
    Voice,
)
from wxbot.models import OPENID_LEN
from wxbot.redaction import describe, display_url, mask_phone
from wxbot.wechat.simulator import DEFAULT_OPENID, MODES, SimulatorError, WeChatSimulator

HELP = """\
Type a message and press Enter. Other message types:
  /location LAT LON [LABEL]   send a location        /voice TEXT    a voice message (Recognition)
  /image                      send a picture         /link TITLE URL  a link
  /subscribe [SCENE]          follow (via a QR scene) /unsubscribe   unfollow
  /click KEY                  a menu click           /view URL      a menu link
  /scan SCENE                 scan a QR code (a follower's SCAN; quote a scene with spaces)
  //TEXT                      text starting with /   (a WeChat face: //::) sends /::))
  /help                       this help              /quit          leave (or Ctrl-D)"""


def format_reply(reply: Reply) -> str:
    """A reply as a person would see it in WeChat, in plain text."""
    if isinstance(reply, Text):
        return reply.content
    if isinstance(reply, Music):
        lines = [f"[音乐] {reply.title} — {reply.description}".rstrip(" —"), f"  {reply.music_url}"]
        return "\n".join(lines)
    if isinstance(reply, News):
        out = []
        for a in reply.articles:
            out.append(f"[图文] {a.title}")
            out.extend(f"  {line}" for line in (a.description, a.url) if line)
        return "\n".join(out) or "[图文]"
    if isinstance(reply, TransferToHuman):
        return "[转人工客服]"
    if isinstance(reply, Image):
        return f"[图片] {reply.media_id}"
    if isinstance(reply, Voice):
        return f"[语音] {reply.media_id}"
    if isinstance(reply, Video):
        return f"[视频] {reply.title} {reply.media_id}".strip()
    if isinstance(reply, Silent):
        return "[无回复]"
    return repr(reply)


class UsageError(ValueError):
    pass


def _is_utf8(text: str) -> bool:
    """Python reads undecodable input bytes as lone surrogates, which no request can carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_openid(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """--openid as WeChat could send it. The server refuses an empty or over-long one, and
    control characters are dropped on the way (the reply came back addressed to someone
    else): said once here, not as an error on every line. Spaces around it (pasted) are
    dropped as the server's parser drops them: kept, every reply "was addressed" elsewhere."""
    value = value.strip()
    if not value or len(value) > OPENID_LEN or UNSENDABLE.search(value) or not _is_utf8(value):
        raise click.BadParameter(
            f"an OpenID is 1 to {OPENID_LEN} printable characters, e.g. {DEFAULT_OPENID}"
        )
    return value


def message_for(sim: WeChatSimulator, line: str, openid: str) -> dict[str, Any]:
    """The WeChat message a typed line stands for (plain text unless it is a /command)."""
    if not _is_utf8(line):  # bytes piped in that are no UTF-8 (a GBK file): a traceback before
        raise UsageError("the line is not UTF-8 text; convert it first, e.g. iconv -f GBK")
    if line.startswith("//"):  # text that starts with "/" (WeChat's faces are "/::)"): "//::)"
        return sim.text(line[1:], openid)
    if not line.startswith("/"):
        return sim.text(line, openid)
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    cmd, args = words[0].lower(), words[1:]
    if cmd == "/location":
        lat, lon, label = _location_args(args)
        return sim.location(lat, lon, label, openid)
    if cmd == "/voice":
        return sim.voice(line[len(words[0]) :].strip(), openid)
    if cmd == "/image":
        return sim.image(openid)
    if cmd == "/link" and len(args) >= 2:  # a title of several words needs no quotes
        return sim.link(" ".join(args[:-1]), args[-1], openid)
    if cmd == "/subscribe":
        scene = _one_arg(cmd, "SCENE", args, optional=True)
        return sim.event("subscribe", f"qrscene_{scene}" if scene else "", openid)
    if cmd == "/unsubscribe":
        return sim.event("unsubscribe", "", openid)
    if cmd == "/click" and args:
        return sim.event("CLICK", _one_arg(cmd, "KEY", args), openid)
    if cmd == "/scan" and args:
        return sim.event("SCAN", _one_arg(cmd, "SCENE", args), openid, Ticket="simulated")
    if cmd == "/view" and args:
        return sim.event("VIEW", _one_arg(cmd, "URL", args), openid)
    if cmd in USAGES:  # a known command short of its arguments: not "unknown"
        raise UsageError(f"usage: {USAGES[cmd]}")
    raise UsageError(
        f"unknown or incomplete command {words[0]!r}; type /help"
        " (to send text that starts with /, type it twice: //text)"
    )


USAGES = {
    "/link": "/link TITLE URL",
    "/click": "/click KEY",
    "/scan": '/scan SCENE (quote a scene with spaces: /scan "a b")',
    "/view": "/view URL",
}


def _one_arg(cmd: str, name: str, args: list[str], optional: bool = False) -> str:
    """The one argument of a command: more words were silently dropped before (/click A B
    sent the key A), so they must be quoted as one."""
    if len(args) > 1:
        shown = f"[{name}]" if optional else name
        raise UsageError(
            f'usage: {cmd} {shown}; quote a {name} with spaces: {cmd} "{" ".join(args)}"'
        )
    return args[0] if args else ""


def _location_args(args: list[str]) -> tuple[float, float, str]:
    """LAT LON [LABEL] of /location; also "LAT,LON" as maps copy it. Refused here rather than
    by the server (a 400 for nan) or not at all (91 200 went out as a location)."""
    usage = "usage: /location LAT LON [LABEL], e.g. /location 39.9 116.4 北京"
    if args and ("," in args[0] or "，" in args[0]):
        lat_text, _, lon_text = args[0].replace("，", ",").partition(",")
        args = [lat_text, *([lon_text] if lon_text else []), *args[1:]]
    if len(args) < 2:
        raise UsageError(usage)
    try:
        lat, lon = float(args[0]), float(args[1])
    except ValueError:
        raise UsageError(f"LAT and LON must be numbers; {usage}") from None
    if not -90 <= lat <= 90 or not -180 <= lon <= 180:  # also nan and inf
        raise UsageError(f"LAT must be within ±90 and LON within ±180 (latitude first); {usage}")
    return lat, lon, " ".join(args[2:])


def run_chat(
    sim: WeChatSimulator,
    target: Any,
    openid: str,
    read_line: Callable[[], str | None],
    echo: Callable[[str], None],
    now: Callable[[], float] = time.monotonic,
) -> int:
    """The read–send–print loop; stops at end of input or /quit. Returns how many lines
    failed (a bad /command, no reply from the server), for the exit code."""
    failed = 0
    while True:
        line = read_line()
        if line is None:
            return failed
        # A file saved with a BOM: its first line was sent as text ("/location …" included)
        line = line.strip().lstrip("\ufeff").strip()
        if not line:
            continue
        command = line.split()[0].lower()
        if command in ("/quit", "/exit"):  # also "/QUIT", "/quit now": not unknown commands
            return failed
        if command == "/help":
            echo(HELP)
            continue
        try:
            message = message_for(sim, line, openid)
            started = now()
            reply = sim.post(target, message)
        except UsageError as exc:
            echo(f"[用法] {exc}")
        except SimulatorError as exc:
            echo(f"[错误] {_one_line(str(exc))}{_hint(exc)}")
        except OSError as exc:  # requests' ConnectionError/Timeout are OSErrors
            if _is_read_timeout(exc):  # it was reached: "cannot reach" sent one looking elsewhere
                echo(f"[错误] no reply within {sim.timeout:g} s (WeChat waits {WECHAT_WAIT} s)")
            else:
                echo(f"[错误] cannot reach the server: {describe(exc)}")
        else:
            echo("\n".join(f"bot> {part}" for part in format_reply(reply).split("\n")))
            took = now() - started
            if took > WECHAT_WAIT:  # shown as if all was well, but no user would have seen it
                echo(
                    f"[注意] the reply took {took:.1f} s: WeChat waits {WECHAT_WAIT} s, so it"
                    " would have dropped it and sent the message again"
                )
            continue
        failed += 1


ERROR_CHARS = 200
WECHAT_WAIT = 5  # seconds WeChat waits for a reply before it gives up and retries


def _is_read_timeout(exc: OSError) -> bool:
    import requests

    return isinstance(exc, requests.exceptions.ReadTimeout)


def _hint(exc: SimulatorError) -> str:
    """What a first day's error usually means: a URL without its path (a page of HTML)."""
    if exc.status == 404:
        return " (is the URL the bot's /wechat address?)"
    return ""


def _one_line(text: str) -> str:
    """An error in one line: a URL that is not a wxbot answers with a whole HTML page."""
    text = " ".join(text.split())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def _ensure_schema() -> None:
    """In-process chat on a fresh machine: create the schema rather than answer with errors.
    A schema behind this release or not wxbot's is refused as `wxbot serve` refuses it:
    chatted with anyway, each message logged a traceback for a missing table."""
    from wxbot.migrations.guard import CURRENT, MISSING, NEWER, schema_status
    from wxbot.migrations.schema import upgrade

    engine = current_app.extensions.get("wxbot.engine")
    if engine is None:
        return
    status = schema_status(engine)
    if status.state == MISSING:
        upgrade(engine)
        click.echo(f"(created the database schema at {display_url(engine.url)})", err=True)
    elif status.state not in (CURRENT, NEWER):
        raise click.ClickException(f"{display_url(engine.url)}: {status.message}")


def _show_console_sms() -> None:
    """In-process with WXBOT_SMS_BACKEND=console: the texts that would have gone out are
    printed here, in the developer's terminal (the log never has the code)."""
    from wxbot.services.sms import ConsoleSender

    bot = current_app.extensions.get("wxbot.bot")
    sms = getattr(getattr(getattr(bot, "deps", None), "services", None), "sms", None)
    if isinstance(sms, ConsoleSender):
        sms.show = lambda phone, text: click.echo(f"[短信 → {mask_phone(phone)}] {text}", err=True)


def _replace_unprintable_output() -> None:
    """A terminal that is not UTF-8 (GBK, ASCII) shows what it cannot print as "?": the
    welcome's ภาษาไทย ended the chat with a UnicodeEncodeError traceback in a GBK one."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name, None)
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="replace")


def _check_url(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """--url as requests can POST to: without http:// every line failed with InvalidSchema."""
    if value is not None and not value.lower().startswith(("http://", "https://")):
        raise click.BadParameter(
            f"{value!r} is not an http:// or https:// URL, e.g. http://127.0.0.1:8000/wechat"
        )
    return value


@click.command("chat")
@click.option(
    "--url",
    default=None,
    callback=_check_url,
    help="POST to a running server, e.g. http://127.0.0.1:8000/wechat (default: in-process).",
)
@click.option(
    "--openid",
    default=DEFAULT_OPENID,
    show_default=True,
    callback=_check_openid,
    help="Act as this user.",
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default=None,
    help="WeChat message mode (default: safe when an EncodingAESKey is configured, else plain).",
)
@with_appcontext
def chat(url: str | None, openid: str, mode: str | None) -> None:
    """Chat with the bot in the terminal, as WeChat's servers would talk to it."""
    settings = current_app.extensions["wxbot.settings"]
    if url:
        target: Any = url
        clock: Callable[[], float] = time.time
    else:
        from wxbot import load_knowledge

        _ensure_schema()
        load_knowledge(current_app)  # (the command line builds its app without the index)
        _show_console_sms()
        target = current_app.test_client()
        clock = current_app.extensions.get("wxbot.clock", time.time)
    try:
        sim = WeChatSimulator.from_settings(settings, mode, clock=clock)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _replace_unprintable_output()
    stdin = sys.stdin  # click's test runner swaps sys.stdin, so tests can type too
    # A closed stdin (`wxbot chat <&-`, a service without one) is no input, as /dev/null is.
    interactive = stdin is not None and stdin.isatty()
    where = url or "in-process"
    click.echo(f"wxbot chat ({sim.mode} mode, {where}) as {openid}. /help for commands.", err=True)

    def read_line() -> str | None:
        if stdin is None:
            return None
        if interactive:
            try:
                return click.prompt("you", prompt_suffix="> ", default="", show_default=False)
            except click.Abort as exc:
                # click.prompt makes both Ctrl-D and Ctrl-C an Abort: Ctrl-D leaves, Ctrl-C
                # interrupts (exit 130, as in every other command).
                if isinstance(exc.__context__, KeyboardInterrupt):
                    raise KeyboardInterrupt from None
                return None
            except EOFError:
                return None
        try:
            line = stdin.readline()
        except UnicodeDecodeError as exc:  # a strict stdin (a UTF-8 locale) and GBK bytes
            raise click.ClickException(
                f"standard input is not {stdin.encoding} text ({exc.reason}); convert it first,"
                " e.g. iconv -f GBK -t UTF-8"
            ) from None
        return line if line else None

    failed = run_chat(sim, target, openid, read_line, click.echo)
    if failed:  # a script piping lines in must see that some got no reply
        raise click.ClickException(f"{failed} line(s) failed (see [错误] / [用法] above)")
