"""The seed's training/webapp: a small web app answering "Hello world!" on port 5000.

The original is a Flask app; this one uses only the standard library so that its image needs no
package from outside Debian's archive.
"""
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"Hello world!"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 5000), Hello).serve_forever()
