"""Telling players that a ladder is HDR, where ffmpeg's muxers do not.

ffmpeg's HLS muxer writes CODECS (hvc1.2…: Main 10) but no VIDEO-RANGE, and its DASH muxer writes no
transfer characteristics. Without them a player that supports HDR may pick an HDR variant for an SDR
screen, or show PQ as if it were SDR. These edits run once the ladder is written (a plan's `finish`):
- HLS: `VIDEO-RANGE=PQ` or `HLG` on every `#EXT-X-STREAM-INF` (RFC 8216bis 4.4.6.2); the rendition
  tasks of a parallel ladder each mark their one-variant master, which the join merges line by line;
- DASH: a `SupplementalProperty` with the MPEG CICP transfer characteristics (16: PQ, 18: HLG) in the
  video adaptation set (DASH-IF IOP, HDR10 and HLG signalling).
"""

from __future__ import annotations

from pathlib import Path

VIDEO_RANGES = {"smpte2084": "PQ", "arib-std-b67": "HLG"}
CICP_TRANSFERS = {"smpte2084": 16, "arib-std-b67": 18}
CICP_TRANSFER_SCHEME = "urn:mpeg:mpegB:cicp:TransferCharacteristics"


def mark_hls_video_range(master: Path, transfer: str) -> None:
    """Add VIDEO-RANGE to each variant of an HLS master playlist written by ffmpeg."""
    value = VIDEO_RANGES[transfer]
    lines = master.read_text().splitlines()
    marked = [
        f"{line},VIDEO-RANGE={value}" if line.startswith("#EXT-X-STREAM-INF:") and "VIDEO-RANGE=" not in line else line
        for line in lines
    ]
    master.write_text("\n".join(marked) + "\n")


def mark_dash_transfer(manifest: Path, transfer: str) -> None:
    """Add the CICP transfer characteristics to the video adaptation set of an MPD written by ffmpeg."""
    prop = f'<SupplementalProperty schemeIdUri="{CICP_TRANSFER_SCHEME}" value="{CICP_TRANSFERS[transfer]}"/>'
    text = manifest.read_text()
    marker = 'contentType="video"'
    at = text.find(marker)
    if at < 0 or CICP_TRANSFER_SCHEME in text:
        return
    end = text.index(">", at) + 1  # the end of the <AdaptationSet ...> start tag
    manifest.write_text(f"{text[:end]}\n\t\t\t{prop}{text[end:]}")
