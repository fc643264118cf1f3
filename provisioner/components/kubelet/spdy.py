"""kubelet: SPDY/3.1 framing and a server-side session, for kubectl port-forward.

kubectl port-forward speaks SPDY/3.1 (draft-mbelshe-httpbis-spdy-00 plus the 3.1 changes): a plain
HTTP upgrade, or SPDY frames tunnelled in WebSocket binary messages. This module knows only frames and
streams; portforward.py gives the streams their meaning. It is transport-neutral: bytes come in
through `Session.feed`, frames go out through the `send` coroutine it is given.

Frames: a control frame is 1 bit set, 15 bits version (3), 16 bits type, 8 bits flags, 24 bits
length; a data frame is 1 bit clear, 31 bits stream id, 8 bits flags, 24 bits length. Header blocks
(SYN_STREAM, SYN_REPLY, HEADERS) are a count and length-prefixed name/value pairs (names lower case,
several values joined by NUL), compressed with zlib primed with SPDY/3's dictionary; each direction
is one zlib stream for the whole session, sync-flushed after every block.

Flow control (3.1): every stream and the session as a whole (stream id 0) start with a 64 KiB
window in each direction; DATA payloads consume it; WINDOW_UPDATE gives it back;
SETTINGS_INITIAL_WINDOW_SIZE moves every stream window by the difference. We return window to the
peer as the consumer actually takes data, so a peer that honours windows is throttled to our
pace. The send side is enforced only once the peer shows it does flow control (a WINDOW_UPDATE or
an initial window setting): spdystream, which kubectl and kubelet use, never sends WINDOW_UPDATE,
and enforcing our send window against it would stall every forward after 64 KiB.
"""

from __future__ import annotations

import asyncio
import enum
import struct
import zlib
from dataclasses import dataclass

VERSION = 3
DEFAULT_WINDOW = 64 * 1024
MAX_WINDOW = 2**31 - 1
MAX_DATA_CHUNK = 16 * 1024  # what we put in one DATA frame
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
SETTINGS_INITIAL_WINDOW_SIZE = 7


class FrameType(enum.IntEnum):
    SYN_STREAM = 1
    SYN_REPLY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PING = 6
    GOAWAY = 7
    HEADERS = 8
    WINDOW_UPDATE = 9


class RstStatus(enum.IntEnum):
    PROTOCOL_ERROR = 1
    INVALID_STREAM = 2
    REFUSED_STREAM = 3
    UNSUPPORTED_VERSION = 4
    CANCEL = 5
    INTERNAL_ERROR = 6
    FLOW_CONTROL_ERROR = 7
    STREAM_IN_USE = 8
    STREAM_ALREADY_CLOSED = 9
    FRAME_TOO_LARGE = 11


class GoAwayStatus(enum.IntEnum):
    OK = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2


# SPDY/3's zlib dictionary (section 2.6.10.1): these words, each after its 4-byte length, then the
# tail ("_" stands for the one space inside a word, in "200 OK")
_DICTIONARY_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base "
    "content-encoding content-language content-length content-location content-md5 "
    "content-range content-type date etag expect expires from host if-match if-modified-since "
    "if-none-match if-range if-unmodified-since last-modified location max-forwards pragma "
    "proxy-authenticate proxy-authorization range referer retry-after server te trailer "
    "transfer-encoding upgrade user-agent vary via warning www-authenticate method get status "
    "200_OK version HTTP/1.1 url public set-cookie keep-alive origin").split()
_DICTIONARY_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
    "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
    "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, "
    "Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,"
    "application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch"
    "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.replace("_", " ").encode()
                      for w in _DICTIONARY_WORDS) + _DICTIONARY_TAIL.encode()

Headers = dict[str, list[str]]


class ProtocolError(Exception):
    """The peer broke SPDY framing; the session ends with GOAWAY PROTOCOL_ERROR."""


