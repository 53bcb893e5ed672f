"""``pycontainerd images ls|inspect|rm|tag|import|export``: image records and archives.

``import`` reports progress on stderr: on a terminal one tqdm bar per archive file
(bytes, rate), otherwise one plain line per file once it is stored. tqdm is imported
only there, so no other command pays for it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

from pycontainerd.cli import _output

if TYPE_CHECKING:
    from pycontainerd.api.types import Descriptor
    from pycontainerd.cli._commands import Context
    from pycontainerd.client import Client
    from pycontainerd.images import Image

__all__ = ["find_image", "run"]

# tqdm's label for a file: the end of its name (a blob's digest is 64 hex digits).
_LABEL_WIDTH = 19
_DEFAULT_SIZE = (100, 40)


def find_image(client: Client, name: str) -> Image:
    """The image ``name``, else the one its docker-style full form names.

    ``busybox`` finds ``docker.io/library/busybox:latest``, as ``docker`` and ``nerdctl``
    resolve short names; a full name is used as it is.

    Raises:
        NotFoundError: Neither exists (the message names ``name`` as typed).
    """
    from pycontainerd import errors
    from pycontainerd.images.archive import normalize_reference
    from pycontainerd.images.errors import ArchiveError

    try:
        return client.get_image(name)
    except errors.NotFoundError as not_found:
        try:
            full = normalize_reference(name)
        except ArchiveError:
            raise not_found from None
        if full == name:
            raise
        try:
            return client.get_image(full)
        except errors.NotFoundError:
            raise not_found from None


def _descriptor(desc: Descriptor) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": desc.media_type, "digest": desc.digest, "size": desc.size}
    if desc.annotations:
        out["annotations"] = dict(desc.annotations)
    return out


def _summary(image: Image, snapshotter: str, platform: str | None = None) -> dict[str, Any]:
    """What ``ls`` shows of an image (``size``/``unpacked`` are ``None`` without a usable manifest)."""
    from pycontainerd import errors

    try:
        platforms = [str(p) for p in image.platforms()]
    except errors.ContainerdError:
        platforms = []  # its content is broken or gone: the record is still listed
    try:
        size: int | None = image.size(platform)
        unpacked: bool | None = image.is_unpacked(snapshotter, platform)
    except errors.ContainerdError:
        size = unpacked = None  # nothing for this platform, or content missing
    return {
        "name": image.name,
        "digest": image.target.digest,
        "media_type": image.target.media_type,
        "size": size,
        "platforms": platforms,
        "unpacked": unpacked,
        "created_at": image.created_at,
        "updated_at": image.updated_at,
        "labels": dict(image.labels),
    }


def _ls(ctx: Context) -> int:
    args = ctx.args
    images = sorted(ctx.client().list_images(*args.filters), key=lambda i: i.name)
    rows = [_summary(image, args.snapshotter) for image in images]
    if ctx.json:
        _output.print_json(rows)
        return 0
    _output.print_table(
        ["NAME", "DIGEST", "SIZE", "PLATFORMS", "UNPACKED"],
        [
            [
                r["name"],
                r["digest"],
                _output.human_size(r["size"]),
                ",".join(r["platforms"]) or None,
                None if r["unpacked"] is None else ("yes" if r["unpacked"] else "no"),
            ]
            for r in rows
        ],
    )
    return 0


def _inspect(ctx: Context) -> int:
    from pycontainerd.images.unpack import chain_ids

    args = ctx.args
    client = ctx.client()
    out = []
    for name in args.names:
        image = find_image(client, name)
        manifest = image.manifest(args.platform)
        config = image.config(args.platform)
        out.append({
            **_summary(image, args.snapshotter, args.platform),
            "target": _descriptor(image.target),
            "platform": str(manifest.platform),
            "manifest": _descriptor(manifest.descriptor),
            "config": {
                "descriptor": _descriptor(manifest.config),
                "entrypoint": config.entrypoint,
                "cmd": config.cmd,
                "env": config.env,
                "working_dir": config.working_dir,
                "user": config.user,
                "labels": dict(config.labels),
                "exposed_ports": config.exposed_ports,
                "volumes": config.volumes,
                "stop_signal": config.stop_signal,
            },
            "layers": [
                {**_descriptor(layer), "diff_id": diff_id, "chain_id": chain_id}
                for layer, diff_id, chain_id in zip(
                    manifest.layers, manifest.diff_ids, chain_ids(manifest.diff_ids), strict=True
                )
            ],
        })
    _output.print_json(out[0] if len(out) == 1 else out)
    return 0


def _rm(ctx: Context) -> int:
    from pycontainerd import errors

    client = ctx.client()
    failed = 0
    for name in ctx.args.names:
        try:
            image = find_image(client, name)
            client.delete_image(image.name, sync=ctx.args.sync)
        except errors.NotFoundError as exc:
            _output.error_line(str(exc))
            failed = 1
            continue
        if not ctx.json:
            print(image.name)
    return failed


def _tag(ctx: Context) -> int:
    client = ctx.client()
    source = find_image(client, ctx.args.source)
    image = client.tag(source.name, ctx.args.target, force=ctx.args.force)
    if ctx.json:
        _output.print_json(_summary(image, "overlayfs"))
    else:
        print(image.name)
    return 0


@contextlib.contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """The import's progress callback: tqdm bars on a terminal, a line per stored file otherwise."""
    if quiet:
        yield None
        return
    if not sys.stderr.isatty():

        def line(name: str, done: int, size: int) -> None:
            if done == size:
                print(f"{name} {_output.human_size(size)}", file=sys.stderr, flush=True)

        yield line
        return
    from tqdm import tqdm

    bars: dict[str, Any] = {}
    try:
        sized = os.get_terminal_size(sys.stderr.fileno()).columns > 0
    except OSError:
        sized = False
    # A terminal that reports no size (a fresh pty) would get bars of width 0 and every
    # bar past "row 0" hidden: give tqdm a size.
    columns, rows = (None, None) if sized else _DEFAULT_SIZE

    def bar(name: str, done: int, size: int) -> None:
        current = bars.get(name)
        if current is None:
            current = bars[name] = tqdm(
                total=size, desc=os.path.basename(name)[:_LABEL_WIDTH], unit="B", unit_scale=True,
                unit_divisor=1024, file=sys.stderr, leave=True, dynamic_ncols=sized, ncols=columns,
                nrows=rows,
            )
        current.update(done - current.n)
        if done == size:
            current.close()

    try:
        yield bar
    finally:
        for current in bars.values():
            current.close()


