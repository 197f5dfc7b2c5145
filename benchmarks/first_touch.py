"""Time to fill a fresh CPU buffer against refilling one already touched (the cost poolext's
output cache avoids; README "CPU output buffers").  Prints the machine, date and medians."""

import datetime
import platform
import time

import torch


def median_ms(f, repeats=9):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return sorted(ts)[repeats // 2] * 1e3


def main():
    torch.set_num_threads(2)
    n = 16 * 128 * 112 * 112  # the VGG case's gradient: 103 MB of float32
    buf = torch.empty(n)
    buf.fill_(0)
    print(f"date: {datetime.date.today()}  machine: {platform.machine()} "
          f"{platform.processor() or ''}  torch {torch.__version__}  threads 2")
    print(f"buffer: {n * 4 / 1e6:.1f} MB float32")
    print(f"refill a used buffer (buf.fill_(0)):         {median_ms(lambda: buf.fill_(0)):7.1f} ms")
    print(f"fill a fresh one (torch.empty(n).fill_(0)):  "
          f"{median_ms(lambda: torch.empty(n).fill_(0)):7.1f} ms")


if __name__ == "__main__":
    main()
