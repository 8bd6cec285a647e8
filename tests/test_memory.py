"""The step-memory counter (`bench/memory.py`) against hand counts and real tensors. Its
estimates of the 256 px models at the paper's batch sizes are held in tests/test_bench.py, where
the bench makes them."""

from __future__ import annotations

import pytest
import torch

from pneumonia_aug.bench.memory import step_memory
from pneumonia_aug.bench.variants import classifier_bare, gan_bare

MB = 1000 * 1000 * 4  # bytes of a 1000 x 1000 float32 matrix


def _linear_adam(device: torch.device):
    """One 1000 x 1000 weight, no bias, Adam: a step whose memory can be counted by hand."""
    with torch.device(device):
        model = torch.nn.Linear(1000, 1000, bias=False)
        x = torch.ones(1, 1000)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)

    def step():
        loss = model(x).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


@pytest.mark.parametrize("fake", [True, False])
def test_counts_weights_gradients_and_adam_state_by_hand(fake):
    counted = step_memory(_linear_adam, steps=2, fake=fake)
    # Alive between steps: weight, its gradient, Adam's exp_avg and exp_avg_sq (4 matrices), plus
    # the input and Adam's scalar step counter (a few KB).
    assert 4 * MB <= counted.state_bytes < 4 * MB + 16_000
    # The peak adds Adam's temporaries (at least one matrix-sized one), never 3 more matrices.
    assert 5 * MB <= counted.peak_bytes < 7 * MB


def test_fake_tensors_count_what_real_tensors_count():
    """A small real CheXNet and GAN step on the CPU: the fake count matches the real one."""
    for build in (lambda d: classifier_bare(d, 32, 2, bf16=True),
                  lambda d: gan_bare(d, 32, 4, model="cgan", bf16=True)):
        fake, real = step_memory(build, fake=True), step_memory(build, fake=False)
        assert fake.state_bytes == real.state_bytes
        assert fake.peak_bytes == pytest.approx(real.peak_bytes, rel=0.05)
