// The continuous player of a ticket's window (Media Source Extensions), its timelines and region search.
//
// Media time t of every <video> is seconds since the ticket's window start, so cameras side by side stay in
// sync by equal currentTime and the clock beside the video is the window's start plus the media time of the
// frame shown.  A play (POST /api/tickets/{id}/plays, one audit entry) starts at the first play, seek or
// step; its fragments (GET .../cameras/{camera}/fragment) are fetched around the play head and appended, each
// at the offset its X-Fragment-Base header gives.  Without MediaSource the page keeps its plain player.
(() => {
  "use strict";
  const root = document.getElementById("cplayer");
  if (!root || !window.MediaSource || !window.fetch) return;
  const section = document.getElementById("footage");
  const T = root.dataset, TICKET = T.ticket, W0 = Number(T.startUs), W1 = Number(T.endUs);
  const ACTIVE = 15, AHEAD_S = 8, BEHIND_S = 30, IDLE_MS = 14 * 60 * 1000;
  const fmt = new Intl.DateTimeFormat("sv-SE", {timeZone: T.tz, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"});
  const clockText = (us) => fmt.format(new Date(Math.floor(us / 1000)));
  const isoUs = (us) => new Date(Math.floor(us / 1000)).toISOString().replace("Z", String(Math.floor(us) % 1000).padStart(3, "0") + "Z");
  const parseUs = (text) => {
    const m = /\.(\d+)Z$/.exec(text), ms = Date.parse(text);
    return Math.floor(ms / 1000) * 1_000_000 + (m ? Number(m[1].padEnd(6, "0").slice(0, 6)) : (ms % 1000) * 1000);
  };
  const clamp = (us) => Math.max(W0, Math.min(W1 - 1, Math.round(us)));
  const api = (path, opts = {}) => fetch(path, {credentials: "same-origin", ...opts,
    headers: {"X-CSRF-Token": T.csrf, ...(opts.body ? {"Content-Type": "application/json"} : {}), ...(opts.headers || {})}});
  const status = (text) => { document.getElementById("cp-status").textContent = text || ""; };
  const problem = async (r) => { try { return (await r.json()).detail || r.statusText; } catch (e) { return r.statusText; } };

  class Cam {
    constructor(player, id) {
      this.p = player; this.id = id; this.gen = 0; this.sb = null; this.type = ""; this.fps = 15;
      this.nextUs = null; this.loadedUs = null; this.busy = false; this.gaps = []; this.ctl = null;
      this.tile = document.createElement("figure");
      this.tile.className = "cp-tile"; this.tile.dataset.camera = id;
      this.video = document.createElement("video");
      Object.assign(this.video, {muted: true, playsInline: true, preload: "auto"});
      const cap = document.createElement("figcaption"); cap.textContent = id;
      this.tile.append(this.video, cap);
      this.ms = new MediaSource();
      this.opened = new Promise((res) => this.ms.addEventListener("sourceopen", res, {once: true}));
      this.video.src = URL.createObjectURL(this.ms);
    }
    buffered(t) {
      const b = this.video.buffered;
      for (let i = 0; i < b.length; i++) if (b.start(i) - 0.05 <= t && t < b.end(i) - 0.05) return true;
      return false;
    }
    op(fn) {
      return new Promise((res, rej) => {
        const sb = this.sb;
        const done = () => { sb.removeEventListener("error", fail); res(); };
        const fail = () => { sb.removeEventListener("updateend", done); rej(new Error("append failed")); };
        sb.addEventListener("updateend", done, {once: true});
        sb.addEventListener("error", fail, {once: true});
        fn(sb);
      });
    }
    async reset(us) {
      this.gen += 1;
      if (this.ctl) this.ctl.abort();
      this.busy = false; this.gaps = []; this.nextUs = clamp(us); this.loadedUs = null; this.seeked = true;
      if (this.sb) {
        if (this.sb.updating) this.sb.abort();
        if (this.video.buffered.length) await this.op((sb) => sb.remove(0, Infinity));
      }
    }
    async fetchNext() {
      if (this.busy || this.nextUs === null) return null;
      const gen = this.gen, at = this.nextUs;
      this.busy = true; this.ctl = new AbortController();
      try {
        await this.p.ensurePlay();
        const q = new URLSearchParams({play: this.p.playId, at: isoUs(at), span_s: String(this.seeked ? 1 : Math.min(30, Math.max(4, 2 * this.p.rate)))});  // a GOP or two first
        const r = await api(`/api/tickets/${TICKET}/cameras/${encodeURIComponent(this.id)}/fragment?${q}`, {signal: this.ctl.signal});
        if (gen !== this.gen) return null;
        if (r.status === 404) { this.nextUs = null; return null; }  // nothing more in the window
        if (!r.ok) { this.nextUs = null; this.p.refused(r.status, await problem(r)); return null; }
        const h = (k) => r.headers.get(k);
        const frag = {base: parseUs(h("X-Fragment-Base")), first: parseUs(h("X-Fragment-First")),
          end: parseUs(h("X-Fragment-End")), next: h("X-Fragment-Next") ? parseUs(h("X-Fragment-Next")) : null,
          codecs: h("X-Fragment-Codecs"), fps: Number(h("X-Fragment-Fps")) || 15, data: await r.arrayBuffer()};
        if (gen !== this.gen) return null;
        await this.append(frag);
        if (gen !== this.gen) return null;
        this.p.lastFragment = Date.now();
        this.loadedUs = frag.end; this.nextUs = frag.next; this.fps = frag.fps; this.seeked = false;
        if (frag.next !== null && frag.next - frag.end > 500_000) this.gaps.push([frag.end, frag.next]);
        return frag;
      } catch (e) {
        if (e.name !== "AbortError" && gen === this.gen) { this.nextUs = null; status(T.tFailed + " " + e.message); }
        return null;
      } finally {
        if (gen === this.gen) this.busy = false;
      }
    }
    async append(frag) {
      await this.opened;
      const type = `video/mp4; codecs="${frag.codecs}"`;
      if (!this.sb) {
        if (!MediaSource.isTypeSupported(type)) throw new Error(T.tUnsupported + ` (${frag.codecs})`);
        this.sb = this.ms.addSourceBuffer(type); this.sb.mode = "segments"; this.type = type;
      } else if (type !== this.type && this.sb.changeType) {
        this.sb.changeType(type); this.type = type;
      }
      this.sb.timestampOffset = (frag.base - W0) / 1e6;
      await this.op((sb) => sb.appendBuffer(frag.data));
    }
    trim(t) {
      if (this.sb && !this.sb.updating && this.video.buffered.length && this.video.buffered.start(0) < t - BEHIND_S * this.p.rate) {
        this.op((sb) => sb.remove(0, t - BEHIND_S * this.p.rate)).catch(() => {});
      }
    }
  }

  class Player {
    constructor() {
      this.cams = []; this.playId = null; this.playCams = ""; this.rate = 1; this.playing = false;
      this.lastFragment = 0; this.levels = {}; this.grid = document.getElementById("cp-grid");
      this.clock = document.getElementById("cp-clock"); this.seekBar = document.getElementById("cp-seek");
      this.shownUs = W0;
    }
    selected() {
      return [...root.querySelectorAll("input[name=cp-cam]:checked")].map((i) => i.value).slice(0, 4);
    }
    get master() { return this.cams[0]; }
    nowUs() { return this.master ? W0 + this.master.video.currentTime * 1e6 : this.shownUs; }
    build() {
      const ids = this.selected();
      if (ids.join(",") === this.cams.map((c) => c.id).join(",")) return false;
      for (const c of this.cams) { if (c.ctl) c.ctl.abort(); c.tile.remove(); }
      this.cams = ids.map((id) => new Cam(this, id));
      this.grid.dataset.count = String(this.cams.length);
      for (const c of this.cams) this.grid.append(c.tile);
      const m = this.master;
      if (m) {
        const onFrame = (now, meta) => { this.show(W0 + meta.mediaTime * 1e6); m.video.requestVideoFrameCallback(onFrame); };
        if (m.video.requestVideoFrameCallback) m.video.requestVideoFrameCallback(onFrame);
        else m.video.addEventListener("timeupdate", () => this.show(this.nowUs()));
      }
      return true;
    }
    async ensurePlay() {
      const ids = this.cams.map((c) => c.id).join(",");
      if (this.playId && this.playCams === ids && Date.now() - this.lastFragment < IDLE_MS) return;
      if (this.starting) return this.starting;
      this.starting = (async () => {
        const r = await api(`/api/tickets/${TICKET}/plays`, {method: "POST",
          body: JSON.stringify({cameras: this.cams.map((c) => c.id), at: isoUs(clamp(this.shownUs))})});
        if (!r.ok) { const d = await problem(r); this.refused(r.status, d); throw new Error(d); }
        this.playId = (await r.json()).id; this.playCams = ids; this.lastFragment = Date.now();
        root.dataset.play = this.playId;
      })();
      try { await this.starting; } finally { this.starting = null; }
    }
    refused(code, detail) { status(`${T.tRefused} (${code}): ${detail}`); this.pause(); }
    show(us) {
      this.shownUs = us;
      this.clock.textContent = clockText(us);
      this.clock.dataset.us = String(Math.round(us));
      if (document.activeElement !== this.seekBar) this.seekBar.value = String(Math.floor((us - W0) / 1e6));
      for (const head of section.querySelectorAll(".cp-head")) head.style.left = `${(100 * (us - W0)) / (W1 - W0)}%`;
    }
    async seek(us, {play} = {}) {
      us = clamp(us);
      this.build();
      if (!this.cams.length) return;
      const t = (us - W0) / 1e6;
      this.show(us);
      status(T.tLoading);
      await Promise.all(this.cams.map(async (c) => {
        if (c.buffered(t)) { c.video.currentTime = t; return; }
        await c.reset(us);
        const frag = await c.fetchNext();
        c.video.currentTime = frag ? Math.max(t, (frag.first - W0) / 1e6 + 0.001) : t;
      }));
      status("");
      if (play ?? this.playing) this.play(); else this.show(this.nowUs());
    }
    play() {
      if (!this.cams.length || this.build()) return this.seek(this.shownUs, {play: true});
      this.playing = true;
      for (const c of this.cams) { c.video.playbackRate = this.rate; c.video.play().catch(() => {}); }
      document.getElementById("cp-play").textContent = T.tPause;
    }
    pause() {
      this.playing = false;
      for (const c of this.cams) c.video.pause();
      document.getElementById("cp-play").textContent = T.tPlay;
    }
    step(frames) {
      this.pause();
      const fps = this.master ? this.master.fps : 15;
      return this.seek(this.shownUs + (frames * 1e6) / fps + 5000, {play: false});  // from the frame shown
    }
    setRate(rate) {
      this.rate = rate;
      for (const c of this.cams) c.video.playbackRate = rate;
    }
    tick() {
      const m = this.master;
      if (!m) return;
      const t = m.video.currentTime, us = W0 + t * 1e6;
      for (const c of this.cams) {
        const loaded = c.loadedUs === null ? -Infinity : (c.loadedUs - W0) / 1e6;
        if (!c.busy && c.nextUs !== null && loaded - t < AHEAD_S * Math.max(1, this.rate)) c.fetchNext();
        c.trim(t);
        if (c !== m && this.playing && Math.abs(c.video.currentTime - t) > 0.3 && c.buffered(t)) c.video.currentTime = t;
      }
      if (!this.playing) return;
      const gap = m.gaps.find(([a, b]) => us >= a - 150_000 && us < b);
      if (gap) { this.seek(gap[1], {play: true}); return; }
      if (m.nextUs === null && !m.busy && m.loadedUs !== null && us >= m.loadedUs - 100_000) { this.pause(); status(T.tEnded); }
    }
    nextActivity() {
      const id = this.master ? this.master.id : this.selected()[0];
      const a = this.levels[id];
      if (!a) return;
      let i = Math.floor((this.nowUs() - W0) / (a.step * 1e6)) + 1;
      while (i < a.levels.length && (a.levels[i] ?? 0) >= ACTIVE) i++;  // out of the activity shown now
      while (i < a.levels.length && (a.levels[i] ?? 0) < ACTIVE) i++;
      if (i >= a.levels.length) { status(T.tNoActivity); return; }
      this.seek(W0 + i * a.step * 1e6, {play: true});
    }
  }

  const player = new Player();
  window.vmsPlayer = player;  // for people debugging the page, and the browser tests
  root.hidden = false;
  section.classList.add("cp-on");
  document.getElementById("cp-play").addEventListener("click", () => (player.playing ? player.pause() : player.play()));
  document.getElementById("cp-back").addEventListener("click", () => player.step(-1));
  document.getElementById("cp-step").addEventListener("click", () => player.step(1));
  document.getElementById("cp-speed").addEventListener("change", (e) => player.setRate(Number(e.target.value)));
  document.getElementById("cp-next").addEventListener("click", () => player.nextActivity());
  player.seekBar.addEventListener("change", () => player.seek(W0 + Number(player.seekBar.value) * 1e6));
  for (const box of root.querySelectorAll("input[name=cp-cam]")) {
    box.addEventListener("change", () => {
      if (player.selected().length === 0 || root.querySelectorAll("input[name=cp-cam]:checked").length > 4) box.checked = !box.checked;
      if (player.cams.length) player.seek(player.shownUs);
    });
  }
  setInterval(() => player.tick(), 200);

  // ------------------------------------------------------------------ timelines: heat strip, thumbnails, clicks
  const pop = document.getElementById("cp-thumb");
  let hoverTimer = null, hoverSeq = 0;
  const thumbUrl = (cam, us) => `/api/tickets/${TICKET}/cameras/${encodeURIComponent(cam)}/thumbnail?at=${encodeURIComponent(isoUs(us))}`;
  async function thumbnail(cam, us, img, label) {
    const seq = ++hoverSeq;
    const r = await api(thumbUrl(cam, us));
    if (seq !== hoverSeq && img === pop.querySelector("img")) return;
    if (!r.ok) { label.textContent = `${clockText(us)} · ${await problem(r)}`; img.removeAttribute("src"); return; }
    const shown = r.headers.get("X-Frame-Time");
    const blob = await r.blob();
    const reader = new FileReader();  // a data: URL (the pages' CSP allows images from 'self' and data: only)
    reader.onload = () => { img.src = reader.result; };
    reader.readAsDataURL(blob);
    label.textContent = shown ? clockText(parseUs(shown)) : clockText(us);
    img.dataset.frameUs = shown ? String(parseUs(shown)) : "";
  }
  for (const line of section.querySelectorAll(".camera-timeline")) {
    const cam = line.dataset.camera, strip = line.querySelector(".cp-strip");
    if (!strip) continue;
    const at = (e) => { const r = strip.getBoundingClientRect(); return W0 + ((e.clientX - r.left) / r.width) * (W1 - W0); };
    strip.addEventListener("mousemove", (e) => {
      const us = clamp(at(e)), r = strip.getBoundingClientRect();
      pop.hidden = false;
      pop.style.left = `${e.clientX - r.left}px`;
      pop.style.top = `${strip.offsetHeight + 4}px`;
      strip.append(pop);
      pop.querySelector(".cp-thumb-time").textContent = clockText(us);
      clearTimeout(hoverTimer);
      hoverTimer = setTimeout(() => thumbnail(cam, us, pop.querySelector("img"), pop.querySelector(".cp-thumb-time")), 120);
    });
    strip.addEventListener("mouseleave", () => { clearTimeout(hoverTimer); hoverSeq++; pop.hidden = true; });
    strip.addEventListener("click", (e) => {
      e.preventDefault();
      const box = root.querySelector(`input[name=cp-cam][value="${CSS.escape(cam)}"]`);
      if (box && !box.checked && player.selected().length < 4) box.checked = true;
      player.seek(at(e), {play: true});
    });
    heat(cam, line.querySelector("canvas.cp-heat"));
  }
  async function heat(cam, canvas) {
    if (!canvas) return;
    const step = Math.max(1, Math.ceil((W1 - W0) / 1e6 / 1200));
    const q = new URLSearchParams({start: isoUs(W0), end: isoUs(W1), step_s: String(step)});
    const r = await api(`/api/tickets/${TICKET}/cameras/${encodeURIComponent(cam)}/activity?${q}`);
    if (!r.ok) { canvas.title = await problem(r); return; }
    const levels = (await r.json()).levels;
    player.levels[cam] = {step, levels};
    canvas.width = levels.length; canvas.height = 1;
    const ctx = canvas.getContext("2d");
    levels.forEach((v, i) => {
      ctx.fillStyle = v === null ? "rgba(0,0,0,0)" : `hsl(${40 - (v * 40) / 100}, 90%, ${92 - (v * 47) / 100}%)`;
      ctx.fillRect(i, 0, 1, 1);
    });
    canvas.dataset.loaded = String(levels.length);
  }

  // ------------------------------------------------------------------ region search
  for (const panel of section.querySelectorAll(".cp-search")) {
    const cam = panel.dataset.camera, frame = panel.querySelector(".cp-frame"), img = frame.querySelector("img");
    const rect = frame.querySelector(".cp-rect"), start = panel.querySelector(".cp-search-start");
    const cancel = panel.querySelector(".cp-search-cancel"), bar = panel.querySelector("progress");
    const hits = panel.querySelector(".cp-hits"), state = panel.querySelector(".cp-search-state");
    let region = null, drag = null, search = null;
    panel.querySelector(".cp-search-open").addEventListener("click", () => {
      frame.hidden = false; panel.querySelector(".cp-search-tools").hidden = false;
      thumbnail(cam, clamp(player.shownUs), img, panel.querySelector(".cp-frame-time"));
    });
    const frac = (e) => { const r = img.getBoundingClientRect();
      return [Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)), Math.min(1, Math.max(0, (e.clientY - r.top) / r.height))]; };
    const draw = (a, b) => {
      region = {x: Math.min(a[0], b[0]), y: Math.min(a[1], b[1]), w: Math.abs(a[0] - b[0]), h: Math.abs(a[1] - b[1])};
      Object.assign(rect.style, {left: `${region.x * 100}%`, top: `${region.y * 100}%`, width: `${region.w * 100}%`, height: `${region.h * 100}%`});
      rect.hidden = false; start.disabled = !(region.w > 0.01 && region.h > 0.01);
    };
    frame.addEventListener("mousedown", (e) => { e.preventDefault(); drag = frac(e); draw(drag, drag); });
    frame.addEventListener("mousemove", (e) => { if (drag) draw(drag, frac(e)); });
    window.addEventListener("mouseup", (e) => { if (drag) { draw(drag, frac(e)); drag = null; } });
    start.addEventListener("click", async () => {
      if (!region) return;
      const r = await api(`/api/tickets/${TICKET}/cameras/${encodeURIComponent(cam)}/searches`, {method: "POST",
        body: JSON.stringify({region: {x: region.x, y: region.y, w: region.w, h: region.h}})});
      if (!r.ok) { state.textContent = `${T.tRefused}: ${await problem(r)}`; return; }
      search = (await r.json()).id; start.disabled = true; cancel.hidden = false; hits.replaceChildren();
      follow(search);
    });
    cancel.addEventListener("click", async () => {
      if (search) await api(`/api/tickets/${TICKET}/searches/${search}/cancel`, {method: "POST"});
    });
    async function follow(id) {
      const r = await api(`/api/tickets/${TICKET}/searches/${id}`);
      if (!r.ok || id !== search) return;
      const s = await r.json();
      bar.value = s.progress; panel.dataset.state = s.state;
      state.textContent = `${T["tSearch_" + s.state] || s.state} · ${Math.round(s.progress * 100)} % · ${T.tHits} ${s.hits.length}`;
      if (s.hits.length !== hits.children.length) {
        hits.replaceChildren(...s.hits.map((h) => hit(cam, parseUs(h.at), h.score)));
      }
      if (s.state === "running") setTimeout(() => follow(id), 700);
      else { start.disabled = false; cancel.hidden = true; }
    }
  }
  function hit(cam, us, score) {
    const li = document.createElement("li"), img = document.createElement("img"), a = document.createElement("a");
    li.dataset.at = String(us);
    img.src = thumbUrl(cam, us); img.alt = ""; img.loading = "lazy";
    a.href = "#cplayer"; a.className = "cp-hit-play"; a.textContent = `${clockText(us)} · ${T.tPlayFrom}`;
    a.addEventListener("click", (e) => {
      e.preventDefault();
      const box = root.querySelector(`input[name=cp-cam][value="${CSS.escape(cam)}"]`);
      if (box && !box.checked && player.selected().length < 4) box.checked = true;
      player.seek(us, {play: true});
    });
    const s = document.createElement("span"); s.className = "hint"; s.textContent = ` ${Math.round(score * 100)} %`;
    li.append(img, a, s);
    return li;
  }
})();
