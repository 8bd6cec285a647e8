"""The five measured steps of `pneumonia-aug bench`, each built as a zero-argument callable.

- classifier bare step: CheXNet forward + backward + Adam on random tensors already on the
  device, with the project's precision (bf16 autocast + channels-last on CUDA): the ceiling;
- classifier loop: the inner step of `training.classifier.train_classifier`, built from its own
  helpers, on uint8 images decoded once through the project's cache;
- paper-style loop: each step opens 16 JPEG files with PIL and applies torchvision's
  RandomResizedCrop + flip + ToTensor + Normalize per image; no workers, fp32, batch 16;
- GAN bare step: the authors' DCGAN, one D step and one G step on random tensors;
- GAN loop: `training.gan.gan_train_step` on cached real NORMAL training images.

Models are built inside `torch.device(device)`, never moved with `.to`, so the bare steps also
run under FakeTensorMode for the memory estimate (`bench/memory_probe.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

from pneumonia_aug.config import PAPER_BATCH_SIZE, ClassifierConfig, GANConfig
from pneumonia_aug.data.cache import ImageCache
from pneumonia_aug.data.kermany import POSITIVE, index_kermany, resolve_data_dir
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.models.chexnet import IMAGENET_MEAN, IMAGENET_STD, CheXNet
from pneumonia_aug.models.gan import build_gan
from pneumonia_aug.training.classifier import as_tensor, train_step
from pneumonia_aug.training.distributed import autocast
from pneumonia_aug.training.gan import GANState, gan_train_step, to_device


@dataclass
class Pool:
    """Training images for the project loops (decoded by the cache) and their files."""

    images: np.ndarray  # (N, S, S) uint8
    labels: np.ndarray  # (N,) float32, 1 = PNEUMONIA
    paths: list[str]


def load_pools(data_dir: str | None, size: int, max_images: int) -> tuple[Pool, Pool]:
    """(classifier pool: both classes, GAN pool: NORMAL only) from the training split."""
    root = resolve_data_dir(data_dir)
    index, _ = index_kermany(root)
    train = index[index["split"] == "train"]
    cache = ImageCache()
    pools = []
    for rows in (train, train[train["label"] == "NORMAL"]):
        if max_images and len(rows) > max_images:
            rows = rows.sample(n=max_images, random_state=0)
        images, ok, _ = cache.load(rows["path"].tolist(), rows["sha256"].tolist(), size)
        if not ok.any():
            raise PneumoniaAugError(f"no readable training images in {root}")
        labels = (rows["label"] == POSITIVE).to_numpy(np.float32)[ok]
        pools.append(Pool(images[ok], labels, rows["path"][ok].tolist()))
    return pools[0], pools[1]


class _Batches:
    """Fixed-size shuffled index batches over n images; a new permutation as each pass ends."""

    def __init__(self, n: int, batch: int, gen: torch.Generator, device: torch.device):
        self.n, self.batch, self.gen, self.device = n, batch, gen, device
        self.order = torch.empty(0, dtype=torch.long, device=device)
        self.pos = 0

    def next(self) -> torch.Tensor:
        while len(self.order) - self.pos < self.batch:
            fresh = torch.randperm(self.n, generator=self.gen, device=self.gen.device)
            self.order, self.pos = torch.cat([self.order[self.pos:], fresh.to(self.device)]), 0
        self.pos += self.batch
        return self.order[self.pos - self.batch : self.pos]


def _classifier(device: torch.device, channels_last: bool):
    cfg = ClassifierConfig()
    with torch.device(device):
        model = CheXNet().train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.effective_lr, weight_decay=cfg.weight_decay)
    return model, opt


def classifier_bare(device, size: int, batch: int, bf16: bool | None = None):
    """`bf16=None`: the project's precision (bf16 + channels-last on CUDA, fp32 elsewhere)."""
    channels_last = device.type == "cuda" and bf16 is not False
    model, opt = _classifier(device, channels_last)
    x = torch.rand(batch, 1, size, size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (batch,), device=device).float()

    def step():
        with autocast(device, bf16):
            loss = F.binary_cross_entropy_with_logits(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def classifier_loop(device, pool: Pool, batch: int):
    """The inner step of `train_classifier` (its helpers, in its order) on the cached images;
    fixed-size batches, so every timed step does the same work."""
    model, opt = _classifier(device, channels_last=device.type == "cuda")
    crop_min = ClassifierConfig().crop_scale_min
    gen = torch.Generator(device=device).manual_seed(0)
    train_x, train_y = as_tensor(pool.images, pool.labels, device)
    batches = _Batches(len(train_x), batch, gen, train_x.device)
    loss_sum = torch.zeros((), device=device)

    def step():
        nonlocal loss_sum
        idx = batches.next()
        loss_sum += train_step(model, opt, train_x, train_y, idx, device, gen, crop_min) * len(idx)
    return step


def paper_loop(device, pool: Pool, size: int):
    """PIL + torchvision per image and step, in the main process, fp32, RGB input, batch 16."""
    model, opt = _classifier(device, channels_last=False)
    tf = transforms.Compose([
        transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    cpu = torch.device("cpu")
    batches = _Batches(len(pool.paths), PAPER_BATCH_SIZE, torch.Generator().manual_seed(0), cpu)
    running = 0.0

    def load(i: int) -> torch.Tensor:
        with Image.open(pool.paths[i]) as img:
            return tf(img.convert("RGB"))

    def step():
        nonlocal running
        idx = batches.next().tolist()
        x = torch.stack([load(i) for i in idx]).to(device)
        y = torch.tensor(pool.labels[idx]).to(device)
        loss = F.binary_cross_entropy_with_logits(model.net(x).squeeze(1), y)  # DenseNet121, 3 ch
        opt.zero_grad()
        loss.backward()
        opt.step()
        running += loss.item()  # the usual per-step read of the loss
    return step


def _gan(model: str, device, size: int, batch: int):
    cfg = GANConfig(model=model, image_size=size, batch_size=batch, device=device.type)
    with torch.device(device):
        G, D = build_gan(model, size, cfg.latent_dim)
    lr_d, lr_g = cfg.effective_lrs
    opt_g = torch.optim.Adam(G.parameters(), lr=lr_g, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr_d, betas=(cfg.beta1, 0.999))
    return cfg, G, D, opt_g, opt_d


def gan_bare(device, size: int, batch: int, model: str = "dcgan", bf16: bool | None = None):
    """One D step (real + generated) and one G step on random tensors, as `gan_train_step`
    does."""
    cfg, G, D, opt_g, opt_d = _gan(model, device, size, batch)
    real = torch.rand(batch, 1, size, size, device=device) * 2 - 1
    z = torch.randn(batch, cfg.latent_dim, device=device)
    y = torch.randint(0, 2, (batch,), device=device) if model == "cgan" else None
    y2 = torch.cat([y, y]) if y is not None else None
    targets = torch.cat([torch.ones(batch, device=device), torch.zeros(batch, device=device)])

    def step():
        with autocast(device, bf16):
            fake = G(z, y).float()
            d_logits = D(torch.cat([real, fake.detach()]), y2).float()
        d_loss = F.binary_cross_entropy_with_logits(d_logits, targets)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        D.requires_grad_(False)
        with autocast(device, bf16):
            g_logits = D(fake, y).float()
        g_loss = F.binary_cross_entropy_with_logits(g_logits, targets[:batch])
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)
    return step


def gan_loop(device, pool: Pool, size: int, batch: int):
    """`training.gan.gan_train_step` on the cached NORMAL images, summing stats as
    `train_gan`."""
    cfg, G, D, opt_g, opt_d = _gan("dcgan", device, size, batch)
    train_x, train_y = to_device(pool.images, np.zeros(len(pool.images), np.int64), device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    state = GANState(G, D, opt_g, opt_d, order=gen, draws=gen, device=device)
    batches = _Batches(len(train_x), batch, gen, train_x.device)
    sums = torch.zeros(4, device=device)

    def step():
        idx = batches.next()
        sums.add_(gan_train_step(state, train_x[idx], train_y[idx], cfg) * len(idx))
    return step
