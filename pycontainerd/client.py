"""``pycontainerd.Client``: a connection to containerd and its typed API.

Example:
    >>> with pycontainerd.Client(namespace="demo") as client:
    ...     print(client.version())
    Version(version='1.6.20~ds1', revision='1.6.20~ds1-1+b1')
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from pycontainerd import _address
from pycontainerd._grpc import DEFAULT_CONNECT_TIMEOUT, Connection
from pycontainerd.api import API
from pycontainerd.api.types import Descriptor, Version

if TYPE_CHECKING:
    from pycontainerd.container import Container
    from pycontainerd.images import Image
    from pycontainerd.registry.credentials import AuthSource
    from pycontainerd.registry.progress import Progress

__all__ = ["Client"]


class Client:
    """A client of one containerd daemon, bound to one namespace.

    The gRPC channel is created lazily, on the first call, and shared with every view made
    by :meth:`with_namespace` or :meth:`with_lease`. A client is thread-safe. It must not
    cross ``fork()``: using it in a child process raises :class:`RuntimeError`; create a new
    client in the child instead.

    Args:
        address: The unix socket, as a path or ``unix://`` URL. Default:
            ``$CONTAINERD_ADDRESS``, else the system daemon's socket
            (``/run/containerd/containerd.sock``) if it serves, else the embedded
            daemon's (``pycontainerd daemon start``) if that one serves, else the
            system socket (see :mod:`pycontainerd._address`).
        namespace: The containerd namespace of every call. Default:
            ``$CONTAINERD_NAMESPACE``, else ``"default"``.
        timeout: Default deadline in seconds for unary calls (``None``: 60 s). Waits and
            event streams have none unless given per call.
        connect_timeout: How long the first call waits for the socket to accept (10 s).

    Raises:
        ValueError: The address is not a unix socket path of at most 107 bytes, or the
            namespace breaks containerd's identifier rules (1-76 characters,
            alphanumerics separated by single ``.``, ``_`` or ``-``).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        namespace: str | None = None,
        timeout: float | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        if address is None:
            address = _address.default_address()
        self._init(
            Connection(address, namespace=namespace, timeout=timeout, connect_timeout=connect_timeout)
        )

    def _init(self, connection: Connection) -> None:
        self._connection = connection
        self._api: API | None = None

    @classmethod
    def _from_connection(cls, connection: Connection) -> Client:
        client = cls.__new__(cls)
        client._init(connection)
        return client

    @property
    def connection(self) -> Connection:
        """The underlying connection (channel, metadata, deadlines)."""
        return self._connection

    @property
    def api(self) -> API:
        """The typed wrappers of every containerd service, bound to this namespace."""
        if self._api is None:
            self._api = API(self._connection)
        return self._api

    @property
    def address(self) -> str:
        """The daemon's socket path."""
        return self._connection.address

    @property
    def namespace(self) -> str:
        """The namespace of every call."""
        return self._connection.namespace

    @property
    def lease(self) -> str | None:
        """The lease id sent with every call, if any."""
        return self._connection.lease

    def with_namespace(self, namespace: str) -> Client:
        """A view of this client in another namespace, sharing its channel (cheap).

        Raises:
            ValueError: The namespace breaks containerd's identifier rules.
        """
        return type(self)._from_connection(self._connection.with_namespace(namespace))

    def with_lease(self, lease: str | None) -> Client:
        """A view whose calls carry ``containerd-lease: <lease>``, sharing the channel.

        Resources created through it (content, snapshots, images) are held by the lease
        until it is deleted. ``None`` gives a view without a lease.
        """
        return type(self)._from_connection(self._connection.with_lease(lease))

    def version(self, *, timeout: float | None = None) -> Version:
        """The daemon's version and revision.

        Raises:
            UnavailableError: The daemon cannot be reached (the message names the socket).
            PermissionDeniedError: The socket is not accessible to this user.
        """
        return self.api.version.version(timeout=timeout)

    # -- libcontainerd-level operations (see pycontainerd.container) ------------
    def new_container(
        self,
        id: str,
        spec: Mapping[str, Any] | None = None,
        *,
        image: Image | str | None = None,
        snapshotter: str | None = None,
        snapshot: str | None = None,
        platform: str | None = None,
        runtime: str = "io.containerd.runc.v2",
        runtime_options: Any = None,
        bundle_dir: str | None = None,
        labels: Mapping[str, str] | None = None,
        state_dir: str | None = None,
        timeout: float | None = None,
        **spec_options: Any,
    ) -> Container:
        """Create a container the libcontainerd way, on a rootfs directory or from an image.

        The bundle dir (which will hold the process FIFOs) is prepared for the
        container's root user with :func:`pycontainerd.bundle.prepare_bundle_dir`
        (``.<uid>.<gid>`` directories under a user-namespace mapping) and
        recorded in the label ``com.docker/engine.bundle.path``; the spec is
        stored as JSON.

        With ``image``, as containerd's ``NewContainer(WithImage, WithNewSnapshot,
        WithImageConfig)``: the image is unpacked if needed, an active snapshot of its
        top layer is prepared (key: ``snapshot``, default the container id), the record
        names the image, snapshotter and snapshot key, and unless ``spec`` is given the
        spec comes from the image config (:func:`pycontainerd.images.spec.image_spec`):
        ``args`` replace the image's ``Cmd``, ``entrypoint`` its ``Entrypoint``,
        ``env`` goes over the image's, ``cwd``/``user`` default to the image's (user
        names resolved in the image's ``/etc/passwd``/``/etc/group``). The task then
        gets the snapshot's mounts as rootfs, and ``Container.delete`` removes the snapshot.

        Args:
            id: The container id (containerd's identifier rules; checked first).
            spec: The OCI runtime spec (see :func:`pycontainerd.oci.build`); required
                without ``image``.
            image: An image (or its name) to run.
            snapshotter: With ``image``: the snapshotter (default ``overlayfs``).
            snapshot: With ``image``: the snapshot key (default: the container id).
            platform: With ``image``: its platform to run (default: the host's).
            runtime: The runtime (shim) name.
            runtime_options: Runtime options (e.g. :class:`~pycontainerd.api.types.RuncOptions`).
            bundle_dir: Absolute bundle dir; default ``<state_dir>/<namespace>/<id>``.
            labels: Extra labels.
            state_dir: Root of default bundle dirs (``$PYCONTAINERD_STATE_DIR`` or ``/run/pycontainerd``).
            timeout: Deadline of the Create RPC.
            spec_options: With ``image`` and no ``spec``: ``args``, ``entrypoint``, ``env``,
                ``cwd``, ``user`` and any other :func:`pycontainerd.oci.build` option.

        Returns:
            The container.

        Raises:
            ValueError: A bad id, bundle path or id mapping, no command, an unknown user
                name (nothing is created).
            TypeError: Neither ``spec`` nor ``image``, or image options without ``image``.
            ConflictError: The id (or the snapshot key) is in use ("id already in use").
            NotFoundError: No such image.
            NoMatchingPlatformError: The image has no manifest for the platform.
        """
        from pycontainerd.container import new_container

        return new_container(self, id, spec, runtime=runtime, runtime_options=runtime_options,
                             bundle_dir=bundle_dir, labels=labels, state_dir=state_dir, timeout=timeout,
                             image=image, snapshotter=snapshotter, snapshot=snapshot, platform=platform,
                             spec_options=spec_options)

    def load_container(self, id: str, *, timeout: float | None = None) -> Container:
        """The container with this id.

        Raises:
            NotFoundError: "no such container".
        """
        from pycontainerd.container import load_container

        return load_container(self, id, timeout=timeout)

    def containers(self, *filters: str, timeout: float | None = None) -> list[Container]:
        """Every container in the namespace matching the containerd ``filters``."""
        from pycontainerd.container import Container

        return [Container(self, info) for info in self.api.containers.list(filters, timeout=timeout)]

    # -- images (see pycontainerd.images) ----------------------------------------
    def import_archive(
        self,
        source: str | os.PathLike[str] | IO[bytes],
        *,
        name: str | None = None,
        platform: str | None = None,
        unpack: bool = True,
        snapshotter: str = "overlayfs",
        progress: Callable[[str, int, int], None] | None = None,
    ) -> list[Image]:
        """Import an OCI image layout tar or a ``docker save`` tar, as ``ctr images import`` does.

        The tar (plain or gzip) is streamed, never held in memory; each blob goes to the
        content store with its digest and size verified by the daemon. Everything is
        written under a lease that is deleted at the end, and the blobs the images need
        get containerd's GC labels, so the result is an ordinary containerd image. Only
        the chosen platform's manifest is kept (and unpacked). Importing the same
        archive again changes nothing.

        Args:
            source: The archive's path, or a readable binary stream at its start.
            name: The name of the archive's single image (replacing its own names);
                required when the archive names none.
            platform: ``"os/arch[/variant]"`` to keep; default the host's.
            unpack: Unpack the layers into ``snapshotter`` (skipping existing snapshots).
            snapshotter: The snapshotter to unpack into.
            progress: ``progress(file, done, size)``, called as each file of the archive
                is read (``done`` bytes of ``size``), and once with ``done == size`` when
                it is stored (also when the store already had it and it was skipped).
                It runs in the calling thread; an exception it raises ends the import.

        Returns:
            The images, in archive order (one per name).

        Raises:
            TruncatedArchiveError: Not a tar, or it ends early.
            UnsafePathError: A name in the tar is absolute or has ``..``.
            ArchiveError: Neither layout, a missing index, a file ``manifest.json`` names
                is missing, no name for an unnamed image.
            BlobMismatchError: A blob does not have the digest its name says, or another
                size than its descriptor.
            MissingBlobError: A descriptor points at a blob that is nowhere.
            MalformedContentError: An index, manifest or config is not valid JSON of its kind.
            UnknownMediaTypeError: A layer or config of a media type that cannot be used.
            NoMatchingPlatformError: No manifest for the platform (lists what there is).
            DiffIDMismatchError: A layer unpacked to another digest than its config's diff ID.
            SnapshotterError: The daemon has no such snapshotter.
        """
        from pycontainerd.images.importer import import_archive

        return import_archive(self, source, name=name, platform=platform,
                              unpack_into=snapshotter if unpack else None, progress=progress)

    def export_archive(
        self,
        images: Sequence[Image | str],
        dest: str | os.PathLike[str] | IO[bytes],
        *,
        platforms: Sequence[str] | None = None,
    ) -> None:
        """Write images to an OCI image layout tar that ``ctr images import`` and ``docker load`` take.

        Each blob is streamed from the content store into the tar once (never held in
        memory); ``index.json`` has one entry per image, named as containerd's exporter
        names it, and Docker's ``manifest.json`` is included. Only the manifests of
        ``platforms`` (and their configs and layers) are written. See
        :mod:`pycontainerd.images.exporter`.

        Args:
            images: The images, or their names.
            dest: A path (written to a temporary file beside it and renamed, so a
                failure leaves nothing), or a writable binary stream (a pipe will do).
            platforms: ``"os/arch[/variant]"`` strings to include; default the host's.

        Raises:
            ValueError: No images, or a malformed platform.
            NotFoundError: No image of a given name.
            NoMatchingPlatformError: An image has nothing for the platforms (lists what it offers).
            MissingBlobError: A blob a selected manifest needs is not in the content store.
        """
        from pycontainerd.images.exporter import export_archive

        export_archive(self, images, dest, platforms=platforms)

    def get_image(self, name: str) -> Image:
        """The image ``name`` (its content is read on first use).

        Raises:
            NotFoundError: No such image.
        """
        from pycontainerd.images.store import get_image

        return get_image(self, name)

    def list_images(self, *filters: str) -> list[Image]:
        """The images matching any of the containerd ``filters`` (``name==x``, ``labels."k"==v``).

        Every image when no filter is given.
        """
        from pycontainerd.images.store import list_images

        return list_images(self, *filters)

    def delete_image(self, name: str, *, sync: bool = False) -> None:
        """Delete the image record ``name`` (``sync``: wait for the garbage collection it triggers).

        Raises:
            NotFoundError: No such image.
        """
        from pycontainerd.images.store import delete_image

        delete_image(self, name, sync=sync)

    def tag(self, source: str, target: str, *, force: bool = False) -> Image:
        """Name the image ``source`` also ``target``.

        Raises:
            NotFoundError: No image ``source``.
            AlreadyExistsError: ``target`` exists (unless ``force``, which re-points it).
        """
        from pycontainerd.images.store import tag

        return tag(self, source, target, force=force)

    # -- registries (see pycontainerd.registry) -------------------------------------
    def pull(
        self,
        ref: str,
        *,
        platform: str | None = None,
        unpack: bool = True,
        snapshotter: str | None = None,
        auth: AuthSource | None = None,
        plain_http: bool = False,
        ca_file: str | None = None,
        progress: Progress | None = None,
        max_concurrent: int = 3,
        timeout: float = 60.0,
    ) -> Image:
        """Pull an image from a registry, as containerd's client-side pull (``ctr images pull``) does.

        The reference is normalised as docker does (``alpine`` is
        ``docker.io/library/alpine:latest``) and names the image record. An index
        resolves to the manifest for ``platform``; its config and layers are streamed
        into the content store (verified against their digests; ``max_concurrent`` at a
        time; a broken connection resumed with a Range request; what the store has is not
        downloaded) and unpacked in order while later layers still download. Everything
        is written under a lease deleted at the end; a failed pull leaves nothing behind.
        See :mod:`pycontainerd.registry.pull`.

        Args:
            ref: The image reference.
            platform: ``"os/arch[/variant]"``; default the host's.
            unpack: Unpack the layers into ``snapshotter``.
            snapshotter: The snapshotter (default ``overlayfs``).
            auth: :class:`~pycontainerd.registry.Credentials`, ``(user, password)``, or a
                function of the registry host; default: the Docker config's
                (``$DOCKER_CONFIG``, ``~/.docker/config.json``, credential helpers).
            plain_http: Speak HTTP, not HTTPS, to the registry.
            ca_file: A PEM file of CAs to trust besides the system's.
            progress: Called with each :class:`~pycontainerd.registry.ProgressEvent`.
            max_concurrent: Blobs downloaded at once.
            timeout: Seconds to connect, and between two reads of an answer.

        Returns:
            The image.

        Raises:
            InvalidReferenceError: ``ref`` is not a reference (a ``ValueError`` naming the rule).
            RegistryNotFoundError: No such repository, tag or manifest (a ``NotFoundError``).
            RegistryAuthError: Credentials needed, or refused.
            RegistryUnavailableError: The registry cannot be reached or keeps failing.
            BlobMismatchError: Content that does not match its digest or size.
            ManifestTooLargeError: A manifest over 4 MiB.
            UnsupportedManifestError: A docker schema 1 image.
            NoMatchingPlatformError: Nothing for the platform.
            SnapshotterError: The daemon has no such snapshotter.
        """
        from pycontainerd.registry.pull import pull

        unpack_into = (snapshotter or "overlayfs") if unpack else None
        return pull(self, ref, platform=platform, unpack_into=unpack_into, auth=auth,
                    plain_http=plain_http, ca_file=ca_file, progress=progress,
                    max_concurrent=max_concurrent, timeout=timeout)

    def push(
        self,
        image: Image | str,
        ref: str | None = None,
        *,
        platform: str | None = None,
        auth: AuthSource | None = None,
        plain_http: bool = False,
        ca_file: str | None = None,
        progress: Progress | None = None,
        max_concurrent: int = 3,
        chunk_size: int = 64 << 20,
        timeout: float = 60.0,
    ) -> Descriptor:
        """Push an image to a registry, as ``ctr images push`` does.

        Blobs first (each checked with HEAD; mounted from another repository of the
        registry when the blob came from one; else uploaded in one request, or in
        ``chunk_size`` pieces when larger), then manifests, then indexes, and the root
        under the reference's tag. See :mod:`pycontainerd.registry.push`.

        Args:
            image: The image, or its name.
            ref: Where to push (default: the image's name), normalised as for :meth:`pull`.
            platform: Push only this platform's manifest (needed for a multi-platform
                image whose other platforms' content is not in the store).
            auth: As for :meth:`pull`.
            plain_http: Speak HTTP, not HTTPS, to the registry.
            ca_file: A PEM file of CAs to trust besides the system's.
            progress: Called with each :class:`~pycontainerd.registry.ProgressEvent`.
            max_concurrent: Blobs uploaded at once.
            chunk_size: Blobs larger than this are uploaded in chunks of this size.
            timeout: Seconds to connect, and between two reads of an answer.

        Returns:
            The descriptor of what the reference now names (manifest or index).

        Raises:
            NotFoundError: No such image.
            InvalidReferenceError: ``ref`` is not a reference.
            MissingBlobError: Content of the image is not in the store.
            NoMatchingPlatformError: Nothing for ``platform``.
            RegistryAuthError, RegistryDeniedError: Not allowed to push.
            RegistryUnavailableError: The registry cannot be reached or keeps failing.
        """
        from pycontainerd.registry.push import push

        return push(self, image, ref, platform=platform, auth=auth, plain_http=plain_http, ca_file=ca_file,
                    progress=progress, max_concurrent=max_concurrent, chunk_size=chunk_size, timeout=timeout)

    def close(self) -> None:
        """Close the channel, for this client and every view sharing it. Idempotent."""
        self._connection.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(address={self.address!r}, namespace={self.namespace!r})"
