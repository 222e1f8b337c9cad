"""Draw docs/img/phantom_examples.png: one phantom radiograph per finding, captioned.

Usage: python docs/img/make_phantom_examples.py [--size 256] [--out docs/img/phantom_examples.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from clip2clinic.phantom.anatomy import sample_habitus
from clip2clinic.phantom.render import render_view
from clip2clinic.phantom.truth import Finding

F = Finding
EXAMPLES = [
    ("normal, PA", (), "PA"),
    ("normal, portable AP", (), "AP"),
    ("normal, lateral", (), "LATERAL"),
    ("cardiomegaly (moderate)", (F("Cardiomegaly", severity=2),), "PA"),
    ("enlarged cardiomediastinum", (F("Enlarged Cardiomediastinum", severity=2),), "PA"),
    ("R pleural effusion (large)", (F("Pleural Effusion", laterality="right", severity=3),), "PA"),
    ("L pleural effusion (small)", (F("Pleural Effusion", laterality="left", severity=1),), "PA"),
    ("L pneumothorax (moderate)",
     (F("Pneumothorax", laterality="left", location="apex", severity=2),), "PA"),
    ("pulmonary edema (moderate)",
     (F("Edema", laterality="bilateral", location="perihilar", severity=2),), "AP"),
    ("RLL consolidation",
     (F("Consolidation", laterality="right", location="right lower lobe", severity=2),), "PA"),
    ("LUL pneumonia",
     (F("Pneumonia", laterality="left", location="left upper lobe", severity=2),), "PA"),
    ("bibasilar opacities",
     (F("Lung Opacity", laterality="bilateral", location="lower lungs", severity=3),), "PA"),
    ("L basilar atelectasis",
     (F("Atelectasis", laterality="left", location="base", severity=3),), "PA"),
    ("RUL mass (5 cm)", (F("Lung Lesion", laterality="right", location="right upper lobe",
                           kind="mass", number=50),), "PA"),
    ("L pleural thickening",
     (F("Pleural Other", laterality="left", location="lateral chest wall", severity=3),), "PA"),
    ("R 7th rib fracture", (F("Fracture", laterality="right", number=7, kind="acute"),), "PA"),
    ("ICU: ET, NG tube, R IJ line", (
        F("Support Devices", kind="et_tube"), F("Support Devices", kind="ng_tube"),
        F("Support Devices", kind="central_line", laterality="right",
          location="right internal jugular")), "AP"),
    ("pacemaker, sternotomy", (F("Support Devices", kind="pacemaker", laterality="left"),
                               F("Support Devices", kind="sternotomy")), "PA"),
    ("CHF: edema, effusions, cardiomegaly", (
        F("Edema", laterality="bilateral", severity=2), F("Cardiomegaly", severity=2),
        F("Pleural Effusion", laterality="bilateral", severity=2)), "AP"),
    ("lateral: effusion, cardiomegaly", (
        F("Pleural Effusion", laterality="bilateral", severity=2),
        F("Cardiomegaly", severity=2)), "LATERAL"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--columns", type=int, default=5)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "phantom_examples.png")
    args = parser.parse_args()
    tiles = []
    for i, (caption, findings, view) in enumerate(EXAMPLES):
        habitus = sample_habitus(np.random.default_rng(i), "FM"[i % 2])
        pixels, _ = render_view(habitus, findings, view, args.size, np.random.default_rng(i))
        tile = Image.fromarray(pixels).convert("L")
        draw = ImageDraw.Draw(tile)
        draw.rectangle((0, 0, args.size, 13), fill=0)
        draw.text((3, 1), caption, fill=255)
        tiles.append(tile)
    rows = -(-len(tiles) // args.columns)
    sheet = Image.new("L", (args.columns * args.size, rows * args.size))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % args.columns) * args.size, (i // args.columns) * args.size))
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out} ({len(tiles)} images)")


if __name__ == "__main__":
    main()
