// The export for a data subject (a request of access) on a ticket's page: pick a camera and a moment, show
// that frame (the thumbnail API: GET /api/tickets/{id}/cameras/{camera}/thumbnail?at=, behind the access
// policy), draw a box around the person with the mouse or a finger (pointer events), and see the box as
// fractions of the frame in the form's fields.  The form posts the frame's own time (X-Frame-Time) and the
// box; the server checks them again (api/web/pages_export.py subject_of_form).
(() => {
  const root = document.getElementById("subject");
  if (!root) return;
  const T = root.dataset, TICKET = T.ticket, W0 = Number(T.startUs), W1 = Number(T.endUs);
  const camera = document.getElementById("subject-camera"), moment = document.getElementById("subject-moment");
  const momentText = document.getElementById("subject-moment-text"), frame = document.getElementById("subject-frame");
  const img = frame.querySelector("img"), rect = frame.querySelector(".subject-box");
  const status = document.getElementById("subject-frame-time"), at = document.getElementById("subject-at");
  const start = document.getElementById("subject-start");
  const fields = Object.fromEntries(["x", "y", "width", "height"].map((f) => [f, document.getElementById(`subject-${f}`)]));
  const clock = new Intl.DateTimeFormat(T.lang === "en" ? "en-GB" : "da-DK", {timeZone: T.tz, year: "numeric",
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"});
  const iso = (us) => new Date(Math.floor(us / 1000)).toISOString();
  const momentUs = () => Math.min(W1 - 1, W0 + Number(moment.value) * 1e6);
  const ready = () => {  // a frame shown and a box with a size inside it
    const b = box();
    start.disabled = !(at.value && b && b.width > 0.005 && b.height > 0.005 && b.x + b.width <= 1 && b.y + b.height <= 1);
  };
  const box = () => {
    const v = Object.fromEntries(Object.entries(fields).map(([k, el]) => [k, Number(el.value.replace(",", "."))]));
    return Object.values(v).every((n) => Number.isFinite(n) && n >= 0 && n <= 1) ? v : null;
  };
  const show = (b) => {
    Object.assign(rect.style, {left: `${b.x * 100}%`, top: `${b.y * 100}%`, width: `${b.width * 100}%`, height: `${b.height * 100}%`});
    rect.hidden = false;
  };
  momentText.textContent = clock.format(new Date(momentUs() / 1000));
  moment.addEventListener("input", () => { momentText.textContent = clock.format(new Date(momentUs() / 1000)); });
  start.disabled = true;

  async function load() {
    status.textContent = T.tLoading;
    const url = `/api/tickets/${TICKET}/cameras/${encodeURIComponent(camera.value)}/thumbnail?at=${encodeURIComponent(iso(momentUs()))}`;
    const r = await fetch(url, {credentials: "same-origin"});
    if (!r.ok) {
      let text = `${r.status}`;
      try { const p = await r.json(); text = p.localized_detail || p.detail || text; } catch (e) { /* not JSON */ }
      status.textContent = text; frame.hidden = true; at.value = ""; ready();
      return;
    }
    const shown = r.headers.get("X-Frame-Time");
    const reader = new FileReader();  // a data: URL (the pages' CSP allows images from 'self' and data: only)
    reader.onload = () => { img.src = reader.result; frame.hidden = false; };
    reader.readAsDataURL(await r.blob());
    at.value = shown || "";
    frame.dataset.camera = camera.value;
    status.textContent = T.tFrame.replace("{time}", clock.format(new Date(Date.parse(shown))));
    rect.hidden = true;
    for (const el of Object.values(fields)) el.value = "";
    ready();
  }
  document.getElementById("subject-show").addEventListener("click", load);
  camera.addEventListener("change", () => { if (!frame.hidden) load(); });

  // drawing: mouse, pen and touch alike (pointer capture keeps the drag while it leaves the picture)
  let from = null;
  const frac = (e) => {
    const r = img.getBoundingClientRect();
    return [Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)), Math.min(1, Math.max(0, (e.clientY - r.top) / r.height))];
  };
  const round = (n) => Math.round(n * 10000) / 10000;
  const draw = (a, b) => {
    const v = {x: round(Math.min(a[0], b[0])), y: round(Math.min(a[1], b[1]))};
    v.width = Math.min(round(Math.abs(a[0] - b[0])), round(1 - v.x));
    v.height = Math.min(round(Math.abs(a[1] - b[1])), round(1 - v.y));
    for (const [k, el] of Object.entries(fields)) el.value = String(v[k]);
    show(v); ready();
  };
  frame.addEventListener("pointerdown", (e) => {
    e.preventDefault(); frame.setPointerCapture(e.pointerId); from = frac(e); draw(from, from);
  });
  frame.addEventListener("pointermove", (e) => { if (from) draw(from, frac(e)); });
  const end = (e) => { if (from) { draw(from, frac(e)); from = null; } };
  frame.addEventListener("pointerup", end);
  frame.addEventListener("pointercancel", () => { from = null; });
  for (const el of Object.values(fields)) {
    el.addEventListener("input", () => { const b = box(); if (b) show(b); ready(); });
  }
})();
