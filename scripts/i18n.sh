#!/usr/bin/env bash
# The gettext catalogues of every reply the bot writes (Chinese source texts marked N_/NP_).
#   scripts/i18n.sh update   re-extract wxbot/i18n/wxbot.pot from the code and merge it into
#                            the en/th/tl/ja .po files (new texts arrive with an empty msgstr)
#   scripts/i18n.sh check    list texts without a translation (the test suite fails on them)
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-check}" in
  update)
    .venv/bin/pybabel extract -F babel.cfg -k N_ -k NP_:1,2 --add-location=file --no-wrap \
      --sort-by-file --project=wxbot --copyright-holder="the wxbot authors" \
      -o wxbot/i18n/wxbot.pot .
    .venv/bin/pybabel update -i wxbot/i18n/wxbot.pot -d wxbot/i18n/locales -D wxbot \
      --no-wrap --ignore-obsolete
    ;;
  check)
    .venv/bin/python -m pytest -q tests/test_i18n.py -k catalogue
    ;;
  *)
    echo "usage: $0 update|check" >&2
    exit 2
    ;;
esac
