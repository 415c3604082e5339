"""The diagnostic viewer page of a study: images on a canvas, ECG series as paper."""
