"""A judge model on 127.0.0.1 that speaks the OpenAI chat-completions and the
Anthropic messages protocols (pytest-httpserver, threaded).

What it answers for an item is chosen by a marker in the item's output:
``[[judge:pass]]``, ``[[judge:flag]]``, ``[[judge:lowpass]]`` (label pass, score
0.2), ``[[judge:garbage]]``, ``[[judge:500]]``, ``[[judge:429]]``,
``[[judge:429once:<key>]]`` (429 the first time, then pass), ``[[judge:slow]]``
(answers after ``slow_seconds``). An output asking to "answer pass" without a
marker gets what a gullible model would say: the bare word ``pass``.
"""

import json
import re
import threading
import time
from collections import Counter

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

MARKER = re.compile(r"\[\[judge:(\w+)(?::(\w+))?\]\]")

VERDICTS = {
    "pass": {
        "score": 0.93,
        "label": "pass",
        "rationale": "Accurate and grounded.",
        "error_categories": [],
    },
    "flag": {
        "score": 0.31,
        "label": "flag",
        "rationale": "The dose is stated without the <b>liver</b> caveat.",
        "error_categories": ["missing_caveat"],
    },
    "lowpass": {"score": 0.2, "label": "pass", "rationale": "Barely.", "error_categories": []},
}


class FakeJudge:
    def __init__(self, *, slow_seconds: float = 3.0) -> None:
        self.server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        self.slow_seconds = slow_seconds
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.seen: Counter = Counter()
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.server.expect_request(re.compile(r"/v1/chat/completions")).respond_with_handler(
            self._openai
        )
        self.server.expect_request(re.compile(r"/v1/messages")).respond_with_handler(
            self._anthropic
        )

    def start(self) -> "FakeJudge":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.clear()
        if self.server.is_running():
            self.server.stop()

    @property
    def openai_url(self) -> str:
        return self.server.url_for("/v1")

    @property
    def anthropic_url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    def requests_for(self, text: str) -> list[dict]:
        return [r for r in self.requests if text in json.dumps(r)]

    # -- protocol handlers ---------------------------------------------------------------

    def _decide(self, request: Request, user_text: str) -> tuple[str, dict | str | None]:
        body = request.get_json()
        with self._lock:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            match = MARKER.search(user_text)
            mode = match.group(1) if match else ("obey" if "answer pass" in user_text else "pass")
            key = match.group(0) if match else user_text
            with self._lock:
                self.seen[key] += 1
                count = self.seen[key]
            if mode == "slow":
                time.sleep(self.slow_seconds)
                return "ok", VERDICTS["pass"]
            if mode == "500":
                return "500", None
            if mode == "429" or (mode == "429once" and count == 1):
                return "429", None
            if mode == "429once":
                return "ok", VERDICTS["pass"]
            if mode == "garbage":
                return "ok", "Looks fine to me! {score: high"
            if mode == "obey":
                return "ok", "pass"
            return "ok", VERDICTS[mode]
        finally:
            with self._lock:
                self.in_flight -= 1

    def _error(self, kind: str) -> Response:
        status = int(kind)
        body = {"error": {"message": f"fake error {status}", "type": "server_error"}}
        headers = {"retry-after": "0"} if status == 429 else {}
        return Response(
            json.dumps(body), status=status, headers=headers, content_type="application/json"
        )

    def _openai(self, request: Request) -> Response:
        body = request.get_json()
        kind, answer = self._decide(request, body["messages"][-1]["content"])
        if kind != "ok":
            return self._error(kind)
        content = answer if isinstance(answer, str) else json.dumps(answer)
        reply = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 321, "completion_tokens": 42, "total_tokens": 363},
        }
        return Response(json.dumps(reply), content_type="application/json")

    def _anthropic(self, request: Request) -> Response:
        body = request.get_json()
        kind, answer = self._decide(request, body["messages"][-1]["content"])
        if kind != "ok":
            return self._error(kind)
        if isinstance(answer, str):
            content = [{"type": "text", "text": answer}]
        else:
            content = [
                {"type": "tool_use", "id": "toolu_1", "name": "record_verdict", "input": answer}
            ]
        reply = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 400, "output_tokens": 55},
        }
        return Response(json.dumps(reply), content_type="application/json")
