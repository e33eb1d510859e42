// wxbot console: small enhancements; every page works without them.
"use strict";

(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  // Forms (and single buttons of a form) that ask before doing something that cannot be undone.
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  document.querySelectorAll("button[data-confirm]").forEach((button) => {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  });

  document.querySelectorAll("a[data-back]").forEach((link) => {
    link.addEventListener("click", (event) => {
      if (window.history.length > 1) {
        event.preventDefault();
        window.history.back();
      }
    });
  });

  // Attach an unanswered question: entries matching what is typed, each a one-click button.
  // A group's search form (data-into) puts buttons into the group's own form instead, so
  // they send its ticked questions along.
  document.querySelectorAll("form[data-attach-search]").forEach((form) => {
    const input = form.elements.namedItem("q"); // also an input outside it (form="...")
    const results = form.dataset.into
      ? document.getElementById(form.dataset.into)
      : form.parentElement.querySelector("[data-results]");
    const attachUrl = form.action.split("?")[0]; // the same URL takes the POST
    let timer = null;
    let asked = "";
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const q = input.value.trim();
        if (q === asked) return;
        asked = q;
        results.replaceChildren();
        if (!q) return;
        const response = await fetch("/admin/knowledge/search.json?q=" + encodeURIComponent(q), {
          credentials: "same-origin",
        });
        if (q !== asked) return;
        // a session that ended (logged out in another tab, expired, the token changed) is
        // sent to the login page: HTML, not the JSON asked for. Say so; do not stay silent.
        const json = (response.headers.get("Content-Type") || "").startsWith("application/json");
        if (!response.ok || response.redirected || !json) {
          results.append(note(response.redirected ? "登录已过期：请刷新页面，重新登录。" : "搜索失败，请稍后再试。"));
          return;
        }
        const { items } = await response.json();
        if (!items.length) results.append(note("没有找到。"));
        for (const item of items) {
          results.append(form.dataset.into ? groupButton(attachUrl, item) : attachButton(attachUrl, item));
        }
      }, 250);
    });
  });

  function note(text) {
    const p = document.createElement("p");
    p.className = "muted small";
    p.textContent = text;
    return p;
  }

  function choiceButton(item) {
    const button = document.createElement("button");
    button.type = "submit";
    button.className = "choice";
    // text, never HTML; the question isolated (<bdi>), as the page's own buttons have it:
    // bidi controls in it must not reorder the 」 after it
    const question = document.createElement("bdi");
    question.textContent = item.question;
    button.append(`归入 #${item.id}「`, question, "」");
    return button;
  }

  function attachButton(url, item) {
    const form = document.createElement("form");
    form.method = "post";
    form.action = url;
    form.className = "inline";
    for (const [name, value] of [["csrf_token", csrf()], ["entry_id", String(item.id)]]) {
      const field = document.createElement("input");
      field.type = "hidden";
      field.name = name;
      field.value = value;
      form.append(field);
    }
    form.append(choiceButton(item));
    return form;
  }

  function groupButton(url, item) {
    const button = choiceButton(item);
    button.name = "entry_id";
    button.value = String(item.id);
    button.formAction = url;
    button.formNoValidate = true;
    return button;
  }

  // Upload with a progress bar (large files take a while on a slow line).
  document.querySelectorAll("form[data-upload]").forEach((form) => {
    const bar = form.querySelector("[data-upload-progress]");
    form.addEventListener("submit", (event) => {
      const file = form.querySelector('input[type="file"]').files[0];
      if (!file || file.size < 512 * 1024) return; // small files: a plain submit is instant
      event.preventDefault();
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      bar.classList.remove("hidden");
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
      });
      xhr.addEventListener("load", () => {
        if (xhr.status < 400) window.location.assign(xhr.responseURL);
        else form.submit(); // let the server's error page show
      });
      xhr.addEventListener("error", () => form.submit());
      xhr.send(new FormData(form));
    });
  });

  // An import under way: follow its progress, then show the result.
  const job = document.querySelector("[data-job-status]");
  if (job && ["checking", "importing"].includes(job.dataset.state)) {
    const bar = job.querySelector("[data-job-progress]");
    const count = job.querySelector("[data-job-count]");
    const poll = async () => {
      try {
        const response = await fetch(job.dataset.jobStatus, { credentials: "same-origin" });
        const state = await response.json();
        if (state.status !== job.dataset.state) return window.location.reload();
        if (bar && state.total) {
          bar.max = state.total;
          bar.value = state.done;
        }
        if (count) count.textContent = `${state.done} / ${state.total || "?"}`;
      } catch (err) {
        /* a network hiccup: try again */
      }
      setTimeout(poll, 700);
    };
    setTimeout(poll, 300);
  }
})();
