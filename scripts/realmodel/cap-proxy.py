#!/usr/bin/env python3
"""A reverse proxy for the real-model smoke test that lowers each request's output limit.

loopwright asks for max_tokens 8192, and llama-server honours a request's limit over its own
`-n`; on a CPU one rambling answer then takes an hour. This proxy rewrites `max_tokens` (and
`max_completion_tokens`) in POST bodies to at most CAP and passes everything else through,
streaming the response back as it arrives.

    LISTEN=8089 UPSTREAM=8088 CAP=1024 python3 cap-proxy.py
"""
import http.client
import http.server
import json
import os
import socketserver

LISTEN = int(os.environ.get("LISTEN", "8089"))
UPSTREAM = int(os.environ.get("UPSTREAM", "8088"))
CAP = int(os.environ.get("CAP", "1024"))


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the response body ends when the connection closes

    def forward(self, body):
        upstream = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=3600)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        if body is not None:
            headers["content-length"] = str(len(body))
        upstream.request(self.command, self.path, body=body, headers=headers)
        resp = upstream.getresponse()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("connection", "close")
        self.end_headers()
        while True:
            chunk = resp.read1(65536)
            if not chunk:
                break
            self.wfile.write(chunk)
            self.wfile.flush()
        upstream.close()

    def do_GET(self):
        self.forward(None)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            doc = json.loads(body)
            for key in ("max_tokens", "max_completion_tokens"):
                if isinstance(doc.get(key), int) and doc[key] > CAP:
                    doc[key] = CAP
            body = json.dumps(doc).encode()
        except ValueError:
            pass
        self.forward(body)

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


if __name__ == "__main__":
    Server(("127.0.0.1", LISTEN), Proxy).serve_forever()
