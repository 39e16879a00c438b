"""``python -m sr.train.inn_pretrain --data <ImageFolder root> --out inn.safetensors``: HF-Diff Algorithm 2.

Pre-trains the invertible-network high-frequency feature extractor as a classifier: RB (3 -> N) and K
invertible modules (:class:`~sr.train.objectives.hfdiff.INNFeatureExtractor`), then L conv layers and a
fully connected head, cross-entropy on the class labels. Paper settings: ImageNet-1k, 20 epochs,
Adam lr 5e-4, batch 32, lr x0.95 every 5000 iterations (the defaults here). Only the extractor's
weights are written (safetensors, keys of INNFeatureExtractor), for ``objective.inn_weights``.
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from sr import cli
from sr.cli import cli_entry
from sr.ownership import add_overwrite_option, claim_file
from sr.train.objectives.hfdiff import INNFeatureExtractor


class INNClassifier(nn.Module):
    def __init__(self, classes: int, channels: int = 128, modules: int = 3, cnn_layers: int = 3):
        super().__init__()
        self.extractor = INNFeatureExtractor(channels, modules)
        layers, c = [], channels
        for _ in range(cnn_layers):
            layers += [nn.Conv2d(c, c * 2 if c < 512 else c, 3, stride=2, padding=1), nn.ReLU()]
            c = c * 2 if c < 512 else c
        self.cnn = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        return self.fc(self.cnn(self.extractor(x)))


@cli_entry
def main(argv=None) -> int:
    p = cli.ArgumentParser(prog="python -m sr.train.inn_pretrain", description=__doc__.splitlines()[0])
    p.add_argument(
        "--data", required=True, help="torchvision ImageFolder root (class sub-folders), e.g. ImageNet train"
    )
    p.add_argument("--out", type=cli.out_file, required=True, help="the extractor's weights (.safetensors)")
    add_overwrite_option(p)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=cli.positive_int, default=32, help="batch size")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--channels", type=int, default=128)
    p.add_argument("--modules", type=int, default=3)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--max-steps", type=int, default=0, help="stop early (0: all epochs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_device()
    args = p.parse_args(argv)
    owned = claim_file(args.out, "INN extractor weights", overwrite=args.overwrite)  # a user's file: refused now
    from torchvision import datasets, transforms

    torch.manual_seed(args.seed)
    device = args.device
    tf = transforms.Compose(
        [transforms.RandomResizedCrop(args.size), transforms.RandomHorizontalFlip(), transforms.ToTensor()]
    )
    data = datasets.ImageFolder(args.data, tf)
    loader = torch.utils.data.DataLoader(
        data, batch_size=args.batch, shuffle=True, num_workers=args.workers, drop_last=True
    )
    model = INNClassifier(len(data.classes), args.channels, args.modules).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5000, gamma=0.95)
    step = 0
    for epoch in range(args.epochs):
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(x.to(device)), y.to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 100 == 0:
                print(f"epoch {epoch} step {step} loss {loss.item():.4f}", flush=True)
            if args.max_steps and step >= args.max_steps:
                break
        if args.max_steps and step >= args.max_steps:
            break
    from safetensors.torch import save_file

    with owned.writing(args.out) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.extractor.state_dict().items()}, str(tmp))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
