"""retain.models (see ARCHITECTURE.md)."""
__all__: list[str] = []
