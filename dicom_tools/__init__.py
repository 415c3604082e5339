"""Typed, synchronous DICOM tools for Doorstep; never imports aiohttp or SQLAlchemy."""
