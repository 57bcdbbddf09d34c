// The claims queue (pending, oldest first, page by page) and one claim: its detail, its history,
// and the two decisions. A decision another agent took first comes back as the API's 409: the
// claim is read again and shown as it now stands, with what happened said plainly.

import { ApiError } from "../api.js";
import { el, facts, hashFor, table } from "../dom.js";
import { formatInstant, formatPoints, t, term } from "../i18n.js";

const PAGE_SIZE = 20;
// The queue's pages seen so far in this tab: cursors[i] reads page i + 1.
let queueCursors = [null];

export async function renderClaims(context, page = 0) {
  const cursor = queueCursors[page] ?? null;
  let answer;
  try {
    answer = await context.api.claims("pending", cursor, PAGE_SIZE);
  } catch (error) {
    if (!context.failed(error)) context.show(el("h2", {}, t("claims.title")), errorBox(context.describe(error)));
    return;
  }
  queueCursors = queueCursors.slice(0, page + 1);
  if (answer.nextCursor) queueCursors[page + 1] = answer.nextCursor;
  const rows = answer.claims.map((claim) => [
    formatInstant(claim.createdAt),
    el("a", { href: hashFor("members", claim.memberId) }, claim.memberId),
    el("a", { href: hashFor("claims", claim.claimId), "aria-label": t("claims.open", { id: claim.transactionId }) }, claim.transactionId),
    formatInstant(claim.occurredAt),
    `${claim.amount} ${claim.currency}`,
    claim.store || "",
  ]);
  const columns = [
    [t("claims.filed")],
    [t("claims.member")],
    [t("claims.purchase")],
    [t("claims.purchaseDate")],
    [t("claims.amount"), true],
    [t("claims.store")],
  ];
  context.show(
    el("h2", {}, t("claims.title")),
    rows.length ? table(t("claims.caption", { page: page + 1 }), columns, rows) : el("p", {}, t("claims.none")),
    pager(context, page, Boolean(answer.nextCursor), (to) => renderClaims(context, to), "pager.previous", "pager.next"),
  );
}

export function pager(context, page, hasNext, go, previousKey, nextKey) {
  return el(
    "div",
    { class: "pager" },
    page > 0 ? el("button", { type: "button", class: "secondary", onclick: () => go(page - 1) }, t(previousKey)) : null,
    hasNext ? el("button", { type: "button", class: "secondary", onclick: () => go(page + 1) }, t(nextKey)) : null,
  );
}

function errorBox(text) {
  return el("p", { class: "alert", role: "alert" }, text);
}

function actor(who) {
  return who ? `${who.kind}:${who.id}` : "";
}

function statusText(status) {
  return t(`status.${status}`);
}

export async function renderClaim(context, claimId, notice = null) {
  let claim;
  try {
    claim = await context.api.claim(claimId);
  } catch (error) {
    if (context.failed(error)) return;
    const text = error instanceof ApiError && error.status === 404 ? t("claim.notFound", { id: claimId }) : context.describe(error);
    context.show(el("h2", {}, t("claims.title")), errorBox(text));
    return;
  }
  const credit = claim.credit
    ? t("claim.creditValue", { points: formatPoints(claim.credit.points), balance: formatPoints(claim.credit.balance) })
    : null;
  const history = table(
    t("claim.history"),
    [[t("claim.when")], [t("claim.who")], [t("claim.action")], [t("claim.status")], [t("claim.reason")], [t("claim.points"), true]],
    claim.history.map((event) => [
      formatInstant(event.at),
      actor(event.actor),
      term("action", event.action),
      statusText(event.status),
      event.reason || "",
      event.points === null || event.points === undefined ? "" : formatPoints(event.points),
    ]),
  );
  context.show(
    el("h2", {}, t("claim.title", { id: claim.transactionId })),
    notice,
    facts([
      [t("claim.status"), el("span", { class: "badge", id: "claim-status" }, statusText(claim.status))],
      [t("claims.member"), el("a", { href: hashFor("members", claim.memberId) }, t("claim.viewMember", { id: claim.memberId }))],
      [t("claims.purchaseDate"), formatInstant(claim.occurredAt)],
      [t("claims.amount"), `${claim.amount} ${claim.currency}`],
      [t("claims.store"), claim.store],
      [t("claim.receipt"), claim.receiptRef],
      [t("claim.filedBy"), `${actor(claim.filedBy)}, ${formatInstant(claim.createdAt)}`],
      [t("claim.decidedBy"), claim.decidedBy ? `${actor(claim.decidedBy)}, ${formatInstant(claim.decidedAt)}` : null],
      [t("claim.reason"), claim.reason],
      [t("claim.credit"), credit],
    ]),
    claim.status === "pending" ? decisionForms(context, claim) : null,
    history,
  );
}

