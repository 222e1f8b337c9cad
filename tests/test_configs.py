"""The registry of bundled presets and variants (clip2clinic.configs)."""

from __future__ import annotations

import pytest

from clip2clinic import configs
from clip2clinic.io import InputError


def test_variants_are_the_files_in_the_reproduction_table_order():
    assert configs.variants() == configs.TABLE_ORDER
    assert set(configs.names("preset")) >= {"embedded", "paper"}


def test_a_users_variant_file_joins_the_registry_after_the_table(monkeypatch, tmp_path):
    (tmp_path / "variants").mkdir()
    for name in ("zz_mine", "n", "baseline"):
        (tmp_path / "variants" / f"{name}.yaml").write_text(f"variant: {name}\n")
    monkeypatch.setenv("CLIP2CLINIC_CONFIGS", str(tmp_path))
    assert configs.variants() == ("baseline", "n", "zz_mine")
    with pytest.raises(InputError, match=r"known variants: \['baseline', 'n', 'zz_mine'\]"):
        configs.named_config("variant", "dt")
    with pytest.raises(ValueError, match="kind"):
        configs.names("recipe")
