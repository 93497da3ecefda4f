"""Scripts that regenerate every figure (one module per figure, each importable and runnable)."""
