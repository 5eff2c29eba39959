"""Typed configuration of the Q-learning World Action Model (DESIGN.md §1, the learning recipe of record)."""

from __future__ import annotations

from dataclasses import dataclass, field

from wam.envs.spec import EnvSpec

COUPLINGS = ("coupled", "decoupled")
Q_KINDS = ("twohot", "scalar")
DYN_TARGETS = ("sg", "ema")


@dataclass
class WAMQConfig:
    """Every setting of the agent: model sizes, world-model losses, the critic and the actor.

    One update = one optimiser step on ``batch_size`` windows of ``seq_len`` consecutive steps; with the defaults a
    train ratio of 384 (``batch_size · seq_len``) is one update per environment step, the schedule of record.
    The defaults were chosen on short reach-v3 runs (docs/research-log.md) and are those of the pre-registered suite
    ``state-v4``; ``state-v2`` and ``state-v3`` pin the earlier ones in their flags.
    """

    # ---- model
    dim: int = 64
    """Width D of every token, of the latent z_t and of the trunk states h_t (at z_t) and g_t (at a_t)."""
    trunk_layers: int = 1
    """Layers of the causal transformer over ``z_1, a_1, z_2, a_2, …`` (one learned reach-v3 as well as two at 2/3 of
    the cost: benchmarks/suites/state-v3.toml)."""
    fusion_layers: int = 0
    """Self-attention layers fusing one step's modality tokens into z_t; 0: z_t is the normalised sum of the modality
    tokens (no attention; for a single modality such as state, the tokenizer's output). Chosen on state; for several
    modalities a fusion layer (1) is the alternative, not yet measured for this agent."""
    heads: int = 4
    """Attention heads of fusion and trunk."""
    mlp_hidden: int = 256
    """Hidden width of vector tokenizers and of the heads."""
    cnn_width: int = 16
    """Channels of the first conv layer of the image stems (doubling each layer)."""
    # ---- batches
    batch_size: int = 128
    """Windows per update."""
    seq_len: int = 3
    """Steps per window. The critic is fitted on the ``seq_len - 1`` transitions of a window, so the policy acts seeing
    the ``seq_len - 2`` steps before the current one (2 = no history: each step's state alone)."""
    # ---- critic
    num_q: int = 2
    """Q heads in the ensemble; TD targets take the minimum of two of them chosen at random."""
    q_kind: str = "scalar"
    """``twohot``: Q as a distribution over symlog-spaced bins (cross-entropy TD loss, scale-free; TD-MPC2) or
    ``scalar``: a number regressed by squared error (SAC)."""
    num_bins: int = 255
    """Bins of the two-hot reward and Q heads."""
    gamma: float = 0.99
    """Discount of the TD targets."""
    tau: float = 0.005
    """Polyak rate of the target Q heads."""
    # ---- actor
    init_alpha: float = 1.0
    """Initial entropy temperature (tuned towards ``target_entropy``)."""
    target_entropy: float | None = None
    """Entropy the temperature aims for; ``None``: ``-action_dim`` for boxes, ``0.5·log(n)`` for n discrete actions."""
    actor_trunk_grad: bool = False
    """Let the policy gradient reach the shared trunk through the policy head's input h_t (scaled by ``alpha_pg``).
    Off: the actor trains its head only, like SAC-AE, DrQ and TD-MPC2 (the trunk is still shaped by the critic)."""
    min_std: float = 0.05
    """Lower bound of the policy's standard deviation (pre-tanh)."""
    max_std: float = 1.0
    """Upper bound of the policy's standard deviation (pre-tanh)."""
    eval_tau: float = 0.005
    """Polyak rate of a slow copy of the network that deterministic acting (evaluation) uses; 0: act with the
    online weights. The online policy moves fast under the shared trunk (its pre-tanh mean shifted by 1-3 standard
    deviations over 500 updates on reach-v3, docs/research-log.md); the average is what the training episodes saw."""
    # ---- coupling
    coupling: str = "coupled"
    """``coupled``: the critic (and, with ``actor_trunk_grad``, the actor) trains the shared trunk and encoder;
    ``decoupled``: policy and Q heads read a stop-gradient copy of h_t, so only world-model losses train the trunk."""
    alpha_pg: float = 1.0
    """Scale of the critic / actor gradients that reach the shared trunk in coupled mode."""
    dyn_target: str = "sg"
    """Target of the next-latent loss: ``sg`` (stop-gradient of the online encoder, TD-MPC2) or ``ema`` (a slow copy
    of the encoder, BYOL / SPR; guards against a collapsed latent)."""
    target_tau: float = 0.01
    """Polyak rate of the slow encoder when ``dyn_target='ema'``."""
    # ---- loss weights (for the shared parameters; each head also sees its own loss)
    dyn_scale: float = 1.0
    """Weight of the next-latent consistency loss (TD-MPC2's 20 collapsed the latent here: docs/research-log.md)."""
    reward_scale: float = 1.0
    """Weight of the reward loss."""
    cont_scale: float = 1.0
    """Weight of the continuation loss."""
    q_scale: float = 1.0
    """Weight of the TD loss."""
    # ---- optimisation
    lr: float = 3e-4
    """Adam learning rate of every parameter."""
    grad_clip: float = 20.0
    """Global gradient-norm clip."""

    def __post_init__(self) -> None:
        checks = [
            (self.coupling in COUPLINGS, f"coupling={self.coupling!r}; choose one of {COUPLINGS}"),
            (self.dyn_target in DYN_TARGETS, f"dyn_target={self.dyn_target!r}; choose one of {DYN_TARGETS}"),
            (self.q_kind in Q_KINDS, f"q_kind={self.q_kind!r}; choose one of {Q_KINDS}"),
            (
                self.dim > 0 and self.dim % self.heads == 0,
                f"dim={self.dim} must be a positive multiple of heads={self.heads}",
            ),
            (
                self.batch_size >= 1 and self.seq_len >= 2,
                f"batch_size={self.batch_size} must be >= 1, seq_len={self.seq_len} >= 2",
            ),
            (self.num_q >= 2, f"num_q={self.num_q} must be >= 2 (targets take the minimum of two heads)"),
            (
                0.0 < self.gamma <= 1.0 and 0.0 < self.tau <= 1.0,
                f"need 0 < gamma ({self.gamma}) <= 1 and 0 < tau ({self.tau}) <= 1",
            ),
            (self.init_alpha > 0 and self.lr > 0 and self.grad_clip > 0, "init_alpha, lr and grad_clip must be > 0"),
            (0.0 < self.min_std < self.max_std, f"need 0 < min_std ({self.min_std}) < max_std ({self.max_std})"),
            (self.alpha_pg >= 0.0, f"alpha_pg={self.alpha_pg} must be >= 0"),
            (0.0 <= self.eval_tau <= 1.0, f"eval_tau={self.eval_tau} must be in [0, 1] (0: no slow copy)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"WAMQConfig: {message}")


@dataclass
class WAMQCheckpoint:
    """What ``config.json`` of a saved agent holds."""

    config: WAMQConfig = field(default_factory=WAMQConfig)
    """Agent settings."""
    spec: EnvSpec = field(default_factory=EnvSpec)
    """Observation shapes and action space."""
