"""retain.training (see ARCHITECTURE.md)."""
__all__: list[str] = []
