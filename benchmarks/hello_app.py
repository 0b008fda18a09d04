"""A Flask "hello world" JSON route: the ceiling of the web stack in ``benchmarks/serve.py``.

Served by gunicorn with the same settings as the assistant, it shows what Flask + gunicorn
cost with no model, no store and no metrics.
"""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/hello")
def hello():
    body = request.get_json(silent=True) or {}
    return jsonify({"hello": body.get("text", "world")})
