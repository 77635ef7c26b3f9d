// The few lines of JavaScript the pages use: export progress bars follow the job
// (GET /api/exports/{job}) and reload the page when it ends; copy buttons copy a link.
for (const bar of document.querySelectorAll("progress[data-job]")) {
  const tick = async () => {
    const r = await fetch("/api/exports/" + bar.dataset.job, {credentials: "same-origin"});
    if (!r.ok) return;
    const job = await r.json();
    bar.value = job.percent;
    bar.nextElementSibling.textContent = job.percent + " %";
    if (["succeeded", "failed", "cancelled"].includes(job.state)) location.reload(); else setTimeout(tick, 1000);
  };
  setTimeout(tick, 500);
}
for (const button of document.querySelectorAll("button[data-copy]")) {
  button.addEventListener("click", () => navigator.clipboard.writeText(
    document.getElementById(button.dataset.copy).textContent).then(() => { button.textContent = button.dataset.done; }));
}
