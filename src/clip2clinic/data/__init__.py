"""Dataset readers, the phantom corpus, image loading and the prepared manifest."""
