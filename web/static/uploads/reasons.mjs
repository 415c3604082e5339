/* Why a file was not stored, in plain words; the archive's reason code stays behind "Details". */

const PLAIN = {
  not_dicom: "This is not a DICOM file.",
  missing_file_meta: "This DICOM file has no file header; export it again from the device.",
  truncated: "The file is incomplete: it ends early. Copy or export it again.",
  oversized_element: "The file declares a value larger than any real image; it is damaged.",
  malformed: "The file is damaged and cannot be read.",
  unsupported_transfer_syntax: "The file is encoded in a format the archive does not accept.",
  inflated_too_large: "The file unpacks to more than the archive accepts.",
  too_large: "The file is larger than the archive accepts.",
  missing_attribute: "The file lacks details every DICOM image needs (such as its identifiers).",
  invalid_uid: "The file's identifiers are not valid DICOM identifiers.",
  invalid_attribute: "One of the file's details has a value the archive cannot use.",
  meta_mismatch: "The file's header and contents disagree; it is damaged.",
  executable_preamble: "The file hides a program in its header and was refused for safety.",
  study_mismatch: "The file belongs to another study than the one it was sent to.",
  conflict: "A different file with the same identifiers is already in the archive.",
  out_of_resources: "The archive is out of space; tell your administrator.",
  storage: "The archive could not save the file; try again later.",
  unsafe_name: "The name in the zip points outside its folder, so it was not read.",
  too_many_members: "The zip holds more files than one upload may carry.",
  encrypted: "The zip member is encrypted and cannot be read.",
  zip_bomb: "The zip member is compressed suspiciously much and was not unpacked.",
  unreadable: "The zip member cannot be read.",
};

/* STOW-RS Failure Reason (0008,1197) values, PS3.18 Table I.2-2. */
const PLAIN_STATUS = {
  0xa700: "The archive cannot take this file now: it is too large or the archive is out of space.",
  0xa900: "The file's details do not fit its kind of image, or its identifiers are not valid.",
  0xc000: "This is not a readable DICOM file, or it is damaged.",
  0xc122: "The file is encoded in a format the archive does not accept.",
  0x0110: "The archive could not save the file; try again later.",
  0x0111: "A different file with the same identifiers is already in the archive.",
  0x0122: "The archive does not accept this kind of DICOM object.",
};

/** The plain sentence for an archive reason code, or its own message when there is none. */
export function plainReason(reason, message) {
  return PLAIN[reason] || message || "The file was not stored.";
}

/** The plain sentence for a STOW-RS Failure Reason. */
export function plainStatus(code, comment) {
  return PLAIN_STATUS[code] || comment || "The file was not stored.";
}

/**
 * Put an explanation into an element: a plain sentence, and the technical reason behind a
 * "Details" disclosure (for whoever supports the clinic); no disclosure without one.
 */
export function explain(element, plain, technical) {
  element.replaceChildren();
  const sentence = document.createElement("span");
  sentence.textContent = plain || "";
  element.append(sentence);
  if (technical) {
    const details = document.createElement("details");
    details.className = "upload-details";
    const summary = document.createElement("summary");
    summary.textContent = "Details";
    const code = document.createElement("code");
    code.textContent = technical;
    details.append(summary, code);
    element.append(" ", details);
  }
}
