"""Downloading one file: resumable, size- and checksum-checked, never half-written.

``download_file`` fetches a URL into ``<path>.part`` (a rerun continues it with an HTTP range request), checks
the length the server announced and, where one is known, the SHA-256, and only then renames the file into
place. A download may have a size cap (``max_bytes``): a larger announced length is refused before anything is
read, and one without a length stops at the cap. A redirect from https to plain http is refused. Datasets,
pretrained models and metric weights all come through here; ``file://`` URLs (a local mirror) work as well as
HTTP.
"""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from translate.core.errors import DataError


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class NoDowngrade(urllib.request.HTTPRedirectHandler):
    """Follows redirects, except from https to anything else (a downgrade any network in between could forge)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if req.full_url.startswith("https:") and not newurl.startswith("https:"):
            raise DataError(f"{req.full_url}: redirected to {newurl}, which is not https; refused")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(NoDowngrade)


def fetch(url: str, part: Path, *, timeout: float, progress: bool, offline_hint: str,
          max_bytes: int | None = None) -> None:
    """Download ``url`` into ``part``, continuing a partial file with a range request, never past ``max_bytes``.
    ``offline_hint`` ends the message when nothing answers (what the user can do instead)."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "translate"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = _OPENER.open(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        total = (e.headers.get("Content-Range") or "").rpartition("/")[2] if e.headers else ""
        if e.code == 416 and have and (not total.isdigit() or int(total) == have):
            return  # nothing left to send: the partial file is complete
        if e.code == 416:  # the partial file is longer than the file: not the same file, start over
            part.unlink(missing_ok=True)
            raise DataError(f"{url}: the partial download {part} did not match the file; deleted, run the same command "
                            "again") from None
        raise DataError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (TimeoutError, urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DataError(f"cannot download {url} ({reason}); offline? {offline_hint}") from None
    with response:
        status = getattr(response, "status", 200)
        if have and status != 206:  # the server ignored the range: start over
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None and length.isdigit() else None
        if max_bytes is not None and total is not None and total > max_bytes:
            part.unlink(missing_ok=True)
            raise DataError(f"{url}: {human_size(total)} is over the {human_size(max_bytes)} this file can be; refused")
        where = f"resuming at {human_size(have)} of " if have else ""
        if progress:
            print(f"{url}: {where}{human_size(total) if total else 'unknown size'}")
        bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024, disable=not progress,
                   desc=part.name.removesuffix(".part"))
        try:
            _copy(response, part, have, max_bytes, bar, url)
        except (TimeoutError, OSError, http.client.HTTPException) as e:
            raise DataError(f"download of {url} interrupted at {human_size(part.stat().st_size)} ({e}); run the "
                            "same command again to resume") from None
        finally:
            bar.close()
    got = part.stat().st_size
    if total is not None and got != total:
        raise DataError(f"download of {url} stopped at {human_size(got)} of {human_size(total)}; run the same "
                        "command again to resume")


def _copy(response, part: Path, have: int, max_bytes: int | None, bar, url: str) -> None:
    """The response's body appended to ``part`` (from ``have`` bytes on); past ``max_bytes`` it is deleted."""
    with open(part, "ab" if have else "wb") as f:
        while chunk := response.read(1 << 20):
            have += len(chunk)
            if max_bytes is not None and have > max_bytes:
                f.close()
                part.unlink(missing_ok=True)
                raise DataError(f"{url}: the download passed the {human_size(max_bytes)} this file can be; "
                                "stopped and deleted")
            f.write(chunk)
            bar.update(len(chunk))


def check_sha256(path: Path, expected: str) -> None:
    """Delete ``path`` and raise when its SHA-256 does not start with ``expected`` (a full digest, or the prefix
    torch hub file names carry)."""
    digest = sha256_of(path)
    if not digest.startswith(expected.lower()):
        path.unlink(missing_ok=True)
        raise DataError(f"{path}: SHA-256 {digest[:12]}... is not the recorded {expected[:12]}...; deleted, run "
                        "again to download it afresh")


def download_file(url: str, path: Path, *, sha256: str | None = None, timeout: float = 30.0,
                  progress: bool = True, offline_hint: str = "", max_bytes: int | None = None) -> Path:
    """``url`` into ``path`` through ``<path>.part`` (resumed on a rerun), checked against ``sha256`` when given
    before it is renamed into place: ``path`` is complete and verified, or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    fetch(url, part, timeout=timeout, progress=progress, offline_hint=offline_hint, max_bytes=max_bytes)
    if sha256 is not None:
        check_sha256(part, sha256)
    part.replace(path)
    return path
