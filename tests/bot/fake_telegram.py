"""A small fake Telegram Bot API server on 127.0.0.1, for end-to-end tests over real HTTP.

It speaks the methods the bot uses (getMe, getUpdates with offset/timeout long
polling, sendMessage, editMessageText, sendDocument, answerCallbackQuery,
setMyCommands, deleteWebhook, ...) with Telegram's real error answers for
too-long, empty and not-modified messages, and can inject faults: a 429 with
retry_after, or a method that hangs. Tests play users with `command()` and
`press()` and read what the bot sent from `chats`.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import math
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijklmnop"
BOT_USER = {"id": 123456789, "is_bot": True, "first_name": "金庸", "username": "JinYongBot",
            "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
STRING_FIELDS = {"text", "callback_query_id", "filename", "caption", "parse_mode", "url", "language_code"}


class QuietServer(ThreadingHTTPServer):
    allow_reuse_address = True
    request_queue_size = 1024  # a load test opens hundreds of connections at once

    def handle_error(self, request, client_address):
        pass  # a client killed mid-request (the SIGKILL tests) is expected, not news


@dataclass
class Sent:
    message_id: int
    chat_id: int
    text: str
    reply_markup: dict | None = None
    document: bytes | None = None
    edits: list[tuple[float, str]] = field(default_factory=list)  # (time, text) per successful edit
    sent_at: float = 0.0
    created: float = 0.0  # time.monotonic() when sent
    finished: float = 0.0  # time.monotonic() when it got its buttons (a finished part)
    thread_id: int | None = None  # the forum topic it was sent to (None: the chat itself, or General)


ANONYMOUS_ADMIN = 1087968824  # Telegram's GroupAnonymousBot: every anonymous admin, in every group


SENDS = ("sendMessage", "editMessageText", "sendDocument")  # what Telegram's flood limits count


class FloodBuckets:
    """Telegram's flood limits as the fake enforces them: leaky buckets of messages in all
    (30 a second), into one group (20 a minute) and into one chat (about 1 a second, short
    bursts allowed), each with a little slack for arrival jitter, as Telegram's are not exact."""

    def __init__(self, per_second=30.0, group_per_minute=20.0, chat_per_second=1.0, chat_burst=3, slack=1.0):
        self.rules = {"all": (per_second + slack, per_second),  # kind -> (capacity, leak per second)
                      "group": (group_per_minute + slack, group_per_minute / 60),
                      "chat": (chat_burst + slack, chat_per_second)}
        self.levels: dict[tuple, tuple[float, float]] = {}  # (kind, key) -> (level, when)
        self.refused = 0  # 429s answered

    def admit(self, chat: int) -> float:
        """0 if a message to `chat` may go now (and count it), else the seconds to wait."""
        now = time.monotonic()
        keys = [("all", None), ("chat", chat)] + ([("group", chat)] if chat < 0 else [])
        levels = {}
        for key in keys:
            capacity, leak = self.rules[key[0]]
            level, when = self.levels.get(key, (0.0, now))
            level = max(0.0, level - (now - when) * leak)
            if level + 1 > capacity:
                self.refused += 1
                return max(1.0, (level + 1 - capacity) / leak)
            levels[key] = level
        for key, level in levels.items():
            self.levels[key] = (level + 1, now)
        return 0.0


