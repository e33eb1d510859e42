"""What an admin can do, as Python functions: the JSON API and the web console both call these.

``Admin.of(app)`` is the one entry point; its methods live by area:

- ``knowledge``: entries (questions, answer, language), synonym groups;
- ``learning``: unanswered questions (one or a group at a time), learned wordings, LLM answers;
- ``users``: users, their history window, reply language, clearing and forgetting;
- ``figures``: daily counts, top entries, flow funnels, LLM usage, the stats.

Each method runs its own short transaction (retried on a MySQL deadlock) and raises
``AdminError(status, reason)`` for anything the caller must refuse: the API turns it into a
JSON error, the console into a message on the page.
"""

from __future__ import annotations

from wxbot.admin.ops.base import AdminError
from wxbot.admin.ops.figures import FigureOps
from wxbot.admin.ops.knowledge import KnowledgeOps
from wxbot.admin.ops.learning import LearningOps
from wxbot.admin.ops.users import UserOps, UserSummary, UserView

__all__ = ["Admin", "AdminError", "UserSummary", "UserView"]


class Admin(KnowledgeOps, LearningOps, UserOps, FigureOps):
    """Every admin operation (see the modules of this package for each area)."""
