"""retain.features (see ARCHITECTURE.md)."""
__all__: list[str] = []
