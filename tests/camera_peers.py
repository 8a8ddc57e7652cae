"""Network cameras for the capture tests: Debian's ffmpeg streaming a looped clip.

* :class:`MjpegCamera`: ffmpeg itself serves MJPEG over HTTP (``-f mpjpeg -listen 1``), as
  the HTTP "video.mjpg" endpoint of an IP camera does.
* :class:`RtspCamera`: ffmpeg encodes the clip to H.264 over RTP (its own packetiser and
  SDP); in front of it a minimal RTSP server answers OPTIONS, DESCRIBE (ffmpeg's SDP),
  SETUP (TCP interleaved; UDP is refused with 461 so the client falls back, as many
  cameras behind NAT make it do) and PLAY, then relays the RTP packets on the RTSP
  connection. ffmpeg 5.1's RTSP muxer only pushes to a server (no ``listen``), hence the
  front; the media bytes are ffmpeg's.

Both can be killed (the stream closes), stalled (SIGSTOP: the connection stays open and
nothing comes) and brought back, which is what the lane must survive.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from tests.peers import free_port


def make_clip(images: list[Path], target: Path, *, size: str = "640:480", fps: int = 10) -> Path:
    """A short H.264 clip showing each photograph for one second (plates stay readable)."""
    inputs: list[str] = []
    for image in images:
        inputs += ["-loop", "1", "-t", "1", "-i", str(image)]
    scale = (
        f"scale={size}:force_original_aspect_ratio=decrease,pad={size}:(ow-iw)/2:(oh-ih)/2,setsar=1"
    )
    chains = ";".join(f"[{i}:v]{scale},fps={fps}[v{i}]" for i in range(len(images)))
    joined = "".join(f"[v{i}]" for i in range(len(images)))
    subprocess.run(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *inputs,
            "-filter_complex", f"{chains};{joined}concat=n={len(images)}:v=1:a=0[out]",
            "-map", "[out]", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
            "-pix_fmt", "yuv420p", "-g", str(fps), str(target),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    return target


class _Ffmpeg:
    """One ffmpeg process: start, kill, stall (SIGSTOP) and resume (SIGCONT)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def _spawn(self, args: list[str]) -> None:
        self.process = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def stall(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


class MjpegCamera(_Ffmpeg):
    def __init__(self, clip: Path) -> None:
        super().__init__()
        self.clip = clip
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/video.mjpg"

    def start(self) -> None:
        # One client at a time (-listen 1): ffmpeg ends when it goes, so watch and restart.
        source = ["-re", "-stream_loop", "-1", "-i", str(self.clip)]
        self._spawn(
            [*source, "-c:v", "mjpeg", "-q:v", "3", "-f", "mpjpeg", "-listen", "1", self.url]
        )
        _wait_port(self.port)


class RtspCamera(_Ffmpeg):
    def __init__(self, clip: Path, workdir: Path) -> None:
        super().__init__()
        self.clip, self.workdir = clip, workdir
        self.port = free_port()
        self.url = f"rtsp://127.0.0.1:{self.port}/stream1"
        self._server: socket.socket | None = None
        self._rtp: socket.socket | None = None
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sdp = ""
        self._stopped = threading.Event()

    def start(self) -> None:
        self._rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._rtp.bind(("127.0.0.1", 0))
        rtp_port = self._rtp.getsockname()[1]
        sdp = self.workdir / f"rtsp-{self.port}.sdp"
        sdp.unlink(missing_ok=True)
        source = ["-re", "-stream_loop", "-1", "-i", str(self.clip), "-an", "-c:v", "copy"]
        rtp = f"rtp://127.0.0.1:{rtp_port}?pkt_size=1200"
        self._spawn([*source, "-f", "rtp", "-sdp_file", str(sdp), rtp])
        deadline = time.monotonic() + 10
        while not (sdp.is_file() and "m=video" in sdp.read_text()):
            assert time.monotonic() < deadline, "ffmpeg wrote no SDP"
            time.sleep(0.05)
        lines = [ln for ln in sdp.read_text().splitlines() if ln and not ln.startswith("c=")]
        self._sdp = "\r\n".join([*lines, "c=IN IP4 0.0.0.0", "a=control:trackID=0"]) + "\r\n"
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._stopped.clear()
        for sock in (self._server, self._rtp):
            sock.settimeout(0.2)  # so the threads see kill() at once
        self._threads = [
            threading.Thread(target=self._accept, name="rtsp-accept", daemon=True),
            threading.Thread(target=self._relay, name="rtsp-relay", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def kill(self) -> None:
        """The camera goes away: ffmpeg ends and every RTSP connection is closed."""
        super().kill()
        self._stopped.set()
        for thread in self._threads:
            thread.join(5)
        for sock in (self._server, self._rtp):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
                client.close()
        self._server = self._rtp = None

    # -- the RTSP front -------------------------------------------------------------------
    def _accept(self) -> None:
        assert self._server is not None
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            threading.Thread(target=self._session, args=(client,), daemon=True).start()

    def _session(self, client: socket.socket) -> None:
        buffer = b""
        with contextlib.suppress(OSError):
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = client.recv(4096)
                    if not chunk:
                        return
                    buffer += chunk
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method = lines[0].split(" ")[0]
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (ln.partition(":") for ln in lines[1:])
                }
                length = int(headers.get("content-length", "0"))
                while len(buffer) < length:
                    buffer += client.recv(4096)
                buffer = buffer[length:]
                client.sendall(self._answer(method, headers).encode("latin-1"))
                if method == "PLAY":
                    with self._lock:
                        self._clients.append(client)

    def _answer(self, method: str, headers: dict[str, str]) -> str:
        cseq = headers.get("cseq", "0")
        extra: list[str] = []
        body = ""
        status = "200 OK"
        if method == "OPTIONS":
            extra.append("Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER")
        elif method == "DESCRIBE":
            body = self._sdp
            extra += [f"Content-Base: {self.url}/", "Content-Type: application/sdp"]
        elif method == "SETUP":
            if "TCP" not in headers.get("transport", "").upper():
                status = "461 Unsupported Transport"
            else:
                extra += ["Transport: RTP/AVP/TCP;unicast;interleaved=0-1", "Session: 15150001"]
        elif method in ("PLAY", "GET_PARAMETER", "TEARDOWN"):
            extra.append("Session: 15150001")
        else:
            status = "405 Method Not Allowed"
        lines = [f"RTSP/1.0 {status}", f"CSeq: {cseq}", *extra, f"Content-Length: {len(body)}"]
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def _relay(self) -> None:
        assert self._rtp is not None
        while not self._stopped.is_set():
            try:
                packet = self._rtp.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            frame = b"$\x00" + len(packet).to_bytes(2, "big") + packet
            with self._lock:
                clients = list(self._clients)
            for client in clients:
                try:
                    client.sendall(frame)
                except OSError:
                    with self._lock:
                        if client in self._clients:
                            self._clients.remove(client)


def _wait_port(port: int, timeout: float = 10.0) -> None:
    """Until something listens on ``port``, read from /proc (connecting would be a client:
    ffmpeg ``-listen 1`` serves exactly one and then ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError), open(table) as f:
                for line in f.readlines()[1:]:
                    local, state = line.split()[1], line.split()[3]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")
