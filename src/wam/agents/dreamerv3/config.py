"""DreamerV3 hyper-parameters: one dataclass, the paper's size table, and a CPU-sized debug preset.

Defaults follow Hafner et al. (2025, Nature; public configuration of the reference code) except where the
issue / DESIGN asks otherwise; every difference is listed in ``docs/dreamerv3.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from wam.envs.spec import EnvSpec

#: Model sizes of the paper (``size1m`` … ``size400m``), plus ``debug`` for tests. Each entry overrides the
#: dataclass defaults; the defaults themselves are ``size1m`` (the reference's current DMC proprio size; its published
#: DMC scores come from the 2023 code with 512-unit networks, see docs/dreamerv3.md).
#: Actor gradient estimators for continuous actions (``DreamerV3Config.actor_grad``).
ACTOR_GRADS = ("reinforce", "backprop")

PRESETS: dict[str, dict] = {
    "debug": dict(deter=64, hidden=32, stoch=8, classes=4, blocks=4, units=32, cnn_depth=2, bspace=4),
    "size1m": dict(deter=512, hidden=64, classes=4, units=64, cnn_depth=4),
    "size12m": dict(deter=2048, hidden=256, classes=16, units=256, cnn_depth=16),
    "size25m": dict(deter=3072, hidden=384, classes=24, units=384, cnn_depth=24),
    "size50m": dict(deter=4096, hidden=512, classes=32, units=512, cnn_depth=32),
    "size100m": dict(deter=6144, hidden=768, classes=48, units=768, cnn_depth=48),
    "size200m": dict(deter=8192, hidden=1024, classes=64, units=1024, cnn_depth=64),
    "size400m": dict(deter=12288, hidden=1536, classes=96, units=1536, cnn_depth=96),
}


@dataclass
class DreamerV3Config:
    """Every DreamerV3 option. Build a paper size with ``DreamerV3Config.preset("size12m")``."""

    # --- replay batches (read by the training loop) ---
    batch_size: int = 16
    """Sequences per training batch (paper: 16)."""
    seq_len: int = 64
    """Time steps per training sequence (paper: 64)."""

    # --- world model sizes ---
    deter: int = 512
    """Size of the deterministic (block-GRU) state h_t."""
    hidden: int = 64
    """Width of the RSSM's input / prior / posterior layers."""
    stoch: int = 32
    """Number of categorical latent variables in z_t."""
    classes: int = 4
    """Classes per categorical latent."""
    blocks: int = 8
    """Blocks of the block-diagonal GRU (``deter`` must be divisible by it)."""
    dyn_layers: int = 1
    """Block-linear hidden layers before the GRU gates."""
    prior_layers: int = 2
    """Hidden layers of the prior (dynamics predictor) p(z_t | h_t)."""
    post_layers: int = 1
    """Hidden layers of the posterior (representation) q(z_t | h_t, x_t)."""
    action_norm: bool = True
    """RMS-normalise the RSSM's action embedding (the 2024/2025 reference). False drops that norm (Linear → SiLU), so
    the size of a 1-d action reaches the GRU from the first update; an ablation, see docs/dreamerv3.md."""
    unimix: float = 0.01
    """Uniform mixture on the latent categoricals (1% in the paper)."""
    units: int = 64
    """Width of every MLP (encoder, decoder, heads, actor, critic)."""
    enc_layers: int = 3
    """MLP layers of the vector encoder."""
    dec_layers: int = 3
    """MLP layers of the vector decoder."""
    cnn_depth: int = 4
    """Base channel count of the image encoder / decoder."""
    cnn_mults: tuple[int, ...] = (2, 3, 4, 4)
    """Channel multipliers per CNN stage; each stage halves (encoder) or doubles (decoder) the resolution."""
    kernel: int = 5
    """Convolution kernel size."""
    bspace: int = 8
    """Blocks of the decoder's block-linear projection from h_t to the first feature map."""

    # --- heads ---
    bins: int = 255
    """Bins of the two-hot reward and value distributions (symexp-spaced in [-20, 20] symlog units)."""
    reward_layers: int = 1
    """MLP layers of the reward head."""
    cont_layers: int = 1
    """MLP layers of the continue head."""
    actor_layers: int = 3
    """MLP layers of the actor."""
    critic_layers: int = 3
    """MLP layers of the critic."""
    actor_min_std: float = 0.1
    """Lower bound of the continuous policy's standard deviation."""
    actor_max_std: float = 1.0
    """Upper bound of the continuous policy's standard deviation."""
    actor_unimix: float = 0.01
    """Uniform mixture on the discrete policy."""
    actor_outscale: float = 0.01
    """Initial scale of the actor's output layer (small: a near-uniform / centred initial policy)."""

    # --- losses ---
    free_bits: float = 1.0
    """KL free bits (nats, summed over latents): below this the dyn / rep losses have zero gradient."""
    loss_dyn: float = 0.5
    """Scale of the dynamics KL loss (paper 2023: 0.5)."""
    loss_rep: float = 0.1
    """Scale of the representation KL loss."""
    loss_rec: float = 1.0
    """Scale of every reconstruction loss."""
    loss_reward: float = 1.0
    """Scale of the reward loss."""
    loss_cont: float = 1.0
    """Scale of the continue loss."""
    loss_actor: float = 1.0
    """Scale of the actor (REINFORCE) loss."""
    loss_critic: float = 1.0
    """Scale of the critic loss on imagined trajectories."""
    loss_repval: float = 0.3
    """Scale of the critic loss on replayed trajectories (2025 version's ``repval``)."""
    repval_grad: bool = True
    """Let the replay value loss train the world model's representation (reference default)."""

    # --- actor-critic in imagination ---
    imag_horizon: int = 15
    """Imagination rollout length H."""
    imag_last: int = 0
    """Imagine only from the last this-many steps of each replayed sequence (0 = every step, as the paper).
    The actor-critic cost scales with it: a value like 8 makes CPU training several times faster."""
    discount_horizon: float = 333.0
    """Discount γ = 1 - 1 / discount_horizon."""
    lam: float = 0.95
    """λ of the λ-returns."""
    actor_entropy: float = 3e-4
    """Entropy bonus η of the actor."""
    actor_grad: str = "reinforce"
    """Actor gradient for continuous actions: ``reinforce`` (the 2024/2025 reference; default) or ``backprop`` (the 2023
    code that made the published DMC curves: the λ-return is differentiated through the imagined dynamics, reward and
    critic into the actor, and only the actor learns from it). Discrete actions always use REINFORCE, as in both."""
    retnorm_decay: float = 0.99
    """EMA decay of the return percentiles."""
    retnorm_limit: float = 1.0
    """Returns are divided by max(limit, P_high - P_low)."""
    retnorm_low: float = 0.05
    """Lower return percentile."""
    retnorm_high: float = 0.95
    """Upper return percentile."""
    slow_critic_decay: float = 0.98
    """EMA decay of the slow critic (update every step)."""
    slowreg: float = 1.0
    """Weight of the critic's regulariser towards the slow critic's prediction."""

    # --- optimiser (LaProp + adaptive gradient clipping, one optimiser for all modules) ---
    lr: float = 4e-5
    """Learning rate."""
    eps: float = 1e-20
    """LaProp epsilon."""
    beta1: float = 0.9
    """Momentum decay."""
    beta2: float = 0.999
    """Second-moment decay."""
    agc: float = 0.3
    """Adaptive gradient clipping: per tensor, ||g|| <= agc * max(1e-3, ||w||); 0 disables."""
    warmup: int = 1000
    """Linear learning-rate warm-up, in updates; 0 disables."""

    def __post_init__(self) -> None:
        self.cnn_mults = tuple(int(m) for m in self.cnn_mults)
        positive = (
            "batch_size",
            "seq_len",
            "deter",
            "hidden",
            "stoch",
            "classes",
            "blocks",
            "units",
            "cnn_depth",
            "kernel",
            "bspace",
            "imag_horizon",
            "prior_layers",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"DreamerV3Config.{name}={getattr(self, name)} must be >= 1")
        for name in (
            "dyn_layers",
            "post_layers",
            "enc_layers",
            "dec_layers",
            "reward_layers",
            "cont_layers",
            "actor_layers",
            "critic_layers",
            "warmup",
            "imag_last",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"DreamerV3Config.{name}={getattr(self, name)} must be >= 0")
        if self.seq_len < 2:
            raise ValueError(
                f"DreamerV3Config.seq_len={self.seq_len} must be >= 2 (the replay value loss needs a next step)"
            )
        if self.imag_last == 1:
            raise ValueError(
                "DreamerV3Config.imag_last=1 leaves the replay value loss no transition; use 0 (all) or >= 2"
            )
        if self.deter % self.blocks:
            raise ValueError(f"DreamerV3Config.deter={self.deter} must be divisible by blocks={self.blocks}")
        if self.deter % self.bspace:
            raise ValueError(f"DreamerV3Config.deter={self.deter} must be divisible by bspace={self.bspace}")
        if not self.cnn_mults or min(self.cnn_mults) < 1:
            raise ValueError(f"DreamerV3Config.cnn_mults={self.cnn_mults} must be a non-empty tuple of positive ints")
        if (self.cnn_depth * self.cnn_mults[-1]) % self.bspace:
            raise ValueError(
                f"the last CNN stage has cnn_depth*cnn_mults[-1]={self.cnn_depth * self.cnn_mults[-1]} channels, "
                f"which must be divisible by bspace={self.bspace}"
            )
        if self.kernel % 2 == 0:
            raise ValueError(f"DreamerV3Config.kernel={self.kernel} must be odd ('same' padding)")
        if self.bins < 2:
            raise ValueError(f"DreamerV3Config.bins={self.bins} must be >= 2")
        for name in ("unimix", "actor_unimix"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"DreamerV3Config.{name}={getattr(self, name)} must be in [0, 1)")
        if not 0.0 < self.actor_min_std < self.actor_max_std:
            raise ValueError(f"need 0 < actor_min_std ({self.actor_min_std}) < actor_max_std ({self.actor_max_std})")
        if self.discount_horizon < 1.0:
            raise ValueError(
                f"DreamerV3Config.discount_horizon={self.discount_horizon} must be >= 1 (γ = 1 - 1/horizon)"
            )
        for name in ("lam", "retnorm_decay", "slow_critic_decay", "beta1", "beta2"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"DreamerV3Config.{name}={getattr(self, name)} must be in [0, 1]")
        if not 0.0 <= self.retnorm_low < self.retnorm_high <= 1.0:
            raise ValueError(f"need 0 <= retnorm_low ({self.retnorm_low}) < retnorm_high ({self.retnorm_high}) <= 1")
        for name in (
            "free_bits",
            "loss_dyn",
            "loss_rep",
            "loss_rec",
            "loss_reward",
            "loss_cont",
            "loss_actor",
            "loss_critic",
            "loss_repval",
            "actor_entropy",
            "retnorm_limit",
            "slowreg",
            "agc",
            "actor_outscale",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"DreamerV3Config.{name}={getattr(self, name)} must be >= 0")
        if self.actor_grad not in ACTOR_GRADS:
            raise ValueError(f"DreamerV3Config.actor_grad={self.actor_grad!r}; use one of {ACTOR_GRADS}")
        if self.lr <= 0 or self.eps < 0:
            raise ValueError(f"need lr > 0 and eps >= 0, got lr={self.lr}, eps={self.eps}")

    @classmethod
    def preset(cls, name: str, **overrides) -> "DreamerV3Config":
        """A named size from :data:`PRESETS`, with optional field overrides."""
        if name not in PRESETS:
            raise ValueError(f"unknown DreamerV3 preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    @property
    def gamma(self) -> float:
        """Discount factor γ."""
        return 1.0 - 1.0 / self.discount_horizon

    def loss_scales(self) -> dict[str, float]:
        """Scale of each named loss; reconstruction keys share ``loss_rec`` (see ``DreamerV3Agent.update``)."""
        return {
            "dyn": self.loss_dyn,
            "rep": self.loss_rep,
            "reward": self.loss_reward,
            "cont": self.loss_cont,
            "actor": self.loss_actor,
            "critic": self.loss_critic,
            "repval": self.loss_repval,
        }

    def replace(self, **changes) -> "DreamerV3Config":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclass
class DreamerV3Checkpoint:
    """What ``config.json`` of a saved DreamerV3 agent holds: its config and the environment spec it was built for."""

    config: DreamerV3Config = field(default_factory=DreamerV3Config)
    """Agent hyper-parameters."""
    spec: EnvSpec = field(default_factory=EnvSpec)
    """Observation shapes and action space."""
