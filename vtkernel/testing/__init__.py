"""Real helpers for tests and notebooks (a SuperCollider server without a sound card)."""
