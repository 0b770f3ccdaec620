"""nurion_udf — write Nurion `exec` UDFs in Python (standard library only, Python 3.9+).

A UDF is a program that the `exec` operator starts once per stage instance and feeds one split
at a time over its standard input; it answers on its standard output. This module speaks that
protocol (docs/udf.md); you write a function and decorate it:

    import nurion_udf as udf

    @udf.map
    def double(row):
        row["y"] = row["id"] * 2
        return row

    if __name__ == "__main__":
        udf.run()

Decorators (use exactly one per program):
  @map       row dict -> row dict (or None to drop the row)
  @filter    row dict -> bool (keep the row when true)
  @flat_map  row dict -> iterable of row dicts
  @batch     list of row dicts -> list of row dicts (the whole split at once)

An exception raised for one row (map, filter, flat_map) dead-letters that row alone, with the
last line of its traceback as the reason, and the split goes on. Any other exception (in @batch,
or while reading a split) fails the whole split; raise `Retry("why")` to ask the runtime to try
the split again (for instance after a timeout of a service the UDF calls).

While run() is active, print() and sys.stdout go to standard error, which the stage logs line
by line: the real standard output carries the protocol only.
"""

import base64
import io
import json
import math
import sys
import traceback

__all__ = ["map", "filter", "flat_map", "batch", "run", "Retry", "ProtocolError"]

MAGIC = b"NURION1"
MAX_HEADER = 64
MAX_FRAME = 64 << 20
MAX_CONTROL = 64 << 10


class Retry(Exception):
    """Raise to fail the current split with a retriable error."""


class ProtocolError(Exception):
    """The input stream does not follow the protocol."""


_handler = None  # (kind, function)


def _register(kind, fn):
    global _handler
    if _handler is not None:
        raise RuntimeError("nurion_udf: only one of @map, @filter, @flat_map, @batch per program")
    _handler = (kind, fn)
    return fn


def map(fn):  # noqa: A001 - the decorator's name is the operation's
    """Decorate fn(row) -> row (or None to drop the row)."""
    return _register("map", fn)


def filter(fn):  # noqa: A001
    """Decorate fn(row) -> bool."""
    return _register("filter", fn)


def flat_map(fn):
    """Decorate fn(row) -> iterable of rows."""
    return _register("flat_map", fn)


def batch(fn):
    """Decorate fn(rows) -> list of rows."""
    return _register("batch", fn)


# --- frames ---


def read_frame(stream):
    """Read one frame; returns (kind, body) or None at the end of the stream."""
    header = stream.readline(MAX_HEADER)
    if not header:
        return None
    if not header.endswith(b"\n"):
        raise ProtocolError("frame header too long or cut: %r" % header[:32])
    parts = header[:-1].split(b" ")
    if len(parts) != 3 or parts[0] != MAGIC or not parts[2].isdigit():
        raise ProtocolError("bad frame header: %r" % header[:32])
    kind, length = parts[1].decode("ascii"), int(parts[2])
    if length > (MAX_FRAME if kind == "rows" else MAX_CONTROL):
        raise ProtocolError("frame %s of %d bytes is over the limit" % (kind, length))
    body = stream.read(length)
    if len(body) != length:
        raise ProtocolError("stream ended inside a %s frame" % kind)
    return kind, body


def write_frame(stream, kind, body=b""):
    stream.write(b"%s %s %d\n" % (MAGIC, kind.encode("ascii"), len(body)))
    stream.write(body)


# --- values: the codec's JSON Lines, with bytes as base64 and non-finite doubles as strings ---


def _parse_type(t):
    """Compact type "array<bytes?>?" -> (base, nullable, item type or None)."""
    nullable = t.endswith("?")
    if nullable:
        t = t[:-1]
    for base in ("array", "map"):
        if t.startswith(base + "<") and t.endswith(">"):
            return base, nullable, _parse_type(t[len(base) + 1:-1])
    return t, nullable, None


def _needs_conversion(t):
    base, _, item = t
    if base in ("bytes", "double"):
        return True
    return item is not None and _needs_conversion(item)


def _from_json(v, t):
    if v is None:
        return None
    base, _, item = t
    if base == "bytes":
        return base64.b64decode(v)
    if base == "double" and isinstance(v, str):
        return float(v.replace("Infinity", "inf"))
    if base == "array":
        return [_from_json(x, item) for x in v]
    if base == "map":
        return {k: _from_json(x, item) for k, x in v.items()}
    return v


