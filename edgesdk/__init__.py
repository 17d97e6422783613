"""edgesdk: the SDK integrators embed.

Data model, SenML, COSE signing and verification, the signed-batch wire format, the driver
API and a verifying consumer. See ``docs/`` for the guides.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
