"""Utopia streams: the library behind the dataflows (models, codecs, I/O, state logic, generator, CLI)."""
