// Live view: fetch the camera's fragmented MP4 stream and feed it to Media Source Extensions,
// keeping the picture at the live edge.  The server ends the stream when the camera reconnects or
// goes quiet; the page then starts again after a short wait (api/routes/live.py).
(function () {
  "use strict";
  const video = document.getElementById("live-video");
  if (!video) return;
  const status = document.getElementById("live-status");
  const url = video.dataset.src;
  const EDGE_S = 0.3, MAX_BEHIND_S = 1.0, RETRY_MS = 2000;
  window.liveStats = { sessions: 0, firstFrameAt: null, startedAt: performance.now(), bytes: 0 };

  function say(text) { if (status) status.textContent = text || ""; }

  async function session() {
    window.liveStats.sessions += 1;
    let response;
    try {
      response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    } catch (e) {
      say(video.dataset.msgOffline);
      return;
    }
    if (response.status === 403 || response.status === 401) { say(video.dataset.msgRefused); return "stop"; }
    if (!response.ok) { say(video.dataset.msgOffline); return; }
    const mime = 'video/mp4; codecs="' + response.headers.get("X-Live-Codecs") + '"';
    if (!window.MediaSource || !MediaSource.isTypeSupported(mime)) {
      say(video.dataset.msgUnsupported);
      response.body.cancel();
      return "stop";
    }
    const source = new MediaSource();
    video.src = URL.createObjectURL(source);
    await new Promise((resolve) => source.addEventListener("sourceopen", resolve, { once: true }));
    const buffer = source.addSourceBuffer(mime);
    buffer.mode = "segments";
    const reader = response.body.getReader();
    const pending = [];
    let done = false;
    function pump() {
      if (buffer.updating || !pending.length || source.readyState !== "open") return;
      buffer.appendBuffer(pending.shift());
    }
    buffer.addEventListener("updateend", () => {
      const b = video.buffered;
      if (b.length) {
        const end = b.end(b.length - 1);
        if (end - video.currentTime > MAX_BEHIND_S) video.currentTime = Math.max(b.start(b.length - 1), end - EDGE_S);
        if (b.start(0) < end - 30 && !buffer.updating) { buffer.remove(0, end - 10); return; }
      }
      pump();
    });
    video.play().catch(() => {});
    while (!done) {
      const { value, done: finished } = await reader.read();
      done = finished;
      if (value && value.length) {
        window.liveStats.bytes += value.length;
        pending.push(value);
        pump();
      }
    }
    say(video.dataset.msgWaiting);
  }

  video.addEventListener("playing", () => say(""));
  if (video.requestVideoFrameCallback) {
    const onFrame = () => {
      if (window.liveStats.firstFrameAt === null) window.liveStats.firstFrameAt = performance.now();
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }

  (async function run() {
    for (;;) {
      const outcome = await session();
      if (outcome === "stop") return;
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  })();
})();
