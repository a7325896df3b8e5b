"""Command-line tools: convnet-train."""
