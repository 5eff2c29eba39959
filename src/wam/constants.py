"""Names shared by environments, datasets and models, so a key is spelled in exactly one place."""

RGB = "rgb"
DEPTH = "depth"
PROPRIO = "proprio"
STATE = "state"
TASK = "task"

#: Every observation key an environment may emit, in canonical order.
OBS_KEYS: tuple[str, ...] = (RGB, DEPTH, PROPRIO, STATE, TASK)
#: Keys holding images, stored as (H, W, C).
IMAGE_KEYS: tuple[str, ...] = (RGB, DEPTH)

ACTION = "action"
REWARD = "reward"
TERMINATED = "terminated"
TRUNCATED = "truncated"
IS_FIRST = "is_first"
IS_LAST = "is_last"
IS_TERMINAL = "is_terminal"
MASK = "mask"
SUCCESS = "success"

#: Depth images are clipped to this range (metres) by every suite.
DEPTH_MIN_M = 0.0
DEPTH_MAX_M = 10.0
