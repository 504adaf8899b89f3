"""Enqueue from a Flask view. Run the web app with `flask --app app run`, the workers with
`qrun --workers 2 app:queue` (same folder, same QRUN_URL); see README.md."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request

import qrun

queue = qrun.Queue("web")


@queue.task(retries=3)
def resize_image(path: str, width: int) -> None:
    print(f"resizing {path} to {width}px")


app = Flask(__name__)


def bad_request(message: str) -> tuple[Any, int]:
    return jsonify(error=message), 400


@app.post("/images")
def upload() -> tuple[Any, int]:
    # Bad input is refused here, with a 400 that says what is wrong, before anything is queued.
    body = request.get_json(force=True, silent=True)  # any Content-Type; None when not JSON
    if not isinstance(body, dict):
        return bad_request('the body must be a JSON object, e.g. {"path": "cat.png", "width": 320}')
    if "path" not in body:
        return bad_request("missing field 'path'")
    path = body["path"]
    if not isinstance(path, str) or not path:
        return bad_request("'path' must be a non-empty string")
    width = body.get("width", 640)
    if isinstance(width, bool) or not isinstance(width, int) or width <= 0:
        return bad_request("'width' must be a positive integer")
    job = resize_image.enqueue(path, width)
    return jsonify(job=job.id), 202
