"""Local sinks for the runner benchmark, run in their own process so that they do
not share the runner's interpreter: an aiosmtpd SMTP server and a threaded HTTP
server (webhooks and the SMS API). Prints "ready SMTP_PORT HTTP_PORT", then on
each line read from stdin prints how many messages and requests it has received."""

from __future__ import annotations

import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

counts = {"smtp": 0, "http": 0}
lock = threading.Lock()


class Smtp:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with lock:
            counts["smtp"] += 1
        return "250 OK"


class Http(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        with lock:
            counts["http"] += 1
        body = b'{"sid": "SM1"}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        smtp_port = s.getsockname()[1]
    controller = Controller(Smtp(), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    http = Server(("127.0.0.1", 0), Http)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    print(f"ready {smtp_port} {http.server_address[1]}", flush=True)
    for _line in sys.stdin:
        with lock:
            print(f"{counts['smtp']} {counts['http']}", flush=True)
    controller.stop()


if __name__ == "__main__":
    main()