def _import(ctx: Context) -> int:
    args = ctx.args
    client = ctx.client()
    source: str | IO[bytes] = sys.stdin.buffer if args.file == "-" else args.file
    with _progress(args.quiet) as progress:
        images = client.import_archive(
            source, name=args.name, platform=args.platform, unpack=not args.no_unpack,
            snapshotter=args.snapshotter, progress=progress,
        )
    if ctx.json:
        _output.print_json([_summary(image, args.snapshotter, args.platform) for image in images])
    else:
        for image in images:
            print(f"{image.name} {image.target.digest}")
    return 0


def _export(ctx: Context) -> int:
    from pycontainerd.cli._commands import CLIError

    args = ctx.args
    client = ctx.client()
    images = [find_image(client, name) for name in args.names]
    if args.file == "-":
        if sys.stdout.isatty():
            raise CLIError("refusing to write a tar archive to a terminal: redirect stdout or give a FILE")
        sys.stdout.flush()
        client.export_archive(images, sys.stdout.buffer, platforms=args.platform or None)
        sys.stdout.buffer.flush()
    else:
        client.export_archive(images, args.file, platforms=args.platform or None)
    return 0


_ACTIONS: dict[str, Callable[[Context], int]] = {
    "ls": _ls,
    "inspect": _inspect,
    "rm": _rm,
    "tag": _tag,
    "import": _import,
    "export": _export,
}


def run(ctx: Context) -> int:
    """Run ``images ACTION``.

    Args:
        ctx: The command's context (``ctx.args.images_action`` names the action).

    Returns:
        0 on success; 1 when ``rm`` could not remove every image.
    """
    return _ACTIONS[ctx.args.images_action](ctx)
