"""Loss maths shared by every agent."""

from wam.losses.functional import (
    ReturnNormalizer,
    bce_with_logits,
    kl_categorical,
    kl_free_bits,
    lambda_returns,
    masked_mean,
    normal_entropy,
    normal_log_density,
    symexp,
    symexp_bins,
    symlog,
    twohot,
    twohot_loss,
    twohot_mean,
    unimix_logits,
)

__all__ = [
    "ReturnNormalizer",
    "bce_with_logits",
    "kl_categorical",
    "kl_free_bits",
    "lambda_returns",
    "masked_mean",
    "normal_entropy",
    "normal_log_density",
    "symexp",
    "symexp_bins",
    "symlog",
    "twohot",
    "twohot_loss",
    "twohot_mean",
    "unimix_logits",
]
