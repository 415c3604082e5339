"""Photographs (JPEG, PNG) wrapped as DICOM Secondary Capture instances.

The image is always decoded and re-encoded, so camera metadata (EXIF, GPS
position, maker notes) never reaches the archive and the EXIF orientation is
applied to the pixels. JPEG input stays JPEG (Baseline, 8 bit); PNG input
becomes uncompressed RGB.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import datetime

from PIL import Image, ImageOps, UnidentifiedImageError
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEGBaseline8Bit

SECONDARY_CAPTURE = UID("1.2.840.10008.5.1.4.1.1.7")
MAX_PIXELS = 40_000_000
"""Largest photo (width x height) accepted; bigger ones are refused before decoding."""
JPEG_QUALITY = 95

_SNIFF = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}


class PhotoError(ValueError):
    """The upload is not a usable JPEG or PNG photograph."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PhotoPatient:
    """The patient a photo belongs to, in DICOM form (PN Family^Given, DA YYYYMMDD)."""

    name: str
    patient_id: str
    birth_date: str
    sex: str


def new_uid() -> str:
    """A fresh UID under the 2.25 root (a random UUID as an integer)."""
    return f"2.25.{uuid.uuid4().int}"


def sniff(data: bytes) -> str | None:
    """'JPEG' or 'PNG' from the leading magic bytes, None for anything else."""
    for magic, kind in _SNIFF.items():
        if data.startswith(magic):
            return kind
    return None


def _decode(data: bytes, kind: str) -> Image.Image:
    """The photo's pixels, upright, as RGB or L; refuses pixel bombs before decoding."""
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise PhotoError(
                    f"The photo is {width}x{height} pixels; at most {MAX_PIXELS:,} are accepted."
                )
            image.load()
            upright = ImageOps.exif_transpose(image)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise PhotoError(f"The {kind} file cannot be read: {error}") from None
    if upright.mode == "L":
        return upright
    if upright.mode in ("RGBA", "LA", "P", "PA"):
        rgba = upright.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return upright.convert("RGB")


def photo_to_secondary_capture(
    data: bytes,
    *,
    patient: PhotoPatient,
    description: str = "",
    now: datetime | None = None,
) -> bytes:
    """A Part 10 Secondary Capture instance (new study and series) holding the photo."""
    kind = sniff(data)
    if kind is None:
        raise PhotoError("The file is not a JPEG or PNG image.")
    image = _decode(data, kind)
    if kind == "PNG" and image.mode == "L":
        image = image.convert("RGB")
    when = now or datetime.now()
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = new_uid()
    ds.StudyInstanceUID = new_uid()
    ds.SeriesInstanceUID = new_uid()
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = when.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = when.strftime("%H%M%S")
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = description or "Clinical photograph"
    ds.SeriesDescription = description or "Clinical photograph"
    ds.Modality = "XC"
    ds.ConversionType = "WSD"
    ds.Manufacturer = "Doorstep"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.BurnedInAnnotation = "NO"
    ds.Rows, ds.Columns = image.height, image.width
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1 if image.mode == "L" else 3
    if ds.SamplesPerPixel == 3:
        ds.PlanarConfiguration = 0
    if kind == "JPEG":
        encoded = io.BytesIO()
        image.save(encoded, format="JPEG", quality=JPEG_QUALITY, progressive=False)
        ds.PhotometricInterpretation = "MONOCHROME2" if image.mode == "L" else "YBR_FULL_422"
        ds.LossyImageCompression = "01"
        ds.PixelData = encapsulate([encoded.getvalue()])
        transfer_syntax = JPEGBaseline8Bit
    else:
        ds.PhotometricInterpretation = "RGB"
        ds.PixelData = image.tobytes()
        transfer_syntax = ExplicitVRLittleEndian
    ds["PixelData"].VR = "OB"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
