// The recipient's page (/d/{token}): sending the form downloads the package and leaves the page as it was.
// So that it does not keep showing an earlier refusal and does show the link's new state, the old error goes
// when the form is sent, and once the appliance's answer says the download started (the cookie
// vms_downloaded, set on the download, changes) the page is loaded again: when, and downloads left.
const downloadForm = document.getElementById("download-form");
const downloadedCookie = () => (document.cookie.split("; ").find((c) => c.startsWith("vms_downloaded=")) || "");
if (downloadForm) {
  downloadForm.addEventListener("submit", () => {
    for (const old of document.querySelectorAll("#link-error")) old.remove();
    const before = downloadedCookie();
    const sent = Date.now();
    const tick = () => {
      if (downloadedCookie() !== before) location.replace(location.href);
      else if (Date.now() - sent < 120000) setTimeout(tick, 300);
    };
    setTimeout(tick, 300);
  });
}
