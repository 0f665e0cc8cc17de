"""zrank_train: fine-tunes all-MiniLM-L6-v2 (fp32, JAX) on a click/engagement log for `zrank fine-tune`."""

__version__ = "0.1.0"
