"""The README's install command resolves on Linux x86-64, Linux aarch64 and macOS arm64.

Each platform's requirements are pyproject.toml's dependencies with their environment
markers evaluated for that platform, resolved by pip against the package index for its
wheel tags (`--dry-run --only-binary=:all: --platform …`): every package must have a
wheel there. Needs the index: skips where it cannot be reached.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
GLIBC = range(17, 36)  # manylinux_2_17 … 2_35: a current distribution (Debian 12: glibc 2.36) takes them all
PLATFORMS = {  # name: (pip's wheel tags, the markers' environment, TensorFlow's distribution and minor)
    "linux-x86_64": ([f"manylinux_2_{v}_x86_64" for v in GLIBC] + ["manylinux2014_x86_64"],
                     {"sys_platform": "linux", "platform_machine": "x86_64", "platform_system": "Linux"},
                     ("tensorflow-cpu", "2.21")),
    "linux-aarch64": ([f"manylinux_2_{v}_aarch64" for v in GLIBC] + ["manylinux2014_aarch64"],
                      {"sys_platform": "linux", "platform_machine": "aarch64", "platform_system": "Linux"},
                      ("tensorflow", "2.20")),
    "macos-arm64": (["macosx_14_0_arm64", "macosx_13_0_arm64", "macosx_12_0_arm64", "macosx_11_0_arm64"],
                    {"sys_platform": "darwin", "platform_machine": "arm64", "platform_system": "Darwin"},
                    ("tensorflow", "2.21")),
}


def requirements_for(environment: dict) -> list[str]:
    """pyproject's dependencies that apply on that platform, markers removed."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = {"python_version": "3.11", "python_full_version": "3.11.9", "os_name": "posix",
           "implementation_name": "cpython", "platform_python_implementation": "CPython", **environment}
    out = []
    for line in deps:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env):
            req.marker = None
            out.append(str(req))
    return out


def test_each_platform_asks_for_one_tensorflow():
    for name, (_, env, (dist, minor)) in PLATFORMS.items():
        tf = [r for r in requirements_for(env) if r.startswith("tensorflow")]
        assert tf == [f"{dist}~={minor}.0"], name


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PLATFORMS))
def test_the_dependencies_have_wheels_on(name, tmp_path):
    tags, env, (dist, minor) = PLATFORMS[name]
    (tmp_path / "requirements.txt").write_text("\n".join(requirements_for(env)) + "\n")
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
           *[f"--platform={t}" for t in tags], "--python-version=3.11", "--implementation=cp",
           f"--target={tmp_path / 'target'}", "-r", str(tmp_path / "requirements.txt"),
           f"--report={tmp_path / 'report.json'}", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode and any(s in done.stderr for s in ("NewConnectionError", "Max retries", "Network is unreachable",
                                                        "Temporary failure in name resolution")):
        pytest.skip("the package index cannot be reached")
    assert done.returncode == 0, done.stderr[-3000:]
    installed = {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
                 for i in json.loads((tmp_path / "report.json").read_text())["install"]}
    assert installed[dist].startswith(minor + "."), installed.get(dist)
    assert {"onnxruntime", "python-telegram-bot", "keras", "opencc", "aiosqlite"} <= set(installed)
