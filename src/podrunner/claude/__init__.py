"""Claude Code on top of the podrunner SDK."""
