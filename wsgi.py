"""WSGI entry point: ``gunicorn wsgi:app``."""

import logging
import sys

from wxbot import create_app
from wxbot.config import ConfigError
from wxbot.migrations.guard import SchemaError, check_before_serving

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
try:
    app = create_app()
    check_before_serving(app.extensions["wxbot.engine"])
except (ConfigError, SchemaError) as exc:
    # One line, no traceback. Exit code 3 is gunicorn's "worker failed to boot": the master
    # stops instead of forking workers that die the same way for ever.
    logging.getLogger("wsgi").error("%s", exc)
    sys.exit(3)