function decisionForms(context, claim) {
  const alert = el("p", { class: "alert", role: "alert", id: "decision-error" });
  const points = el("input", {
    id: "approve-points",
    name: "points",
    type: "number",
    min: 0,
    step: 1,
    inputmode: "numeric",
    required: true,
    "aria-describedby": "approve-hint",
    value: claim.suggestedPoints ?? "",
  });
  const approveReason = el("input", { id: "approve-reason", name: "reason", required: true, maxlength: 500 });
  const rejectReason = el("textarea", { id: "reject-reason", name: "reason", required: true, maxlength: 500, rows: 3 });
  const buttons = [];

  async function send(decision) {
    buttons.forEach((button) => (button.disabled = true));
    alert.textContent = "";
    try {
      const decided = await context.api.decide(claim.claimId, decision);
      const text =
        decided.status === "approved" && decided.credit
          ? t("claim.approved", { points: formatPoints(decided.credit.points), balance: formatPoints(decided.credit.balance) })
          : t("claim.rejected");
      await renderClaim(context, claim.claimId);
      context.announce(text);
    } catch (error) {
      if (context.failed(error)) return;
      if (error instanceof ApiError && error.status === 409) {
        // Decided meanwhile by someone else: show the claim as it now stands, never overwrite it.
        let now = null;
        try {
          now = await context.api.claim(claim.claimId);
        } catch {
          now = null;
        }
        // Another conflict (the movement too large, the member closed…) leaves the claim pending:
        // that is the API's refusal, said as such, not another agent's decision.
        if (now && now.status !== "pending") {
          const notice = el(
            "p",
            { class: "notice", role: "alert", id: "decision-conflict" },
            t("claim.conflict", { status: statusText(now.status), who: actor(now.decidedBy), when: formatInstant(now.decidedAt) }),
          );
          await renderClaim(context, claim.claimId, notice);
          return;
        }
      }
      alert.textContent = context.describe(error);
      buttons.forEach((button) => (button.disabled = false));
    }
  }

  const approve = el("button", { type: "submit", id: "approve" }, t("claim.approve"));
  const reject = el("button", { type: "submit", id: "reject", class: "danger" }, t("claim.reject"));
  buttons.push(approve, reject);
  return el(
    "div",
    {},
    alert,
    el(
      "div",
      { class: "decisions" },
      el(
        "form",
        {
          class: "stacked",
          id: "approve-form",
          onsubmit: (event) => {
            event.preventDefault();
            send({ decision: "approve", points: Number(points.value), reason: approveReason.value.trim() });
          },
        },
        el(
          "fieldset",
          {},
          el("legend", {}, t("claim.approve")),
          el("label", { for: "approve-points" }, t("claim.approvePoints")),
          points,
          el(
            "p",
            { class: "hint", id: "approve-hint" },
            claim.suggestedPoints === null || claim.suggestedPoints === undefined
              ? t("claim.noSuggestion")
              : t("claim.suggested", { points: formatPoints(claim.suggestedPoints) }),
          ),
          el("label", { for: "approve-reason" }, t("claim.approveReason")),
          approveReason,
          el("div", {}, approve),
        ),
      ),
      el(
        "form",
        {
          class: "stacked",
          id: "reject-form",
          onsubmit: (event) => {
            event.preventDefault();
            send({ decision: "reject", reason: rejectReason.value.trim() });
          },
        },
        el(
          "fieldset",
          {},
          el("legend", {}, t("claim.reject")),
          el("label", { for: "reject-reason" }, t("claim.rejectReason")),
          rejectReason,
          el("div", {}, reject),
        ),
      ),
    ),
  );
}
