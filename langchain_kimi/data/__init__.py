"""Kimi model data: ``_profiles.py`` (LangChain's format) and ``profile_augmentations.toml``.

Edit ``profile_augmentations.toml``; regenerate ``_profiles.py`` as its header says.
``langchain_kimi._profiles`` reads both, lazily, on the first model built.
"""
