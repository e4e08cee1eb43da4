"""The control plane's own tables (tokens) and the list of every package's schema."""
