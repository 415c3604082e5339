"""The presentation contexts the SCP accepts: storage, verification and study root query."""

from __future__ import annotations

from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AllStoragePresentationContexts, build_context
from pynetdicom.presentation import PresentationContext

VERIFICATION = UID("1.2.840.10008.1.1")
STUDY_ROOT_FIND = UID("1.2.840.10008.5.1.4.1.2.2.1")

UNCOMPRESSED = (ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian)
"""Transfer syntaxes for the non-storage services."""

STORAGE_TRANSFER_SYNTAXES = (
    *UNCOMPRESSED,
    DeflatedExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
)
"""Transfer syntaxes a storage SOP instance may arrive in; it is stored as received."""


def supported_contexts() -> list[PresentationContext]:
    """All storage SOP classes with the common transfer syntaxes, Verification, Study Root FIND."""
    storage = [
        build_context(str(cx.abstract_syntax), list(STORAGE_TRANSFER_SYNTAXES))
        for cx in AllStoragePresentationContexts
    ]
    return [
        *storage,
        build_context(VERIFICATION, list(UNCOMPRESSED)),
        build_context(STUDY_ROOT_FIND, list(UNCOMPRESSED)),
    ]
