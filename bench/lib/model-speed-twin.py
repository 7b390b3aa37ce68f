"""PyTorch CPU twin of one dressmatch training step (bench/model-speed.ts runs it when torch imports).

The same network as src/model (CSN, small backbone: normalise, 5x5 stride-2 stem, three 3x3 convs with 2x2 max
pools after the first two, a last 2x2 max pool, linear embedding, learned masks through ReLU), the same loss
(margin ranking on masked pairwise distances + embed norm + mask norm) and Adam. Used only as a speed reference:
it is no dependency of the product.

    python3 bench/model-speed-twin.py --size 48 --images 96 --triplets 384 --width 16 --threads 2
prints one JSON line: {"stepMs": median step, "meanStepMs": ..., "imagesPerSecond": ..., "othersCores": ...}.
Each step is timed on its own and the median reported; "othersCores" is the CPU that other processes used during
the timed steps (busy CPU of /proc/stat minus this process's), as in bench/model-speed.ts. PyTorch's OpenMP
threads spin at their barriers, so a second runnable thread on a 2-core machine drops the 2-thread step ~6-9x;
OMP_WAIT_POLICY=PASSIVE (set by the bench for one of its runs) makes them sleep instead.
"""
import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn


class Twin(nn.Module):
    def __init__(self, size: int, width: int, conditions: int, dim: int):
        super().__init__()
        w = [width, 2 * width, 4 * width, 4 * width]
        self.stem = nn.Conv2d(3, w[0], 5, stride=2, padding=2)
        self.conv2 = nn.Conv2d(w[0], w[1], 3, padding=1)
        self.conv3 = nn.Conv2d(w[1], w[2], 3, padding=1)
        self.conv4 = nn.Conv2d(w[2], w[3], 3, padding=1)
        side = size // 16
        self.embed = nn.Linear(side * side * w[3], dim)
        self.masks = nn.Parameter(torch.randn(conditions, dim) * 0.7 + 0.9)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, images):
        x = (images - self.mean) / self.std
        x = F.relu(self.stem(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        x = F.max_pool2d(F.relu(self.conv4(x)), 2)
        return self.embed(torch.flatten(x, 1))


def loss(model, images, anchor, far, close, condition, margin=0.2, embed_loss=5e-3, mask_loss=5e-4):
    e = model(images)
    a, f, c = e[anchor], e[far], e[close]
    m = F.relu(model.masks)[condition]
    dist_far = F.pairwise_distance(a * m, f * m)
    dist_close = F.pairwise_distance(a * m, c * m)
    triplet = F.margin_ranking_loss(dist_far, dist_close, torch.ones_like(dist_far), margin=margin)
    n = anchor.shape[0]
    embed_norm = (a.norm(2) + f.norm(2) + c.norm(2)) / 3 / n**0.5
    mask_norm = m.norm(1) / n
    return triplet + embed_loss * embed_norm + mask_loss * mask_norm


def machine_busy_seconds():
    """Busy CPU seconds of the whole machine since boot (/proc/stat), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--triplets", type=int, default=384)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    torch.manual_seed(1)
    torch.set_num_threads(args.threads)
    model = Twin(args.size, args.width, 6, 64)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.rand(args.images, 3, args.size, args.size)
    pick = lambda: torch.randint(0, args.images, (args.triplets,))
    anchor, far, close = pick(), pick(), pick()
    condition = torch.arange(args.triplets) % 6

    def step():
        optimizer.zero_grad()
        value = loss(model, images, anchor, far, close, condition)
        value.backward()
        optimizer.step()
        return value.item()

    for _ in range(args.warmup):
        step()
    busy_before, own_before = machine_busy_seconds(), own_cpu_seconds()
    start = time.perf_counter()
    times = []
    for _ in range(args.steps):
        step_start = time.perf_counter()
        step()
        times.append((time.perf_counter() - step_start) * 1000)
    wall = time.perf_counter() - start
    own, busy_after = own_cpu_seconds() - own_before, machine_busy_seconds()
    others = None if busy_before is None else round(max(0.0, busy_after - busy_before - own) / wall, 2)
    step_ms = statistics.median(times)
    print(json.dumps({"stepMs": step_ms, "meanStepMs": statistics.fmean(times),
                      "imagesPerSecond": args.images / step_ms * 1000, "othersCores": others,
                      "threads": torch.get_num_threads(), "torch": torch.__version__}))

if __name__ == "__main__":
    main()
