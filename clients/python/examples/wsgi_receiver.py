"""A webhook receiver as a plain WSGI app, no framework.

HITL_WEBHOOK_SECRET=... python wsgi_receiver.py      # listens on 127.0.0.1:8080
"""

import json
import os
from wsgiref.simple_server import make_server

import hitl


def make_app(secret, handle):
    """A WSGI app that verifies each delivery, de-duplicates it and passes it to ``handle``."""
    seen = set()  # delivery ids already handled; keep them in your database

    def app(environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        try:
            event = hitl.verify_webhook(body, environ, secret)  # raw bytes, before parsing
        except hitl.WebhookVerificationError as exc:  # tampered, wrong secret, or stale
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [str(exc).encode()]
        delivery = environ.get("HTTP_X_HITL_DELIVERY")
        if delivery not in seen:  # delivery is at least once
            seen.add(delivery)
            handle(event)
        start_response("204 No Content", [])
        return []

    return app


def print_event(event):
    item = event["item"]
    print(event["event"], item["external_id"], item["status"], json.dumps(item["decision"]))


if __name__ == "__main__":
    app = make_app(os.environ["HITL_WEBHOOK_SECRET"], print_event)
    make_server("127.0.0.1", 8080, app).serve_forever()