def _to_json(v, t):
    if v is None:
        return None
    base, _, item = t
    if base == "bytes" and isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if base == "double" and isinstance(v, (int, float)) and not isinstance(v, bool):
        f = float(v)
        if math.isnan(f):
            return "NaN"
        if math.isinf(f):
            return "Infinity" if f > 0 else "-Infinity"
        return f
    if base == "array" and isinstance(v, (list, tuple)):
        return [_to_json(x, item) for x in v]
    if base == "map" and isinstance(v, dict):
        return {k: _to_json(x, item) for k, x in v.items()}
    return v


class _Schema:
    def __init__(self, compact):
        self.cols = [(name, _parse_type(t)) for name, t in compact]
        self.convert = [(n, t) for n, t in self.cols if _needs_conversion(t)]

    def decode(self, body):
        rows = []
        for line in body.splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            for name, t in self.convert:
                if name in row:
                    row[name] = _from_json(row[name], t)
            rows.append(row)
        return rows

    def encode(self, rows):
        out = io.StringIO()
        for row in rows:
            if not isinstance(row, dict):
                raise TypeError("a row must be a dict, got %s" % type(row).__name__)
            if self.convert:
                row = dict(row)
                for name, t in self.convert:
                    if name in row:
                        row[name] = _to_json(row[name], t)
            out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":"),
                                 allow_nan=False))
            out.write("\n")
        return out.getvalue().encode("utf-8")


def _last_line(exc):
    return traceback.format_exception_only(type(exc), exc)[-1].strip()


def _apply(kind, fn, rows):
    """Run the handler over the rows; returns (output rows, [(row index, reason)])."""
    if kind == "batch":
        out = fn(rows)
        return (list(out) if out is not None else []), []
    out, rejects = [], []
    for i, row in enumerate(rows):
        try:
            if kind == "map":
                r = fn(row)
                if r is not None:
                    out.append(r)
            elif kind == "filter":
                if fn(row):
                    out.append(row)
            else:
                out.extend(list(fn(row) or ()))
        except Exception as e:  # noqa: BLE001 - any error of a row dead-letters the row
            rejects.append((i, _last_line(e)))
    return out, rejects


def serve(handler, stdin, stdout):
    """Answer splits from stdin on stdout until the end of stdin. `handler` is (kind, fn)."""
    kind, fn = handler
    schemas = {}
    while True:
        frame = read_frame(stdin)
        if frame is None:
            return
        fkind, body = frame
        if fkind != "split":
            raise ProtocolError("expected a split frame, got %s" % fkind)
        meta = json.loads(body)
        frame = read_frame(stdin)
        if frame is None or frame[0] != "rows":
            raise ProtocolError("a split frame must be followed by a rows frame")
        try:
            if meta.get("format", "jsonl") != "jsonl":
                raise ValueError("nurion_udf reads the jsonl format only; set \"format\": "
                                 "\"jsonl\" in the exec config")
            key_in = json.dumps(meta["schema"])
            key_out = json.dumps(meta["output_schema"])
            sin = schemas.get(key_in) or schemas.setdefault(key_in, _Schema(meta["schema"]))
            sout = schemas.get(key_out) or schemas.setdefault(key_out,
                                                              _Schema(meta["output_schema"]))
            rows = sin.decode(frame[1])
            out, rejects = _apply(kind, fn, rows)
            payload = sout.encode(out)
        except Exception as e:  # noqa: BLE001 - reported to the runtime, the UDF goes on
            err = {"message": _last_line(e), "retriable": isinstance(e, Retry)}
            write_frame(stdout, "error", json.dumps(err).encode("utf-8"))
            stdout.flush()
            continue
        write_frame(stdout, "rows", payload)
        for i, reason in rejects:
            write_frame(stdout, "reject",
                        json.dumps({"row": i, "reason": reason}).encode("utf-8"))
        write_frame(stdout, "done")
        stdout.flush()


def run():
    """Serve the decorated function until the end of standard input."""
    if _handler is None:
        raise RuntimeError("nurion_udf.run(): decorate a function with @map, @filter, "
                           "@flat_map or @batch first")
    proto_in = sys.stdin.buffer
    proto_out = sys.stdout.buffer
    sys.stdout = sys.stderr  # print() must not corrupt the protocol
    try:
        serve(_handler, proto_in, proto_out)
    except ProtocolError as e:
        sys.stderr.write("nurion_udf: %s\n" % e)
        sys.exit(2)
    except BrokenPipeError:
        sys.exit(0)
