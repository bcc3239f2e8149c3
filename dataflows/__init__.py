"""One Bytewax dataflow per scenario; run one with `python -m bytewax.run dataflows.<name>`."""
