"""Configuration of the World Action Model: sizes, loss weights, imagination and coupling."""

from __future__ import annotations

from dataclasses import dataclass, field

from wam.envs.spec import EnvSpec
from wam.models.nn.heads import BOX_POLICIES

#: Width / depth presets. ``small`` (~1M parameters) trains on a laptop CPU; larger ones are for GPUs.
SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(dim=32, trunk_layers=1, fusion_layers=1, heads=2, mlp_hidden=64, cnn_width=8),
    "small": dict(dim=128, trunk_layers=2, fusion_layers=1, heads=4, mlp_hidden=256, cnn_width=16),
    "base": dict(dim=256, trunk_layers=4, fusion_layers=2, heads=8, mlp_hidden=512, cnn_width=32),
    "large": dict(dim=512, trunk_layers=8, fusion_layers=2, heads=8, mlp_hidden=1024, cnn_width=48),
}

COUPLINGS = ("coupled", "decoupled")
ACTOR_GRADS = ("reinforce", "pathwise")
DYN_TARGETS = ("sg", "ema")
POLICY_DISTS = tuple(BOX_POLICIES)


@dataclass
class WAMConfig:
    """Everything needed to rebuild a :class:`~wam.models.WorldActionModel` (saved as ``config.json``)."""

    spec: EnvSpec = field(default_factory=EnvSpec)
    """Observation shapes and action space, resolved from the environment."""
    dim: int = 128
    """Width D of every token and of the latent state z_t."""
    trunk_layers: int = 2
    """Layers of the causal temporal transformer over z_1, a_1, z_2, a_2, ..."""
    fusion_layers: int = 1
    """Self-attention layers fusing one step's modality tokens into z_t."""
    heads: int = 4
    """Attention heads in fusion and trunk."""
    mlp_hidden: int = 256
    """Hidden width of vector tokenizers and of the heads."""
    cnn_width: int = 16
    """Channels of the first conv layer (doubling every layer) of image stems and decoders."""
    context: int = 16
    """Steps of history the trunk attends to (also the training sequence length)."""
    horizon: int = 15
    """Imagination horizon for actor-critic learning."""
    imag_starts: int = 256
    """Imagined rollouts per update, started from random real steps of the batch."""
    coupling: str = "coupled"
    """``coupled``: policy and value read the trunk state h with gradient; ``decoupled``: they read a
    stop-gradient copy, so the world model learns only from model losses and the policy only from its own."""
    actor_grad: str = "reinforce"
    """Policy-gradient estimator: ``reinforce`` (learned baseline) or ``pathwise`` (through dynamics and value)."""
    alpha_pg: float = 1.0
    """Scale of the actor and critic gradients that reach the shared trunk (coupled mode); 0 stops them there."""
    dyn_target: str = "sg"
    """Next-latent target: ``sg`` stop-gradient of the online encoder, or ``ema`` slow encoder copy."""
    ema_decay: float = 0.98
    """Decay of the slow critic (and of the EMA encoder when ``dyn_target='ema'``)."""
    gamma: float = 0.997
    """Discount (DreamerV3's 1 - 1/333)."""
    lam: float = 0.95
    """λ of the λ-returns."""
    entropy: float = 3e-4
    """Entropy bonus weight (on normalised returns)."""
    policy_dist: str = "tanh_normal"
    """Box-action policy: ``tanh_normal`` (Gaussian squashed by tanh, as in SAC) or ``bounded_normal`` (Gaussian with mean
    tanh(μ), samples clipped to [-1, 1], as in DreamerV3; its entropy does not depend on the mean)."""
    min_std: float = 0.05
    """Lower bound of the Gaussian policy's standard deviation."""
    max_std: float = 1.0
    """Upper bound of the Gaussian policy's standard deviation."""
    num_bins: int = 255
    """Bins of the two-hot symlog reward and value distributions."""
    model_horizon: int = 5
    """Open-loop steps of the multi-step model loss: the trunk rolls forward on its own latents with the real
    actions and is scored at every step (TD-MPC2-style). 1 = one-step teacher forcing only."""
    model_starts: int = 32
    """Rollouts per update for the multi-step model loss."""
    model_rho: float = 0.5
    """Weight decay per step of the multi-step model loss (ρ^k, TD-MPC2's ρ)."""
    residual_dynamics: bool = False
    """Predict z_{t+1} as LayerNorm(z_t + Δ(g_t)) instead of LayerNorm(f(g_t)). Off by default: on toy/reach2d it
    learns "nothing moves" (open-loop error equal to the copy guess) and imagined rewards stop depending on the
    action (benchmarks/results/imagination_probe.jsonl)."""
    reward_on_latent: bool = True
    """Also train the reward head on the encoder latent of the real next observation (not only on g_t). This
    gives the encoder a direct reward gradient; without it the reward head barely learns on CPU-sized update
    budgets (benchmarks/results/wm_probe.jsonl; docs/research-log.md#one-off-probes-retired-issue-33)."""
    loss_scales: dict[str, float] = field(
        default_factory=lambda: dict(
            dyn=1.0, rec=1.0, reward=1.0, cont=1.0, actor=1.0, critic=1.0, slow_critic=1.0, repval=0.0
        )
    )
    """Weight of each named loss; ``rec`` is β_rec of DESIGN.md; ``repval`` (optional, 0 when absent) weighs the critic
    loss on replayed real sequences."""
    dropout: float = 0.0
    """Dropout inside transformer blocks."""

    def __post_init__(self) -> None:
        if isinstance(self.spec, dict):
            self.spec = EnvSpec(**self.spec)
        checks = [
            (self.coupling in COUPLINGS, f"coupling={self.coupling!r}; use one of {COUPLINGS}"),
            (self.actor_grad in ACTOR_GRADS, f"actor_grad={self.actor_grad!r}; use one of {ACTOR_GRADS}"),
            (self.policy_dist in POLICY_DISTS, f"policy_dist={self.policy_dist!r}; use one of {POLICY_DISTS}"),
            (self.dyn_target in DYN_TARGETS, f"dyn_target={self.dyn_target!r}; use one of {DYN_TARGETS}"),
            (
                self.dim > 0 and self.dim % self.heads == 0,
                f"dim={self.dim} must be a positive multiple of heads={self.heads}",
            ),
            (self.context >= 2, f"context={self.context} must be >= 2"),
            (self.horizon >= 1, f"horizon={self.horizon} must be >= 1"),
            (
                self.model_horizon >= 1 and self.model_starts >= 1,
                f"model_horizon={self.model_horizon} and model_starts={self.model_starts} must be >= 1",
            ),
            (0.0 < self.model_rho <= 1.0, f"model_rho={self.model_rho} must be in (0, 1]"),
            (0.0 < self.gamma <= 1.0, f"gamma={self.gamma} must be in (0, 1]"),
            (0.0 <= self.lam <= 1.0, f"lam={self.lam} must be in [0, 1]"),
            (0.0 < self.min_std < self.max_std, f"need 0 < min_std ({self.min_std}) < max_std ({self.max_std})"),
            (self.alpha_pg >= 0.0, f"alpha_pg={self.alpha_pg} must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"WAMConfig: {message}")
        expected = {"dyn", "rec", "reward", "cont", "actor", "critic", "slow_critic"}
        if not expected <= set(self.loss_scales) <= expected | {"repval"}:
            raise ValueError(
                f"WAMConfig.loss_scales must have the keys {sorted(expected)} (and optionally 'repval'), "
                f"got {sorted(self.loss_scales)}"
            )
        for key in self.spec.image_keys:
            size = self.spec.obs_shapes[key][0]
            if size % 16 or self.spec.obs_shapes[key][0] != self.spec.obs_shapes[key][1]:
                raise ValueError(
                    f"image {key!r} has shape {self.spec.obs_shapes[key]}; the conv stem needs square images with a side divisible by 16"
                )

    @classmethod
    def preset(cls, size: str, **overrides) -> "WAMConfig":
        """A config of one of the :data:`SIZES`, with field overrides."""
        if size not in SIZES:
            raise ValueError(f"unknown size preset {size!r}; choose one of {list(SIZES)}")
        return cls(**{**SIZES[size], **overrides})
