"""The app npm run verify -- --push deploys: it answers every GET with one line."""
import http.server
import os


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hephy-doks verify: served\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# Workflow's slugrunner gives the port in PORT (5000 by default).
http.server.HTTPServer(("", int(os.environ.get("PORT", "5000"))), Hello).serve_forever()
