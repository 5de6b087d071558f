"""The one training loop, and what it needs: devices, precision, checkpoints, reporting."""
