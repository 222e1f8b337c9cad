"""Training: configs (presets × variants, :mod:`.config`), batches from a prepared manifest
(:mod:`.data`), the Accelerate trainer with exact resume (:mod:`.trainer`), checkpoints without
pickles (:mod:`.checkpoint`). See docs/train.md. Kept import-free so that the CLI stays fast."""
