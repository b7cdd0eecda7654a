"""repurpose: one master photo or video in, every platform's variant out.

The package is a staged pipeline; each stage is one module:
ingest -> probe -> planning -> render -> outputs, driven by presets and the
shoot. `import pipeline` starts no subprocess and reads no configuration.
"""

__version__ = "0.1.0"
