"""GET /healthz: 200 when the database answers and the schema exists, 503 with a reason."""

from __future__ import annotations

from wxbot import create_app


def test_healthz_ok(client):  # type: ignore[no-untyped-def]
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "ok" and response.json["schema"]


def test_healthz_without_schema_says_what_to_run(tmp_path):  # type: ignore[no-untyped-def]
    app = create_app({"database_url": f"sqlite:///{tmp_path / 'empty.sqlite3'}"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert "wxbot init-db" in response.json["reason"]


def test_healthz_with_database_down(tmp_path):  # type: ignore[no-untyped-def]
    url = "mysql+pymysql://nobody@127.0.0.1:1/nothing"  # nothing listens on port 1
    app = create_app({"database_url": url})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["reason"] == "database unreachable"


def test_healthz_with_an_old_schema_says_what_to_run(app, client):  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    with app.extensions["wxbot.engine"].begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0004_merge'"))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "0004_merge" in response.json["reason"] and "wxbot init-db" in response.json["reason"]


def test_healthz_logs_nothing_when_healthy(client, caplog):  # type: ignore[no-untyped-def]
    client.get("/healthz")  # warm up
    caplog.clear()
    with caplog.at_level("INFO"):
        assert client.get("/healthz").status_code == 200
    assert caplog.records == []


def test_healthz_keeps_serving_a_schema_a_later_release_migrated(app, client):  # type: ignore[no-untyped-def]
    """A rolling deploy: the new release migrated the database while this one still serves.
    Migrations only add, so this release keeps working; a 503 made load balancers pull every
    old container at once (until 2026-11-24)."""
    from sqlalchemy import text

    with app.extensions["wxbot.engine"].begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["schema"] == "0099_from_the_future"
    assert "newer than this release" in response.json["note"]
