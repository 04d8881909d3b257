// perceptiq 2AFC study pages: consent, then trials driven by the JSON API (no build step, no libraries).
"use strict";
(function () {
  const body = document.body;
  const study = body.dataset.study;
  const api = "/api/studies/" + encodeURIComponent(study);
  const errorBox = document.getElementById("error");
  const showError = (text) => { if (errorBox) errorBox.textContent = text; };

  async function postJSON(url, payload) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(payload),
    });
  }

  function consentPage() {
    const agree = document.getElementById("agree");
    const start = document.getElementById("start");
    agree.addEventListener("change", () => { start.disabled = !agree.checked; });
    start.addEventListener("click", async () => {
      start.disabled = true;
      const response = await postJSON(api + "/sessions", {});
      if (response.status !== 201) {
        showError("Could not start the study (" + response.status + "). Please reload the page.");
        start.disabled = false;
        return;
      }
      const data = await response.json();
      window.location.assign(data.resume_url);
    });
  }

  function trialPage() {
    const token = body.dataset.token;
    const views = [document.getElementById("view-left"), document.getElementById("view-right")];
    const imgs = [document.getElementById("img-left"), document.getElementById("img-right")];
    const labelLeft = document.getElementById("label-left");
    const flickerButton = document.getElementById("flicker");
    let trial = null, shownAt = 0, busy = false, flickerTimer = null, flickerShowsRight = false;
    // One view transform for both images, in CSS pixels: translate (x, y) then scale z.
    const view = { x: 0, y: 0, z: 1 };

    function nativeSize(size) {  // one image pixel = one device pixel
      const ratio = window.devicePixelRatio || 1;
      return [size[0] / ratio, size[1] / ratio];
    }

    function apply() {
      for (const img of imgs) {
        img.style.transform = "translate(" + view.x + "px," + view.y + "px) scale(" + view.z + ")";
      }
      for (const v of views) v.classList.toggle("zoomed", view.z > 1);
    }

    function resetView() {
      const box = views[0].getBoundingClientRect();
      const [w, h] = nativeSize(trial.left_size);
      view.z = 1;
      view.x = Math.round((box.width - w) / 2);
      view.y = Math.round((box.height - h) / 2);
      apply();
    }

    function zoomAt(factor, cx, cy) {
      const z = Math.min(32, Math.max(0.125, view.z * factor));
      view.x = cx - (cx - view.x) * (z / view.z);
      view.y = cy - (cy - view.y) * (z / view.z);
      view.z = z;
      apply();
    }

    for (const v of views) {
      v.addEventListener("wheel", (event) => {
        event.preventDefault();
        const box = v.getBoundingClientRect();
        zoomAt(event.deltaY < 0 ? 1.25 : 0.8, event.clientX - box.left, event.clientY - box.top);
      }, { passive: false });
      v.addEventListener("pointerdown", (event) => {
        v.setPointerCapture(event.pointerId);
        let lastX = event.clientX, lastY = event.clientY;
        const move = (e) => {
          view.x += e.clientX - lastX; view.y += e.clientY - lastY;
          lastX = e.clientX; lastY = e.clientY;
          apply();
        };
        const up = () => { v.removeEventListener("pointermove", move); v.removeEventListener("pointerup", up); };
        v.addEventListener("pointermove", move);
        v.addEventListener("pointerup", up);
      });
    }

    function setFlicker(on) {
      body.classList.toggle("flicker", on);
      flickerButton.setAttribute("aria-pressed", String(on));
      if (flickerTimer) { clearInterval(flickerTimer); flickerTimer = null; }
      flickerShowsRight = false;
      showFlickerFrame();
      if (on) {
        flickerTimer = setInterval(() => { flickerShowsRight = !flickerShowsRight; showFlickerFrame(); }, 500);
      }
    }

    function showFlickerFrame() {
      if (!trial) return;
      const right = body.classList.contains("flicker") && flickerShowsRight;
      imgs[0].src = right ? trial.right : trial.left;
      const [w, h] = nativeSize(right ? trial.right_size : trial.left_size);
      imgs[0].style.width = w + "px"; imgs[0].style.height = h + "px";
      labelLeft.textContent = right ? "right" : "left";
    }

    function progress(done, total) {
      document.getElementById("progress-fill").style.width = (total ? (100 * done) / total : 0) + "%";
      document.getElementById("progress-text").textContent = done + " / " + total;
    }

    async function loadNext() {
      const response = await fetch(api + "/next?token=" + encodeURIComponent(token), { credentials: "same-origin" });
      if (response.status === 204) {
        window.location.assign("/s/" + encodeURIComponent(study) + "/done");
        return;
      }
      if (!response.ok) { showError("Could not load the next pair (" + response.status + ")."); return; }
      trial = await response.json();
      const sizes = [trial.left_size, trial.right_size];
      [trial.left, trial.right].forEach((src, k) => {
        const [w, h] = nativeSize(sizes[k]);
        imgs[k].src = src; imgs[k].style.width = w + "px"; imgs[k].style.height = h + "px";
      });
      progress(trial.done, trial.total);
      body.dataset.trial = String(trial.trial_id);
      resetView();
      showFlickerFrame();
      shownAt = performance.now();
      busy = false;
    }

    async function vote(choice) {
      if (busy || !trial) return;
      busy = true;
      const response = await postJSON(api + "/votes", {
        token: token, trial_id: trial.trial_id, choice: choice,
        response_ms: Math.round(performance.now() - shownAt),
      });
      if (response.status === 201 || response.status === 409) {
        showError("");
        await loadNext();
        return;
      }
      const wait = response.status === 429 ? "Please slow down a little. " : "";
      showError(wait + "Your answer was not saved (" + response.status + "); please answer again.");
      setTimeout(() => { busy = false; }, response.status === 429 ? 1000 : 0);
    }

    document.addEventListener("keydown", (event) => {
      if (event.repeat || event.altKey || event.ctrlKey || event.metaKey) return;
      if (event.key === "ArrowLeft") { event.preventDefault(); vote("left"); }
      else if (event.key === "ArrowRight") { event.preventDefault(); vote("right"); }
      else if (event.key === "f" || event.key === "F") setFlicker(!body.classList.contains("flicker"));
      else if (event.key === "0") resetView();
      else if (event.key === "+" || event.key === "=") zoomAt(1.25, views[0].clientWidth / 2, views[0].clientHeight / 2);
      else if (event.key === "-") zoomAt(0.8, views[0].clientWidth / 2, views[0].clientHeight / 2);
    });
    document.getElementById("choose-left").addEventListener("click", () => vote("left"));
    document.getElementById("choose-right").addEventListener("click", () => vote("right"));
    flickerButton.addEventListener("click", () => setFlicker(!body.classList.contains("flicker")));
    window.addEventListener("resize", () => { if (trial) resetView(); });
    loadNext();
  }

  if (body.dataset.page === "consent") consentPage();
  else if (body.dataset.page === "trial") trialPage();
})();
