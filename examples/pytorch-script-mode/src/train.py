"""Script-mode training of a small PyTorch MLP: runs unchanged on SageMaker, on one host or
several (torch.distributed with gloo on CPUs, launched by torchrun)."""

import argparse
import glob
import os
import sys

import torch
import torch.distributed as dist
from torch import nn


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR", "model"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAINING", "data"))
    return parser.parse_args()


def load(folder: str) -> tuple[torch.Tensor, torch.Tensor]:
    rows = []
    for path in sorted(glob.glob(os.path.join(folder, "*.csv"))):
        with open(path) as handle:
            next(handle)  # header
            rows += [[float(v) for v in line.split(",")] for line in handle if line.strip()]
    data = torch.tensor(rows)
    return data[:, :-1], data[:, -1].long()


def main() -> None:
    args = parse_args()
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        print(f"rank {rank} of {world} (master {os.environ.get('MASTER_ADDR')})")
    else:
        rank, world = 0, 1
    torch.manual_seed(0)
    features, labels = load(args.train)
    features, labels = features[rank::world], labels[rank::world]  # each rank its share
    model = nn.Sequential(
        nn.Linear(features.shape[1], args.hidden), nn.ReLU(), nn.Linear(args.hidden, 2)
    )
    if distributed:
        model = nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(1, args.epochs + 1):
        optimizer.zero_grad()
        loss = loss_fn(model(features), labels)
        loss.backward()
        optimizer.step()
        accuracy = (model(features).argmax(1) == labels).float().mean()
        if distributed:
            dist.all_reduce(accuracy)
            accuracy /= world
        if rank == 0:
            print(f"epoch={epoch} loss={loss.item():.4f} accuracy={accuracy.item():.4f};")
    if rank == 0:
        inner = model.module if distributed else model
        torch.save(inner.state_dict(), os.path.join(args.model_dir, "model.pt"))
        print("saved", os.path.join(args.model_dir, "model.pt"))
    if distributed:
        dist.barrier()
        # Every rank is done. Leave without the interpreter's and gloo's teardown: on CPUs,
        # gloo can abort in its destructor when a peer closes its connections first.
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