class HeaderCodec:
    """One direction's header compression state: a zlib stream that lives as long as the session."""

    def __init__(self) -> None:
        self._compress = zlib.compressobj(zdict=DICTIONARY)
        self._decompress = zlib.decompressobj(zdict=DICTIONARY)

    def encode(self, headers: dict[str, str | list[str]]) -> bytes:
        block = [struct.pack(">I", len(headers))]
        for name, value in headers.items():
            values = [value] if isinstance(value, str) else list(value)
            raw_name, raw_value = name.lower().encode(), "\0".join(values).encode()
            block += [struct.pack(">I", len(raw_name)), raw_name,
                      struct.pack(">I", len(raw_value)), raw_value]
        data = b"".join(block)
        return self._compress.compress(data) + self._compress.flush(zlib.Z_SYNC_FLUSH)

    def decode(self, compressed: bytes) -> Headers:
        try:
            data = self._decompress.decompress(compressed)
        except zlib.error as error:
            raise ProtocolError(f"bad header block: {error}") from None
        try:
            (count,), at, headers = struct.unpack_from(">I", data), 4, {}
            for _ in range(count):
                (size,) = struct.unpack_from(">I", data, at)
                name = data[at + 4:at + 4 + size].decode().lower()
                at += 4 + size
                (size,) = struct.unpack_from(">I", data, at)
                value = data[at + 4:at + 4 + size].decode()
                at += 4 + size
                headers.setdefault(name, []).extend(value.split("\0"))
        except (struct.error, UnicodeDecodeError) as error:
            raise ProtocolError(f"bad header block: {error}") from None
        return headers


# -- frames ---------------------------------------------------------------------------------

@dataclass
class Frame:
    """A parsed frame: `type` is None for DATA; `payload` is the body after the 8-byte header."""
    type: FrameType | None
    flags: int
    payload: bytes
    stream_id: int = 0  # DATA frames only

    def word(self, index: int) -> int:
        """The payload's index-th 32-bit word with the reserved top bit masked off."""
        return struct.unpack_from(">I", self.payload, 4 * index)[0] & 0x7FFFFFFF


def control(kind: FrameType, payload: bytes, flags: int = 0) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, data: bytes, fin: bool = False) -> bytes:
    return struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data


def syn_stream(codec: HeaderCodec, stream_id: int, headers: dict, fin: bool = False) -> bytes:
    payload = struct.pack(">IIBB", stream_id, 0, 0, 0) + codec.encode(headers)
    return control(FrameType.SYN_STREAM, payload, FLAG_FIN if fin else 0)


def syn_reply(codec: HeaderCodec, stream_id: int, headers: dict, fin: bool = False) -> bytes:
    return control(FrameType.SYN_REPLY, struct.pack(">I", stream_id) + codec.encode(headers),
                   FLAG_FIN if fin else 0)


def rst_stream(stream_id: int, status: RstStatus) -> bytes:
    return control(FrameType.RST_STREAM, struct.pack(">II", stream_id, status))


def settings(values: dict[int, int]) -> bytes:
    body = b"".join(struct.pack(">II", key & 0xFFFFFF, value) for key, value in values.items())
    return control(FrameType.SETTINGS, struct.pack(">I", len(values)) + body)


def ping(ping_id: int) -> bytes:
    return control(FrameType.PING, struct.pack(">I", ping_id))


def goaway(last_good_stream: int, status: GoAwayStatus) -> bytes:
    return control(FrameType.GOAWAY, struct.pack(">II", last_good_stream, status))


def window_update(stream_id: int, delta: int) -> bytes:
    return control(FrameType.WINDOW_UPDATE, struct.pack(">II", stream_id, delta & 0x7FFFFFFF))


class FrameReader:
    """Cuts a byte stream (however it arrives) into frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= 8:
            first, second = struct.unpack_from(">II", self._buffer)
            length = second & 0xFFFFFF
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            flags = second >> 24
            if first & 0x80000000:
                if (first >> 16) & 0x7FFF != VERSION:
                    raise ProtocolError(f"unsupported SPDY version {(first >> 16) & 0x7FFF}")
                try:
                    kind = FrameType(first & 0xFFFF)
                except ValueError:
                    continue  # unknown control frames are ignored, as the draft says
                frames.append(Frame(kind, flags, payload))
            else:
                frames.append(Frame(None, flags, payload, stream_id=first & 0x7FFFFFFF))
        return frames


class Window:
    """One flow-control window: what may still be sent (or received) before a WINDOW_UPDATE."""

    def __init__(self, size: int = DEFAULT_WINDOW):
        self.size = size
        self._opened = asyncio.Event()
        self._opened.set()

    def consume(self, amount: int) -> None:
        self.size -= amount
        if self.size <= 0:
            self._opened.clear()

    def grant(self, delta: int) -> None:
        if self.size + delta > MAX_WINDOW:
            raise ProtocolError(f"window update of {delta} overflows the window")
        self.size += delta  # negative when SETTINGS shrinks the initial window
        if self.size > 0:
            self._opened.set()
        else:
            self._opened.clear()

    async def opened(self) -> None:
        await self._opened.wait()
