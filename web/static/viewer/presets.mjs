/*
 * Window presets by modality, in Hounsfield units for CT: [name, center, width].
 * Lung, mediastinum, brain and abdomen as commonly taught; bone 400/1800 as Radiopaedia's
 * "Windowing (CT)" lists it (W:1800 L:400). The file's own windows are added by the viewer.
 */
export const PRESETS = {
  CT: [
    ["Lung", -600, 1500],
    ["Mediastinum", 40, 400],
    ["Bone", 400, 1800],
    ["Brain", 40, 80],
    ["Abdomen", 40, 350],
  ],
};

/** The presets of a modality (none for modalities without standard units). */
export function presetsFor(modality) {
  return PRESETS[modality] ?? [];
}
