"""The text side of the paper: sections, cleanup, CheXpert labels, graphs, hard negatives."""