class FakeTelegram:
    def __init__(self, token: str = TOKEN, port: int = 0, flood_limits: bool = False, flood_slack: float = 1.0):
        self.token = token
        # answer 429 past Telegram's limits; flood_slack: messages over each bucket let through (0: none)
        self.flood = FloodBuckets(slack=flood_slack) if flood_limits else None
        self.lock = threading.Condition()
        self.updates: list[dict] = []
        self.next_update_id = 1
        self.next_message_id = 1000
        self.messages: dict[tuple[int, int], Sent] = {}  # (chat_id, message_id) -> Sent
        self.calls: list[tuple[float, str, dict]] = []  # every request: (time, method, params)
        self.faults: dict[str, list] = {}  # method -> list of ("429", seconds) / ("hang", seconds)
        self.commands: list | None = None
        self.polls = 0
        self.hanging = 0  # requests held by a "hang" fault and not answered yet
        self.webhook: tuple[str, str] | None = None  # (url, secret_token) once the bot sets one
        self.webhooks_set = 0
        self.deliveries: list[int] = []  # HTTP status of every update posted to the webhook
        self.connections: set = set()  # open client sockets, closed by stop() as a server going away would
        self.deleted: set[tuple[int, int]] = set()  # (chat_id, message_id) of users' messages deleted since
        self.server = QuietServer(("127.0.0.1", port), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ---- lifecycle ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/bot"

    def start(self) -> "FakeTelegram":
        self.thread.start()
        return self

    def __enter__(self) -> "FakeTelegram":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            for conn in list(self.connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                    conn.close()
                except OSError:
                    pass
            self.lock.notify_all()

    # ---- playing users --------------------------------------------------------------

    def _push(self, update: dict) -> None:
        with self.lock:
            update["update_id"] = self.next_update_id
            self.next_update_id += 1
            hook = self.webhook
            if hook is None:
                self.updates.append(update)
                self.lock.notify_all()
        if hook is not None:  # as Telegram does once a webhook is set: post it there
            self.deliveries.append(self.post_update(update, hook[1]))

    def post_update(self, update: dict, secret: str | None) -> int:
        """POST one update to the webhook with `secret` in Telegram's header; the HTTP status."""
        request = urllib.request.Request(self.webhook[0], data=json.dumps(update).encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  **({"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {})})
        deadline = time.monotonic() + 30
        while True:  # Telegram retries a webhook that is not answering yet (it may be starting)
            try:
                with urllib.request.urlopen(request, timeout=10) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code
            except urllib.error.URLError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def command(self, chat_id: int, text: str, user_id: int | None = None, chat_type: str = "private",
                edited: bool = False, anonymous: bool = False, thread_id: int | None = None,
                deleted: bool = False, reply_to: int | None = None) -> int:
        """A user sends `text` (a /command ...) in a chat; `anonymous`: an anonymous group admin, whose
        messages come from Telegram's one shared account on behalf of the group (sender_chat);
        `thread_id`: in that topic of a forum supergroup; `deleted`: deleted by its author at once (before
        the bot answers); `reply_to`: a reply to that message of the bot's. Returns the message's id."""
        user_id = user_id or chat_id
        word = text.split()[0] if text.split() else ""
        message = {
            "message_id": self._new_message_id(), "date": int(time.time()),
            "chat": {"id": chat_id, "type": chat_type, **({"title": "群"} if chat_type != "private" else {})},
            "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"},
            "text": text,
        }
        if word.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(word)}]
        if anonymous:
            message["from"] = {"id": ANONYMOUS_ADMIN, "is_bot": True, "first_name": "Group",
                               "username": "GroupAnonymousBot"}
            message["sender_chat"] = {"id": chat_id, "type": chat_type, "title": "群"}
        if edited:
            message["edit_date"] = int(time.time())
        if deleted:
            self.delete(chat_id, message["message_id"])
        if reply_to is not None:
            message["reply_to_message"] = self._message_json(self.messages[(chat_id, reply_to)])
        if thread_id is not None:
            message["chat"]["is_forum"] = True
            message.update(message_thread_id=thread_id, is_topic_message=True)
        self._push({"edited_message" if edited else "message": message})
        return message["message_id"]

    def delete(self, chat_id: int, message_id: int) -> None:
        """A user's message is deleted (by its author, or a clean-commands bot): replies quoting it fail
        unless they allow sending without the reply, as Telegram's do."""
        with self.lock:
            self.deleted.add((chat_id, message_id))

    def migrate(self, old: int, new: int) -> None:
        """A group becomes a supergroup: the service messages Telegram sends to both chats."""
        for chat, key, other, kind in ((old, "migrate_to_chat_id", new, "group"),
                                       (new, "migrate_from_chat_id", old, "supergroup")):
            self._push({"message": {"message_id": self._new_message_id(), "date": int(time.time()),
                                    "chat": {"id": chat, "type": kind, "title": "群"},
                                    "from": {"id": 777, "is_bot": False, "first_name": "admin"}, key: other}})

    def press(self, chat_id: int, message_id: int, data: str, user_id: int | None = None) -> None:
        """A user presses an inline button under the bot's message."""
        user_id = user_id or chat_id
        sent = self.messages[(chat_id, message_id)]
        self._push({"callback_query": {
            "id": str(self.next_update_id), "chat_instance": str(chat_id), "data": data,
            "from": {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"},
            "message": self._message_json(sent)}})

    def fail(self, method: str, kind: str, seconds: float, chat_id: int | None = None) -> None:
        """The next call of `method` (into `chat_id`, if given) answers 429 (kind "429", seconds), hangs (kind
        "hang", seconds) before answering, fails with a 400 (kind "error", description), or is never answered:
        its connection closes (kind "drop"; nothing is done)."""
        with self.lock:
            self.faults.setdefault(method, []).append((kind, seconds, chat_id))

    # ---- reading what the bot did -----------------------------------------------------

    def chat(self, chat_id: int) -> list[Sent]:
        with self.lock:
            return sorted((m for (c, _), m in self.messages.items() if c == chat_id and m.sent_at),
                          key=lambda m: m.message_id)

    def texts(self, chat_id: int) -> list[str]:
        return [m.text for m in self.chat(chat_id)]

    def wait_for(self, predicate, timeout: float = 60.0, what: str = "condition"):
        """Poll until predicate() is truthy; returns its value or raises AssertionError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")

    # ---- the HTTP side ----------------------------------------------------------------

    def _new_message_id(self) -> int:
        with self.lock:
            self.next_message_id += 1
            return self.next_message_id

    def _message_json(self, m: Sent) -> dict:
        out = {"message_id": m.message_id, "date": int(m.sent_at or time.time()),
               "chat": {"id": m.chat_id, "type": "private" if m.chat_id > 0 else "group"}, "from": BOT_USER}
        if m.thread_id is not None:
            out["chat"] = {"id": m.chat_id, "type": "supergroup", "title": "群", "is_forum": True}
            out.update(message_thread_id=m.thread_id, is_topic_message=True)
        if m.document is not None:
            out["document"] = {"file_id": f"doc{m.message_id}", "file_unique_id": f"u{m.message_id}",
                               "file_name": "story.txt", "file_size": len(m.document)}
        else:
            out["text"] = m.text
        if m.reply_markup:
            out["reply_markup"] = m.reply_markup
        return out

    def handle(self, method: str, params: dict, injected: bool = True) -> tuple[int, dict]:
        """Answer one Bot API call (injected=False: as a call already counted, without the injected
        faults, once a hang is over)."""
        chat = params.get("chat_id")
        fault = None
        if injected:
            with self.lock:
                self.calls.append((time.monotonic(), method, params))
                faults = self.faults.get(method) or []
                mine = [i for i, f in enumerate(faults) if len(f) < 3 or f[2] is None or str(f[2]) == str(chat)]
                fault = faults.pop(mine[0]) if mine else None
        if fault is None and self.flood is not None and method in SENDS:
            with self.lock:
                wait = self.flood.admit(int(chat))
            if wait:
                fault = ("429", math.ceil(wait))
        if fault and fault[0] == "429":
            return 429, {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {fault[1]}",
                         "parameters": {"retry_after": fault[1]}}
        if fault and fault[0] == "hang":
            with self.lock:
                self.hanging += 1
            try:
                time.sleep(fault[1])
                return self.handle(method, params, injected=False)  # then answered as usual
            finally:
                with self.lock:
                    self.hanging -= 1
        if fault and fault[0] == "error":
            return self._bad(str(fault[1]))
        if fault and fault[0] == "drop":  # the connection closes without an answer (a dropped keep-alive)
            return 0, {}
        if fault and fault[0] == "revoked":  # the token revoked from now on (at @BotFather)
            self.faults.setdefault(method, []).insert(0, fault)
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        fn = getattr(self, f"api_{method}", None)
        if fn is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
        return fn(params)

    @staticmethod
    def _bad(description: str) -> tuple[int, dict]:
        return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {description}"}

    def _ok(self, result) -> tuple[int, dict]:
        return 200, {"ok": True, "result": result}

    def api_getMe(self, p):
        return self._ok(BOT_USER)

    def api_deleteWebhook(self, p):
        self.webhook = None
        return self._ok(True)

    def api_setWebhook(self, p):
        self.webhook = (p["url"], p.get("secret_token", ""))
        self.webhooks_set += 1
        return self._ok(True)

    def api_setMyCommands(self, p):
        self.commands = p.get("commands")
        return self._ok(True)

    def api_answerCallbackQuery(self, p):
        return self._ok(True)

    def api_getUpdates(self, p):
        offset, timeout = int(p.get("offset", 0) or 0), float(p.get("timeout", 0) or 0)
        deadline = time.monotonic() + min(timeout, 5.0)
        with self.lock:
            self.polls += 1
            if offset:
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
            while not self.updates and time.monotonic() < deadline:
                self.lock.wait(deadline - time.monotonic())
            return self._ok(list(self.updates))

    def _check_text(self, text: str):
        if not text.strip():
            return self._bad("message text is empty")
        if len(text) > 4096:
            return self._bad("message is too long")
        return None

    def _check_reply(self, p):
        """A quote of a deleted message fails unless the send allows going without it."""
        quote = p.get("reply_parameters") or ({"message_id": p["reply_to_message_id"]}
                                              if p.get("reply_to_message_id") else None)
        if quote and (int(p["chat_id"]), int(quote["message_id"])) in self.deleted and not (
                quote.get("allow_sending_without_reply") or p.get("allow_sending_without_reply")):
            return self._bad("message to be replied not found")
        return None

    def api_sendMessage(self, p):
        text = str(p.get("text", ""))
        error = self._check_text(text) or self._check_reply(p)
        if error:
            return error
        now = time.monotonic()
        thread = p.get("message_thread_id")
        m = Sent(self._new_message_id(), int(p["chat_id"]), text, p.get("reply_markup"), sent_at=time.time(),
                 created=now, finished=now if p.get("reply_markup") else 0.0,
                 thread_id=int(thread) if thread not in (None, "") else None)
        with self.lock:
            self.messages[(m.chat_id, m.message_id)] = m
        return self._ok(self._message_json(m))

    def api_editMessageText(self, p):
        text = str(p.get("text", ""))
        key = (int(p["chat_id"]), int(p["message_id"]))
        with self.lock:
            m = self.messages.get(key)
        if m is None:
            return self._bad("message to edit not found")
        error = self._check_text(text)
        if error:
            return error
        markup = p.get("reply_markup")
        if text == m.text and markup == m.reply_markup:
            return self._bad("message is not modified: specified new message content and reply markup are "
                             "exactly the same as a current content and reply markup of the message")
        with self.lock:
            m.text, m.reply_markup = text, markup
            m.edits.append((time.monotonic(), text))
            if markup and not m.finished:
                m.finished = time.monotonic()
        return self._ok(self._message_json(m))

    def api_sendDocument(self, p):
        thread = p.get("message_thread_id")
        m = Sent(self._new_message_id(), int(p["chat_id"]), "", None, document=p.get("document", b""),
                 sent_at=time.time(), thread_id=int(thread) if thread not in (None, "") else None)
        with self.lock:
            self.messages[(m.chat_id, m.message_id)] = m
        return self._ok(self._message_json(m))

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def setup(self):
                super().setup()
                with fake.lock:
                    fake.connections.add(self.connection)

            def finish(self):
                with fake.lock:
                    fake.connections.discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def do_POST(self):
                self._serve(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def do_GET(self):
                self._serve(b"")

            def _serve(self, body: bytes):
                prefix = f"/bot{fake.token}/"
                if not self.path.startswith(prefix):
                    return self._reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
                method = self.path[len(prefix):].split("?")[0]
                params = parse_params(self.headers.get("Content-Type", ""), body)
                status, payload = fake.handle(method, params)
                if status == 0:  # "drop": close the connection without a word
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                self._reply(status, payload)

            def _reply(self, status: int, payload: dict):
                data = json.dumps(payload, ensure_ascii=False).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler


def parse_params(content_type: str, body: bytes) -> dict:
    """Form-urlencoded or multipart body -> params (non-string fields JSON-decoded, as PTB encodes them)."""
    raw: dict = {}
    if content_type.startswith("multipart/form-data"):
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            raw[name] = payload if part.get_filename() else payload.decode("utf-8")
    elif body:
        raw = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    params = {}
    for k, v in raw.items():
        if k in STRING_FIELDS or isinstance(v, bytes):
            params[k] = v
        else:
            try:
                params[k] = json.loads(v)
            except ValueError:
                params[k] = v
    return params
