/* Which files the upload page takes, and the files under dropped folders. */

const SKIPPED = /(^|\/)(\.[^/]*|DICOMDIR|Thumbs\.db)$/i;

/** The name shown for a file: its path inside a chosen or dropped folder, else its name. */
export function pathOf(file) {
  return file.webkitRelativePath || file.relativePath || file.name;
}

/** False for hidden files, DICOMDIR and Thumbs.db, which are never uploaded. */
export function isWanted(file) {
  return !SKIPPED.test(pathOf(file));
}

/** Which endpoint takes a file: "zip", "photo", "aecg" or "dicom" (the server checks the content). */
export function kindOf(file) {
  const name = file.name.toLowerCase();
  if (/\.zip$/.test(name) || file.type === "application/zip" || file.type === "application/x-zip-compressed") {
    return "zip";
  }
  if (/\.(jpe?g|png)$/.test(name) || file.type === "image/jpeg" || file.type === "image/png") {
    return "photo";
  }
  if (/\.xml$/.test(name) || file.type === "application/xml" || file.type === "text/xml") {
    return "aecg";
  }
  return "dicom";
}

/** Every file of a drop, folders included (recursively), each with its relativePath. */
export async function droppedFiles(transfer) {
  const entries = Array.from(transfer.items || [], (item) =>
    item.webkitGetAsEntry ? item.webkitGetAsEntry() : null,
  ).filter(Boolean);
  if (!entries.length) {
    return Array.from(transfer.files || []);
  }
  const lists = await Promise.all(entries.map((entry) => filesOf(entry, "")));
  return lists.flat();
}

function filesOf(entry, path) {
  if (entry.isFile) {
    return new Promise((resolve) => {
      entry.file(
        (file) => {
          file.relativePath = path + file.name;
          resolve([file]);
        },
        () => resolve([]),
      );
    });
  }
  if (!entry.isDirectory) {
    return Promise.resolve([]);
  }
  const reader = entry.createReader();
  const found = [];
  return new Promise((resolve) => {
    const more = () => {
      reader.readEntries(
        (entries) => {
          if (!entries.length) {
            Promise.all(found).then((lists) => resolve(lists.flat()));
            return;
          }
          for (const child of entries) {
            found.push(filesOf(child, path + entry.name + "/"));
          }
          more();
        },
        () => resolve([]),
      );
    };
    more();
  });
}
