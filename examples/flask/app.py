"""Enqueue from a Flask view. Run the web app with `flask --app app run`, the workers with
`qrun --workers 2 app:queue` (same folder, same QRUN_URL)."""

from __future__ import annotations

from flask import Flask, jsonify, request

import qrun

queue = qrun.Queue("web")


@queue.task(retries=3)
def resize_image(path: str, width: int) -> None:
    print(f"resizing {path} to {width}px")


app = Flask(__name__)


@app.post("/images")
def upload() -> tuple[object, int]:
    body = request.get_json(force=True)
    try:
        job = resize_image.enqueue(body["path"], int(body.get("width", 640)))
    except (TypeError, KeyError) as error:  # bad input is refused before anything is queued
        return jsonify(error=str(error)), 400
    return jsonify(job=job.id), 202
