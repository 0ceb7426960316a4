"""TensorBoard scalar summaries without TensorFlow or TensorBoard installed.

A search process should not pay for importing TensorFlow just to log a reward curve (the
NAS-Bench-201 search never imports it), and ``tf.summary.scalar`` itself needs the
``tensorboard`` package. TensorBoard's event files are simple: TFRecord framing (length,
masked CRC-32C, payload, masked CRC-32C) around ``Event`` protocol buffers. This module writes
scalar events by hand, in the format TensorBoard (and ``tf.data.TFRecordDataset`` +
``tensorflow.core.util.event_pb2``) reads.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from typing import Dict, Optional


def _crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # int64 two's complement, as protobuf encodes negatives
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_field(field: int, payload: bytes) -> bytes:
    return _varint((field << 3) | 2) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int, file_version: Optional[str] = None,
           scalars: Optional[Dict[str, float]] = None) -> bytes:
    # Event: 1 wall_time (double), 2 step (int64), 3 file_version (string), 5 summary.
    out = b"\x09" + struct.pack("<d", wall_time) + b"\x10" + _varint(int(step))
    if file_version is not None:
        out += _len_field(3, file_version.encode())
    if scalars:
        summary = b""
        for tag, value in scalars.items():
            # Summary.Value: 1 tag (string), 2 simple_value (float).
            value_msg = _len_field(1, tag.encode()) + b"\x15" + struct.pack("<f", float(value))
            summary += _len_field(1, value_msg)
        out += _len_field(5, summary)
    return out


class ScalarWriter:
    """Appends scalar summaries to a TensorBoard event file under `logdir`.

    A new file per writer (as TensorBoard expects: one per process session); TensorBoard reads
    them all, so a resumed search just adds a file. Every `write` is flushed, so a killed
    search loses at most the record being written.
    """

    def __init__(self, logdir: str):
        os.makedirs(logdir, exist_ok=True)
        name = (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
                f"{os.getpid()}.nascell")
        self.path = os.path.join(logdir, name)
        self._file = open(self.path, "ab")
        self._record(_event(time.time(), 0, file_version="brain.Event:2"))

    def _record(self, data: bytes) -> None:
        header = struct.pack("<Q", len(data))
        self._file.write(header + struct.pack("<I", _masked_crc(header)) + data
                         + struct.pack("<I", _masked_crc(data)))
        self._file.flush()

    def write(self, step: int, scalars: Dict[str, float]) -> None:
        """Write `scalars` (tag -> number) at `step`; non-finite values are skipped."""
        clean = {k: float(v) for k, v in scalars.items() if v is not None and float(v) == float(v)
                 and abs(float(v)) != float("inf")}
        if clean:
            self._record(_event(time.time(), step, scalars=clean))

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
