"""The evaluation suite of the paper (Section 5): one module per task, plus the report writer."""
