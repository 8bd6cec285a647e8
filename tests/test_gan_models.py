"""The GANs, DiffAugment and the GAN training loop at tiny sizes on the CPU (seconds)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pneumonia_aug.config import GANConfig
from pneumonia_aug.contract import D_FAKE, D_LOSS, D_REAL, G_LOSS
from pneumonia_aug.errors import PneumoniaAugError
from pneumonia_aug.models.gan import (
    NORMAL,
    PNEUMONIA,
    Discriminator,
    Generator,
    build_gan,
)
from pneumonia_aug.models.sampling import fixed_noise, generate_images
from pneumonia_aug.training.diffaugment import diff_augment
from pneumonia_aug.training.gan import sample_grid, train_gan


def xray_like_batch(n: int, size: int, seed: int = 0) -> np.ndarray:
    """`(n, size, size)` uint8 with structure (not constant), different per image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    phase = rng.uniform(0, 6, (n, 1, 1))
    base = 120 + 60 * np.sin(6 * xx + phase) * np.cos(4 * yy)
    return np.clip(base + rng.normal(0, 10, (n, size, size)), 0, 255).astype(np.uint8)


def tiny_config(**overrides) -> GANConfig:
    values = {"image_size": 32, "epochs": 2, "batch_size": 16, "lr_d": 2e-4, "lr_g": 2e-4,
              "device": "cpu"}
    return GANConfig(**{**values, **overrides})


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("model", ["dcgan", "cgan"])
def test_shapes(model, size):
    G, D = build_gan(model, size, latent_dim=100)
    labels = torch.tensor([NORMAL, PNEUMONIA, NORMAL])
    images = G(torch.randn(3, 100), labels)
    assert images.shape == (3, 1, size, size)
    assert images.min() >= -1 and images.max() <= 1
    assert D(images, labels).shape == (3,)
    assert G.n_classes == (2 if model == "cgan" else 0)


def test_scaled_widths_are_the_authors_last_stages():
    assert Generator(256).widths == [1024, 512, 256, 128, 64, 32]
    assert Generator(32).widths == [128, 64, 32]


@pytest.mark.parametrize("model", ["dcgan", "cgan"])
def test_256_px_forward(model):
    G, D = build_gan(model, 256)
    labels = torch.tensor([NORMAL, PNEUMONIA])
    with torch.no_grad():
        images = G(torch.randn(2, 100), labels)
        assert images.shape == (2, 1, 256, 256)
        assert D(images, labels).shape == (2,)


def test_cgan_output_depends_on_the_label():
    torch.manual_seed(0)
    G, _ = build_gan("cgan", 32)
    z = torch.randn(1, 100).expand(2, -1)
    with torch.no_grad():
        images = G(z, torch.tensor([NORMAL, PNEUMONIA]))
    assert not torch.allclose(images[0], images[1])


def test_cgan_without_labels_raises():
    G, D = build_gan("cgan", 32)
    with pytest.raises(ValueError, match="labels"):
        G(torch.randn(2, 100))
    with pytest.raises(ValueError, match="labels"):
        D(torch.zeros(2, 1, 32, 32))


@pytest.mark.parametrize("size", [0, 16, 48, 100, 255, -32])
def test_invalid_image_size_raises(size):
    with pytest.raises(ValueError, match="8 \\* 2\\*\\*k"):
        Generator(size)
    with pytest.raises(ValueError, match="8 \\* 2\\*\\*k"):
        Discriminator(size)
    with pytest.raises(PneumoniaAugError, match="image_size"):
        GANConfig(image_size=size)


def test_config_coerces_strings_and_rejects_bad_values():
    cfg = GANConfig(model="CGAN", image_size="64", lr_d="2e-5", epochs="3")
    assert (cfg.model, cfg.image_size, cfg.lr_d, cfg.epochs) == ("cgan", 64, 2e-5, 3)
    with pytest.raises(PneumoniaAugError, match="model"):
        GANConfig(model="stylegan")
    with pytest.raises(PneumoniaAugError, match="DiffAugment"):
        GANConfig(diffaugment="color,flip")
    with pytest.raises(PneumoniaAugError, match="epochs"):
        GANConfig(epochs="many")


