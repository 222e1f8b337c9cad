"""The built wheel carries the presets and variants, and an installed copy finds them through
``importlib.resources`` (a plain ``pip install`` can train)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import clip2clinic
from clip2clinic.configs import configs_dir, named_config

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = sorted(
    p.relative_to(configs_dir()).as_posix() for p in configs_dir().glob("*/*.yaml")
)


def test_configs_are_package_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert configs_dir() == Path(clip2clinic.__file__).parent / "configs"
    assert {p.split("/")[0] for p in BUNDLED} == {"presets", "variants"}
    monkeypatch.setenv("CLIP2CLINIC_CONFIGS", str(tmp_path))
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "mine.yaml").write_text("model: {base: embedded}\n")
    assert named_config("preset", "mine") == tmp_path / "presets" / "mine.yaml"


@pytest.mark.slow
def test_the_wheel_ships_the_configs_and_its_install_finds_them(tmp_path: Path) -> None:
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("needs the source tree")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("clip2clinic-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = sorted(
            n.removeprefix("clip2clinic/configs/")
            for n in archive.namelist()
            if n.startswith("clip2clinic/configs/") and n.endswith(".yaml")
        )
        assert shipped == BUNDLED
        # A pure-Python wheel installs by unpacking; import the unpacked copy, not the checkout.
        site = tmp_path / "site"
        archive.extractall(site)
    code = (
        "from clip2clinic.configs import named_config; "
        "print(named_config('preset', 'embedded')); print(named_config('variant', 'n_g_dtcg'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
        env={**without_configs_override(), "PYTHONPATH": str(site)},
    )  # fmt: skip
    found = [Path(line) for line in out.stdout.split()]
    assert found == [
        site / "clip2clinic/configs/presets/embedded.yaml",
        site / "clip2clinic/configs/variants/n_g_dtcg.yaml",
    ]


def without_configs_override() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CLIP2CLINIC_CONFIGS"}
