"""retain.reports (see ARCHITECTURE.md)."""

__all__: list[str] = []
