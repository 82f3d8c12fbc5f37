"""A foreign JSON-RPC node for client tests: it answers each method with a fixed result of any
shape (well-formed JSON-RPC around it), so a test can hand the CLI or the auditor an answer that
does not fit the schema. Real sockets on 127.0.0.1:0, a background thread."""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any


class ForeignNode(http.server.ThreadingHTTPServer):
    """A JSON-RPC server on 127.0.0.1 that answers each method with a fixed result (a
    well-formed JSON-RPC response, whatever the result's shape); `{}` for other methods."""

    def __init__(self, results: dict[str, Any]) -> None:
        super().__init__(("127.0.0.1", 0), _ForeignHandler)
        self.results = results

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> ForeignNode:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
        self.server_close()


class _ForeignHandler(http.server.BaseHTTPRequestHandler):
    server: ForeignNode

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        result = self.server.results.get(request["method"], {})
        body = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass
