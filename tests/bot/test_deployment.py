"""Hosting set-ups end to end: updates by webhook instead of polling, and every request through a proxy."""

import socket
import socketserver
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler

from tests.bot.fake_telegram import QuietServer
from tests.bot.harness import a_part_of, finished_part, reply_after


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webhook_mode_serves_updates_posted_with_the_secret_only(fake, start_bot):
    port = free_port()
    bot = start_bot(fake, WEBHOOK_URL=f"http://127.0.0.1:{port}/tg/hook", WEBHOOK_LISTEN=f"127.0.0.1:{port}",
                    WEBHOOK_SECRET="s3cret-value_1")
    assert fake.webhook == (f"http://127.0.0.1:{port}/tg/hook", "s3cret-value_1")
    reply_after(fake, 40, "/len 60")
    part = finished_part(fake, 40, "/write 乔峰")
    assert a_part_of(part.text[len("乔峰"):], 60)
    assert set(fake.deliveries) == {200} and fake.polls == 0  # every update came by webhook, none polled
    before = len(fake.chat(40))
    forged = {"update_id": 999, "message": {"message_id": 1, "date": 0, "chat": {"id": 40, "type": "private"},
                                            "from": {"id": 40, "is_bot": False, "first_name": "x"}, "text": "/help",
                                            "entities": [{"type": "bot_command", "offset": 0, "length": 5}]}}
    assert fake.post_update(forged, None) == 403 and fake.post_update(forged, "wrong") == 403
    reply_after(fake, 40, "/temp")  # the bot still answers real updates, and answered no forged one
    assert len(fake.chat(40)) == before + 1
    assert "s3cret-value_1" not in bot.log()


class ForwardProxy(BaseHTTPRequestHandler):
    """A plain HTTP forward proxy: the request line holds the whole target URL."""

    seen: list[str] = []

    def do_POST(self):
        self.seen.append(self.path.rsplit("/", 1)[-1])
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request = urllib.request.Request(self.path, data=body, method="POST",
                                         headers={"Content-Type": self.headers.get("Content-Type", "")})
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                status, data = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, data = e.code, e.read()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Socks5Proxy(socketserver.ThreadingTCPServer):
    """A minimal SOCKS5 proxy (no authentication, CONNECT only, RFC 1928) that records where it connected."""

    daemon_threads = allow_reuse_address = True

    def __init__(self):
        self.targets: list[tuple[str, int]] = []
        super().__init__(("127.0.0.1", 0), Socks5Handler)


class Socks5Handler(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        _, n = conn.recv(2)
        conn.recv(n)  # the client's methods: we take "no authentication"
        conn.sendall(b"\x05\x00")
        _, cmd, _, kind = conn.recv(4)
        if kind == 1:  # IPv4
            host = socket.inet_ntoa(conn.recv(4))
        elif kind == 3:  # a name
            host = conn.recv(conn.recv(1)[0]).decode()
        else:
            return
        port = int.from_bytes(conn.recv(2), "big")
        self.server.targets.append((host, port))
        with socket.create_connection((host, port)) as upstream:
            conn.sendall(b"\x05\x00\x00\x01" + socket.inet_aton("127.0.0.1") + b"\x00\x00")
            pump = threading.Thread(target=self.copy, args=(upstream, conn), daemon=True)
            pump.start()
            self.copy(conn, upstream)
            pump.join(5)

    @staticmethod
    def copy(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass


def test_every_bot_api_request_goes_through_a_socks5_proxy(fake, start_bot):
    proxy = Socks5Proxy()
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        start_bot(fake, TELEGRAM_PROXY=f"socks5://127.0.0.1:{proxy.server_address[1]}")
        reply_after(fake, 42, "/len 30")
        finished_part(fake, 42, "/write 段誉")
        assert proxy.targets and set(proxy.targets) == {("127.0.0.1", fake.server.server_address[1])}
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_every_bot_api_request_goes_through_an_http_proxy(fake, start_bot):
    proxy = QuietServer(("127.0.0.1", 0), ForwardProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        bot = start_bot(fake, TELEGRAM_PROXY=f"http://user:pa55word@127.0.0.1:{proxy.server_address[1]}")
        reply_after(fake, 41, "/len 30")
        finished_part(fake, 41, "/write 段誉")
        seen = set(ForwardProxy.seen)
        assert {"getMe", "getUpdates", "sendMessage"} <= seen
        assert sum(1 for _, method, _p in fake.calls if method != "getUpdates") <= len(ForwardProxy.seen)
        assert "pa55word" not in bot.log()
    finally:
        proxy.shutdown()
        proxy.server_close()
