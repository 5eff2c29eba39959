"""The README's "Use it" example runs as written, on a fresh checkout (no trained run folder needed)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_python_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, f"no python block in {README}"
    monkeypatch.chdir(tmp_path)  # the example writes its agent folder into the working directory
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    assert (tmp_path / "my_agent" / "config.json").is_file() and (tmp_path / "my_agent" / "model.safetensors").is_file()
    assert type(namespace["agent"]).__name__ == "WAMQAgent"