def test_build_gan_rejects_unknown_model():
    with pytest.raises(ValueError, match="dcgan"):
        build_gan("vae", 32)


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_diffaugment_keeps_shape_and_gradient(policy):
    x = torch.rand(4, 1, 32, 32, requires_grad=True) * 2 - 1
    out = diff_augment(x, policy, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert not torch.equal(out, x)
    out.sum().backward()  # differentiable: G's gradient flows through it
    again = diff_augment(x, policy, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_diffaugment_empty_policy_is_identity():
    x = torch.rand(2, 1, 32, 32)
    assert diff_augment(x, "", None) is x


def test_diffaugment_unknown_policy_lists_the_valid_ones():
    with pytest.raises(ValueError, match="color, translation, cutout"):
        diff_augment(torch.zeros(1, 1, 32, 32), "color,rotate", None)


@pytest.mark.parametrize("model,diffaugment", [("dcgan", ""), ("cgan", "color,translation,cutout")])
def test_train_gan_tiny(tmp_path, model, diffaugment):
    images = xray_like_batch(64, 32)
    labels = np.zeros(64, dtype=np.int64) if model == "dcgan" else np.arange(64) % 2
    seen = []
    checkpoint = tmp_path / "gan.pt"
    result = train_gan(images, labels, tiny_config(model=model, diffaugment=diffaugment),
                       on_epoch=lambda row, G: seen.append((row["epoch"], G.image_size)),
                       checkpoint_path=checkpoint)
    assert [row["epoch"] for row in result.history] == [1, 2]
    assert seen == [(1, 32), (2, 32)]
    for row in result.history:
        assert set(row) == {"epoch", D_LOSS, G_LOSS, D_REAL, D_FAKE, "seconds"}
        assert math.isfinite(row[D_LOSS]) and math.isfinite(row[G_LOSS])
        assert 0 < row[D_REAL] < 1 and 0 < row[D_FAKE] < 1
    assert not result.generator.training
    assert next(result.generator.parameters()).device.type == "cpu"
    saved = torch.load(checkpoint, weights_only=False)
    assert saved["epoch"] == 2 and saved["config"]["model"] == model
    assert len(saved["history"]) == 2


def test_train_gan_is_reproducible():
    images = xray_like_batch(32, 32)
    labels = np.zeros(32, dtype=np.int64)
    cfg = tiny_config(epochs=1)
    first = train_gan(images, labels, cfg).history[0]
    second = train_gan(images, labels, cfg).history[0]
    assert first[D_LOSS] == second[D_LOSS] and first[G_LOSS] == second[G_LOSS]


def test_train_gan_resumes_exactly_from_its_checkpoint(tmp_path):
    """2 epochs, then a resume to 3 from the checkpoint: the same numbers and weights as 3
    epochs in one go (random streams, optimizers and history all travel in the checkpoint)."""
    images = xray_like_batch(40, 32)
    labels = np.arange(40) % 2
    policy = {"model": "cgan", "diffaugment": "color,translation,cutout", "max_images": 36}
    whole = train_gan(images, labels, tiny_config(epochs=3, **policy))
    checkpoint = tmp_path / "gan.pt"
    train_gan(images, labels, tiny_config(epochs=2, **policy), checkpoint_path=checkpoint)
    reported = []
    resumed = train_gan(images, labels, tiny_config(epochs=3, **policy),
                        on_epoch=lambda row, G: reported.append(row["epoch"]),
                        resume=torch.load(checkpoint, weights_only=False))
    assert reported == [2, 3]  # the checkpoint's last epoch is reported again
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in whole.history]
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in resumed.history] == strip
    for a, b in ((whole.generator, resumed.generator),
                 (whole.discriminator, resumed.discriminator)):
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert torch.equal(x, y), name


def test_train_gan_raises_on_non_finite_losses():
    # A huge D learning rate makes the first Adam step set D's weights to about +-1e10, so the
    # next logits overflow to inf and the BCE becomes inf or nan.
    images = xray_like_batch(64, 32)
    labels = np.zeros(64, dtype=np.int64)
    with pytest.raises(FloatingPointError, match="epoch 1"):
        train_gan(images, labels, tiny_config(lr_d=1e10, epochs=2))


def test_train_gan_rejects_bad_data():
    images = xray_like_batch(8, 32)
    with pytest.raises(PneumoniaAugError, match="NORMAL images only"):
        train_gan(images, np.arange(8) % 2, tiny_config())
    with pytest.raises(PneumoniaAugError, match="shape"):
        train_gan(xray_like_batch(8, 64), np.zeros(8, dtype=np.int64), tiny_config())


@pytest.mark.parametrize("model", ["dcgan", "cgan"])
def test_generate_images_is_reproducible(model):
    torch.manual_seed(0)
    G, _ = build_gan(model, 32)
    first = generate_images(G, 5, seed=3, label=NORMAL, batch_size=2)
    assert first.dtype == np.uint8 and first.shape == (5, 32, 32)
    assert np.array_equal(first, generate_images(G, 5, seed=3, label=NORMAL))
    assert not np.array_equal(first, generate_images(G, 5, seed=4, label=NORMAL))
    if model == "cgan":
        assert not np.array_equal(first, generate_images(G, 5, seed=3, label=PNEUMONIA))
        with pytest.raises(ValueError, match="label"):
            generate_images(G, 5, seed=3, label=None)


def test_sample_grid_is_an_8x8_uint8_image():
    G, _ = build_gan("cgan", 32)
    labels = torch.arange(64) % 2
    grid = sample_grid(G, fixed_noise(64, 100, seed=0), labels)
    assert grid.dtype == np.uint8
    assert grid.shape == (8 * 34 + 2, 8 * 34 + 2)  # 8 tiles of 32 px, 2 px padding
    assert G.training  # the caller's training mode is restored
