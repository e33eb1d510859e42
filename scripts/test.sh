#!/usr/bin/env bash
# Set up and run the whole test suite: a virtualenv in .venv, the package with its test
# extras, ruff, then pytest on SQLite and on the local MariaDB (127.0.0.1:3306, root, no
# password; override with WXBOT_TEST_MYSQL_URL). With CI=true an unreachable MariaDB fails.
# The console's browser tests need Debian's chromium and chromium-driver: installed here when
# missing (as root); with CI=true a missing browser fails those tests instead of skipping them.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "installing chromium and chromium-driver for the browser tests" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >&2 \
      || echo "could not install chromium: the browser tests will say so" >&2
  else
    echo "chromium/chromedriver missing and not root: apt-get install chromium chromium-driver" >&2
  fi
fi
# mysqlclient (the optional C driver, tests/test_mysqlclient.py) builds against Debian's
# libmariadb-dev: installed here when missing, like the browser.
if ! pkg-config --exists libmariadb 2>/dev/null && ! pkg-config --exists mysqlclient 2>/dev/null; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "installing libmariadb-dev and pkg-config for mysqlclient" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libmariadb-dev pkg-config) >&2 \
      || echo "could not install libmariadb-dev: the mysqlclient tests will say so" >&2
  else
    echo "libmariadb-dev missing and not root: apt-get install libmariadb-dev pkg-config" >&2
  fi
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[test]'
.venv/bin/pip install --quiet 'mysqlclient>=2.2' \
  || echo "could not build mysqlclient: tests/test_mysqlclient.py will say so" >&2
if [ "${CI:-}" = "true" ] && ! .venv/bin/python -c "import pymysql; pymysql.connect(host='127.0.0.1', user='root')" 2>/dev/null; then
  echo "MariaDB is not answering; starting it" >&2
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  for _ in $(seq 30); do
    .venv/bin/python -c "import pymysql; pymysql.connect(host='127.0.0.1', user='root')" 2>/dev/null && break
    sleep 1
  done
fi
.venv/bin/ruff check wxbot tests scripts benchmarks
.venv/bin/python -m pytest -q "$@"
