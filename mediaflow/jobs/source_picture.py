"""The picture part of a job's `source_media`: what the probe found that decides how outputs are made
(media/picture.py), in the job's public JSON so a user can see why an output was rotated, squared,
deinterlaced or tone-mapped."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mediaflow.media.probe import VideoStreamInfo


class ContentLight(BaseModel):
    max_cll: int = Field(description="Brightest pixel of the programme, cd/m².")
    max_fall: int = Field(description="Brightest frame average of the programme, cd/m².")


class PictureMedia(BaseModel):
    display_width: int = Field(description="Width of the upright picture with square pixels.")
    display_height: int
    rotation: int = Field(description="Degrees clockwise the stored frames are turned to be upright.")
    sample_aspect_ratio: str = Field(description='The pixels\' shape: "1:1" square, "64:45" for a 16:9 PAL DVD.')
    field_order: Literal["progressive", "tff", "bff"] | None = Field(description="null: could not be told.")
    field_order_detected: bool = Field(description="true: measured with idet, the container did not say.")
    telecined: bool = Field(description="true: the interlaced frames carry film (3:2 pulldown).")
    frame_rate_mode: Literal["constant", "variable"] | None
    pixel_format: str | None
    bit_depth: int | None
    chroma_subsampling: str | None
    color_primaries: str | None = Field(description="ffmpeg's names: bt709, bt2020, ...; null: untagged.")
    color_transfer: str | None = Field(description="bt709, smpte2084 (PQ), arib-std-b67 (HLG), ...")
    color_matrix: str | None
    color_range: Literal["tv", "pc"] | None = Field(description='"tv": limited range, "pc": full range.')
    hdr: str | None = Field(description='"HDR10 (PQ)", "HLG", or null for SDR.')
    mastering_display: str | None = Field(
        description="SMPTE ST 2086, as x265's master-display: G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)."
    )
    content_light: ContentLight | None

    @classmethod
    def from_stream(cls, video: VideoStreamInfo) -> PictureMedia:
        picture = video.picture
        width, height = video.display_size
        aspect = picture.sample_aspect
        light = picture.content_light
        return cls(
            display_width=width,
            display_height=height,
            rotation=picture.rotation,
            sample_aspect_ratio=f"{aspect.numerator}:{aspect.denominator}",
            field_order=picture.field_order,
            field_order_detected=picture.field_order_measured,
            telecined=picture.telecined,
            frame_rate_mode=picture.frame_rate_mode,
            pixel_format=picture.pixel_format,
            bit_depth=picture.bit_depth,
            chroma_subsampling=picture.chroma_subsampling,
            color_primaries=picture.color_primaries,
            color_transfer=picture.color_transfer,
            color_matrix=picture.color_matrix,
            color_range=picture.color_range if picture.color_range in ("tv", "pc") else None,
            hdr=picture.hdr,
            mastering_display=picture.mastering_display.x265() if picture.mastering_display else None,
            content_light=None if light is None else ContentLight(max_cll=light[0], max_fall=light[1]),
        )
