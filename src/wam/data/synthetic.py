"""Random but well-formed training batches, for tests, smoke runs and timing (no environment needed)."""

from __future__ import annotations

import torch

from wam.envs.spec import EnvSpec


def random_batch(
    spec: EnvSpec, B: int = 2, T: int = 6, seed: int = 0, pad_from: int | None = None
) -> dict[str, torch.Tensor]:
    """A random but well-formed replay batch (B, T, ...); ``pad_from`` ends the episodes at that step (one
    terminal, the others truncated) and masks the steps after it."""
    g = torch.Generator().manual_seed(seed)
    batch: dict[str, torch.Tensor] = {}
    for key, shape in spec.obs_shapes.items():
        if key == "rgb":
            batch[key] = torch.randint(0, 256, (B, T, *shape), generator=g, dtype=torch.uint8)
        elif key == "depth":
            batch[key] = torch.rand(B, T, *shape, generator=g) * 3.0
        elif key == "task":
            batch[key] = torch.randint(0, spec.num_tasks, (B, T), generator=g)
        else:
            batch[key] = torch.randn(B, T, *shape, generator=g)
    if spec.discrete:
        batch["action"] = torch.randint(0, spec.action_dim, (B, T), generator=g)
    else:
        batch["action"] = torch.rand(B, T, spec.action_dim, generator=g) * 2 - 1
    batch["reward"] = torch.rand(B, T, generator=g)
    for flag in ("is_first", "is_last", "is_terminal"):
        batch[flag] = torch.zeros(B, T, dtype=torch.bool)
    batch["is_first"][:, 0] = True
    batch["mask"] = torch.ones(B, T, dtype=torch.bool)
    if pad_from is not None:
        batch["is_last"][:, pad_from] = True
        batch["is_terminal"][0, pad_from] = True
        batch["mask"][:, pad_from + 1 :] = False
    return batch
