"""Load a page in headless Chromium and report what a user would see: every image with
its natural width, console errors and uncaught exceptions, and a screenshot.

Talks the Chrome DevTools Protocol over ``--remote-debugging-pipe`` (JSON messages ended
by NUL on file descriptors 3 and 4), so it needs nothing but the Debian ``chromium``
package and the standard library.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class PageLoad:
    images: list[dict] = field(default_factory=list)  # src, complete, naturalWidth
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads
    title: str = ""
    screenshot: bytes = b""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _Pipe:
    def __init__(self, proc: subprocess.Popen, write_fd: int, read_fd: int) -> None:
        self.proc, self.write_fd, self.read_fd = proc, write_fd, read_fd
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60.0) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self.read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)
        raise TimeoutError(method)

    def read(self) -> dict:
        while b"\0" not in self.buffer:
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)

    def wait_for(self, method: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while time.monotonic() < deadline:
            event = self.read()
            self.events.append(event)
            if event.get("method") == method:
                return event
        raise TimeoutError(method)


def load_page(path: Path, width: int = 1300, height: int = 2000) -> PageLoad:
    """Open ``path`` (a local HTML file), wait for its load event and inspect it."""
    binary = chromium()
    if binary is None:
        raise RuntimeError("chromium is not installed (Debian package `chromium`)")
    to_chrome_read, to_chrome_write = os.pipe()
    from_chrome_read, from_chrome_write = os.pipe()

    def attach_pipes() -> None:  # in the child: the protocol's fds 3 (in) and 4 (out)
        high_in, high_out = os.dup(to_chrome_read), os.dup(from_chrome_write)
        os.dup2(high_in, 3)
        os.dup2(high_out, 4)

    proc = subprocess.Popen(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
         "--no-first-run", "--disable-dev-shm-usage", f"--window-size={width},{height}",
         "about:blank"],
        preexec_fn=attach_pipes, close_fds=False, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    os.close(to_chrome_read)
    os.close(from_chrome_write)
    pipe = _Pipe(proc, to_chrome_write, from_chrome_read)
    result = PageLoad()
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.send("Target.attachToTarget", {"targetId": target,
                                                      "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            pipe.send(f"{domain}.enable", session=session)
        pipe.send("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session)
        pipe.send("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
        pipe.wait_for("Page.loadEventFired")
        evaluated = pipe.send("Runtime.evaluate", {
            "expression": "JSON.stringify({title: document.title, images: "
                          "Array.from(document.images).map(i => ({src: i.src.slice(0, 200), "
                          "complete: i.complete, naturalWidth: i.naturalWidth}))})",
            "returnByValue": True}, session=session)
        page = json.loads(evaluated["result"]["value"])
        result.images, result.title = page["images"], page["title"]
        shot = pipe.send("Page.captureScreenshot", {"format": "png",
                                                    "captureBeyondViewport": True},
                         session=session)
        result.screenshot = base64.b64decode(shot["data"])
        for event in pipe.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                result.errors.append("console: " + " ".join(
                    str(a.get("value", a.get("description"))) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                result.errors.append("exception: " + json.dumps(params.get("exceptionDetails")))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                result.errors.append(f"log: {params['entry'].get('text')} "
                                     f"{params['entry'].get('url', '')}")
            elif method == "Network.loadingFailed":
                result.errors.append(f"failed to load: {params.get('errorText')}")
        with contextlib.suppress(RuntimeError, TimeoutError):
            pipe.send("Browser.close", timeout=10)
    finally:
        os.close(to_chrome_write)
        os.close(from_chrome_read)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return result
