"""DICOM DIMSE service class provider (PS3.4, PS3.7): C-ECHO, C-STORE and C-FIND over pynetdicom."""
