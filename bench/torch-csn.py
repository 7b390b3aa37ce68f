"""Upstream CSN in PyTorch for bench/torch-crosscheck.ts (run locally, never in CI).

Builds the official code's network (Resnet_18 up to layer3 + fc_embed, ConditionalSimNet with learned masks,
Tripletnet), trains it for a few Adam steps on the given training triplets, scores the given test triplets as the
official test() does (dist_a = d(anchor, far), dist_b = d(anchor, close), correct when dist_a > dist_b), and
saves the state_dict as safetensors (written by hand: the safetensors package is not needed).

    python3 bench/torch-csn.py --job job.json --weights out.safetensors --result out.json
"""
import argparse
import json
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + shortcut)


class ResNet(nn.Module):
    """Resnet_18 of the official code: layers 1-3, average pool over the 7x7 map, fc_embed."""

    def __init__(self, embedding_size=64, width=64):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(width, 1)
        self.layer2 = self._make_layer(width * 2, 2)
        self.layer3 = self._make_layer(width * 4, 2)
        self.fc_embed = nn.Linear(width * 4, embedding_size)

    def _make_layer(self, planes, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample), BasicBlock(planes, planes)]
        self.inplanes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc_embed(x)


class ConditionalSimNet(nn.Module):
    def __init__(self, embeddingnet, n_conditions, embedding_size):
        super().__init__()
        self.embeddingnet = embeddingnet
        self.masks = nn.Embedding(n_conditions, embedding_size)
        self.masks.weight.data.normal_(0.9, 0.7)

    def forward(self, x, c):
        embedded_x = self.embeddingnet(x)
        mask = F.relu(self.masks(c))
        return embedded_x * mask


class Tripletnet(nn.Module):
    def __init__(self, embeddingnet):
        super().__init__()
        self.embeddingnet = embeddingnet

    def forward(self, x, y, z, c):
        ex, ey, ez = self.embeddingnet(x, c), self.embeddingnet(y, c), self.embeddingnet(z, c)
        return F.pairwise_distance(ex, ey, 2), F.pairwise_distance(ex, ez, 2)


def load_image(path, size):
    """transforms.Resize(size) (bilinear) + CenterCrop(size) + ToTensor + Normalize."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    scale = size / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    image = image.crop((left, top, left + size, top + size))
    array = (np.asarray(image, dtype=np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def batches(triplets, images, size):
    cache = {}

    def get(i):
        if i not in cache:
            cache[i] = load_image(images[i], size)
        return cache[i]

    for start in range(0, len(triplets), 32):
        chunk = triplets[start : start + 32]
        yield (
            torch.stack([get(t["anchor"]) for t in chunk]),
            torch.stack([get(t["far"]) for t in chunk]),
            torch.stack([get(t["close"]) for t in chunk]),
            torch.tensor([t["condition"] for t in chunk]),
        )


def save_safetensors(state, path):
    header, blobs, offset = {}, [], 0
    for name, tensor in state.items():
        array = tensor.detach().cpu().numpy()
        dtype = "I64" if array.dtype == np.int64 else "F32"
        data = array.astype("<i8" if dtype == "I64" else "<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--job", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()
    job = json.load(open(args.job))
    torch.manual_seed(job["seed"])
    size, width = job["imageSize"], job["width"]
    model = Tripletnet(ConditionalSimNet(ResNet(job["embedDim"], width), len(job["conditions"]), job["embedDim"]))
    optimizer = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()), lr=job["lr"])
    criterion = nn.MarginRankingLoss(margin=0.2)
    model.train()
    for epoch in range(job["epochs"]):
        for x, y, z, c in batches(job["train"], job["images"], size):
            dist_a, dist_b = model(x, y, z, c)
            loss = criterion(dist_a, dist_b, torch.ones_like(dist_a))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    correct = []
    with torch.no_grad():
        for x, y, z, c in batches(job["test"], job["images"], size):
            dist_a, dist_b = model(x, y, z, c)
            correct += (dist_a > dist_b).tolist()
    save_safetensors(model.state_dict(), args.weights)
    json.dump({"accuracy": sum(correct) / len(correct), "correct": correct}, open(args.result, "w"))


if __name__ == "__main__":
    main()
