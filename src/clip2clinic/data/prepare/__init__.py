"""``clip2clinic prepare``: run the report pipeline once, cache images and texts, write the
manifest. Stages, each resumable and parallel over cores:

1. :mod:`.report_stage` — per study: report text, cleanup, labels; then hard negatives,
   their labels, and graphs (RadGraph format);
2. :mod:`.image_stage` — resized uint8 image cache; unreadable images skipped and counted;
3. :mod:`.text_stage` — the table of distinct texts, their token ids (and optionally the frozen
   text model's token features), the graph node vocabulary and its embeddings;
4. :mod:`.pipeline` — joins everything into the Parquet manifest and a prepare report.
"""

from clip2clinic.data.prepare.pipeline import PrepareOptions, prepare

__all__ = ["PrepareOptions", "prepare"]
