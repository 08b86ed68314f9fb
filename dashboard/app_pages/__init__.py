"""One file per dashboard page, registered with ``st.navigation`` in ``dashboard/app.py``."""

__all__: list[str] = []
