"""The ECG API: calibrated leads as JSON, ECG paper as SVG, automatic and device measurements."""
