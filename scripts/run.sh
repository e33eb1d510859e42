#!/usr/bin/env bash
# Set up and run the bot on a fresh machine: a virtualenv in .venv, the package, the SQLite
# schema, the starter knowledge (faq.txt, and its small talk in en/th/tl/ja:
# faq-languages.txt), then the server on http://127.0.0.1:8000/wechat.
# Demo credentials unless WXBOT_TOKEN / WXBOT_APPID / ... are set (see README). Questions are
# matched by words and by meaning (the bundled sentence encoder, WXBOT_EMBEDDING_URL=local);
# WXBOT_EMBEDDING_URL= (empty) turns meaning off, a URL uses an embedding service instead.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[semantic]'
export WXBOT_EMBEDDING_URL="${WXBOT_EMBEDDING_URL-local}"
.venv/bin/wxbot init-db
.venv/bin/wxbot kb import knowledge/faq.txt knowledge/faq-languages.txt
exec .venv/bin/wxbot serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
