#!/usr/bin/env python3
# An independent ttRPC client (Python 3 stdlib only, protobuf encoded by hand) that drives
# hako's ttRPC server through a set of scenarios and prints the results as one JSON object.
#
# Usage: ttrpc_client.py SOCKET SERVICE
# The server must offer SERVICE/Echo, /Namespace and /Sleep (see peers/test-service.ts).

import json
import socket
import struct
import sys
import threading

HEADER = struct.Struct(">IIBB")  # length, stream id, type, flags (10 bytes, big-endian)
TYPE_REQUEST, TYPE_RESPONSE = 1, 2
MAX_MESSAGE = 4 << 20


# --- protobuf, by hand -------------------------------------------------------------

def varint(n):
    if n < 0:
        n += 1 << 64  # int64 two's complement, as protobuf does
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field_varint(num, value):
    return varint(num << 3) + varint(value)


def field_bytes(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint((num << 3) | 2) + varint(len(data)) + data


def encode_request(service, method, payload=b"", timeout_nano=0, metadata=()):
    # ttrpc.Request { service 1; method 2; payload 3; timeout_nano 4; repeated KeyValue metadata 5 }
    out = field_bytes(1, service) + field_bytes(2, method) + field_bytes(3, payload)
    if timeout_nano:
        out += field_varint(4, timeout_nano)
    for key, value in metadata:
        out += field_bytes(5, field_bytes(1, key) + field_bytes(2, value))
    return out


def read_varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def decode_fields(buf):
    """Returns {field number: [values]}; varints as ints, length-delimited as bytes."""
    fields, i = {}, 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(buf, i)
        elif wire == 2:
            n, i = read_varint(buf, i)
            value, i = bytes(buf[i:i + n]), i + n
        elif wire == 1:
            value, i = bytes(buf[i:i + 8]), i + 8
        elif wire == 5:
            value, i = bytes(buf[i:i + 4]), i + 4
        else:
            raise ValueError("wire type %d" % wire)
        fields.setdefault(num, []).append(value)
    return fields


def decode_response(buf):
    # ttrpc.Response { google.rpc.Status status 1; bytes payload 2 }, Status { int32 code 1; string message 2 }
    f = decode_fields(buf)
    status = decode_fields(f.get(1, [b""])[-1])
    code = status.get(1, [0])[-1]
    if code >= 1 << 63:
        code -= 1 << 64
    return {
        "code": code,
        "message": status.get(2, [b""])[-1].decode("utf-8", "replace"),
        "payload": f.get(2, [b""])[-1].decode("utf-8", "replace"),
    }


# --- framing ------------------------------------------------------------------------

class Conn:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)

    def send_frame(self, stream_id, ftype, data, flags=0):
        self.sock.sendall(HEADER.pack(len(data), stream_id, ftype, flags) + data)

    def call_async(self, stream_id, service, method, payload=b"", **kw):
        self.send_frame(stream_id, TYPE_REQUEST, encode_request(service, method, payload, **kw))

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def recv_frame(self):
        length, stream_id, ftype, flags = HEADER.unpack(self.recv_exact(HEADER.size))
        if length > MAX_MESSAGE:
            raise ValueError("response of %d bytes" % length)
        data = self.recv_exact(length)
        if ftype != TYPE_RESPONSE:
            raise ValueError("frame type %d" % ftype)
        r = decode_response(data)
        r["stream_id"] = stream_id
        return r

    def call(self, stream_id, service, method, payload=b"", **kw):
        self.call_async(stream_id, service, method, payload, **kw)
        r = self.recv_frame()
        if r["stream_id"] != stream_id:
            raise ValueError("answer on stream %d, want %d" % (r["stream_id"], stream_id))
        return r

    def closed_by_peer(self):
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


# --- scenarios ----------------------------------------------------------------------

def main(path, service):
    out = {}

    c = Conn(path)
    out["echo"] = c.call(1, service, "Echo", b"hello from python")
    out["namespace"] = c.call(3, service, "Namespace", metadata=[("Containerd-Namespace-TTRPC", "py-ns")])
    out["unknown_method"] = c.call(5, service, "NoSuchMethod")
    out["unknown_service"] = c.call(7, "no.such.Service", "Echo")
    c.send_frame(9, TYPE_REQUEST, b"\x0a\x10short")  # service claims 16 bytes, has 5
    out["bad_protobuf"] = c.recv_frame()
    out["timeout"] = c.call(11, service, "Sleep", b"5000", timeout_nano=100 * 1000 * 1000)

    # Concurrent calls on one connection: the first sleeps longest, so answers come back
    # in reverse order, each on its own stream id.
    ids = [13 + 2 * k for k in range(8)]
    for k, sid in enumerate(ids):
        c.call_async(sid, service, "Sleep", str((len(ids) - k) * 40).encode())
    answers = [c.recv_frame() for _ in ids]
    out["concurrent"] = {
        "sent": ids,
        "order": [a["stream_id"] for a in answers],
        "payloads": {str(a["stream_id"]): a["payload"] for a in answers},
        "codes": sorted({a["code"] for a in answers}),
    }

    # An oversized frame: the server answers RESOURCE_EXHAUSTED as soon as it reads the
    # header, skips the body as it streams past, and the connection keeps working.
    big = MAX_MESSAGE + 1
    c.sock.sendall(HEADER.pack(big, 29, TYPE_REQUEST, 0))
    early = c.recv_frame()
    chunk = b"\x00" * 65536
    sent = 0
    while sent < big:
        n = min(len(chunk), big - sent)
        c.sock.sendall(chunk[:n])
        sent += n
    out["oversized"] = early
    out["after_oversized"] = c.call(31, service, "Echo", b"still here")
    c.close()

    # Garbage: an unknown frame type closes that connection only.
    g = Conn(path)
    g.sock.sendall(HEADER.pack(5, 1, 9, 0) + b"hello")
    out["garbage_closed"] = g.closed_by_peer()
    g.close()
    g2 = Conn(path)
    g2.sock.sendall(bytes(range(256)) * 4)  # header type byte 8: invalid
    out["garbage2_closed"] = g2.closed_by_peer()
    g2.close()

    # Many connections at once, each with a call in flight.
    results = {}

    def worker(k):
        w = Conn(path)
        try:
            results[k] = w.call(1, service, "Echo", ("conn %d" % k).encode())["payload"]
        finally:
            w.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out["parallel_connections"] = [results.get(k) for k in range(16)]

    f = Conn(path)
    out["fresh_after_garbage"] = f.call(1, service, "Echo", b"fresh")
    f.close()

    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.stderr.write("usage: ttrpc_client.py SOCKET SERVICE\n")
        sys.exit(2)
    main(sys.argv[1], sys.argv[2])
