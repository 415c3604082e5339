"""The DICOM archive: durable content-addressed storage and the study/series/instance index."""
