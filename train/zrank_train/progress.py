"""Progress on stderr: a tqdm bar on a terminal, plain periodic lines otherwise (never both)."""

from __future__ import annotations

import sys
import time


def _hms(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    def __init__(self, total_examples: int, every_s: float = 10.0, stream=None):
        self.stream = stream or sys.stderr
        self.total = total_examples
        self.done = 0
        self.t0 = time.monotonic()
        self.last = self.t0
        self.every = every_s
        self.bar = None
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total_examples, unit="ex", file=self.stream, dynamic_ncols=True, smoothing=0.1)

    def update(self, n: int, desc: str = "", **postfix):
        self.done += n
        if self.bar is not None:
            self.bar.set_description(desc, refresh=False)
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)
            self.bar.update(n)
            return
        now = time.monotonic()
        if now - self.last >= self.every or self.done >= self.total:
            self.last = now
            rate = self.done / max(now - self.t0, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            extra = " ".join(f"{k} {v:.4g}" for k, v in postfix.items())
            print(f"zrank fine-tune: {desc} {self.done}/{self.total} examples, {rate:.1f} ex/s, "
                  f"ETA {_hms(eta)} {extra}".rstrip(), file=self.stream, flush=True)

    def write(self, line: str):
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
