// The sign-in screen: a development identity in the local mode, Cognito's hosted sign-in in AWS.

import { el } from "../dom.js";
import { t } from "../i18n.js";

export function renderSignIn(context, config, { message, onDev, onCognito }) {
  const alert = el("p", { class: "alert", role: "alert", id: "signin-message" }, message || "");
  if (config.mode === "local") {
    const role = el(
      "select",
      { id: "signin-role", name: "role" },
      (config.roles || ["support"]).map((name) => el("option", { value: name, selected: name === "support" }, name)),
    );
    const id = el("input", { id: "signin-id", name: "id", required: true, value: "agent-1", autocomplete: "username", spellcheck: "false" });
    const submit = el("button", { type: "submit" }, t("signin.submit"));
    const form = el(
      "form",
      {
        class: "stacked",
        onsubmit: async (event) => {
          event.preventDefault();
          submit.disabled = true;
          try {
            await onDev(role.value, id.value.trim());
          } finally {
            submit.disabled = false;
          }
        },
      },
      el("label", { for: "signin-role" }, t("signin.role")),
      role,
      el("label", { for: "signin-id" }, t("signin.id")),
      id,
      el("div", {}, submit),
    );
    context.show(el("h2", {}, t("signin.title")), alert, el("p", { class: "hint" }, t("signin.local")), form);
    return;
  }
  context.show(
    el("h2", {}, t("signin.title")),
    alert,
    el("p", {}, t("signin.cognito")),
    el("button", { type: "button", id: "signin-cognito", onclick: onCognito }, t("signin.cognitoSubmit")),
  );
}
