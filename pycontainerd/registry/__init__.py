"""Registries: pull and push images over the OCI distribution API (``Client.pull``, ``Client.push``).

Layout (one concern per module):

* :mod:`pycontainerd.images.reference` (shared with local images) parses and normalises
  image references as docker does.
* :mod:`.transport` is HTTP (urllib3): TLS, keep-alive, redirects, bounded retries.
* :mod:`.credentials` finds credentials (explicit, Docker config, credential helpers);
  :mod:`.auth` answers the registry's challenges (Basic, Bearer tokens, their cache).
* :mod:`.remote` is one repository's ``/v2/`` API with typed errors (:mod:`.errors`).
* :mod:`.fetch` fetches manifests and streams blobs into the content store;
  :mod:`.pull` is ``Client.pull``.
* :mod:`.upload` sends blobs and manifests; :mod:`.push` is ``Client.push``.
* :mod:`.progress` is the progress events both report.
"""

from __future__ import annotations

from pycontainerd.images.reference import InvalidReferenceError, Reference, parse
from pycontainerd.registry.credentials import CredentialHelperError, Credentials
from pycontainerd.registry.errors import (
    ManifestTooLargeError,
    RegistryAuthError,
    RegistryDeniedError,
    RegistryError,
    RegistryNotFoundError,
    RegistryProtocolError,
    RegistryUnavailableError,
    UnsupportedManifestError,
)
from pycontainerd.registry.progress import Phase, ProgressEvent

__all__ = [
    "CredentialHelperError",
    "Credentials",
    "InvalidReferenceError",
    "ManifestTooLargeError",
    "Phase",
    "ProgressEvent",
    "Reference",
    "RegistryAuthError",
    "RegistryDeniedError",
    "RegistryError",
    "RegistryNotFoundError",
    "RegistryProtocolError",
    "RegistryUnavailableError",
    "UnsupportedManifestError",
    "parse",
]
