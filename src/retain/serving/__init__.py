"""retain.serving (see ARCHITECTURE.md)."""

__all__: list[str] = []
