"""The examples users copy from run as written, against the test server."""

from __future__ import annotations

import importlib.util
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

import qrun

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_plain_example_enqueues_then_a_burst_worker_settles_everything(subprocess_env: dict[str, str]) -> None:
    folder = EXAMPLES / "plain"
    produced = subprocess.run(
        [sys.executable, "produce.py"], cwd=folder, env=subprocess_env, capture_output=True, text=True, timeout=60
    )
    assert produced.returncode == 0, produced.stderr
    assert "enqueued 1000 charges" in produced.stdout
    assert "refused: cannot enqueue tasks.send_email: argument 'subject' is not JSON-encodable" in produced.stdout

    worked = subprocess.run(
        [sys.executable, "-m", "qrun", "--workers", "2", "--burst", "tasks:queue"],
        cwd=folder, env=subprocess_env, capture_output=True, text=True, timeout=60,
    )
    assert worked.returncode == 0, worked.stderr
    assert "sending 'a second later' to a@example.com (attempt 1)" in worked.stdout
    with qrun.Queue("emails", subprocess_env["QRUN_URL"]) as queue:
        stats = queue.stats()
    assert (stats["enqueued"], stats["succeeded"], stats["dead_lettered"]) == (1003, 1003, 0)


def test_the_django_example_queues_receipts_on_commit_and_a_burst_worker_sends_them(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    pytest.importorskip("django", reason="the Django example needs django (pip install '.[tests]')")
    folder = EXAMPLES / "django"
    database = tmp_path / "shop.sqlite3"
    env = {**subprocess_env, "DJANGO_SETTINGS_MODULE": "mysite.settings", "SHOP_DB_PATH": str(database)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    run("manage.py", "migrate")
    assert "placed order 1; its receipt is queued" in run("manage.py", "place_order", "a@example.com", "1999").stdout
    through_the_view = run("manage.py", "shell", "-c", _DJANGO_CHECKOUT)
    assert 'good 201 {"order": 2}' in through_the_view.stdout
    assert 'bad email 400 {"errors": {"email": ["Enter a valid email address."]}}' in through_the_view.stdout
    assert 'bad total 400 {"errors": {"total_cents": ["Enter a whole number."]}}' in through_the_view.stdout
    assert 'no total 400 {"errors": {"total_cents": ["This field is required."]}}' in through_the_view.stdout
    assert 'zero 400 {"errors": {"total_cents": ["Ensure this value is greater than or equal to 1."]}}' in through_the_view.stdout
    assert "rolled back" in through_the_view.stdout
    with qrun.Queue("shop", subprocess_env["QRUN_URL"]) as queue:
        assert (queue.stats()["enqueued"], queue.stats()["ready"]) == (2, 2)  # not the refused or rolled-back ones

    worked = run("-m", "qrun", "--workers", "1", "--burst", "shop.tasks:queue")
    assert "receipt for order 1: 1999 cents to a@example.com" in worked.stdout
    assert "receipt for order 2: 500 cents to b@example.com" in worked.stdout
    with closing(sqlite3.connect(database)) as db:
        rows = db.execute("SELECT id, receipt_sent FROM shop_order ORDER BY id").fetchall()
    assert rows == [(1, 1), (2, 1)]
    with qrun.Queue("shop", subprocess_env["QRUN_URL"]) as queue:
        stats = queue.stats()
    assert (stats["enqueued"], stats["succeeded"], stats["dead_lettered"]) == (2, 2, 0)


# Run by `manage.py shell -c` in the Django example: the checkout view through Django's test
# client (good and bad input), and an order whose transaction rolls back (nothing is queued).
_DJANGO_CHECKOUT = """
from django.db import transaction
from django.test import Client

from shop.orders import place_order

client = Client(HTTP_HOST="localhost")
for label, data in [
    ("good", {"email": "b@example.com", "total_cents": "500"}),
    ("bad email", {"email": "nobody", "total_cents": "500"}),
    ("bad total", {"email": "c@example.com", "total_cents": "abc"}),
    ("no total", {"email": "c@example.com"}),
    ("zero", {"email": "c@example.com", "total_cents": "0"}),
]:
    response = client.post("/checkout/", data)
    print(label, response.status_code, response.content.decode())
try:
    with transaction.atomic():
        place_order("d@example.com", 700)
        raise RuntimeError("payment declined")
except RuntimeError:
    print("rolled back")
"""


def test_the_flask_example_refuses_bad_input_before_queuing_and_a_burst_worker_runs_the_rest(
    subprocess_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("flask", reason="the Flask example needs flask (pip install '.[tests]')")
    folder = EXAMPLES / "flask"
    spec = importlib.util.spec_from_file_location("app", folder / "app.py")  # named as `qrun app:queue` imports it
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "app", example)
    spec.loader.exec_module(example)
    try:
        client = example.app.test_client()
        good = client.post("/images", json={"path": "cat.png", "width": 320})
        assert good.status_code == 202, good.get_data(as_text=True)
        assert good.get_json()["job"]
        defaulted = client.post("/images", data='{"path": "dog.png"}')  # no Content-Type: still JSON
        assert defaulted.status_code == 202, defaulted.get_data(as_text=True)

        not_an_object = "the body must be a JSON object, e.g. {\"path\": \"cat.png\", \"width\": 320}"
        refused = [
            ('{"width": 320}', "missing field 'path'"),
            ('{"path": "", "width": 320}', "'path' must be a non-empty string"),
            ('{"path": 7}', "'path' must be a non-empty string"),
            ('{"path": "cat.png", "width": "abc"}', "'width' must be a positive integer"),
            ('{"path": "cat.png", "width": 0}', "'width' must be a positive integer"),
            ('{"path": "cat.png", "width": -5}', "'width' must be a positive integer"),
            ('{"path": "cat.png", "width": 3.5}', "'width' must be a positive integer"),
            ('{"path": "cat.png", "width": true}', "'width' must be a positive integer"),
            ("not json", not_an_object),
            ("", not_an_object),
            ('["cat.png", 320]', not_an_object),
        ]
        for body, message in refused:
            response = client.post("/images", data=body, content_type="application/json")
            assert (response.status_code, response.get_json()) == (400, {"error": message}), body
        stats = example.queue.stats()
        assert (stats["enqueued"], stats["ready"]) == (2, 2)  # nothing from the refused requests
    finally:
        example.queue.close()

    worked = subprocess.run(
        [sys.executable, "-m", "qrun", "--workers", "1", "--burst", "app:queue"],
        cwd=folder, env=subprocess_env, capture_output=True, text=True, timeout=60,
    )
    assert worked.returncode == 0, worked.stderr
    assert "resizing cat.png to 320px" in worked.stdout
    assert "resizing dog.png to 640px" in worked.stdout
    with qrun.Queue("web", subprocess_env["QRUN_URL"]) as queue:
        stats = queue.stats()
    assert (stats["enqueued"], stats["succeeded"], stats["dead_lettered"]) == (2, 2, 0)
