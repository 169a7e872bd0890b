"""slowleak streams."""
