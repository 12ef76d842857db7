"""Test helpers: real wheels and sdists, static indexes over them, and real servers."""
