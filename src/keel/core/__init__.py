"""Cross-cutting platform code. Imports no domain package."""
