"""The README's Python example runs as written (in a fresh folder)."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT


def test_readme_python_blocks_run(tmp_path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks
    for k, code in enumerate(blocks):
        script = tmp_path / f"block{k}.py"
        script.write_text(code)
        proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                              timeout=600, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
    assert (tmp_path / "out" / "mcunet_model.c").exists()
