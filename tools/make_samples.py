#!/usr/bin/env python3
"""Write the input files of the `aiges call` examples (README.md) into samples/.

  samples/hello.pcm   1 s of 16 kHz, 16-bit little-endian mono PCM (32000 bytes):
                      a 440 Hz tone, faded in and out over 10 ms
  samples/words.txt   "one two three\\nfour five" (23 bytes), streamed in 8-byte chunks

Both are committed; run this (stdlib only) only to change them:
  .venv/bin/python tools/make_samples.py [--out DIR]
"""
import argparse
import math
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATE = 16000
TONE_HZ = 440
AMPLITUDE = 0.3
FADE_S = 0.01
WORDS = b"one two three\nfour five"  # no final newline: three frames of 8, 8 and 7 bytes


def tone(seconds: float = 1.0) -> bytes:
    n = int(RATE * seconds)
    fade = int(RATE * FADE_S)
    samples = []
    for i in range(n):
        gain = min(1.0, i / fade, (n - 1 - i) / fade)
        value = AMPLITUDE * gain * math.sin(2 * math.pi * TONE_HZ * i / RATE)
        samples.append(round(value * 32767))
    return struct.pack(f"<{n}h", *samples)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "samples", help="where they go")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in (("hello.pcm", tone()), ("words.txt", WORDS)):
        (args.out / name).write_bytes(data)
        print(f"wrote {args.out / name} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
