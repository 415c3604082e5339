/* Upload page: DICOM files to STOW-RS, zips and photos to /upload/*, with per-file progress. */
(function () {
  "use strict";

  var PARALLEL = 3;
  var OK = { stored: true, duplicate: true, replaced: true };
  var SHOWN = { stored: 1, duplicate: 1, replaced: 1, "partly stored": 1, uploading: 1, waiting: 1 };
  var SKIPPED = /(^|\/)(\.[^/]*|DICOMDIR|Thumbs\.db)$/i;

  var root = document.getElementById("upload");
  if (!root) {
    return;
  }
  var patientSelect = document.getElementById("upload-patient");
  var description = document.getElementById("upload-description");
  var drop = document.getElementById("upload-drop");
  var notice = document.getElementById("upload-notice");
  var panel = document.getElementById("upload-progress");
  var list = document.getElementById("upload-list");
  var overall = document.getElementById("upload-overall");
  var overallText = document.getElementById("upload-overall-text");
  var summary = document.getElementById("upload-summary");
  var done = document.getElementById("upload-done");
  var template = document.getElementById("upload-item");
  var maxPhotoMb = parseInt(root.getAttribute("data-max-photo-mb") || "0", 10);

  var items = [];
  var queue = [];
  var running = 0;
  var seenInstances = {};
  var linkStudies = {};

  /** Which endpoint takes a file: "zip", "photo" or "dicom" (the server checks the content). */
  function kindOf(file) {
    var name = file.name.toLowerCase();
    if (/\.zip$/.test(name) || file.type === "application/zip" || file.type === "application/x-zip-compressed") {
      return "zip";
    }
    if (/\.(jpe?g|png)$/.test(name) || file.type === "image/jpeg" || file.type === "image/png") {
      return "photo";
    }
    return "dicom";
  }

  function parseJson(text) {
    try {
      return JSON.parse(text);
    } catch (e) {
      return null;
    }
  }

  /** POST with upload progress; resolves with the status and the parsed JSON body (or null). */
  function send(url, body, contentType, accept, onProgress) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      if (contentType) {
        xhr.setRequestHeader("Content-Type", contentType);
      }
      xhr.setRequestHeader("Accept", accept);
      xhr.setRequestHeader("X-CSRF-Token", window.Doorstep.csrfToken());
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable && event.total > 0) {
          onProgress(event.loaded / event.total);
        }
      });
      xhr.addEventListener("load", function () {
        resolve({ status: xhr.status, json: parseJson(xhr.responseText) });
      });
      xhr.addEventListener("error", function () {
        resolve({ status: 0, json: null });
      });
      xhr.send(body);
    });
  }

  function errorMessage(response) {
    if (response.status === 0) {
      return "The connection to the server failed; try again.";
    }
    var error = response.json && response.json.error;
    if (error && error.message) {
      return error.message;
    }
    if (response.status === 403) {
      return "Not allowed; reload the page and sign in again.";
    }
    return "The server answered " + response.status + ".";
  }

  function firstValue(item, tag) {
    var attribute = item && item[tag];
    return attribute && attribute.Value ? attribute.Value[0] : null;
  }

  function studyOf(url) {
    var found = /\/studies\/([0-9.]+)/.exec(url || "");
    return found ? found[1] : null;
  }

  /** One file's result from a STOW-RS response (ReferencedSOPSequence / FailedSOPSequence). */
  function stowResult(response) {
    var body = response.json || {};
    var stored = (body["00081199"] || {}).Value || [];
    var failed = (body["00081198"] || {}).Value || [];
    if (stored.length) {
      var uid = firstValue(stored[0], "00081155");
      var duplicate = Boolean(uid && seenInstances[uid]);
      seenInstances[uid] = true;
      return {
        outcome: duplicate ? "duplicate" : "stored",
        message: duplicate ? "The same instance was already uploaded on this page." : "",
        study: studyOf(firstValue(stored[0], "00081190")),
      };
    }
    if (failed.length) {
      var reason = firstValue(failed[0], "00081197");
      var comment = firstValue(failed[0], "00000902") || "";
      var code = typeof reason === "number" ? "Failure reason " + reason.toString(16).toUpperCase() + "H" : "";
      return { outcome: "rejected", message: [comment, code].filter(Boolean).join(" · ") };
    }
    return { outcome: "rejected", message: errorMessage(response) };
  }

  function label(outcome) {
    return SHOWN[outcome] ? outcome : "rejected";
  }

  function setOutcome(item, outcome, message) {
    item.outcome = outcome;
    item.badge.textContent = label(outcome);
    item.badge.className = "badge upload-outcome outcome-" + label(outcome).replace(" ", "-");
    item.message.textContent = message || "";
    item.element.classList.toggle("upload-item-failed", label(outcome) === "rejected");
  }

  /** Per-member results of a zip, listed under it. */
  function showMembers(item, results) {
    var counts = {};
    var members = document.createElement("ul");
    members.className = "upload-members";
    results.forEach(function (result) {
      var outcome = label(result.outcome);
      counts[outcome] = (counts[outcome] || 0) + 1;
      var line = document.createElement("li");
      var badge = document.createElement("span");
      badge.className = "badge upload-outcome outcome-" + outcome;
      badge.textContent = outcome;
      var name = document.createElement("span");
      name.className = "upload-name";
      name.textContent = result.name;
      line.append(badge, " ", name);
      if (result.message) {
        var why = document.createElement("span");
        why.className = "muted";
        why.textContent = " — " + (result.reason ? result.reason + ": " : "") + result.message;
        line.append(why);
      }
      members.append(line);
    });
    item.element.append(members);
    var ok = (counts.stored || 0) + (counts.duplicate || 0) + (counts.replaced || 0);
    var text = Object.keys(counts)
      .map(function (key) {
        return counts[key] + " " + key;
      })
      .join(", ");
    setOutcome(item, ok === results.length ? "stored" : ok ? "partly stored" : "rejected", text);
  }

  function chosenPatient() {
    return patientSelect.value;
  }

  function upload(item) {
    var file = item.file;
    var progress = function (fraction) {
      item.loaded = fraction * file.size;
      item.bar.value = Math.round(fraction * 100);
      refresh();
    };
    setOutcome(item, "uploading", "");
    if (item.kind === "zip") {
      var query = chosenPatient() ? "?patient=" + encodeURIComponent(chosenPatient()) : "";
      return send("/upload/zip" + query, file, "application/zip", "application/json", progress).then(
        function (response) {
          if (response.status === 200 && response.json && response.json.results) {
            showMembers(item, response.json.results);
          } else {
            setOutcome(item, "rejected", errorMessage(response));
          }
        }
      );
    }
    if (item.kind === "photo") {
      if (!chosenPatient()) {
        setOutcome(item, "rejected", "Choose the patient before uploading a photo.");
        return Promise.resolve();
      }
      if (maxPhotoMb && file.size > maxPhotoMb * 1024 * 1024) {
        setOutcome(item, "rejected", "The photo is larger than " + maxPhotoMb + " MB.");
        return Promise.resolve();
      }
      var form = new FormData();
      form.append("patient", chosenPatient());
      form.append("description", description.value);
      form.append("image", file, file.name);
      return send("/upload/photo", form, null, "application/json", progress).then(function (response) {
        var result = response.status === 200 && response.json && response.json.results[0];
        if (result) {
          setOutcome(item, result.outcome, result.message ? result.reason + ": " + result.message : "Stored as a DICOM image.");
        } else {
          setOutcome(item, "rejected", errorMessage(response));
        }
      });
    }
    var boundary = "doorstep-" + Date.now().toString(16) + Math.random().toString(16).slice(2);
    var body = new Blob([
      "--" + boundary + "\r\nContent-Type: application/dicom\r\n\r\n",
      file,
      "\r\n--" + boundary + "--\r\n",
    ]);
    var type = 'multipart/related; type="application/dicom"; boundary=' + boundary;
    return send("/dicom-web/studies", body, type, "application/dicom+json", progress).then(function (response) {
      var result = stowResult(response);
      if (result.study && chosenPatient()) {
        linkStudies[result.study] = true;
      }
      setOutcome(item, result.outcome, result.message);
    });
  }

  function refresh() {
    var total = 0;
    var loaded = 0;
    var finished = 0;
    items.forEach(function (item) {
      total += item.file.size || 1;
      loaded += item.finished ? item.file.size || 1 : Math.min(item.loaded, item.file.size);
      finished += item.finished ? 1 : 0;
    });
    var percent = total ? Math.floor((loaded / total) * 100) : 0;
    overall.value = percent;
    overallText.textContent = percent + "% · " + finished + " of " + items.length + " files";
    if (finished === items.length && items.length) {
      var ok = items.filter(function (item) {
        return OK[item.outcome];
      }).length;
      summary.textContent = ok + " of " + items.length + " files stored";
      done.hidden = ok === 0;
    } else {
      summary.textContent = "Uploading…";
      done.hidden = true;
    }
  }

  /** Tell the server which patient the STOW-RS studies of this batch belong to. */
  function linkToPatient() {
    var studies = Object.keys(linkStudies);
    if (!studies.length || !chosenPatient()) {
      return;
    }
    linkStudies = {};
    window.Doorstep.fetch("/upload/link", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ patient: parseInt(chosenPatient(), 10), studies: studies }),
    }).then(function (response) {
      if (!response.ok) {
        showNotice("The studies were stored but could not be linked to the patient.");
      }
    }, function () {
      showNotice("The studies were stored but could not be linked to the patient.");
    });
  }

  function next() {
    while (running < PARALLEL && queue.length) {
      var item = queue.shift();
      running += 1;
      upload(item).then(function (finishedItem) {
        return function () {
          finishedItem.finished = true;
          finishedItem.bar.value = 100;
          running -= 1;
          refresh();
          if (!running && !queue.length) {
            linkToPatient();
          }
          next();
        };
      }(item));
    }
  }

  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = !text;
  }

  function add(files) {
    var accepted = files.filter(function (file) {
      var path = file.webkitRelativePath || file.relativePath || file.name;
      return !SKIPPED.test(path);
    });
    if (!accepted.length) {
      showNotice("There were no files to upload.");
      return;
    }
    showNotice("");
    panel.hidden = false;
    accepted.forEach(function (file) {
      var element = template.content.firstElementChild.cloneNode(true);
      var item = {
        file: file,
        kind: kindOf(file),
        element: element,
        bar: element.querySelector("progress"),
        badge: element.querySelector(".upload-outcome"),
        message: element.querySelector(".upload-message"),
        loaded: 0,
        finished: false,
        outcome: "waiting",
      };
      var name = element.querySelector(".upload-name");
      name.textContent = file.webkitRelativePath || file.relativePath || file.name;
      item.bar.setAttribute("aria-label", "Upload of " + file.name);
      list.append(element);
      items.push(item);
      queue.push(item);
    });
    refresh();
    next();
  }

  /** Every file under dropped entries, folders included (recursively). */
  function walk(entry, path) {
    if (entry.isFile) {
      return new Promise(function (resolve) {
        entry.file(function (file) {
          file.relativePath = path + file.name;
          resolve([file]);
        }, function () {
          resolve([]);
        });
      });
    }
    if (!entry.isDirectory) {
      return Promise.resolve([]);
    }
    var reader = entry.createReader();
    var found = [];
    return new Promise(function (resolve) {
      function more() {
        reader.readEntries(function (entries) {
          if (!entries.length) {
            Promise.all(found).then(function (lists) {
              resolve([].concat.apply([], lists));
            });
            return;
          }
          entries.forEach(function (child) {
            found.push(walk(child, path + entry.name + "/"));
          });
          more();
        }, function () {
          resolve([]);
        });
      }
      more();
    });
  }

  function onDrop(event) {
    event.preventDefault();
    drop.classList.remove("dropzone-active");
    var transfer = event.dataTransfer;
    var entries = Array.prototype.map
      .call(transfer.items || [], function (dataItem) {
        return dataItem.webkitGetAsEntry ? dataItem.webkitGetAsEntry() : null;
      })
      .filter(Boolean);
    if (!entries.length) {
      add(Array.prototype.slice.call(transfer.files || []));
      return;
    }
    Promise.all(entries.map(function (entry) {
      return walk(entry, "");
    })).then(function (lists) {
      add([].concat.apply([], lists));
    });
  }

  ["dragenter", "dragover"].forEach(function (name) {
    drop.addEventListener(name, function (event) {
      event.preventDefault();
      drop.classList.add("dropzone-active");
    });
  });
  drop.addEventListener("dragleave", function (event) {
    if (!drop.contains(event.relatedTarget)) {
      drop.classList.remove("dropzone-active");
    }
  });
  drop.addEventListener("drop", onDrop);
  ["upload-files", "upload-folder"].forEach(function (id) {
    var input = document.getElementById(id);
    input.addEventListener("change", function () {
      add(Array.prototype.slice.call(input.files || []));
      input.value = "";
    });
  });
})();
