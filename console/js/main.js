// The console's entry point: reads config.json (written by the local server, or uploaded with the
// files in AWS), signs the agent in, and routes `#/claims`, `#/claims/<id>`, `#/members/<id>`.

import { createApi, ApiError } from "./api.js";
import {
  authorizationHeader,
  completeCognitoSignIn,
  currentSession,
  devSignIn,
  forget,
  SignInError,
  signOut,
  startCognitoSignIn,
} from "./auth.js";
import { el, replace } from "./dom.js";
import { initialLanguage, setLanguage, t } from "./i18n.js";
import { renderClaim, renderClaims } from "./views/claims.js";
import { renderMember } from "./views/member.js";
import { renderSignIn } from "./views/signin.js";

const main = document.getElementById("main");
const status = document.getElementById("status");
let config = null;
let api = null;
let signInMessage = "";
let generation = 0;
let shownOnce = false;

/** A success message in the polite live region (cleared on the next screen). */
export function announce(text) {
  status.textContent = text;
}

/** The message an API error means for the agent. */
export function describe(error) {
  if (!(error instanceof ApiError)) return String(error && error.message ? error.message : error);
  if (error.status === 0) return t("error.network", { message: error.message });
  if (error.status === 422 || error.status === 400) return t("error.invalid", { message: error.message });
  if (error.status === 403) return t("error.forbidden", { message: error.message });
  return t("error.generic", { status: error.status, message: error.message });
}

function showSignedIn(session) {
  document.getElementById("nav").hidden = !session;
  document.getElementById("signout").hidden = !session;
  document.getElementById("who").textContent = session ? t("app.signedInAs", { who: session.who }) : "";
}

/** Ends the session when the API no longer accepts it (401), then shows the sign-in screen. */
function sessionEnded() {
  forget();
  signInMessage = t("signin.ended");
  render();
}

const context = {
  get api() {
    return api;
  },
  announce,
  describe,
  failed(error) {
    if (error instanceof ApiError && error.status === 401) {
      sessionEnded();
      return true;
    }
    return false;
  },
  show(...children) {
    replace(main, ...children);
    const heading = main.querySelector("h2");
    // A new screen takes the focus to its heading, except the first one: a page just opened starts
    // at the top (the skip link first), as any page does.
    const first = !shownOnce;
    shownOnce = true;
    if (heading && !first) {
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    }
  },
};

/** Admit the identity only if the API lets it read the claims queue (support): no rule here. */
async function admit() {
  try {
    await api.claims("pending", null, 1);
    return true;
  } catch (error) {
    forget();
    if (error instanceof ApiError && error.status === 403) signInMessage = t("signin.refused");
    else if (error instanceof ApiError && error.status === 401) signInMessage = t("signin.rejected", { message: error.message });
    else signInMessage = describe(error);
    return false;
  }
}

async function signIn(role, id) {
  devSignIn(role, id);
  if (await admit()) {
    signInMessage = "";
    if (window.location.hash.startsWith("#/")) render();
    else window.location.hash = "#/claims";
  } else {
    render();
  }
}

function render() {
  const session = currentSession();
  showSignedIn(session);
  announce("");
  if (!session) {
    generation += 1;
    renderSignIn(context, config, {
      message: signInMessage,
      onDev: signIn,
      onCognito: () => startCognitoSignIn(config),
    });
    return;
  }
  // A screen whose answers come after the agent moved on is not shown over the newer one.
  const ticket = ++generation;
  const view = { ...context, show: (...children) => ticket === generation && context.show(...children) };
  // A part that is not valid percent-encoding (an address edited by hand) is taken as written.
  const decoded = (part) => {
    try {
      return decodeURIComponent(part || "");
    } catch {
      return part;
    }
  };
  const [, section, id] = window.location.hash.split("/").map(decoded);
  let shown;
  if (section === "members" && id) shown = renderMember(view, id);
  else if (section === "claims" && id) shown = renderClaim(view, id);
  else shown = renderClaims(view);
  // An answer the screen cannot read (not the API's JSON) is said, never a blank page or an
  // unhandled rejection.
  shown.catch((problem) => {
    const text = t("error.unreadable", { message: describe(problem) });
    view.show(el("h2", {}, t("app.title")), el("p", { class: "alert", role: "alert" }, text));
  });
}

async function boot() {
  setLanguage(initialLanguage());
  const languageSwitch = document.getElementById("lang");
  languageSwitch.value = document.documentElement.lang;
  languageSwitch.addEventListener("change", () => {
    setLanguage(languageSwitch.value, { remember: true });
    render();
  });
  document.getElementById("skip").addEventListener("click", (event) => {
    event.preventDefault();
    main.focus();
  });
  document.getElementById("signout").addEventListener("click", () => {
    if (!signOut(config)) render();
  });
  // Going where the page already is (the queue from its second page, the same member again)
  // changes no hash: read it again all the same.
  const go = (hash) => {
    if (window.location.hash === hash) render();
    else window.location.hash = hash;
  };
  document.getElementById("find").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = document.getElementById("find-id").value.trim();
    if (id) go(`#/members/${encodeURIComponent(id)}`);
  });
  document.getElementById("nav-claims").addEventListener("click", (event) => {
    event.preventDefault();
    go("#/claims");
  });
  window.addEventListener("hashchange", render);

  try {
    const response = await fetch("config.json", { cache: "no-store" });
    config = await response.json();
  } catch (problem) {
    replace(main, el("p", { class: "alert", role: "alert" }, `config.json: ${problem.message}`));
    return;
  }
  api = createApi(config.apiUrl || "", authorizationHeader);
  if (config.mode === "cognito") {
    try {
      if ((await completeCognitoSignIn(config)) && !(await admit())) forget();
    } catch (problem) {
      signInMessage =
        problem instanceof SignInError ? t(problem.key, problem.params) : t("signin.failed", { message: problem.message });
    }
  }
  render();
}

boot();
