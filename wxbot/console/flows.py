"""/admin/flows: the loaded business flows, their steps and funnels (the flows feature brings
them; until it is in this build the page says so)."""

from __future__ import annotations

from flask import render_template

from wxbot.console.web import bp


@bp.get("/flows")
def flows() -> str:
    return render_template("console/flows.html", nav="flows")
