"""Daily counters of what the bot did (messages, answers, unknown questions), per process in memory, written in batches."""

from wxbot.stats import models  # noqa: F401 - registers daily_counts on the shared Base
from wxbot.stats.counters import DailyCounters, day_of, read_counts, zone

__all__ = ["DailyCounters", "day_of", "read_counts", "zone"]
