"""The call's network-quality logic in Chromium, on real RTCPeerConnections: figures from a
real getStats() of a loopback call, the verdicts, the low-bandwidth steps after runs of
verdicts, and what a step does to a real RTCRtpSender's encodings.

(A real poor network cannot be made inside the test: Chromium's network emulation does not
touch WebRTC. So the verdicts are fed in; everything they act on is real.)
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Browser

pytestmark = pytest.mark.e2e

SCRIPT = """async () => {
  const q = await import("/static/consults/call-quality.mjs");
  const levels = {
    clean: q.level({ rttMs: 40, lossPct: 0.5 }),
    lossy: q.level({ rttMs: 40, lossPct: 5 }),
    far: q.level({ rttMs: 450, lossPct: 0 }),
    broken: q.level({ rttMs: 80, lossPct: 12 }),
  };
  const steps = new q.BandwidthSteps();
  const walk = [];
  for (const verdict of ["poor", "poor", "poor", "poor", "fair", "poor", "poor", "poor",
                         "good", "good", "good", "good", "good", "good"]) {
    walk.push(steps.next(verdict));
  }
  // A real loopback call with a real (fake-device) camera track.
  const media = await navigator.mediaDevices.getUserMedia({ video: true });
  const a = new RTCPeerConnection(), b = new RTCPeerConnection();
  a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
  b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
  const sender = a.addTrack(media.getVideoTracks()[0], media);
  await a.setLocalDescription(); await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(); await a.setRemoteDescription(b.localDescription);
  let figures = null, previous = null;
  for (let i = 0; i < 100 && !(figures && figures.kbps > 0 && figures.frames > 0); i++) {
    await new Promise((r) => setTimeout(r, 200));
    figures = q.sample(await b.getStats(), previous);
    previous = figures.counters;
  }
  await q.applyStep(sender, "reduced");
  const reduced = sender.getParameters().encodings[0];
  await q.applyStep(sender, "full");
  const full = sender.getParameters().encodings[0];
  a.close(); b.close(); media.getTracks().forEach((t) => t.stop());
  return { levels, walk, figures, reduced: { scale: reduced.scaleResolutionDownBy,
    fps: reduced.maxFramerate, bitrate: reduced.maxBitrate },
    full: { scale: full.scaleResolutionDownBy ?? null, bitrate: full.maxBitrate ?? null },
    words: q.describe({ rttMs: 12.4, lossPct: 0.25, kbps: 1530 }) };
}"""


async def test_quality_figures_verdicts_and_low_bandwidth_steps(browser: Browser) -> None:
    await browser.page.goto(f"{browser.server.url}/login")
    found = await browser.page.evaluate(SCRIPT)
    assert found["levels"] == {"clean": "good", "lossy": "fair", "far": "fair", "broken": "poor"}
    # Three poor samples step down; a fair one resets the run; five good ones step back up.
    assert found["walk"] == [
        "full", "full", "reduced", "reduced", "reduced", "reduced", "reduced", "audio",
        "audio", "audio", "audio", "audio", "reduced", "reduced",
    ]  # fmt: skip
    figures = found["figures"]
    assert figures["frames"] > 0
    assert figures["kbps"] > 0
    assert figures["lossPct"] == 0
    assert figures["route"] == "host"
    assert figures["rttMs"] is None or figures["rttMs"] < 100
    assert found["reduced"] == {"scale": 2, "fps": 15, "bitrate": 300_000}
    assert found["full"] == {"scale": None, "bitrate": None}
    assert found["words"] == "delay 12 ms, loss 0.3 %, 1.5 Mb/s"
